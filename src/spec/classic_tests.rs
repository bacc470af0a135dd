//! Every stat of `stats/pulse-classic.stats` against an event it must count and one it must
//! not. Events are written as `k=v` words (see [`ev`]).

//! `pulse-parse` CLI tests.

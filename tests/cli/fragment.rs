//! `pulse-fragment` CLI tests.

//! `pulse-emit` CLI tests.

//! `pulse-merge` CLI tests.

//! One module per tool, each the same shape: clap `Args`, then `run`.
//!
//! `main` in each module is what the binary calls: it parses the command line (usage errors
//! exit 2), runs the tool and maps its result to an exit status (see [`crate::error`]).

pub mod alert;
pub mod emit;
pub mod fragment;
pub mod merge;
pub mod parse;
pub mod web;

//! CLI tests: one integration binary driving the real binaries.

mod alert;
mod e2e;
mod emit;
mod fragment;
mod inputs;
mod kafka;
mod link;
mod listen;
mod live;
mod merge;
mod parse;
mod patterns;
mod postgres;
mod servers;
mod util;
mod web;

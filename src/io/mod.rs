//! Input and output plumbing shared by every tool; knows nothing of stats or formats.
//!
//! - [`input`]: the files or stdin a tool reads, and [`input::ChunkReader`], which cuts a byte
//!   stream into chunks of whole lines with a documented line-size limit;
//! - [`lines`]: splitting a chunk into lines with memchr;
//! - [`output`]: locked stdout, block-buffered unless it is a terminal;
//! - [`pipeline`]: chunks spread over worker threads, results handed back in input order;
//! - [`progress`]: a progress bar on stderr, only when stderr is a terminal.

pub mod input;
pub mod lines;
pub mod output;
pub mod pipeline;
pub mod progress;

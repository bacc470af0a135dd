//! Input and output plumbing shared by every tool; knows nothing of stats or formats.
//!
//! - [`input`]: the files or stdin a tool reads, and [`input::ChunkReader`], which cuts a byte
//!   stream into chunks of whole lines with a documented line-size limit;
//! - [`lines`]: splitting a chunk into lines with memchr;
//! - [`link`]: `--connect`, the kept, re-sending connection from a sender to a merger;
//! - [`output`]: locked stdout, block-buffered unless it is a terminal;
//! - [`pipeline`]: chunks spread over worker threads, results handed back in input order;
//! - [`pool`]: spare buffers handed back for reuse;
//! - [`progress`]: a progress bar on stderr, only when stderr is a terminal.

pub mod input;
pub mod lines;
pub mod link;
pub mod listen;
pub mod output;
pub mod pipeline;
pub mod pool;
pub mod progress;
pub mod signals;

/// Ask for a 1 MiB buffer on the pipe `fd` (on Linux, up to `/proc/sys/fs/pipe-max-size`).
///
/// With the default 64 KiB, a fast writer and a fast reader take turns sixteen times per
/// megabyte, each turn a pair of context switches. Not a pipe, not Linux, or over the
/// user's pipe-buffer allowance: the pipe is left as it is.
pub fn grow_pipe(fd: i32) {
    #[cfg(target_os = "linux")]
    // SAFETY: fcntl on a descriptor number: at worst it fails with EBADF or EINVAL, which
    // is ignored.
    unsafe {
        libc::fcntl(fd, libc::F_SETPIPE_SZ, 1 << 20);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = fd;
}

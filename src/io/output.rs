//! Where a tool writes: stdout, locked once and buffered.

use std::io::{self, IsTerminal, LineWriter, Write};

/// Locked stdout: line-buffered on a terminal or when asked (`--line-buffered`, for
/// `tail -f | pulse-parse | ...`), block-buffered otherwise.
pub fn stdout(line_buffered: bool) -> Box<dyn Write> {
    let out = io::stdout();
    if line_buffered || out.is_terminal() {
        Box::new(LineWriter::new(out.lock()))
    } else {
        super::grow_pipe(1);
        Box::new(io::BufWriter::with_capacity(256 * 1024, out.lock()))
    }
}

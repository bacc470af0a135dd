//! What a tool reads: the files named on its command line, or stdin (`-` or no file).
//!
//! - **Unreadable inputs.** [`open_all`] never fails: an input that cannot be opened
//!   becomes one whose first read fails with the reason, so it is reported (with its path)
//!   where a read error in the middle of a file is, the other inputs are read, and the tool
//!   exits 1 at the end, as `cat` does.
//! - **gzip.** An input that starts with the gzip magic bytes `1f 8b` (a file or stdin,
//!   whatever its name) is decompressed as it is read, concatenated members too (as
//!   `zcat`); corrupt or truncated data is a read error of that input, after the lines
//!   before it.
//! - **Binary input.** An input whose first block is not text (control or NUL bytes more
//!   than one in ten, or the magic of another compressor or of an executable) is skipped
//!   with one message naming it, as an input that cannot be read.
//! - **Limits.** Raw log lines are cut at [`MAX_LINE`]; NDJSON records (events, fragments,
//!   snapshots) may be up to [`MAX_RECORD`], far more than any record a Pulse tool writes
//!   (see there), and a longer one is skipped whole. Either way memory stays within the
//!   limit however long the line.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::pool::Pool;
use crate::error::io_reason;

/// The longest raw log line a tool accepts: 1 MiB. A longer line is cut to this length (the
/// rest, up to its newline, is skipped) and counted as overlong.
pub const MAX_LINE: usize = 1 << 20;

/// The longest NDJSON record (event, fragment, snapshot) a tool reads: 64 MiB. Every record
/// a Pulse tool writes fits: an event of a raw line is at most this long (the parser makes
/// sure, see [`crate::parse::MAX_EVENT`]), and so is a fragment or a snapshot, whose texts
/// (group keys, `top` values, `last` partitions) are cut at [`crate::stat::MAX_TEXT`] bytes:
/// 10,001 values of at most 6 KiB of JSON each. A longer record is skipped whole (cut, it
/// would not be JSON) and counted as overlong.
pub const MAX_RECORD: usize = 64 << 20;

/// What an input holds, which decides its line limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Raw log lines: cut at [`MAX_LINE`], the cut line kept.
    Lines,
    /// NDJSON records: up to [`MAX_RECORD`], a longer one dropped.
    Records,
}

impl Kind {
    pub fn max_line(self) -> usize {
        match self {
            Kind::Lines => MAX_LINE,
            Kind::Records => MAX_RECORD,
        }
    }
}

/// The UTF-8 byte-order mark, dropped from the start of an input.
const BOM: &[u8] = b"\xef\xbb\xbf";

/// One input source.
pub struct Input {
    /// How messages name it: the path, or `stdin`.
    pub name: String,
    /// Its size when it is a regular file or bytes in memory (for progress bars; reading
    /// such an input never waits, see [`ChunkReader::never_waits`]).
    pub len: Option<u64>,
    pub reader: Box<dyn Read + Send>,
    /// The descriptor of a pipe, socket or terminal, polled to learn whether more input is
    /// ready without waiting, and read directly (see [`ChunkReader::with_ready_fd`]); `None`
    /// for regular files.
    pub ready_fd: Option<i32>,
    /// A regular file's modification time (Unix seconds): stamps without a year are read
    /// as near it (see [`crate::parse::stamp`]); `None` for a stream (the clock).
    pub mtime: Option<i64>,
    /// What it holds (its line limit).
    pub kind: Kind,
}

/// A reader whose first read fails: an input that could not be opened.
struct Unopened(Option<io::Error>);

impl Read for Unopened {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        match self.0.take() {
            Some(e) => Err(e),
            None => Ok(0),
        }
    }
}

impl Input {
    pub fn stdin() -> Input {
        Input {
            name: "stdin".into(),
            len: None,
            reader: Box::new(io::stdin()),
            ready_fd: Some(0),
            mtime: None,
            kind: Kind::Lines,
        }
    }

    /// Open `path` (`-` is stdin). One that cannot be opened is still an input, whose first
    /// read fails with the reason (see the module doc).
    pub fn open(path: &Path) -> Input {
        match Input::try_open(path) {
            Ok(input) => input,
            Err(e) => Input {
                name: path.display().to_string(),
                len: Some(0),
                reader: Box::new(Unopened(Some(io::Error::new(e.kind(), io_reason(&e))))),
                ready_fd: None,
                mtime: None,
                kind: Kind::Lines,
            },
        }
    }

    fn try_open(path: &Path) -> io::Result<Input> {
        if path == Path::new("-") {
            return Ok(Input::stdin());
        }
        let file = File::open(path)?;
        let meta = file.metadata().ok().filter(|m| m.is_file());
        let len = meta.as_ref().map(|m| m.len());
        let mtime = meta
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_secs() as i64);
        // A named pipe or `<(...)` streams like stdin.
        let ready_fd = len
            .is_none()
            .then(|| std::os::fd::AsRawFd::as_raw_fd(&file));
        Ok(Input {
            name: path.display().to_string(),
            len,
            reader: Box::new(file),
            ready_fd,
            mtime,
            kind: Kind::Lines,
        })
    }

    pub fn from_bytes(name: &str, bytes: Vec<u8>) -> Input {
        Input {
            name: name.into(),
            len: Some(bytes.len() as u64),
            reader: Box::new(io::Cursor::new(bytes)),
            ready_fd: None,
            mtime: None,
            kind: Kind::Lines,
        }
    }

    /// The chunk reader for this input: its limit, its descriptor, whether it waits.
    pub fn chunks(self) -> ChunkReader<Box<dyn Read + Send>> {
        ChunkReader::with_sizes(self.reader, 1 << 20, self.kind.max_line())
            .drop_overlong(self.kind == Kind::Records)
            .with_ready_fd(self.ready_fd)
            .never_waits(self.len.is_some())
    }
}

/// Open every path (`-` is stdin) as inputs of `kind`; no path means stdin. Never fails: an
/// input that cannot be opened fails at its first read (see the module doc).
pub fn open_all(paths: &[PathBuf], kind: Kind) -> Vec<Input> {
    let mut inputs = if paths.is_empty() {
        vec![Input::stdin()]
    } else {
        paths.iter().map(|p| Input::open(p)).collect::<Vec<_>>()
    };
    for i in &mut inputs {
        i.kind = kind;
    }
    inputs
}

/// The gzip magic bytes.
const GZIP: [u8; 2] = [0x1f, 0x8b];

/// What the first block of an input is, when it is not text: the magic bytes of other
/// compressed or binary formats, or control bytes (NUL included, whitespace and ESC, which
/// colour codes use, not) more than one in ten of its first 8 KiB (of 32 bytes at least).
/// `None` for text, including text that is not UTF-8 and text with a stray NUL.
pub fn binary_kind(block: &[u8]) -> Option<&'static str> {
    const MAGIC: [(&[u8], &str); 8] = [
        (b"BZh", "bzip2-compressed data"),
        (b"\xfd7zXZ\0", "xz-compressed data"),
        (b"\x28\xb5\x2f\xfd", "zstd-compressed data"),
        (b"\x04\x22\x4d\x18", "lz4-compressed data"),
        (b"PK\x03\x04", "a zip archive"),
        (b"7z\xbc\xaf\x27\x1c", "a 7-zip archive"),
        (b"\x7fELF", "an executable (ELF)"),
        (
            b"LPKSHHRH",
            "a systemd journal file (read it with journalctl -o json)",
        ),
    ];
    if let Some((_, what)) = MAGIC.iter().find(|(m, _)| {
        block.starts_with(m) && (m.len() > 3 || block.get(3).is_some_and(u8::is_ascii_digit))
    }) {
        return Some(what);
    }
    let block = &block[..block.len().min(8192)];
    let control = block
        .iter()
        .filter(|&&b| (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0c | 0x1b)) || b == 0x7f)
        .count();
    (block.len() >= 32 && control * 10 > block.len()).then_some("binary data")
}

/// Where a [`ChunkReader`] reads from: its reader, or once gzip was seen at the start, a
/// decoder over what was read of it and the rest.
enum Source<R> {
    Plain(R),
    Gzip(Box<Gunzip<R>>),
    Gone,
}

/// A gzip decoder over the bytes already read of an input and the rest of it.
type Gunzip<R> = flate2::bufread::MultiGzDecoder<io::BufReader<io::Chain<io::Cursor<Vec<u8>>, R>>>;

impl<R: Read> Read for Source<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Source::Plain(r) => r.read(buf),
            Source::Gzip(d) => d.read(buf).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("corrupt or truncated gzip data ({e}); the lines before it were read"),
                )
            }),
            Source::Gone => Ok(0),
        }
    }
}

/// Cuts a byte stream into chunks that hold whole lines only.
///
/// A chunk is handed out as soon as a read delivers at least one complete line, so a live
/// stream is not held back waiting for a full buffer. The last line of the stream may lack its
/// newline. Lines longer than `max_line` are cut (see [`MAX_LINE`]) and counted in
/// [`ChunkReader::overlong`].
pub struct ChunkReader<R> {
    inner: Source<R>,
    /// Bytes read but not yet handed out (an incomplete last line); reads go straight into
    /// its room.
    carry: Vec<u8>,
    chunk_size: usize,
    max_line: usize,
    /// Skipping the rest of an overlong line up to its newline.
    skipping: bool,
    /// Where chunks come from (spares handed back by whoever consumed earlier ones).
    pool: Option<Pool>,
    /// See [`ChunkReader::with_ready_fd`].
    ready_fd: Option<i32>,
    /// See [`ChunkReader::never_waits`].
    never_waits: bool,
    eof: bool,
    /// Nothing decided yet about gzip at the very start.
    sniff_gzip: bool,
    /// Nothing decided yet about a byte-order mark (and binary data) at the very start.
    at_start: bool,
    /// Drop an overlong line whole (an NDJSON record, which cut would not be one) instead
    /// of cutting it; an empty line stands in for it, so line numbers stay right.
    drop_overlong: bool,
    /// The input was gzip-compressed.
    pub gzip: bool,
    /// The read error that ended the input, returned once the lines before it are out.
    failed: Option<io::Error>,
    /// How many lines were cut for being longer than the limit.
    pub overlong: u64,
    /// The number (from 1) of the first line cut, if any.
    pub first_overlong: Option<u64>,
    /// Complete lines handed out so far.
    lines: u64,
}

impl<R: Read> ChunkReader<R> {
    pub fn new(inner: R) -> ChunkReader<R> {
        ChunkReader::with_sizes(inner, 1 << 20, MAX_LINE)
    }

    pub fn with_sizes(inner: R, chunk_size: usize, max_line: usize) -> ChunkReader<R> {
        ChunkReader {
            inner: Source::Plain(inner),
            carry: Vec::new(),
            chunk_size: chunk_size.max(1),
            max_line: max_line.max(1),
            skipping: false,
            pool: None,
            ready_fd: None,
            never_waits: false,
            eof: false,
            sniff_gzip: true,
            at_start: true,
            drop_overlong: false,
            gzip: false,
            failed: None,
            overlong: 0,
            first_overlong: None,
            lines: 0,
        }
    }

    /// Drop overlong lines whole instead of cutting them (NDJSON records).
    pub fn drop_overlong(mut self, yes: bool) -> ChunkReader<R> {
        self.drop_overlong = yes;
        self
    }

    /// Go on reading through a gzip decoder: what was read is its start.
    #[cold]
    fn start_gzip(&mut self) {
        let Source::Plain(r) = std::mem::replace(&mut self.inner, Source::Gone) else {
            return;
        };
        let read = self.carry.clone();
        self.carry.clear();
        let chained = io::BufReader::with_capacity(1 << 17, io::Cursor::new(read).chain(r));
        self.inner = Source::Gzip(Box::new(flate2::bufread::MultiGzDecoder::new(chained)));
        // Decompressed, a stream is no longer the descriptor's bytes: read through the
        // decoder, one read at a time.
        self.ready_fd = None;
        self.gzip = true;
    }

    /// Take chunk buffers from `pool` (give them back there when done with them).
    pub fn with_pool(mut self, pool: Pool) -> ChunkReader<R> {
        self.pool = Some(pool);
        self
    }

    /// Gather a pipe's reads into full chunks while more input is ready at once.
    ///
    /// A pipe delivers at most 64 KiB per read. Handing each read out as a chunk keeps a
    /// live stream moving, but when the writer is ahead (a replay piped in) the per-chunk
    /// costs then dominate. With the descriptor known, the reader keeps reading while the
    /// descriptor has data ready now, up to half a chunk, and never waits holding lines back.
    /// The pipe's buffer is also grown (see [`super::grow_pipe`]) so each read can bring more.
    ///
    /// Reads then go to the descriptor itself (one read(2) straight into the chunk), so the
    /// reader must be the descriptor's with nothing buffered (a `File`, a pipe, or `Stdin`
    /// before anything read it).
    pub fn with_ready_fd(mut self, fd: Option<i32>) -> ChunkReader<R> {
        if let Some(fd) = fd {
            super::grow_pipe(fd);
        }
        self.ready_fd = fd;
        self
    }

    /// Declare that reading `inner` never waits for more input to arrive (a regular file,
    /// bytes in memory): each read then fills a whole chunk, straight into it. A stream must
    /// not be declared so: a read would wait for a chunk's worth, holding back lines.
    pub fn never_waits(mut self, yes: bool) -> ChunkReader<R> {
        self.never_waits = yes;
        self
    }

    /// True when the input can be read again without waiting.
    fn more_ready(&self) -> bool {
        let Some(fd) = self.ready_fd else {
            return false;
        };
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, a zero timeout; the descriptor is owned by `inner`.
        let n = unsafe { libc::poll(&mut p, 1, 0) };
        n == 1 && p.revents & (libc::POLLIN | libc::POLLHUP) != 0
    }

    /// The next chunk of whole lines, or `None` at end of input.
    pub fn next_chunk(&mut self) -> io::Result<Option<Vec<u8>>> {
        loop {
            if self.eof {
                if self.failed.is_some() {
                    // The whole lines read before the error first, then the error.
                    let end = memchr::memrchr(b'\n', &self.carry).map_or(0, |i| i + 1);
                    self.carry.truncate(end);
                    if self.carry.is_empty() {
                        return Err(self.failed.take().expect("checked"));
                    }
                    let chunk = std::mem::take(&mut self.carry);
                    let chunk = self.cut_overlong(chunk);
                    self.lines += memchr::memchr_iter(b'\n', &chunk).count() as u64;
                    return Ok(Some(chunk));
                }
                if self.carry.is_empty() {
                    return Ok(None);
                }
                return Ok(Some(std::mem::take(&mut self.carry)));
            }
            let want = match self.chunk_size.saturating_sub(self.carry.len()) {
                0 => self.chunk_size, // a line longer than a chunk
                room => room,
            };
            let n = match self.ready_fd {
                None if self.never_waits => {
                    // A regular file (or bytes in memory): read a chunk's worth straight
                    // into the chunk (through `read_to_end`, which neither zeroes the room
                    // first nor copies).
                    // (The reader itself, not `Source`, when plain: `Source` has no
                    // `read_buf` of its own, and the default one would zero the room.)
                    match &mut self.inner {
                        Source::Plain(r) => r.take(want as u64).read_to_end(&mut self.carry),
                        gz => gz.take(want as u64).read_to_end(&mut self.carry),
                    }
                }
                None => {
                    // Any other reader: one read into zeroed room.
                    let len = self.carry.len();
                    self.carry.resize(len + want, 0);
                    let got = loop {
                        match self.inner.read(&mut self.carry[len..]) {
                            Ok(n) => break Ok(n),
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                            Err(e) => break Err(e),
                        }
                    };
                    self.carry.truncate(len + *got.as_ref().unwrap_or(&0));
                    got
                }
                Some(fd) => {
                    // A stream: one read(2) of what is there, straight into the chunk's room
                    // (see `with_ready_fd`).
                    self.carry.reserve(want.max(1 << 16));
                    let room = self.carry.spare_capacity_mut();
                    loop {
                        // SAFETY: `room` is writable memory of `room.len()` bytes owned by
                        // `carry`; read(2) writes at most that many.
                        let n = unsafe { libc::read(fd, room.as_mut_ptr().cast(), room.len()) };
                        if n >= 0 {
                            let n = n as usize;
                            // SAFETY: read(2) initialised the first `n` bytes of the room.
                            unsafe { self.carry.set_len(self.carry.len() + n) };
                            break Ok(n);
                        }
                        let e = io::Error::last_os_error();
                        if e.kind() != io::ErrorKind::Interrupted {
                            break Err(e);
                        }
                    }
                }
            };
            let n = match n {
                Ok(n) => n,
                Err(e) => {
                    // What was read before the error is still handed out.
                    self.failed = Some(e);
                    self.eof = true;
                    if self.skipping {
                        self.carry.clear();
                    }
                    continue;
                }
            };
            if n == 0 {
                self.eof = true;
                if self.skipping {
                    self.carry.clear();
                }
                continue;
            }
            if self.sniff_gzip {
                if self.carry == [GZIP[0]] {
                    continue; // one byte more decides
                }
                self.sniff_gzip = false;
                if self.carry.starts_with(&GZIP) {
                    self.start_gzip();
                    continue;
                }
            }
            if self.at_start && (self.carry.len() >= BOM.len() || self.carry.contains(&b'\n')) {
                // A UTF-8 byte-order mark (as some Windows tools write) is not part of the
                // first line.
                self.at_start = false;
                if self.carry.starts_with(BOM) {
                    self.carry.drain(..BOM.len());
                }
                if let Some(what) = binary_kind(&self.carry) {
                    self.eof = true;
                    self.carry.clear();
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{what}, not log text: skipped"),
                    ));
                }
            }
            if self.skipping {
                match memchr::memchr(b'\n', &self.carry) {
                    Some(i) => {
                        self.carry.drain(..=i);
                        self.skipping = false;
                    }
                    None => {
                        self.carry.clear();
                        continue;
                    }
                }
            }
            if self.carry.len() < self.chunk_size / 2 && self.more_ready() {
                continue;
            }
            match memchr::memrchr(b'\n', &self.carry) {
                Some(last) => {
                    // The chunk leaves with the buffer; the partial last line starts a new
                    // one, sized for a chunk, a spare from the pool if there is one.
                    let room = self.chunk_size.max(self.carry.len() - last);
                    let mut rest = match &self.pool {
                        Some(pool) => pool.take(room),
                        None => Vec::with_capacity(room),
                    };
                    rest.extend_from_slice(&self.carry[last + 1..]);
                    self.carry.truncate(last + 1);
                    let chunk = std::mem::replace(&mut self.carry, rest);
                    let chunk = self.cut_overlong(chunk);
                    self.lines += memchr::memchr_iter(b'\n', &chunk).count() as u64;
                    return Ok(Some(chunk));
                }
                None => {
                    if self.carry.len() > self.max_line {
                        let mut line = std::mem::take(&mut self.carry);
                        line.truncate(if self.drop_overlong { 0 } else { self.max_line });
                        line.push(b'\n');
                        self.overlong += 1;
                        self.lines += 1;
                        self.first_overlong.get_or_insert(self.lines);
                        self.skipping = true;
                        return Ok(Some(line));
                    }
                }
            }
        }
    }

    /// Cut complete lines longer than the limit inside a chunk.
    fn cut_overlong(&mut self, chunk: Vec<u8>) -> Vec<u8> {
        if chunk.len() <= self.max_line {
            return chunk;
        }
        let mut long = false;
        let mut prev = 0;
        for nl in memchr::memchr_iter(b'\n', &chunk) {
            if nl - prev > self.max_line {
                long = true;
                break;
            }
            prev = nl + 1;
        }
        if !long {
            return chunk;
        }
        let mut out = Vec::with_capacity(chunk.len());
        let mut prev = 0;
        for (i, nl) in memchr::memchr_iter(b'\n', &chunk).enumerate() {
            let line = &chunk[prev..nl];
            if line.len() > self.max_line {
                let keep = if self.drop_overlong { 0 } else { self.max_line };
                out.extend_from_slice(&line[..keep]);
                self.overlong += 1;
                self.first_overlong.get_or_insert(self.lines + i as u64 + 1);
            } else {
                out.extend_from_slice(line);
            }
            out.push(b'\n');
            prev = nl + 1;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every chunk of `data`, joined, and the count of overlong lines: the same whether the
    /// reader reads whole chunks (as from a file) or one read at a time (a stream).
    fn chunks(data: &[u8], chunk: usize, max: usize) -> (Vec<u8>, u64) {
        let mut got = [true, false].map(|never_waits| {
            let mut r = ChunkReader::with_sizes(data, chunk, max).never_waits(never_waits);
            let mut all = Vec::new();
            while let Some(c) = r.next_chunk().unwrap() {
                assert!(c.ends_with(b"\n") || !data.ends_with(b"\n"));
                all.extend_from_slice(&c);
            }
            (all, r.overlong)
        });
        assert_eq!(got[0], got[1], "whole-chunk reads and single reads differ");
        std::mem::take(&mut got[0])
    }

    #[test]
    fn chunks_keep_every_byte_in_order() {
        let data = b"one\ntwo\r\nthree\n\nfour";
        for size in 1..12 {
            assert_eq!(chunks(data, size, 100).0, data.to_vec());
        }
    }

    #[test]
    fn a_byte_order_mark_at_the_start_is_dropped() {
        let data = b"\xef\xbb\xbfone\n\xef\xbb\xbftwo\n";
        for size in 1..12 {
            assert_eq!(
                chunks(data, size, 100).0,
                b"one\n\xef\xbb\xbftwo\n".to_vec(),
                "{size}"
            );
        }
        // Short inputs: a lone BOM, a one-byte line, an empty line.
        for (data, want) in [
            (&b"\xef\xbb\xbf"[..], &b""[..]),
            (b"a\n", b"a\n"),
            (b"\n\xef\xbb\xbf", b"\n\xef\xbb\xbf"),
            (b"\xef\xbb", b"\xef\xbb"),
        ] {
            for size in 1..6 {
                assert_eq!(chunks(data, size, 100).0, want.to_vec(), "{data:?} {size}");
            }
        }
    }

    #[test]
    fn overlong_lines_are_cut_and_counted() {
        let data = b"ab\nabcdefgh\nxy\n";
        for size in 1..20 {
            let (out, n) = chunks(data, size, 4);
            assert_eq!(out, b"ab\nabcd\nxy\n".to_vec(), "chunk size {size}");
            assert_eq!(n, 1);
        }
        // The first cut line is named by its number, however the input was chunked.
        let data = b"a\nb\nc\nlong line\nd\nlonger line\n";
        for size in 1..30 {
            for never_waits in [true, false] {
                let mut r = ChunkReader::with_sizes(&data[..], size, 4).never_waits(never_waits);
                while r.next_chunk().unwrap().is_some() {}
                assert_eq!(
                    (r.overlong, r.first_overlong),
                    (2, Some(4)),
                    "chunk size {size}"
                );
            }
        }
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn gzip_is_decompressed_by_its_magic_members_one_after_the_other() {
        let text = b"\xef\xbb\xbfone\ntwo\r\nthree\n";
        let mut data = gzip(text);
        data.extend(gzip(b"four\nfive"));
        for size in 1..24 {
            assert_eq!(
                chunks(&data, size, 100).0,
                b"one\ntwo\r\nthree\nfour\nfive".to_vec(),
                "{size}"
            );
        }
        // One byte 0x1f is no gzip; nor is a name.
        assert_eq!(chunks(b"\x1f", 4, 100).0, b"\x1f".to_vec());
        assert_eq!(chunks(b"\x1fa\n", 1, 100).0, b"\x1fa\n".to_vec());
    }

    #[test]
    fn a_truncated_gzip_gives_its_whole_lines_then_the_error() {
        let text: Vec<u8> = (0..5000)
            .flat_map(|i| format!("line {i}\n").into_bytes())
            .collect();
        let data = gzip(&text);
        let cut = &data[..data.len() * 2 / 3];
        for never_waits in [true, false] {
            let mut r = ChunkReader::with_sizes(cut, 1 << 20, 100).never_waits(never_waits);
            let mut got = Vec::new();
            let err = loop {
                match r.next_chunk() {
                    Ok(Some(c)) => got.extend(c),
                    Ok(None) => panic!("no error"),
                    Err(e) => break e,
                }
            };
            assert!(err.to_string().contains("gzip"), "{err}");
            assert!(got.len() > 1000 && text.starts_with(&got), "{}", got.len());
            assert!(got.ends_with(b"\n"));
            assert!(r.next_chunk().unwrap().is_none());
        }
    }

    #[test]
    fn binary_input_is_told_from_text() {
        assert_eq!(binary_kind(b"BZh91AY&SY..."), Some("bzip2-compressed data"));
        assert_eq!(binary_kind(b"BZh is a word\n"), None);
        assert_eq!(binary_kind(b"\x7fELF\x02\x01"), Some("an executable (ELF)"));
        assert_eq!(binary_kind(&[0u8; 64]), Some("binary data"));
        let mut log = b"Jan  1 00:00:00 host app: \x1b[31mred\x1b[0m\ttabbed\r\n".repeat(4);
        log.push(0);
        assert_eq!(binary_kind(&log), None);
        assert_eq!(
            binary_kind(b"caf\xc3\xa9 \xe9t\xe9 latin-1 text, long enough"),
            None
        );
        let junk = [1u8, 2, 3, 4, 5, 6, 7, 8, 10].repeat(8);
        let mut r = ChunkReader::new(&junk[..]);
        let err = r.next_chunk().unwrap_err();
        assert_eq!(err.to_string(), "binary data, not log text: skipped");
        assert!(r.next_chunk().unwrap().is_none());
    }

    #[test]
    fn an_overlong_record_is_dropped_whole_keeping_line_numbers() {
        let data = b"ab\nabcdefgh\nxy\n";
        for size in 1..20 {
            for never_waits in [true, false] {
                let mut r = ChunkReader::with_sizes(&data[..], size, 4)
                    .never_waits(never_waits)
                    .drop_overlong(true);
                let mut all = Vec::new();
                while let Some(c) = r.next_chunk().unwrap() {
                    all.extend(c);
                }
                assert_eq!(all, b"ab\n\nxy\n".to_vec(), "{size}");
                assert_eq!((r.overlong, r.first_overlong), (1, Some(2)));
            }
        }
    }

    #[test]
    fn an_input_that_cannot_be_opened_fails_at_its_first_read() {
        let inputs = open_all(&[PathBuf::from("/nonexistent/x.log")], Kind::Lines);
        let err = inputs
            .into_iter()
            .next()
            .unwrap()
            .chunks()
            .next_chunk()
            .unwrap_err();
        assert_eq!(err.to_string(), "No such file or directory");
    }

    fn pipe_reader(r: std::io::PipeReader) -> ChunkReader<std::io::PipeReader> {
        let fd = std::os::fd::AsRawFd::as_raw_fd(&r);
        ChunkReader::new(r).with_ready_fd(Some(fd))
    }

    #[test]
    fn a_pipe_that_is_ahead_fills_whole_chunks() {
        let (r, mut w) = std::io::pipe().unwrap();
        let line = b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n";
        let lines = 64 * 1024; // 4 MiB through a pipe that holds 64 KiB
                               // One write: the writer always has more ready than the pipe holds.
        let writer = std::thread::spawn(move || {
            std::io::Write::write_all(&mut w, &line.repeat(lines)).unwrap();
        });
        let mut reader = pipe_reader(r);
        let mut sizes = Vec::new();
        while let Some(c) = reader.next_chunk().unwrap() {
            assert!(c.chunks(line.len()).all(|l| l == line));
            sizes.push(c.len());
        }
        writer.join().unwrap();
        assert_eq!(sizes.iter().sum::<usize>(), lines * line.len());
        // 64 reads of 64 KiB; the writer may fall behind now and then, but mostly they
        // are gathered into chunks of half a megabyte or more.
        assert!(sizes.len() < 32, "{} chunks: {sizes:?}", sizes.len());
    }

    #[test]
    fn a_quiet_pipe_hands_out_what_it_has_without_waiting() {
        let (r, mut w) = std::io::pipe().unwrap();
        std::io::Write::write_all(&mut w, b"one\ntwo\n").unwrap();
        let mut reader = pipe_reader(r);
        // The writer stays open and silent: the lines must come out anyway.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let got = reader.next_chunk().unwrap();
            let _ = tx.send(got);
        });
        let got = rx.recv_timeout(std::time::Duration::from_secs(10));
        assert_eq!(got.unwrap().as_deref(), Some(&b"one\ntwo\n"[..]));
        drop(w);
    }
}

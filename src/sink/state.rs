//! The checkpoint of `pulse-emit --state FILE`: where each input was read up to.
//!
//! The state file is JSON:
//!
//! ```json
//! {"version":1,"inputs":[{"path":"/var/log/pulse/snapshots.ndjson","dev":2049,"ino":131,"offset":48213,"rotated":[]}],"resend":[...]}
//! ```
//!
//! - `resend` holds the snapshots of the recent windows (`pulse-emit --resend`) that every
//!   run sends to Graphite again; it is absent when empty.
//!
//! - `path` is the input as an absolute path; `dev` and `ino` identify the file that was read
//!   and `offset` is the byte after the last complete line taken from it. A partial last line
//!   (a writer caught mid-line) is left for the next run.
//! - When the file at `path` has another inode than recorded, it was rotated (renamed and
//!   recreated): the old file is looked for by its inode, first as `path.1`, then anywhere in
//!   the same directory, and the rest of it is read before the new file is read from its
//!   start. The old file stays in `rotated` and is read again on later runs (a writer may not
//!   have reopened yet) until it can no longer be found.
//! - When the file is shorter than the recorded offset it was truncated in place
//!   (`copytruncate`): it is read again from its start.
//!
//! The file is replaced atomically (a temporary file in the same directory, fsynced, then
//! renamed) and only by the caller once the sinks accepted what was read. A lock on
//! `FILE.lock` keeps two runs from overlapping.
//!
//! None of the three paths is followed when it is a symbolic link (`O_NOFOLLOW`): run as root
//! in a shared directory, a planted link must not make a run write another file. The
//! temporary file `FILE.tmp` is created exclusively (`O_EXCL`; a regular file left there by a
//! killed run is removed first) and removed again on every failure path.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The whole state file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub version: u32,
    pub inputs: Vec<Entry>,
    /// The recent windows that every run re-sends to Graphite (`--resend`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resend: Vec<crate::record::Snapshot>,
}

/// One input's checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub path: PathBuf,
    #[serde(flatten)]
    pub file: FilePos,
    /// Earlier files of this input, renamed away, still being followed.
    #[serde(default)]
    pub rotated: Vec<FilePos>,
}

/// A file by identity and how far it was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilePos {
    pub dev: u64,
    pub ino: u64,
    pub offset: u64,
}

/// Holds `FILE.lock` for as long as it lives.
#[derive(Debug)]
pub struct Lock {
    _file: File,
}

/// Take the run lock beside the state file; fails at once if another run holds it.
pub fn lock(state: &Path) -> Result<Lock> {
    lock_for(state, "pulse-emit", "sending")
}

/// [`lock`] for another tool: the message names `tool` and what it will not do.
pub fn lock_for(state: &Path, tool: &str, doing: &str) -> Result<Lock> {
    let path = lock_path(state);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
        .map_err(|e| no_follow_error(&path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(Lock { _file: file }),
        Err(fs::TryLockError::WouldBlock) => Err(Error::Runtime(format!(
            "{}: another {tool} run holds the lock; not {doing}",
            path.display()
        ))),
        Err(fs::TryLockError::Error(e)) => Err(Error::io(path.display().to_string(), e)),
    }
}

/// An open error on a path opened with `O_NOFOLLOW`: a symbolic link reads as `ELOOP`.
fn no_follow_error(path: &Path, e: std::io::Error) -> Error {
    if e.raw_os_error() == Some(libc::ELOOP) {
        return Error::Runtime(format!(
            "{}: is a symbolic link; refusing to follow it (remove it or name another file)",
            path.display()
        ));
    }
    Error::io(path.display().to_string(), e)
}

/// A temporary file that is removed when dropped, unless it was renamed into place.
struct TempFile {
    path: PathBuf,
    keep: bool,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = fs::remove_file(&self.path);
        }
    }
}

fn lock_path(state: &Path) -> PathBuf {
    let mut s = state.as_os_str().to_owned();
    s.push(".lock");
    PathBuf::from(s)
}

impl State {
    /// Read the state file; a missing file is an empty state (first run).
    pub fn load(path: &Path) -> Result<State> {
        let Some(text) = read_no_follow(path)? else {
            return Ok(State {
                version: 1,
                ..State::default()
            });
        };
        let state: State = serde_json::from_slice(&text).map_err(|e| {
            Error::Runtime(format!(
                "{}: not a pulse-emit state file ({e}); move it away to start over",
                path.display()
            ))
        })?;
        if state.version != 1 {
            return Err(Error::Runtime(format!(
                "{}: state file version {} not understood",
                path.display(),
                state.version
            )));
        }
        Ok(state)
    }

    /// Replace the state file atomically: temporary file, fsync, rename, fsync directory.
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut json =
            serde_json::to_vec_pretty(self).map_err(|e| Error::Runtime(e.to_string()))?;
        json.push(b'\n');
        write_atomic(path, &json)
    }

    fn entry(&self, path: &Path) -> Option<&Entry> {
        self.inputs.iter().find(|e| e.path == path)
    }

    fn put(&mut self, entry: Entry) {
        match self.inputs.iter_mut().find(|e| e.path == entry.path) {
            Some(e) => *e = entry,
            None => self.inputs.push(entry),
        }
    }
}

/// Read a file that must not be a symbolic link (`O_NOFOLLOW`); `None` when it does not
/// exist.
pub fn read_no_follow(path: &Path) -> Result<Option<Vec<u8>>> {
    let opened = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path);
    let mut file = match opened {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(no_follow_error(path, e)),
    };
    let mut text = Vec::new();
    file.read_to_end(&mut text)
        .map_err(|e| Error::io(path.display().to_string(), e))?;
    Ok(Some(text))
}

/// Replace `path` with `json` atomically: `FILE.tmp` created exclusively (`O_EXCL`,
/// `O_NOFOLLOW`, mode 0600), fsynced, renamed into place, directory fsynced. Neither path
/// may be a symbolic link.
pub fn write_atomic(path: &Path, json: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    // `FILE.tmp`: runs are serialised by the lock, so one name is enough, and a file left
    // there by a run that was killed is removed first (unlink never follows a link).
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let io = |e| Error::io(tmp.display().to_string(), e);
    let link = |p: &Path| fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink());
    // Refuse a state path that is a symbolic link: rename would replace the link, but a
    // link there means someone else prepared the directory.
    for p in [path, tmp.as_path()] {
        if link(p) {
            return Err(no_follow_error(
                p,
                std::io::Error::from_raw_os_error(libc::ELOOP),
            ));
        }
    }
    if fs::symlink_metadata(&tmp).is_ok_and(|m| m.is_file()) {
        fs::remove_file(&tmp).map_err(io)?;
    }
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => Error::Runtime(format!(
                "{}: appeared while saving (a symbolic link?); not writing through it",
                tmp.display()
            )),
            _ => no_follow_error(&tmp, e),
        })?;
    let mut guard = TempFile {
        path: tmp.clone(),
        keep: false,
    };
    f.write_all(json).map_err(io)?;
    f.sync_all().map_err(io)?;
    drop(f);
    fs::rename(&tmp, path).map_err(|e| Error::io(path.display().to_string(), e))?;
    guard.keep = true;
    if let Ok(d) = File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Find the file with `dev`/`ino` near `path`: `path.1` first, then the same directory.
fn find_by_inode(path: &Path, dev: u64, ino: u64) -> Option<PathBuf> {
    let same = |p: &Path| {
        fs::metadata(p)
            .map(|m| m.is_file() && m.dev() == dev && m.ino() == ino)
            .unwrap_or(false)
    };
    let mut dot1 = path.as_os_str().to_owned();
    dot1.push(".1");
    let dot1 = PathBuf::from(dot1);
    if same(&dot1) {
        return Some(dot1);
    }
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty())?;
    let mut names: Vec<PathBuf> = fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    names.sort();
    names.into_iter().find(|p| same(p))
}

/// What receives each new line: `(label, line number, line)`.
pub type OnLine<'a> = dyn FnMut(&str, u64, &[u8]) -> Result<()> + 'a;

/// Read complete lines of `file` from `from`; returns the offset after the last one.
///
/// `on_line(label, line_number, line)` sees each line without its newline; numbers count from
/// 1 at `from`.
fn read_lines(file: File, name: &str, from: u64, on_line: &mut OnLine<'_>) -> Result<u64> {
    let io = |e| Error::io(name.to_string(), e);
    let mut file = file;
    let len = file.metadata().map_err(io)?.len();
    if len <= from {
        return Ok(from);
    }
    file.seek(SeekFrom::Start(from)).map_err(io)?;
    let label = if from == 0 {
        name.to_string()
    } else {
        format!("{name} (from byte {from})")
    };
    let mut r = BufReader::with_capacity(256 * 1024, file.take(len - from));
    let mut line = Vec::with_capacity(1024);
    let mut offset = from;
    let mut n = 0u64;
    loop {
        line.clear();
        let got = r.read_until(b'\n', &mut line).map_err(io)?;
        if got == 0 || line.last() != Some(&b'\n') {
            // End, or a partial last line left for the next run.
            return Ok(offset);
        }
        n += 1;
        offset += got as u64;
        on_line(
            &label,
            n,
            crate::io::lines::trim_cr(&line[..line.len() - 1]),
        )?;
    }
}

/// Read everything new in `inputs` since `prev`, handing each complete line to `on_line`,
/// and return the state to save once what was read has been delivered. Notes for the user
/// (rotation, truncation, missing files) go to `note`.
pub fn read_new(
    prev: &State,
    inputs: &[PathBuf],
    on_line: &mut OnLine<'_>,
    note: &mut dyn FnMut(String),
) -> Result<State> {
    let mut next = prev.clone();
    next.version = 1;
    for input in inputs {
        let path =
            std::path::absolute(input).map_err(|e| Error::io(input.display().to_string(), e))?;
        let name = input.display().to_string();
        let old = prev.entry(&path).cloned();

        // Earlier files still followed, then the previous current file if it moved away.
        let mut rotated: Vec<FilePos> = Vec::new();
        let mut follow = old.as_ref().map(|e| e.rotated.clone()).unwrap_or_default();
        let current = File::open(&path);
        let cur_meta = match &current {
            Ok(f) => Some(f.metadata().map_err(|e| Error::io(name.clone(), e))?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                return Err(Error::io(
                    name,
                    std::io::Error::new(e.kind(), e.to_string()),
                ))
            }
        };
        let same_file = |p: &FilePos, m: &fs::Metadata| p.dev == m.dev() && p.ino == m.ino();
        let mut cur_from = 0;
        if let Some(e) = &old {
            match &cur_meta {
                Some(m) if same_file(&e.file, m) => {
                    if m.len() < e.file.offset {
                        note(format!(
                            "{name}: shorter than last time ({} < {} bytes): truncated, reading from the start",
                            m.len(),
                            e.file.offset
                        ));
                    } else {
                        cur_from = e.file.offset;
                    }
                }
                _ => follow.push(e.file),
            }
        }
        for pos in follow {
            match find_by_inode(&path, pos.dev, pos.ino) {
                Some(p) => {
                    let f = File::open(&p).map_err(|e| Error::io(p.display().to_string(), e))?;
                    let pname = p.display().to_string();
                    let offset = read_lines(f, &pname, pos.offset, on_line)?;
                    rotated.push(FilePos { offset, ..pos });
                }
                None => {
                    if old.as_ref().is_some_and(|e| e.file == pos) {
                        note(format!(
                            "{name}: replaced, and the old file (inode {}) is gone from its directory; reading the new one from the start",
                            pos.ino
                        ));
                    }
                }
            }
        }
        let file = match (current, cur_meta) {
            (Ok(f), Some(m)) => {
                let offset = read_lines(f, &name, cur_from, on_line)?;
                FilePos {
                    dev: m.dev(),
                    ino: m.ino(),
                    offset,
                }
            }
            _ => {
                note(format!("{name}: not found (nothing to read yet)"));
                match old {
                    // Keep following what was there; the old current file is in `rotated`.
                    Some(e) => match rotated
                        .iter()
                        .position(|r| *r == e.file || (r.dev, r.ino) == (e.file.dev, e.file.ino))
                    {
                        Some(i) => rotated.remove(i),
                        None => e.file,
                    },
                    None => continue,
                }
            }
        };
        next.put(Entry {
            path,
            file,
            rotated,
        });
    }
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(state: &State, inputs: &[PathBuf]) -> (Vec<String>, State, Vec<String>) {
        let mut lines = Vec::new();
        let mut notes = Vec::new();
        let next = read_new(
            state,
            inputs,
            &mut |_, _, l| {
                lines.push(String::from_utf8_lossy(l).into_owned());
                Ok(())
            },
            &mut |n| notes.push(n),
        )
        .unwrap();
        (lines, next, notes)
    }

    fn append(p: &Path, s: &str) {
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .unwrap();
        f.write_all(s.as_bytes()).unwrap();
    }

    #[test]
    fn reads_only_new_complete_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("in.ndjson");
        append(&p, "a\nb\npart");
        let s0 = State::default();
        let (l, s1, _) = collect(&s0, std::slice::from_ref(&p));
        assert_eq!(l, vec!["a", "b"]);
        assert_eq!(s1.inputs[0].file.offset, 4);
        append(&p, "ial\nc\n");
        let (l, s2, _) = collect(&s1, std::slice::from_ref(&p));
        assert_eq!(l, vec!["partial", "c"]);
        let (l, _, _) = collect(&s2, std::slice::from_ref(&p));
        assert!(l.is_empty());
    }

    #[test]
    fn rotation_finishes_old_file_then_reads_new() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("in.ndjson");
        append(&p, "1\n2\n");
        let (_, s1, _) = collect(&State::default(), std::slice::from_ref(&p));
        append(&p, "3\n4");
        // Rotate under another name than .1 to exercise the directory scan.
        fs::rename(&p, dir.path().join("in.ndjson-20260101")).unwrap();
        append(&p, "5\n");
        let (l, s2, _) = collect(&s1, std::slice::from_ref(&p));
        assert_eq!(l, vec!["3", "5"]);
        // The writer finishes its line in the old file: it is still followed.
        append(&dir.path().join("in.ndjson-20260101"), "\n");
        append(&p, "6\n");
        let (l, s3, _) = collect(&s2, std::slice::from_ref(&p));
        assert_eq!(l, vec!["4", "6"]);
        // Once the old file is gone it is dropped from the state.
        fs::remove_file(dir.path().join("in.ndjson-20260101")).unwrap();
        let (l, s4, notes) = collect(&s3, std::slice::from_ref(&p));
        assert!(l.is_empty() && notes.is_empty(), "{l:?} {notes:?}");
        assert!(s4.inputs[0].rotated.is_empty());
    }

    #[test]
    fn truncation_rereads_from_start() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("in");
        append(&p, "1\n2\n3\n");
        let (_, s1, _) = collect(&State::default(), std::slice::from_ref(&p));
        File::create(&p).unwrap();
        append(&p, "4\n");
        let (l, _, notes) = collect(&s1, std::slice::from_ref(&p));
        assert_eq!(l, vec!["4"]);
        assert!(notes[0].contains("truncated"), "{notes:?}");
    }

    #[test]
    fn missing_input_keeps_following_the_moved_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("in");
        append(&p, "1\n");
        let (_, s1, _) = collect(&State::default(), std::slice::from_ref(&p));
        append(&p, "2\n");
        fs::rename(&p, dir.path().join("in.1")).unwrap();
        let (l, s2, notes) = collect(&s1, std::slice::from_ref(&p));
        assert_eq!(l, vec!["2"]);
        assert!(notes[0].contains("not found"));
        append(&dir.path().join("in.1"), "3\n");
        append(&p, "4\n");
        let (l, _, _) = collect(&s2, std::slice::from_ref(&p));
        assert_eq!(l, vec!["3", "4"]);
    }

    #[test]
    fn save_load_and_lock() {
        let dir = tempfile::tempdir().unwrap();
        let sp = dir.path().join("state.json");
        assert_eq!(State::load(&sp).unwrap().inputs.len(), 0);
        let p = dir.path().join("in");
        append(&p, "1\n");
        let (_, s1, _) = collect(&State::default(), std::slice::from_ref(&p));
        s1.save(&sp).unwrap();
        assert_eq!(State::load(&sp).unwrap(), s1);
        let l1 = lock(&sp).unwrap();
        assert!(lock(&sp)
            .unwrap_err()
            .to_string()
            .contains("another pulse-emit run"));
        drop(l1);
        lock(&sp).unwrap();
        fs::write(&sp, "garbage").unwrap();
        assert!(State::load(&sp).is_err());
    }

    #[test]
    fn symlinks_are_never_followed_and_temporaries_do_not_linger() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, "precious\n").unwrap();
        let st = State {
            version: 1,
            ..State::default()
        };
        // The state path itself a link: neither read nor replaced.
        let sp = dir.path().join("a.state");
        symlink(&victim, &sp).unwrap();
        let e = State::load(&sp).unwrap_err().to_string();
        assert!(e.contains("symbolic link"), "{e}");
        assert!(st
            .save(&sp)
            .unwrap_err()
            .to_string()
            .contains("symbolic link"));
        // The lock a link.
        let sp = dir.path().join("b.state");
        symlink(&victim, dir.path().join("b.state.lock")).unwrap();
        let e = lock(&sp).unwrap_err().to_string();
        assert!(e.contains("symbolic link"), "{e}");
        // The temporary a link: refused (and O_EXCL would refuse it too).
        let sp = dir.path().join("c.state");
        let tmp = dir.path().join("c.state.tmp");
        symlink(&victim, &tmp).unwrap();
        let e = st.save(&sp).unwrap_err().to_string();
        assert!(e.contains("symbolic link"), "{e}");
        assert!(!sp.exists());
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious\n");
        fs::remove_file(&tmp).unwrap();
        // A stale temporary of a killed run is replaced.
        fs::write(&tmp, "stale").unwrap();
        st.save(&sp).unwrap();
        assert!(!tmp.exists());
        assert_eq!(State::load(&sp).unwrap(), st);
        // A failed rename (the target is a directory) leaves no temporary behind.
        let sp = dir.path().join("d.state");
        fs::create_dir(&sp).unwrap();
        assert!(st.save(&sp).is_err());
        let left: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".tmp"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
}

//! The mbox side of the POP3 maildrop (RFC 1939 over mboxrd, RFC 4155): the mail lock held for the
//! whole session (dotlock, then fcntl, the order mbox delivery and mutt use), message parsing, and
//! the atomic rewrite at QUIT.
//!
//! UIDL choice: the first 20 bytes, in hex, of SHA-256 over the From_ line and the stored message
//! bytes (which include Message-ID and every other header) with trailing newlines left out, so the
//! separator blank line a later delivery adds does not change it. It does not depend on the offset,
//! so deleting earlier messages keeps it. Limits: a mail reader that edits a message in place (mutt
//! adding a Status: header) gives it a new UIDL, so such a client downloads it again; two
//! byte-identical messages with identical From_ lines get "-2", "-3" appended in file order, so
//! deleting the first one passes its UIDL on to the second (Dovecot avoids both with X-UIDL headers
//! written into the mbox, which we do not do).

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};

use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::Digest;

use super::{BUF, DropError, Loc, Msg, crlf_size, hex_digest};
use crate::store::fsync_dir;
use crate::store::mboxlock::{Dotlock, LockCmd, LockError, fcntl_lock, take_dotlock, take_fcntl_lock};

/// The open, locked mbox. Dropping it unlocks (fcntl, then the dotlock, in field order).
pub(super) struct Locked {
    path: PathBuf,
    file: File,
    cmd: LockCmd,
    /// Per message: from its From_ line to the next From_ line (or the end), separator included.
    spans: Vec<(u64, u64)>,
    /// File length when parsed.
    parsed_len: u64,
    _dotlock: Option<Dotlock>,
}

impl Drop for Locked {
    fn drop(&mut self) {
        if let Err(e) = fcntl_lock(&self.file, self.cmd, libc::F_UNLCK) {
            log::warn!("pop3: cannot unlock path={} error={e}", self.path.display());
        }
    }
}

impl From<LockError> for DropError {
    fn from(e: LockError) -> DropError {
        match e {
            LockError::Busy(_) => DropError::InUse,
            LockError::Io { what, path, err } => DropError::io(what, &path, &err),
        }
    }
}

/// Locks and parses the mbox at `path`; None if it does not exist (an empty drop).
pub(super) fn open(path: &Path, lock_timeout: Duration) -> Result<Option<(Locked, Vec<Msg>)>, DropError> {
    let deadline = Instant::now() + lock_timeout;
    match fs::symlink_metadata(path) {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(DropError::io("cannot stat", path, &e)),
    }
    let dotlock = take_dotlock(path, deadline)?;
    let file = match OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(DropError::io("cannot open", path, &e)),
    };
    let meta = file.metadata().map_err(|e| DropError::io("cannot stat", path, &e))?;
    if !meta.is_file() {
        return Err(DropError::Io(format!("{} is not a regular file", path.display())));
    }
    let cmd = take_fcntl_lock(&file, path, deadline)?;
    let mut locked =
        Locked { path: path.to_path_buf(), file, cmd, spans: Vec::new(), parsed_len: 0, _dotlock: dotlock };
    // Another POP3 session that rewrote the mbox by rename while we waited: our fd is a dead file.
    let same = fs::symlink_metadata(path)
        .ok()
        .zip(locked.file.metadata().ok())
        .is_some_and(|(a, b)| a.dev() == b.dev() && a.ino() == b.ino());
    if !same {
        return Err(DropError::InUse);
    }
    let msgs = locked.parse().map_err(|e| DropError::io("cannot read", path, &e))?;
    Ok(Some((locked, msgs)))
}

/// One message being scanned.
struct Scan {
    from_off: u64,
    /// Set once the whole From_ line has been seen.
    content_start: Option<u64>,
    hash: sha2::Sha256,
    /// Newlines seen but not yet hashed (trailing newlines are left out of the hash).
    held_newlines: usize,
}

impl Locked {
    pub(super) fn file(&self) -> &File {
        &self.file
    }

    /// Splits the mbox at lines starting "From " (mboxrd quotes every other such line), then sizes
    /// each message with the same code that sends it.
    fn parse(&mut self) -> io::Result<Vec<Msg>> {
        let mut f = &self.file;
        f.seek(SeekFrom::Start(0))?;
        let mut rd = BufReader::with_capacity(BUF, f);
        let mut frag: Vec<u8> = Vec::with_capacity(BUF);
        let mut off: u64 = 0;
        let mut at_start = true;
        let mut found: Vec<(Scan, u64)> = Vec::new();
        let mut cur: Option<Scan> = None;
        loop {
            frag.clear();
            let n = (&mut rd).take(BUF as u64).read_until(b'\n', &mut frag)? as u64;
            if n == 0 {
                break;
            }
            if at_start && frag.starts_with(b"From ") {
                if let Some(s) = cur.take() {
                    found.push((s, off));
                }
                let mut hash = sha2::Sha256::new();
                hash.update(&frag);
                cur = Some(Scan { from_off: off, content_start: None, hash, held_newlines: 0 });
            } else if let Some(s) = cur.as_mut() {
                if s.content_start.is_none() {
                    s.hash.update(&frag);
                } else {
                    let trailing = frag.iter().rev().take_while(|&&b| b == b'\n').count();
                    if trailing < frag.len() {
                        // Bounded: a run of held newlines is hashed in small pieces.
                        const NL: [u8; 64] = [b'\n'; 64];
                        while s.held_newlines > 0 {
                            let k = s.held_newlines.min(NL.len());
                            s.hash.update(&NL[..k]);
                            s.held_newlines -= k;
                        }
                        s.hash.update(&frag[..frag.len() - trailing]);
                        s.held_newlines = 0;
                    }
                    s.held_newlines += trailing;
                }
            }
            at_start = frag.last() == Some(&b'\n');
            off += n;
            if let Some(s) = cur.as_mut().filter(|s| s.content_start.is_none() && at_start) {
                s.content_start = Some(off);
                s.hash.update([0u8]); // ends the From_ line part
            }
        }
        if let Some(s) = cur.take() {
            found.push((s, off));
        }
        self.parsed_len = off;
        let mut msgs = Vec::with_capacity(found.len());
        for (s, end) in found {
            let start = s.content_start.unwrap_or(end);
            let mut len = end - start;
            // The blank line that separates it from the next message is not part of it.
            if len >= 2 {
                let mut tail = [0u8; 2];
                self.file.read_exact_at(&mut tail, end - 2)?;
                if tail == *b"\n\n" {
                    len -= 1;
                }
            }
            let mut f = &self.file;
            f.seek(SeekFrom::Start(start))?;
            let size = crlf_size(f.take(len), true)?;
            let uid = hex_digest(&s.hash.finalize()[..20]);
            self.spans.push((s.from_off, end));
            msgs.push(Msg { uid, size, loc: Loc::Range { start, len } });
        }
        Ok(msgs)
    }

    /// Rewrites the mbox keeping the messages whose `keep` is true, byte for byte, plus anything
    /// before the first From_ line and anything appended since we parsed (only a writer ignoring
    /// the locks could have): temp file in the same directory, fsync, rename, fsync the directory.
    pub(super) fn rewrite(&self, keep: &[bool]) -> Result<(), DropError> {
        let path = &self.path;
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let mut tmp_name = OsString::from(".");
        tmp_name.push(path.file_name().unwrap_or_default());
        tmp_name.push(format!(".pop3-{}", std::process::id()));
        let tmp = dir.join(tmp_name);
        let meta = self.file.metadata().map_err(|e| DropError::io("cannot stat", path, &e))?;
        let result = self.write_copy(&tmp, keep, &meta);
        if let Err(e) = result {
            let _ = fs::remove_file(&tmp);
            return Err(DropError::io("cannot write", &tmp, &e));
        }
        if let Err(e) = fs::rename(&tmp, path) {
            let _ = fs::remove_file(&tmp);
            return Err(DropError::io("cannot rename over", path, &e));
        }
        fsync_dir(&dir).map_err(|e| DropError::Io(e.message))
    }

    fn write_copy(&self, tmp: &Path, keep: &[bool], meta: &fs::Metadata) -> io::Result<()> {
        let mut out = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(tmp)
            .or_else(|e| {
                // A temp file left by a crashed session of ours (we hold the lock): replace it.
                if e.kind() != io::ErrorKind::AlreadyExists {
                    return Err(e);
                }
                fs::remove_file(tmp)?;
                OpenOptions::new().write(true).create_new(true).mode(0o600).open(tmp)
            })?;
        // Same owner and mode as the mbox (the chown only works as root; as the owner it is a no-op).
        if let Err(e) = std::os::unix::fs::fchown(&out, Some(meta.uid()), Some(meta.gid())) {
            log::debug!("pop3: cannot chown path={} error={e}", tmp.display());
        }
        out.set_permissions(fs::Permissions::from_mode(meta.mode() & 0o7777))?;
        let first = self.spans.first().map_or(self.parsed_len, |s| s.0);
        let mut ranges: Vec<(u64, u64)> = vec![(0, first)];
        ranges.extend(self.spans.iter().zip(keep).filter(|(_, k)| **k).map(|(s, _)| *s));
        ranges.push((self.parsed_len, meta.len().max(self.parsed_len)));
        let mut buf = vec![0u8; BUF];
        for (start, end) in ranges {
            let mut pos = start;
            while pos < end {
                let want = usize::try_from(end - pos).unwrap_or(BUF).min(BUF);
                let n = self.file.read_at(&mut buf[..want], pos)?;
                if n == 0 {
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "mbox shrank under the lock"));
                }
                out.write_all(&buf[..n])?;
                pos += n as u64;
            }
        }
        out.sync_all()
    }
}

//! APPEND's message written into a Maildir tmp/ as it arrives (RFC 3501 6.3.11), converted to LF
//! line ends on the way exactly as `msgfile::to_lf` does, counting both sizes for the file name;
//! from the first bare LF on (RFC 3516 BINARY APPEND), stored as it came instead.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::SystemTime;

use super::NAME_ATTEMPTS;
use super::msgfile::{CrlfCounter, CrlfReader, epoch_time, temp};
use crate::store::folder::{FolderError, Staged, Staging, TempFile};
use crate::store::maildir::unique_name;

/// CRLF to LF one piece at a time: CRLF becomes LF unless another CR comes before it; bare CR and
/// bare LF stay. A CR at the end of a piece waits for the next octet.
#[derive(Default)]
pub struct ToLf {
    /// A CR not written yet, and whether a CR came just before it.
    held: Option<bool>,
    last_cr: bool,
}

impl ToLf {
    /// Converts `input`, appending to `out`.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) {
        for &b in input {
            if let Some(cr_before) = self.held.take()
                && (b != b'\n' || cr_before)
            {
                out.push(b'\r');
            }
            if b == b'\r' {
                self.held = Some(self.last_cr);
            } else {
                out.push(b);
            }
            self.last_cr = b == b'\r';
        }
    }

    /// The end of the message: a CR still held is written.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if self.held.take().is_some() {
            out.push(b'\r');
        }
    }
}

/// The staging file of one APPEND.
pub struct StageFile {
    w: BufWriter<File>,
    file: TempFile,
    conv: ToLf,
    buf: Vec<u8>,
    lf: u64,
    crlf: CrlfCounter,
    date: Option<i64>,
    /// The last octet given, to find a bare LF across pieces.
    last_in: Option<u8>,
    /// A literal8 APPEND (RFC 3516 4.4): from its first bare LF on, stored as it came.
    binary: bool,
    /// A bare LF came: the message is stored as it came (msgfile::stored_raw), both sizes its length.
    raw: bool,
}

impl StageFile {
    /// Creates a fresh file (O_EXCL, 0600) in `tmpdir`. `binary`: the message came as a literal8
    /// (RFC 3516 4.4), whose octets must come back as they are; a plain literal's bare LF is read
    /// back as CRLF, as Dovecot does.
    pub fn create(tmpdir: &Path, date: Option<i64>, binary: bool) -> Result<StageFile, FolderError> {
        let host = crate::config::system_hostname();
        for _ in 0..NAME_ATTEMPTS {
            let path = tmpdir.join(unique_name(SystemTime::now(), &host, 0));
            let opened = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(&path);
            match opened {
                Ok(f) => {
                    return Ok(StageFile {
                        w: BufWriter::with_capacity(64 * 1024, f),
                        file: TempFile::new(path),
                        conv: ToLf::default(),
                        buf: Vec::new(),
                        lf: 0,
                        crlf: CrlfCounter::default(),
                        date,
                        last_in: None,
                        binary,
                        raw: false,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(temp("cannot create", &path, &e)),
            }
        }
        Err(FolderError::Temp(format!("no unique file name free in {}", tmpdir.display())))
    }

    fn put(&mut self) -> io::Result<()> {
        self.lf += self.buf.len() as u64;
        self.crlf.feed(&self.buf);
        self.w.write_all(&self.buf)?;
        self.buf.clear();
        Ok(())
    }
}

impl StageFile {
    /// Whether `data`, coming after what was given before, holds an LF with no CR before it.
    fn bare_lf_in(&self, data: &[u8]) -> bool {
        data.iter().enumerate().any(|(i, &b)| {
            let before = if i == 0 { self.last_in } else { data.get(i - 1).copied() };
            b == b'\n' && before != Some(b'\r')
        })
    }

    /// Turns what was written with LF line ends back into the octets that came (exactly: there was
    /// no bare LF so far, so every LF without a CR before it was a CRLF, which is what the CRLF
    /// reader gives back) and goes on storing as they come.
    fn go_raw(&mut self) -> io::Result<()> {
        self.w.flush()?;
        let path = self.file.path().to_path_buf();
        let mut back = CrlfReader::new(File::open(&path)?);
        // Into a new file (CRLF is longer than LF: rewritten in place, the writer would overtake
        // the reader); the old one, open for reading, is removed as its TempFile is replaced.
        let mut again = BufWriter::with_capacity(64 * 1024, {
            let dir = path.parent().unwrap_or(Path::new("."));
            let next =
                StageFile::create(dir, self.date, true).map_err(|e| io::Error::other(e.to_string()))?;
            let StageFile { w, file, .. } = next;
            self.file = file;
            w.into_inner().map_err(|e| e.into_error())?
        });
        let n = io::copy(&mut back, &mut again)?;
        // The CR the converter holds back (it may start a CRLF) came too.
        let mut held = Vec::new();
        self.conv.finish(&mut held);
        again.write_all(&held)?;
        self.w = again;
        self.lf = n + held.len() as u64;
        self.raw = true;
        Ok(())
    }
}

impl Write for StageFile {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.binary && !self.raw && self.bare_lf_in(data) {
            self.go_raw()?;
        }
        if let Some(&b) = data.last() {
            self.last_in = Some(b);
        }
        if self.raw {
            self.w.write_all(data)?;
            self.lf += data.len() as u64;
            return Ok(data.len());
        }
        self.conv.feed(data, &mut self.buf);
        self.put()?;
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.w.flush()
    }
}

impl Staging for StageFile {
    /// Flushed, mtime set to the INTERNALDATE, fsynced.
    fn finish(self: Box<Self>) -> Result<Staged, FolderError> {
        let mut this = *self;
        let done = if this.raw {
            this.w.flush()
        } else {
            this.conv.finish(&mut this.buf);
            this.put().and_then(|()| this.w.flush())
        };
        let path = this.file.path().to_path_buf();
        done.map_err(|e| temp("cannot write", &path, &e))?;
        let f = this.w.get_ref();
        if let Some(t) = this.date.and_then(epoch_time) {
            f.set_modified(t).map_err(|e| temp("cannot date", &path, &e))?;
        }
        f.sync_all().map_err(|e| temp("cannot sync", &path, &e))?;
        let crlf = if this.raw { this.lf } else { this.crlf.size };
        Ok(Staged::File { file: this.file, lf: this.lf, crlf })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::imapdir::msgfile::{stored_sizes, to_lf};

    #[test]
    fn piecewise_conversion_matches_to_lf() {
        let samples: &[&[u8]] =
            &[b"A: b\r\n\r\nbody\r\n", b"bare\rcr\nlf\r\r\ncrcrlf\r", b"\r\n\r\r\n\n\r\r\r\n\r", b""];
        for m in samples {
            let mut want = Vec::new();
            to_lf(m, |p| {
                want.extend_from_slice(p);
                Ok(())
            })
            .unwrap();
            // Every split point, and one octet at a time.
            for cut in 0..=m.len() {
                let (mut conv, mut got) = (ToLf::default(), Vec::new());
                conv.feed(&m[..cut], &mut got);
                conv.feed(&m[cut..], &mut got);
                conv.finish(&mut got);
                assert_eq!(got, want, "{m:?} cut at {cut}");
            }
            let (mut conv, mut got) = (ToLf::default(), Vec::new());
            for b in m.iter() {
                conv.feed(std::slice::from_ref(b), &mut got);
            }
            conv.finish(&mut got);
            assert_eq!(got, want, "{m:?} octet by octet");
        }
    }

    #[test]
    fn stage_file_writes_the_stored_form_and_sizes() {
        let d = tempfile::tempdir().unwrap();
        let msg = b"A: b\r\n\r\nline\r\nbare\rcr\r\r\n".repeat(1000);
        let mut s = Box::new(StageFile::create(d.path(), Some(1_000_000_000), false).unwrap());
        for piece in msg.chunks(7) {
            s.write_all(piece).unwrap();
        }
        let Staged::File { file, lf, crlf } = s.finish().unwrap() else { panic!("not a file") };
        assert_eq!((lf, crlf), stored_sizes(&msg));
        let mut want = Vec::new();
        to_lf(&msg, |p| {
            want.extend_from_slice(p);
            Ok(())
        })
        .unwrap();
        assert_eq!(std::fs::read(file.path()).unwrap(), want);
        let mtime = std::fs::metadata(file.path()).unwrap().modified().unwrap();
        assert_eq!(mtime, epoch_time(1_000_000_000).unwrap());
        // Dropped, the staged file goes away; so does an unfinished one.
        let p = file.path().to_path_buf();
        drop(file);
        assert!(!p.exists());
        let s = StageFile::create(d.path(), None, false).unwrap();
        let p = s.file.path().to_path_buf();
        drop(s);
        assert!(!p.exists());
    }

    #[test]
    fn a_bare_lf_turns_the_stage_to_the_octets_as_they_came() {
        // RFC 3516 BINARY APPEND: a binary part with bare LFs (and CR CR LF, a CR at a piece's
        // end) comes back exactly, wherever the pieces are cut; only the files left in tmp/ are
        // the one staged.
        let msg = b"A: b\r\n\r\nline\r\nx\r\r\nab\ncd\nx\r\nend\r".to_vec();
        let d = tempfile::tempdir().unwrap();
        for cut in 0..=msg.len() {
            for cut2 in [cut, (cut + 3).min(msg.len())] {
                let mut s = Box::new(StageFile::create(d.path(), None, true).unwrap());
                s.write_all(&msg[..cut]).unwrap();
                s.write_all(&msg[cut..cut2]).unwrap();
                s.write_all(&msg[cut2..]).unwrap();
                let Staged::File { file, lf, crlf } = s.finish().unwrap() else { panic!("not a file") };
                assert_eq!(std::fs::read(file.path()).unwrap(), msg, "cut at {cut}/{cut2}");
                assert_eq!((lf, crlf), (msg.len() as u64, msg.len() as u64));
                assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
            }
        }
    }
}

//! APPEND's message written into a Maildir tmp/ as it arrives (RFC 3501 6.3.11), converted to LF
//! line ends on the way exactly as `msgfile::to_lf` does, counting both sizes for the file name.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::SystemTime;

use super::NAME_ATTEMPTS;
use super::msgfile::{CrlfCounter, epoch_time, temp};
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
}

impl StageFile {
    /// Creates a fresh file (O_EXCL, 0600) in `tmpdir`.
    pub fn create(tmpdir: &Path, date: Option<i64>) -> Result<StageFile, FolderError> {
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

impl Write for StageFile {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
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
        this.conv.finish(&mut this.buf);
        let done = this.put().and_then(|()| this.w.flush());
        let path = this.file.path().to_path_buf();
        done.map_err(|e| temp("cannot write", &path, &e))?;
        let f = this.w.get_ref();
        if let Some(t) = this.date.and_then(epoch_time) {
            f.set_modified(t).map_err(|e| temp("cannot date", &path, &e))?;
        }
        f.sync_all().map_err(|e| temp("cannot sync", &path, &e))?;
        Ok(Staged::File { file: this.file, lf: this.lf, crlf: this.crlf.size })
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
        let mut s = Box::new(StageFile::create(d.path(), Some(1_000_000_000)).unwrap());
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
        let s = StageFile::create(d.path(), None).unwrap();
        let p = s.file.path().to_path_buf();
        drop(s);
        assert!(!p.exists());
    }
}

//! mbox delivery in the mboxrd flavour (RFC 4155; the format mail(1), mutt and Python's mailbox read):
//! dotlock then fcntl lock, append "From sender asctime" + the message with ">*From " quoting + a blank
//! line, fsync. prepare leaves it appended and locked; commit unlocks; abort truncates back, unlocks.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::mboxlock::{Dotlock, LockCmd, LockError, fcntl_lock, take_dotlock, take_fcntl_lock};
use super::{Message, StoreError, StoreOptions, ensure_dir, fsync_dir};

/// Streaming buffer size: a 50 MiB message costs this, not 50 MiB.
const BUF: usize = 64 * 1024;
/// A message appended, fsynced and still locked. Dropping it without commit truncates it away.
pub struct Prepared {
    path: PathBuf,
    // Field order is release order: the fcntl lock goes with `file`, then the dotlock.
    file: File,
    lock: LockCmd,
    orig_len: u64,
    _dotlock: Option<Dotlock>,
    committed: bool,
}

impl From<LockError> for StoreError {
    fn from(e: LockError) -> StoreError {
        match e {
            LockError::Busy(m) => StoreError::temporary(m),
            LockError::Io { what, path, err } => StoreError::from_io(what, &path, &err),
        }
    }
}

/// Opens or creates the mbox (0600, or 0660 in a mail spool; never through a symlink at the last component, never blocking
/// on a FIFO). Returns the file and whether it was created.
fn open_mbox(path: &Path) -> Result<(File, bool), StoreError> {
    let flags = libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK;
    let mut opts = OpenOptions::new();
    opts.read(true).write(true).mode(0o600).custom_flags(flags);
    let (file, created) = match opts.clone().create_new(true).open(path) {
        Ok(f) => (f, true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => match opts.open(path) {
            Ok(f) => (f, false),
            Err(e) => return Err(StoreError::from_io("cannot open", path, &e)),
        },
        Err(e) => return Err(StoreError::from_io("cannot create", path, &e)),
    };
    let m = file.metadata().map_err(|e| StoreError::from_io("cannot stat", path, &e))?;
    if !m.is_file() {
        return Err(StoreError::permanent(format!("{} is not a regular file", path.display())));
    }
    // Postfix refuses these too: a hard link may point the append at someone else's file.
    if m.nlink() > 1 {
        return Err(StoreError::permanent(format!("{} has {} hard links", path.display(), m.nlink())));
    }
    // In a mail spool (a setgid group-writable directory such as Debian's root:mail 2775
    // /var/mail) a new mbox is user:mail 0660, as Debian's MDAs make it, so the mail group's tools
    // (mail(1), biff) work on it; the group came from the directory.
    if created && super::owner::spool_group(path).is_some() {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o660))
            .map_err(|e| StoreError::from_io("cannot chmod", path, &e))?;
    }
    Ok((file, created))
}

/// Appends the message to the mbox at `path` and leaves it locked (see the module comment).
pub fn prepare(path: &Path, msg: &Message, opts: &StoreOptions) -> Result<Prepared, StoreError> {
    let deadline = Instant::now() + opts.lock_timeout;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    ensure_dir(parent)?;
    let mut src = super::open_source(msg)?;
    // Lock order: dotlock, then fcntl (as mutt and Python's mailbox do).
    let dotlock = take_dotlock(path, deadline)?;
    let (file, created) = open_mbox(path)?;
    let lock = take_fcntl_lock(&file, path, deadline)?;
    // A reader that rewrote the mbox by rename while we waited: our fd is a dead file.
    let same = fs::symlink_metadata(path)
        .ok()
        .zip(file.metadata().ok())
        .is_some_and(|(a, b)| a.dev() == b.dev() && a.ino() == b.ino());
    if !same {
        return Err(StoreError::temporary(format!("{} was replaced while locking", path.display())));
    }
    let orig_len = file.metadata().map_err(|e| StoreError::from_io("cannot stat", path, &e))?.len();
    let mut p =
        Prepared { path: path.to_path_buf(), file, lock, orig_len, _dotlock: dotlock, committed: false };
    // From here any error drops `p`, which truncates back to orig_len, fsyncs and unlocks.
    let written = p.append(&mut src, msg).map_err(|e| StoreError::from_io("cannot append to", path, &e))?;
    if written != msg.size {
        log::warn!(
            "store: message size mismatch path={} said={} real={written}",
            msg.path.display(),
            msg.size
        );
    }
    p.file.sync_all().map_err(|e| StoreError::from_io("cannot fsync", path, &e))?;
    if created {
        fsync_dir(parent)?;
    }
    Ok(p)
}

impl Prepared {
    /// Writes separator, From_ line, quoted message, final newline and blank line at orig_len.
    /// Returns the message bytes read.
    fn append(&mut self, src: &mut File, msg: &Message) -> io::Result<u64> {
        let mut out: Vec<u8> = Vec::with_capacity(BUF + BUF / 4);
        // mutt-compatible: the new From_ line must follow a blank line (or start the file).
        if self.orig_len > 0 {
            let n = self.orig_len.min(2);
            let mut tail = [0u8; 2];
            self.file.read_exact_at(&mut tail[..n as usize], self.orig_len - n)?;
            let tail = &tail[..n as usize];
            if tail != b"\n\n" {
                out.push(b'\n');
                if tail.last() != Some(&b'\n') {
                    out.push(b'\n');
                }
            }
        }
        out.extend_from_slice(from_line(msg.sender, msg.arrival).as_bytes());
        self.file.seek(SeekFrom::Start(self.orig_len))?;
        let mut quoter = Quoter::default();
        let mut buf = vec![0u8; BUF];
        let mut total: u64 = 0;
        let mut last = b'\n';
        src.rewind()?;
        loop {
            let n = match src.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            total += n as u64;
            last = buf[n - 1];
            quoter.feed(&buf[..n], &mut out);
            if out.len() >= BUF {
                self.file.write_all(&out)?;
                out.clear();
            }
        }
        quoter.finish(&mut out);
        // Ends with a newline, then one blank line separates it from the next message.
        if total == 0 || last != b'\n' {
            out.push(b'\n');
        }
        out.push(b'\n');
        self.file.write_all(&out)?;
        Ok(total)
    }

    /// The data is already on disk: release the locks (fcntl, then dotlock). Cannot fail.
    pub fn commit(mut self) -> Result<PathBuf, StoreError> {
        self.committed = true;
        Ok(self.path.clone())
    }

    /// Truncate back to the original length, fsync, unlock.
    pub fn abort(self) {
        drop(self); // Drop does it.
    }
}

impl Drop for Prepared {
    fn drop(&mut self) {
        if !self.committed {
            let undo = self.file.set_len(self.orig_len).and_then(|()| self.file.sync_all());
            if let Err(e) = undo {
                log::error!(
                    "store: cannot truncate back path={} len={} error={e}",
                    self.path.display(),
                    self.orig_len
                );
            }
        }
        if let Err(e) = fcntl_lock(&self.file, self.lock, libc::F_UNLCK) {
            log::warn!("store: cannot unlock path={} error={e}", self.path.display());
        }
        // Then `file` closes and `_dotlock` is removed, in field order.
    }
}

/// "From <sender or MAILER-DAEMON> <asctime of arrival, UTC>\n". Whitespace and control characters
/// (possible inside a quoted local part) become '_' so readers split the line right; the exact
/// sender is in Return-Path.
pub fn from_line(sender: &str, arrival: SystemTime) -> String {
    let who: String = if sender.is_empty() {
        "MAILER-DAEMON".into()
    } else {
        sender.chars().map(|c| if c.is_whitespace() || c.is_control() { '_' } else { c }).collect()
    };
    format!("From {who} {}\n", asctime_utc(arrival))
}

/// C asctime() layout without the newline: "Sat Nov 28 03:48:08 2026", "Thu Jan  1 00:00:00 1970".
pub fn asctime_utc(t: SystemTime) -> String {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let secs = t.duration_since(UNIX_EPOCH).map(|d| i64::try_from(d.as_secs()).unwrap_or(0)).unwrap_or(0);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = crate::timefmt::civil_from_days(days);
    format!(
        "{} {} {:2} {:02}:{:02}:{:02} {}",
        DAYS[(days + 4).rem_euclid(7) as usize],
        MONTHS[(month - 1) as usize],
        day,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        year
    )
}

/// Streaming mboxrd quoting: every line matching `^>*From ` gets one more '>'. Constant state, so a
/// line split across reads is handled. Adding the '>' in front of the run of '>' or after it is the
/// same bytes, so the run is passed through as it comes and only "From " needs holding back.
#[derive(Default)]
pub struct Quoter {
    /// Inside a line that can no longer match.
    in_body: bool,
    /// How many bytes of "From " the line has shown after its '>'s.
    matched: usize,
}

const FROM_: &[u8] = b"From ";

impl Quoter {
    pub fn feed(&mut self, mut input: &[u8], out: &mut Vec<u8>) {
        while !input.is_empty() {
            if self.in_body {
                match input.iter().position(|&b| b == b'\n') {
                    Some(i) => {
                        out.extend_from_slice(&input[..=i]);
                        input = &input[i + 1..];
                        self.in_body = false;
                        self.matched = 0;
                    }
                    None => {
                        out.extend_from_slice(input);
                        return;
                    }
                }
                continue;
            }
            let b = input[0];
            input = &input[1..];
            if b == b'>' && self.matched == 0 {
                out.push(b);
            } else if b == FROM_[self.matched] {
                self.matched += 1;
                if self.matched == FROM_.len() {
                    out.push(b'>');
                    out.extend_from_slice(FROM_);
                    self.matched = 0;
                    self.in_body = true;
                }
            } else {
                out.extend_from_slice(&FROM_[..self.matched]);
                out.push(b);
                self.matched = 0;
                self.in_body = b != b'\n';
            }
        }
    }

    /// Emits a held-back partial "From" at the end of input.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(&FROM_[..self.matched]);
        self.matched = 0;
        self.in_body = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::{BODY, msg, opts, spool};
    use std::os::unix::fs::PermissionsExt;
    use std::time::Duration;

    const FROM1: &str = "From a@b.example Sat Nov 28 03:48:08 2026\n";

    fn quote(input: &[u8], chunk: usize) -> Vec<u8> {
        let mut q = Quoter::default();
        let mut out = Vec::new();
        for c in input.chunks(chunk.max(1)) {
            q.feed(c, &mut out);
        }
        q.finish(&mut out);
        out
    }

    #[test]
    fn mboxrd_quoting_table() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"From x\n", b">From x\n"),
            (b">From x\n", b">>From x\n"),
            (b">>>From x\n", b">>>>From x\n"),
            (b"a\nFrom x\nb\n", b"a\n>From x\nb\n"),
            (b"From\n", b"From\n"),
            (b"From", b"From"),
            (b">From", b">From"),
            (b"Fromage\n", b"Fromage\n"),
            (b"FFrom x\n", b"FFrom x\n"),
            (b" From x\n", b" From x\n"),
            (b"x From x\n", b"x From x\n"),
            (b"> From x\n", b"> From x\n"),
            (b">\n>\nFrom \n", b">\n>\n>From \n"),
            (b"from x\n", b"from x\n"),
            (b"From x From y\nFrom z", b">From x From y\n>From z"),
            (b"\n\nFrom x", b"\n\n>From x"),
            (b"", b""),
        ];
        for (input, want) in cases {
            for chunk in [1, 2, 3, 5, 7, 64] {
                assert_eq!(
                    quote(input, chunk),
                    *want,
                    "input {:?} chunk {chunk}",
                    String::from_utf8_lossy(input)
                );
            }
        }
    }

    #[test]
    fn asctime_table() {
        let cases = [
            (0, "Thu Jan  1 00:00:00 1970"),
            (1_795_837_688, "Sat Nov 28 03:48:08 2026"),
            (951_782_400, "Tue Feb 29 00:00:00 2000"),
            // 2100 is not a leap year: one second before Mar 1 2100.
            (4_107_542_399, "Sun Feb 28 23:59:59 2100"),
            (4_107_542_400, "Mon Mar  1 00:00:00 2100"),
        ];
        for (secs, want) in cases {
            assert_eq!(asctime_utc(UNIX_EPOCH + Duration::from_secs(secs)), want);
        }
        assert_eq!(from_line("", UNIX_EPOCH), "From MAILER-DAEMON Thu Jan  1 00:00:00 1970\n");
        assert_eq!(from_line("\"a b\"@c", UNIX_EPOCH), "From \"a_b\"@c Thu Jan  1 00:00:00 1970\n");
    }

    fn expected(body: &[u8]) -> Vec<u8> {
        let mut v = FROM1.as_bytes().to_vec();
        v.extend_from_slice(&quote(body, BUF));
        v.push(b'\n');
        v
    }

    #[test]
    fn deliver_new_mbox_byte_for_byte() {
        let d = tempfile::tempdir().unwrap();
        let src = spool(d.path(), BODY);
        let mb = d.path().join("var/mail/u");
        let p = prepare(&mb, &msg(&src, BODY.len() as u64), &opts()).unwrap();
        assert!(d.path().join("var/mail/u.lock").exists(), "still locked after prepare");
        assert_eq!(p.commit().unwrap(), mb);
        assert!(!d.path().join("var/mail/u.lock").exists());
        let got = fs::read(&mb).unwrap();
        let want = [
            FROM1.as_bytes(),
            b"Return-Path: <a@b.example>\nSubject: hi\n\n>From here on\n>>From there\nbye\n\n",
        ]
        .concat();
        assert_eq!(got, want);
        assert_eq!(fs::metadata(&mb).unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn separators_for_existing_content() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"", b""),
            (b"From x Thu Jan  1 00:00:00 1970\nold\n\n", b""),
            (b"From x Thu Jan  1 00:00:00 1970\nold\n", b"\n"),
            (b"From x Thu Jan  1 00:00:00 1970\nold", b"\n\n"),
        ];
        let d = tempfile::tempdir().unwrap();
        for (i, (old, sep)) in cases.iter().enumerate() {
            for body in [BODY, b"no final newline".as_slice(), b"".as_slice()] {
                let src = spool(d.path(), body);
                let mb = d.path().join(format!("mbox{i}"));
                fs::write(&mb, old).unwrap();
                prepare(&mb, &msg(&src, body.len() as u64), &opts()).unwrap().commit().unwrap();
                let mut want = [*old, *sep].concat();
                want.extend_from_slice(&expected(body));
                if body.last() != Some(&b'\n') {
                    want.insert(want.len() - 1, b'\n');
                }
                assert_eq!(String::from_utf8_lossy(&fs::read(&mb).unwrap()), String::from_utf8_lossy(&want));
            }
        }
    }

    #[test]
    fn abort_and_drop_restore_bytes() {
        let d = tempfile::tempdir().unwrap();
        let src = spool(d.path(), BODY);
        let m = msg(&src, BODY.len() as u64);
        let mb = d.path().join("mbox");
        let old = b"From x Thu Jan  1 00:00:00 1970\nold".to_vec();
        fs::write(&mb, &old).unwrap();
        let p = prepare(&mb, &m, &opts()).unwrap();
        assert!(fs::read(&mb).unwrap().len() > old.len());
        p.abort();
        assert_eq!(fs::read(&mb).unwrap(), old);
        drop(prepare(&mb, &m, &opts()).unwrap());
        assert_eq!(fs::read(&mb).unwrap(), old);
        assert!(!d.path().join("mbox.lock").exists());
        // And the locks are free again.
        prepare(&mb, &m, &opts()).unwrap().commit().unwrap();
        // A new mbox aborted stays empty (removing it could strand a waiting writer).
        let fresh = d.path().join("fresh");
        prepare(&fresh, &m, &opts()).unwrap().abort();
        assert_eq!(fs::read(&fresh).unwrap(), b"");
    }

    #[test]
    fn dotlock_contention_times_out_temporary() {
        let d = tempfile::tempdir().unwrap();
        let src = spool(d.path(), BODY);
        let mb = d.path().join("mbox");
        fs::write(&mb, b"").unwrap();
        let lock = d.path().join("mbox.lock");
        fs::write(&lock, b"4242\n").unwrap();
        let start = Instant::now();
        let e = prepare(&mb, &msg(&src, BODY.len() as u64), &opts()).err().unwrap();
        assert!(!e.permanent, "{e}");
        assert!(start.elapsed() >= Duration::from_millis(250));
        assert!(lock.exists(), "someone else's lock is not ours to remove");
        assert_eq!(fs::read(&mb).unwrap(), b"");

        // Made 10 minutes old, it is stale and removed.
        let old = SystemTime::now() - Duration::from_secs(600);
        File::options().write(true).open(&lock).unwrap().set_modified(old).unwrap();
        prepare(&mb, &msg(&src, BODY.len() as u64), &opts()).unwrap().commit().unwrap();
        assert!(!lock.exists());
    }

    #[test]
    fn fcntl_contention_times_out_temporary() {
        let d = tempfile::tempdir().unwrap();
        let src = spool(d.path(), BODY);
        let mb = d.path().join("mbox");
        fs::write(&mb, b"").unwrap();
        let holder = File::options().read(true).write(true).open(&mb).unwrap();
        let cmd = take_fcntl_lock(&holder, &mb, Instant::now()).unwrap();
        let e = prepare(&mb, &msg(&src, BODY.len() as u64), &opts()).err().unwrap();
        assert!(!e.permanent, "{e}");
        assert!(!d.path().join("mbox.lock").exists(), "dotlock released on failure");
        fcntl_lock(&holder, cmd, libc::F_UNLCK).unwrap();
        prepare(&mb, &msg(&src, BODY.len() as u64), &opts()).unwrap().commit().unwrap();
    }

    #[test]
    fn bad_paths_are_permanent() {
        let d = tempfile::tempdir().unwrap();
        let src = spool(d.path(), BODY);
        let m = msg(&src, BODY.len() as u64);
        let target = d.path().join("target");
        fs::write(&target, b"").unwrap();
        let link = d.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let hard = d.path().join("hard");
        fs::hard_link(&target, &hard).unwrap();
        let dir = d.path().join("dir");
        fs::create_dir(&dir).unwrap();
        for bad in [link, hard, dir, target.join("under")] {
            let e = prepare(&bad, &m, &opts()).err().unwrap();
            assert!(e.permanent, "{}: {e}", bad.display());
        }
        assert_eq!(fs::read(&target).unwrap(), b"");
    }

    #[test]
    fn python_mailbox_reads_it() {
        let d = tempfile::tempdir().unwrap();
        let mb = d.path().join("mbox");
        let bodies: [&[u8]; 3] = [BODY, b"Subject: two\n\nFrom the start\nno newline", b"Subject: 3\n\n"];
        for (i, body) in bodies.iter().enumerate() {
            let src = spool(d.path(), body);
            let mut m = msg(&src, body.len() as u64);
            if i == 1 {
                m.sender = "";
            }
            prepare(&mb, &m, &opts()).unwrap().commit().unwrap();
        }
        let script = "import mailbox, sys\n\
            msgs = list(mailbox.mbox(sys.argv[1]))\n\
            print(len(msgs))\n\
            for m in msgs: print(m.get_from()); print(repr(m['Subject']))\n\
            print(repr(msgs[1].get_payload()))\n";
        let out = match std::process::Command::new("python3").arg("-c").arg(script).arg(&mb).output() {
            Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).into_owned(),
            Ok(o) => {
                println!("note: python3 mailbox check skipped: {}", String::from_utf8_lossy(&o.stderr));
                return;
            }
            Err(e) => {
                println!("note: python3 not available ({e}), mailbox check skipped");
                return;
            }
        };
        let want = "3\n\
            a@b.example Sat Nov 28 03:48:08 2026\n'hi'\n\
            MAILER-DAEMON Sat Nov 28 03:48:08 2026\n'two'\n\
            a@b.example Sat Nov 28 03:48:08 2026\n'3'\n\
            '>From the start\\nno newline\\n'\n";
        assert_eq!(out, want);
    }
}

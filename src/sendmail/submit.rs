//! Writing one submission into the maildrop directory as the invoking user: a temp file
//! `tmp.<random>` (O_EXCL, 0600), the message streamed into it with sendmail's input rules
//! (a line with a single dot ends it unless -i; CRLF becomes LF; a leading mbox `From ` line is
//! dropped), the same checks the server's pickup makes, then mode 0644 (so the server's user can
//! read it: the directory is not listable and the name is random), fsync, rename to its final
//! name, fsync again, and a best-effort wake-up datagram to the server.
//!
//! Durability: the directory is 1733, so a user other than its owner cannot open it to fsync it.
//! The file is fsynced before the rename and again after it: the rename changes the file's ctime,
//! so that second fsync commits the journal transaction that carries the rename (ext4, XFS, btrfs).
//! Root and the server's own user fsync the directory as well.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufWriter, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

use super::header::{self, Fed, HeaderSection};
use super::maildrop::{self, MAX_RCPTS, Submission};

/// How a line holding a single dot is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dots {
    /// `-i`: dots are data.
    Ignore,
    /// sendmail's default: a line "." ends the message.
    End,
    /// SMTP DATA (RFC 5321 4.5.2): "." ends the message, a leading dot is removed from other lines,
    /// and the end of input before the "." abandons the message.
    Smtp,
}

/// Why nothing was submitted (the temp file is removed in every case).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubmitError {
    /// Nothing wrong with the message; the maildrop cannot take it now (EX_TEMPFAIL).
    Temp(String),
    /// The message cannot be accepted as it is (EX_DATAERR).
    Data(String),
    /// -t found no recipient (EX_USAGE, as for a command line without recipients).
    NoRecipients,
    /// SMTP input ended before the final dot.
    Aborted,
}

impl std::fmt::Display for SubmitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SubmitError::Temp(m) | SubmitError::Data(m) => f.write_str(m),
            SubmitError::NoRecipients => f.write_str("no recipient addresses found in the message header"),
            SubmitError::Aborted => f.write_str("input ended before the message's final dot"),
        }
    }
}

/// A message safely in the maildrop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submitted {
    /// Its file name in the maildrop directory.
    pub name: String,
    /// Message bytes (after the sendmail input rules).
    pub size: u64,
}

/// Removes the temp file unless disarmed.
struct TempFile(Option<PathBuf>);

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = fs::remove_file(p);
        }
    }
}

fn random_hex(n: usize) -> Result<String, String> {
    let b = crate::auth::scheme::random_bytes(n)?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// Reads the message from `input` and commits it to `maildrop`. `limit` is message_size_limit.
pub fn submit<R: BufRead>(
    maildrop: &Path,
    sub: &Submission,
    input: &mut R,
    dots: Dots,
    limit: u64,
) -> Result<Submitted, SubmitError> {
    maildrop::validate(sub).map_err(SubmitError::Data)?;
    let temp_err =
        |what: &str, e: io::Error| SubmitError::Temp(format!("{what} in {}: {e}", maildrop.display()));
    let random = random_hex(16).map_err(SubmitError::Temp)?;
    let tmp = maildrop.join(format!("tmp.{random}"));
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&tmp)
        .map_err(|e| {
            SubmitError::Temp(format!(
                "cannot create a file in {}: {e} (has the buzon server been started, which creates it?)",
                maildrop.display()
            ))
        })?;
    let mut guard = TempFile(Some(tmp.clone()));
    let mut out = BufWriter::with_capacity(64 * 1024, file);
    out.write_all(maildrop::render(sub).as_bytes()).map_err(|e| temp_err("writing", e))?;
    let copied = copy_message(input, &mut out, dots, limit)?;
    if sub.extract {
        let found = copied.headers.recipients().map_err(SubmitError::Data)?;
        if found.is_empty() && sub.recipients.is_empty() {
            return Err(SubmitError::NoRecipients);
        }
        if found.len() + sub.recipients.len() > MAX_RCPTS {
            return Err(SubmitError::Data(format!("more than {MAX_RCPTS} recipients")));
        }
    }
    let file = out.into_inner().map_err(|e| temp_err("writing", e.into_error()))?;
    file.set_permissions(fs::Permissions::from_mode(0o644)).map_err(|e| temp_err("chmod", e))?;
    file.sync_all().map_err(|e| temp_err("fsync", e))?;
    let id = crate::spool::new_queue_id();
    let name = format!("{id}.{}", random.get(..16).unwrap_or(&random));
    fs::rename(&tmp, maildrop.join(&name)).map_err(|e| temp_err("rename", e))?;
    guard.0 = None;
    // See the module documentation: this fsync also makes the rename durable.
    file.sync_all().map_err(|e| temp_err("fsync", e))?;
    if let Ok(d) = File::open(maildrop) {
        let _ = d.sync_all();
    }
    Ok(Submitted { name, size: copied.size })
}

/// Tells the server's pickup to look now; nothing happens when it does not listen.
pub fn wake(socket: &Path) {
    if let Ok(s) = UnixDatagram::unbound() {
        let _ = s.set_nonblocking(true);
        let _ = s.send_to(b"pickup", socket);
    }
}

struct Copied {
    headers: HeaderSection,
    size: u64,
}

/// Streams the message with the input rules, checking the header section and the size on the way.
fn copy_message<R: BufRead, W: Write>(
    input: &mut R,
    out: &mut W,
    dots: Dots,
    limit: u64,
) -> Result<Copied, SubmitError> {
    let read_err = |e: io::Error| SubmitError::Temp(format!("reading the message: {e}"));
    let write_err = |e: io::Error| SubmitError::Temp(format!("writing the message: {e}"));
    let mut headers = HeaderSection::new();
    let mut in_header = true;
    let mut piece = Vec::with_capacity(4096);
    let mut at_line_start = true;
    let mut held_cr = false;
    let mut size = 0u64;
    let mut too_big = false;
    let mut ended = false;
    while header::read_piece(input, header::MAX_LINE + 1, &mut piece).map_err(read_err)? {
        let complete = piece.last() == Some(&b'\n');
        if in_header && !complete && !input.fill_buf().map_err(read_err)?.is_empty() {
            return Err(SubmitError::Data(header::HeaderError::LineTooLong.to_string()));
        }
        let mut line: &[u8] = &piece;
        if held_cr {
            // A CR that ended the previous piece: dropped when this piece starts with its LF.
            held_cr = false;
            if line.first() != Some(&b'\n') {
                write_counted(out, b"\r", &mut size, limit, &mut too_big).map_err(write_err)?;
            }
        }
        if at_line_start && dots != Dots::Ignore && line.first() == Some(&b'.') {
            let rest = line.get(1..).unwrap_or_default();
            if rest == b"\n" || rest == b"\r\n" || rest.is_empty() {
                ended = true;
                break;
            }
            if dots == Dots::Smtp {
                line = rest; // RFC 5321 4.5.2: remove the transparency dot
            }
        }
        at_line_start = complete;
        let mut owned;
        if complete && line.ends_with(b"\r\n") {
            owned = line.get(..line.len() - 2).unwrap_or_default().to_vec();
            owned.push(b'\n');
            line = &owned;
        } else if !complete && line.last() == Some(&b'\r') {
            owned = line.get(..line.len() - 1).unwrap_or_default().to_vec();
            held_cr = true;
            line = &owned;
        }
        if in_header {
            match headers.feed(line).map_err(|e| SubmitError::Data(e.to_string()))? {
                Fed::Field => {}
                Fed::Dropped => continue,
                Fed::End | Fed::Body => in_header = false,
            }
        }
        write_counted(out, line, &mut size, limit, &mut too_big).map_err(write_err)?;
        if too_big && dots != Dots::Smtp {
            break;
        }
    }
    if held_cr {
        write_counted(out, b"\r", &mut size, limit, &mut too_big).map_err(write_err)?;
    }
    if dots == Dots::Smtp && !ended {
        return Err(SubmitError::Aborted);
    }
    if too_big {
        return Err(SubmitError::Data(format!(
            "message larger than the size limit of {limit} bytes (message_size_limit)"
        )));
    }
    Ok(Copied { headers, size })
}

fn write_counted<W: Write>(
    out: &mut W,
    b: &[u8],
    size: &mut u64,
    limit: u64,
    too_big: &mut bool,
) -> io::Result<()> {
    *size += b.len() as u64;
    if *size > limit {
        *too_big = true;
    }
    if *too_big { Ok(()) } else { out.write_all(b) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn copy(input: &str, dots: Dots) -> Result<String, SubmitError> {
        let mut out = Vec::new();
        copy_message(&mut input.as_bytes(), &mut out, dots, 1 << 20)?;
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn input_rules() {
        let msg = "From joe Mon Jan 1 00:00:00 2029\r\nSubject: x\r\n\r\n.hidden\r\n..two\r\n.\r\nafter\n";
        assert_eq!(copy(msg, Dots::End).unwrap(), "Subject: x\n\n.hidden\n..two\n");
        assert_eq!(copy(msg, Dots::Ignore).unwrap(), "Subject: x\n\n.hidden\n..two\n.\nafter\n");
        assert_eq!(copy(msg, Dots::Smtp).unwrap(), "Subject: x\n\nhidden\n.two\n");
        assert_eq!(copy("body\n.", Dots::End).unwrap(), "body\n");
        assert_eq!(copy("a\r\r\nb\rc", Dots::End).unwrap(), "a\r\nb\rc");
        assert_eq!(copy("no end", Dots::Smtp), Err(SubmitError::Aborted));
        // A CR at the end of a long piece pairs with the LF at the start of the next one.
        let long = format!("Subject: x\n\n{}\r\nz\r", "a".repeat(header::MAX_LINE));
        assert_eq!(
            copy(&long, Dots::End).unwrap(),
            format!("Subject: x\n\n{}\nz\r", "a".repeat(header::MAX_LINE))
        );
    }

    #[test]
    fn header_limits_and_size() {
        let long = format!("Subject: {}\n\n", "y".repeat(header::MAX_LINE + 5));
        assert!(matches!(copy(&long, Dots::End), Err(SubmitError::Data(_))));
        // A long body line is fine.
        let body = format!("Subject: x\n\n{}\n", "y".repeat(header::MAX_LINE * 3));
        assert_eq!(copy(&body, Dots::End).unwrap(), body);
        let mut out = Vec::new();
        let e = copy_message(&mut "0123456789".as_bytes(), &mut out, Dots::End, 5).err();
        assert!(matches!(e, Some(SubmitError::Data(m)) if m.contains("size limit")));
    }

    #[test]
    fn writes_a_durable_readable_file() {
        let d = tempfile::tempdir().unwrap();
        let sub = Submission { recipients: vec!["alice".into()], ..Submission::default() };
        let s = submit(d.path(), &sub, &mut "Subject: hi\n\nbody\n".as_bytes(), Dots::End, 1000).unwrap();
        let names: Vec<String> =
            fs::read_dir(d.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        assert_eq!(names, std::slice::from_ref(&s.name));
        assert!(!s.name.starts_with("tmp."));
        let p = d.path().join(&s.name);
        assert_eq!(fs::metadata(&p).unwrap().mode() & 0o777, 0o644);
        let text = fs::read_to_string(&p).unwrap();
        assert_eq!(text, "buzon-maildrop 1\nextract-recipients no\nrcpt alice\n\nSubject: hi\n\nbody\n");
        assert_eq!(s.size, 18);
    }

    #[test]
    fn refusals_leave_nothing() {
        let d = tempfile::tempdir().unwrap();
        let t = Submission { extract: true, ..Submission::default() };
        let cases: Vec<(Submission, &str, SubmitError)> = vec![
            (t.clone(), "Subject: no one\n\nx\n", SubmitError::NoRecipients),
            (t.clone(), "To: a b c\n\nx\n", SubmitError::Data(String::new())),
            (
                Submission { recipients: vec!["a b".into()], ..t.clone() },
                "x\n",
                SubmitError::Data(String::new()),
            ),
        ];
        for (sub, input, want) in cases {
            let e = submit(d.path(), &sub, &mut input.as_bytes(), Dots::End, 1000).unwrap_err();
            assert_eq!(std::mem::discriminant(&e), std::mem::discriminant(&want), "{input}: {e}");
        }
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 0);
        let e = submit(&d.path().join("missing"), &t, &mut "x".as_bytes(), Dots::End, 10).unwrap_err();
        assert!(matches!(e, SubmitError::Temp(ref m) if m.contains("missing")), "{e}");
    }
}

//! The webmail's IMAP client (src/web/imapc.rs): first against scripted in-memory streams that
//! check every command byte it writes (RFC 9051 / RFC 3501 transcripts, RFC 7888 LITERAL+,
//! RFC 3501 5.1.3 names), then against the real server: `target/release/buzon serve` started on a
//! free loopback port with a config in a temporary directory, as tests/harness.py starts it.
//! Run with `cargo test --release --test imap_client` (a plain `cargo test` uses the debug binary).

use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use buzon::web::imapc::{Arg, Client, Error, FetchData, Mailbox, MailboxStatus, Selected, Untagged};

/// A stream that checks what the client writes against a script and answers with the script's
/// replies, a few octets at a time (the reader must reassemble them).
struct Script {
    /// (what the client must have written, what the server then answers); an empty answer is EOF.
    steps: VecDeque<(Vec<u8>, Vec<u8>)>,
    written: Vec<u8>,
    reply: VecDeque<u8>,
}

fn script(steps: &[(&[u8], &[u8])]) -> Client<Script> {
    let steps = steps.iter().map(|(w, r)| (w.to_vec(), r.to_vec())).collect();
    Client::new(Script { steps, written: Vec::new(), reply: VecDeque::new() })
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

impl Script {
    /// Every step was taken and nothing more was written.
    fn done(&self) {
        assert!(self.steps.is_empty(), "steps left: {:?}", self.steps.front().map(|s| lossy(&s.0)));
        assert!(self.written.is_empty(), "written past the script: {:?}", lossy(&self.written));
        assert!(
            self.reply.is_empty(),
            "answer left unread: {:?}",
            lossy(&self.reply.iter().copied().collect::<Vec<_>>())
        );
    }
}

impl Read for Script {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.reply.is_empty() {
            let Some((want, reply)) = self.steps.pop_front() else { return Ok(0) };
            assert_eq!(lossy(&self.written), lossy(&want), "the client wrote");
            self.written.clear();
            self.reply.extend(reply);
        }
        let n = buf.len().min(7).min(self.reply.len());
        for (b, r) in buf.iter_mut().zip(self.reply.drain(..n)) {
            *b = r;
        }
        Ok(n)
    }
}

impl Write for Script {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.written.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

const CAPS: &[u8] =
    b"* CAPABILITY IMAP4rev1 IMAP4rev2 LITERAL+ UIDPLUS MOVE LIST-EXTENDED SPECIAL-USE ESEARCH\r\n";

/// The CAPABILITY command the client sends before its first command that depends on them.
fn caps_step(tag: &str, caps: &[u8]) -> (Vec<u8>, Vec<u8>) {
    (format!("{tag} CAPABILITY\r\n").into_bytes(), [caps, format!("{tag} OK done\r\n").as_bytes()].concat())
}

fn mailbox(name: &str, flags: &[&str], special: Option<&str>) -> Mailbox {
    Mailbox {
        name: name.into(),
        delimiter: Some('/'),
        flags: flags.iter().map(|f| f.to_string()).collect(),
        special: special.map(String::from),
    }
}

#[test]
fn list_decodes_names_and_reads_special_use() {
    let (w, r) = caps_step("a1", CAPS);
    let mut c = script(&[
        (&w, &r),
        (
            b"a2 LIST \"\" \"*\" RETURN (SPECIAL-USE)\r\n",
            b"* LIST (\\HasNoChildren) \"/\" INBOX\r\n* LIST (\\HasNoChildren \\Sent) \"/\" Sent\r\n\
              * 3 EXISTS\r\n* LIST (\\HasChildren) \"/\" \"Entw&APw-rfe\"\r\n\
              * LIST () \"/\" {14}\r\nEntw&APw-rfe/x\r\na2 OK LIST completed\r\n",
        ),
    ]);
    assert_eq!(
        c.list().unwrap(),
        vec![
            mailbox("INBOX", &["\\HasNoChildren"], None),
            mailbox("Sent", &["\\HasNoChildren", "\\Sent"], Some("\\Sent")),
            mailbox("Entwürfe", &["\\HasChildren"], None),
            mailbox("Entwürfe/x", &[], None),
        ]
    );
    c.get_ref().done();

    // Without SPECIAL-USE, a plain LIST; attributes it sends anyway still count (RFC 6154 2).
    let (w, r) = caps_step("a1", b"* CAPABILITY IMAP4rev1 LITERAL+\r\n");
    let mut c = script(&[
        (&w, &r),
        (b"a2 LIST \"\" \"*\"\r\n", b"* LIST (\\trash) \"/\" Papelera\r\na2 OK done\r\n"),
    ]);
    assert_eq!(c.list().unwrap(), vec![mailbox("Papelera", &["\\trash"], Some("\\Trash"))]);
    c.get_ref().done();
}

#[test]
fn status_select_and_examine() {
    let mut c = script(&[
        (
            b"a1 STATUS \"Entw&APw-rfe\" (MESSAGES UNSEEN UIDNEXT UIDVALIDITY)\r\n",
            b"* STATUS \"Entw&APw-rfe\" (MESSAGES 3 UNSEEN 1 UIDNEXT 8 UIDVALIDITY 1700000000)\r\na1 OK done\r\n",
        ),
        (
            b"a2 SELECT \"INBOX\"\r\n",
            b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n* 172 EXISTS\r\n* 1 RECENT\r\n\
              * OK [UNSEEN 12] First unseen\r\n* OK [UIDVALIDITY 3857529045] UIDs valid\r\n\
              * OK [UIDNEXT 4392] Predicted next UID\r\na2 OK [READ-WRITE] SELECT completed\r\n",
        ),
        (b"a3 EXAMINE \"Entw&APw-rfe\"\r\n", b"* 0 EXISTS\r\na3 OK [READ-ONLY] EXAMINE completed\r\n"),
    ]);
    assert_eq!(
        c.status("Entwürfe").unwrap(),
        MailboxStatus { messages: 3, unseen: 1, uidnext: 8, uidvalidity: 1_700_000_000 }
    );
    assert_eq!(
        c.select("INBOX", false).unwrap(),
        Selected { exists: 172, uidvalidity: 3_857_529_045, uidnext: 4392 }
    );
    assert_eq!(c.select("Entwürfe", true).unwrap(), Selected { exists: 0, uidvalidity: 0, uidnext: 0 });
    c.get_ref().done();
}

#[test]
fn uid_search_sends_charset_and_keeps_user_text_whole() {
    let (w, r) = caps_step("a1", CAPS);
    let mut c = script(&[
        (&w, &r),
        (
            "a2 UID SEARCH RETURN (ALL) CHARSET UTF-8 SUBJECT {7+}\r\nGrüße FROM \"say \\\"hi\\\" \\\\o/\"\r\n"
                .as_bytes(),
            b"* ESEARCH (TAG \"a2\") UID ALL 9,3:5\r\na2 OK SEARCH completed\r\n",
        ),
        (
            b"a3 UID SEARCH RETURN (ALL) BODY {12+}\r\nx\r\na3 LOGOUT\r\n",
            b"* ESEARCH (TAG \"a3\") UID COUNT 0\r\na3 OK SEARCH completed\r\n",
        ),
    ]);
    let found = c.uid_search(&[
        Arg::Atom("SUBJECT"),
        Arg::Str("Grüße"),
        Arg::Atom("FROM"),
        Arg::Str("say \"hi\" \\o/"),
    ]);
    assert_eq!(found.unwrap(), vec![3, 4, 5, 9]);
    // CRLF in user text goes in a literal: it cannot end the command and start another.
    assert_eq!(c.uid_search(&[Arg::Atom("BODY"), Arg::Str("x\r\na3 LOGOUT")]).unwrap(), Vec::<u32>::new());
    c.get_ref().done();

    // Without ESEARCH: a plain SEARCH, its answer sorted.
    let (w, r) = caps_step("a1", b"* CAPABILITY IMAP4rev1 LITERAL+\r\n");
    let mut c = script(&[
        (&w, &r),
        (b"a2 UID SEARCH UNSEEN\r\n", b"* SEARCH 12 5\r\n* 4 EXISTS\r\n* SEARCH 7\r\na2 OK done\r\n"),
    ]);
    assert_eq!(c.uid_search(&[Arg::Atom("UNSEEN")]).unwrap(), vec![5, 7, 12]);
    c.get_ref().done();
}

#[test]
fn long_text_waits_for_the_continuation_and_a_refusal_sends_nothing_more() {
    // RFC 7888 4: past 4096 octets a synchronizing literal, so the server may refuse it unread.
    let text = "y".repeat(5000);
    let head = b"a2 UID SEARCH RETURN (ALL) BODY {5000}\r\n";
    let rest = [text.as_bytes(), b" UNSEEN\r\n"].concat();
    let (w, r) = caps_step("a1", CAPS);
    let mut c = script(&[
        (&w, &r),
        (head, b"+ Ready for literal data\r\n"),
        (&rest, b"* ESEARCH (TAG \"a2\") UID ALL 4\r\na2 OK done\r\n"),
        (b"a3 UID SEARCH RETURN (ALL) BODY {5000}\r\n", b"* 4 EXISTS\r\na3 NO [TOOBIG] Literal too big\r\n"),
        (b"a4 NOOP\r\n", b"a4 OK NOOP completed\r\n"),
    ]);
    let criteria = [Arg::Atom("BODY"), Arg::Str(&text), Arg::Atom("UNSEEN")];
    assert_eq!(c.uid_search(&criteria).unwrap(), vec![4]);
    let e = c.uid_search(&criteria).unwrap_err();
    assert!(matches!(&e, Error::No(t) if t == "Literal too big"), "{e:?}");
    c.noop().unwrap();
    c.get_ref().done();
}

#[test]
fn uid_fetch_merges_per_message_and_keeps_those_with_a_uid() {
    let body = b"Subject: caf\xe9\r\n\r\nl\xedne one\r\n";
    let mut answer =
        b"* 2 FETCH (UID 9 FLAGS (\\Seen))\r\n* 1 FETCH (FLAGS (\\Deleted))\r\n* 4 EXISTS\r\n".to_vec();
    answer.extend_from_slice(
        format!("* 2 FETCH (UID 9 RFC822.SIZE {} BODY[] {{{}}}\r\n", body.len(), body.len()).as_bytes(),
    );
    answer.extend_from_slice(body);
    answer.extend_from_slice(
        b")\r\n* 1 FETCH (UID 4 FLAGS () INTERNALDATE \" 1-Jan-2024 10:00:00 +0000\" BODY[] NIL)\r\n",
    );
    answer.extend_from_slice(b"a1 OK FETCH completed\r\n");
    let mut c =
        script(&[(b"a1 UID FETCH 4,9 (UID FLAGS RFC822.SIZE INTERNALDATE BODY.PEEK[])\r\n", &answer)]);
    let got = c.uid_fetch("4,9", "(UID FLAGS RFC822.SIZE INTERNALDATE BODY.PEEK[])").unwrap();
    assert_eq!(
        got,
        vec![
            FetchData {
                uid: Some(4),
                flags: Some(vec![]),
                internaldate: Some(" 1-Jan-2024 10:00:00 +0000".into()),
                sections: vec![("BODY[]".into(), vec![])],
                ..FetchData::default()
            },
            FetchData {
                uid: Some(9),
                flags: Some(vec!["\\Seen".into()]),
                size: Some(body.len() as u64),
                sections: vec![("BODY[]".into(), body.to_vec())],
                ..FetchData::default()
            },
        ]
    );
    assert_eq!(got[1].section("BODY.PEEK[]"), Some(&body[..]));
    c.get_ref().done();
}

#[test]
fn store_copy_move_expunge_create_and_noop() {
    let (w, r) = caps_step("a2", CAPS);
    let mut c = script(&[
        (b"a1 UID STORE 1:3 +FLAGS.SILENT (\\Seen $Label1)\r\n", b"a1 OK STORE completed\r\n"),
        (&w, &r),
        (
            b"a3 UID MOVE 7 \"Trash\"\r\n",
            b"* OK [COPYUID 1 7 3] Moved\r\n* 2 EXPUNGE\r\na3 OK MOVE completed\r\n",
        ),
        (b"a4 UID COPY 8 \"Archive/2024\"\r\n", b"a4 OK [COPYUID 1 8 1] COPY completed\r\n"),
        (b"a5 UID EXPUNGE 8\r\n", b"* 2 EXPUNGE\r\na5 OK EXPUNGE completed\r\n"),
        (b"a6 CREATE \"&ZeVnLIqe-\"\r\n", b"a6 OK CREATE completed\r\n"),
        (b"a7 NOOP\r\n", b"* 5 EXISTS\r\n* 3 FETCH (FLAGS (\\Seen))\r\na7 OK NOOP completed\r\n"),
    ]);
    c.uid_store("1:3", "+FLAGS.SILENT", &["\\Seen", "$Label1"]).unwrap();
    c.uid_move("7", "Trash").unwrap();
    c.uid_copy("8", "Archive/2024").unwrap();
    c.uid_expunge("8").unwrap();
    c.create("日本語").unwrap();
    let news = c.noop().unwrap();
    assert_eq!(news.first(), Some(&Untagged::Exists(5)));
    c.get_ref().done();

    // Without MOVE: COPY, \Deleted, UID EXPUNGE (RFC 6851 3.3's equivalent).
    let (w, r) = caps_step("a1", b"* CAPABILITY IMAP4rev1 LITERAL+ UIDPLUS\r\n");
    let mut c = script(&[
        (&w, &r),
        (b"a2 UID COPY 7 \"Trash\"\r\n", b"a2 OK COPY completed\r\n"),
        (b"a3 UID STORE 7 +FLAGS.SILENT (\\Deleted)\r\n", b"a3 OK STORE completed\r\n"),
        (b"a4 UID EXPUNGE 7\r\n", b"* 2 EXPUNGE\r\na4 OK EXPUNGE completed\r\n"),
    ]);
    c.uid_move("7", "Trash").unwrap();
    c.get_ref().done();
}

#[test]
fn append_gives_the_appenduid_and_tolerates_a_continuation() {
    let msg = b"From: a@example.test\r\nSubject: \xc3\xa9t\xc3\xa9\r\n\r\nBody \"quoted\" \\ {3}\r\n";
    let mut first =
        format!("a1 APPEND \"Entw&APw-rfe\" (\\Seen \\Draft) {{{}+}}\r\n", msg.len()).into_bytes();
    first.extend_from_slice(msg);
    first.extend_from_slice(b"\r\n");
    let mut second = format!("a2 APPEND \"INBOX\" {{{}+}}\r\n", msg.len()).into_bytes();
    second.extend_from_slice(msg);
    second.extend_from_slice(b"\r\n");
    let mut c = script(&[
        (&first, b"+ Ready for literal data\r\na1 OK [APPENDUID 38505 3955] APPEND completed\r\n"),
        (&second, b"a2 OK APPEND completed\r\n"),
        (b"a3 APPEND \"Nowhere\" {1+}\r\nx\r\n", b"a3 NO [TRYCREATE] Mailbox does not exist\r\n"),
    ]);
    assert_eq!(c.append("Entwürfe", &["\\Seen", "\\Draft"], msg).unwrap(), Some(3955));
    assert_eq!(c.append("INBOX", &[], msg).unwrap(), None);
    let e = c.append("Nowhere", &[], b"x").unwrap_err();
    assert!(matches!(&e, Error::No(t) if t == "Mailbox does not exist"), "{e:?}");
    assert_eq!(e.to_string(), "Mailbox does not exist");
    c.get_ref().done();
}

#[test]
fn no_bad_bye_and_eof() {
    let mut c = script(&[
        (b"a1 SELECT \"Gone\"\r\n", b"a1 NO [NONEXISTENT] Mailbox does not exist\r\n"),
        (b"a2 FROBNICATE\r\n", b"a2 BAD Unknown command\r\n"),
        (b"a3 NOOP\r\n", b"* 3 EXISTS\r\n* BYE Server shutting down\r\n"),
    ]);
    assert!(matches!(c.select("Gone", false), Err(Error::No(t)) if t == "Mailbox does not exist"));
    let e = c.command(&[Arg::Atom("FROBNICATE")]).unwrap_err();
    assert!(matches!(&e, Error::Bad(t) if t == "Unknown command"), "{e:?}");
    assert_eq!(e.to_string(), "The mail server did not accept the request: Unknown command");
    let e = c.noop().unwrap_err();
    assert!(matches!(&e, Error::Bye(t) if t == "Server shutting down"), "{e:?}");
    // The client is done: nothing more is written.
    assert!(matches!(c.create("x"), Err(Error::Io(_))));
    c.get_ref().done();

    // The connection ends in the middle of a response (or a read times out): an I/O error.
    let mut c = script(&[(b"a1 NOOP\r\n", b"* 3 EXI")]);
    let e = c.noop().unwrap_err();
    assert!(matches!(&e, Error::Io(io) if io.kind() == io::ErrorKind::UnexpectedEof), "{e:?}");
    assert_eq!(e.to_string(), "The mail server closed the connection");
    assert_eq!(
        Error::Io(io::ErrorKind::WouldBlock.into()).to_string(),
        "The mail server took too long to answer"
    );

    // A response past the cap.
    let big = [b"* 1 FETCH (BODY[] {100}\r\n".as_slice(), &[b'x'; 100], b")\r\na1 OK\r\n"].concat();
    let steps = VecDeque::from([(b"a1 UID FETCH 1 BODY[]\r\n".to_vec(), big)]);
    let mut c = Client::with_max_response(Script { steps, written: Vec::new(), reply: VecDeque::new() }, 64);
    let e = c.uid_fetch("1", "BODY[]").unwrap_err();
    assert!(matches!(&e, Error::Protocol(_)), "{e:?}");
    assert!(e.to_string().contains("larger than 64 octets"), "{e}");
}

#[test]
fn logout_tolerates_the_close_after_bye() {
    let mut c = script(&[(b"a1 LOGOUT\r\n", b"* BYE Logging out\r\n")]);
    c.logout().unwrap();
    c.get_ref().done();
    let mut c = script(&[(b"a1 LOGOUT\r\n", b"* BYE Logging out\r\na1 OK LOGOUT completed\r\n")]);
    c.logout().unwrap();
    c.get_ref().done();
}

#[test]
fn arguments_that_would_break_the_command_are_refused_unsent() {
    let mut c = script(&[]);
    for e in [
        c.uid_fetch("1\r\na2 DELETE INBOX", "FLAGS").unwrap_err(),
        c.uid_fetch("1", "FLAGS\r\na2 DELETE INBOX").unwrap_err(),
        c.uid_store("1", "+FLAGS", &["\\Seen)\r\n"]).unwrap_err(),
        c.uid_expunge("").unwrap_err(),
        c.append("INBOX", &["a b"], b"x").unwrap_err(),
        c.command(&[Arg::Atom("NOOP {5}")]).unwrap_err(),
    ] {
        assert!(matches!(e, Error::Argument(_)), "{e:?}");
    }
    c.get_ref().done();
}

// --- Against the real server ---

/// The server process, killed when the test ends, passed or not; its log is shown on failure.
struct Server {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(self.dir.path().join("buzon.log")).unwrap_or_default();
            let tail: String = log.chars().rev().take(4000).collect::<Vec<_>>().into_iter().rev().collect();
            eprintln!("--- server log (end) ---\n{tail}");
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The server binary cargo built for this run: target/release/buzon under `cargo test --release`
/// (as `cargo build --release` builds it), so never a stale one.
fn binary() -> PathBuf {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_buzon"));
    assert!(
        bin.exists(),
        "{} is missing: build it with `cargo build --release` (this test does not skip)",
        bin.display()
    );
    bin
}

/// Starts `buzon serve` with one user, alice@example.test, whose mail is a Maildir in a temporary
/// directory; IMAP on a free loopback port, LOGIN allowed without TLS from loopback.
fn start_server() -> Server {
    let bin = binary();
    let dir = tempfile::Builder::new().prefix("buzon-imapc-").tempdir().unwrap();
    let tmp = dir.path().display().to_string();
    std::fs::write(dir.path().join("passwd"), "alice@example.test:{PLAIN}secret-alice\n").unwrap();
    let (smtp, imap) = (free_port(), free_port());
    let config = format!(
        "hostname = mx.example.test\ndata_dir = {tmp}/data\nlocal_domains = example.test\n\
         users = file:{tmp}/passwd\nmailbox = maildir:{tmp}/mail/%d/%n/Maildir\n\
         smtp.listen = 127.0.0.1:{smtp}\nimap.listen = 127.0.0.1:{imap}\n\
         auth.cleartext_networks = 127.0.0.0/8\npid_file = {tmp}/buzon.pid\nshutdown_timeout = 5s\n"
    );
    let conf = dir.path().join("buzon.conf");
    std::fs::write(&conf, config).unwrap();
    let log = std::fs::File::create(dir.path().join("buzon.log")).unwrap();
    let child = Command::new(bin)
        .args(["serve", "-c"])
        .arg(&conf)
        .env("RUST_LOG", "debug")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut server = Server { child, dir, port: imap };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            panic!("buzon exited with {status} before listening");
        }
        if TcpStream::connect(("127.0.0.1", server.port)).is_ok() {
            return server;
        }
        assert!(Instant::now() < deadline, "buzon did not start listening on port {}", server.port);
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A connection logged in by hand (greeting, `a0 LOGIN`), ready for [`Client::new`].
fn login(server: &Server) -> TcpStream {
    let stream = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut lines = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    lines.read_line(&mut line).unwrap();
    assert!(line.starts_with("* OK"), "greeting: {line:?}");
    (&stream).write_all(b"a0 LOGIN alice@example.test secret-alice\r\n").unwrap();
    loop {
        line.clear();
        lines.read_line(&mut line).unwrap();
        if line.starts_with("a0 ") {
            assert!(line.starts_with("a0 OK"), "LOGIN: {line:?}");
            break;
        }
    }
    // Nothing may be left buffered: the server says nothing more until the next command.
    assert!(lines.buffer().is_empty());
    stream
}

#[test]
fn against_the_real_server() {
    let server = start_server();
    let mut c = Client::new(login(&server));

    let caps = c.capabilities().unwrap();
    for cap in ["IMAP4REV1", "LITERAL+", "UIDPLUS", "MOVE", "SPECIAL-USE", "ESEARCH"] {
        assert!(caps.iter().any(|c| c == cap), "{cap} in {caps:?}");
    }

    // The special-use folders exist from the start.
    let boxes = c.list().unwrap();
    let special = |name: &str| boxes.iter().find(|b| b.name == name).map(|b| b.special.clone());
    assert_eq!(special("INBOX"), Some(None), "{boxes:?}");
    for (name, attr) in [("Sent", "\\Sent"), ("Drafts", "\\Drafts"), ("Trash", "\\Trash"), ("Junk", "\\Junk")]
    {
        assert_eq!(special(name), Some(Some(attr.to_string())), "{boxes:?}");
    }

    // Folders with non-ASCII names, one nested.
    let folder = "Reçus «2024»";
    let nested = "Reçus «2024»/日本語 & co";
    c.create(folder).unwrap();
    c.create(nested).unwrap();
    let e = c.create(folder).unwrap_err();
    assert!(matches!(&e, Error::No(t) if t == "Mailbox already exists"), "{e:?}");
    let boxes = c.list().unwrap();
    for name in [folder, nested] {
        let b = boxes.iter().find(|b| b.name == name).unwrap_or_else(|| panic!("{name} in {boxes:?}"));
        assert_eq!(b.delimiter, Some('/'));
    }

    // Messages with CRLF and 8-bit octets (UTF-8 and a stray Latin-1 byte).
    let first = b"From: Jos\xc3\xa9 <jose@example.test>\r\nTo: alice@example.test\r\n\
        Subject: Gr\xc3\xbc\xc3\x9fe aus K\xc3\xb6ln\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\n\
        Hola, se\xf1or \"quoted\" \\ {3}\r\n.\r\nline two\r\n";
    let second = b"From: bob@example.test\r\nTo: alice@example.test\r\nSubject: plain ascii\r\n\r\nsay \"hi\" \\o/\r\n";
    let uid1 = c.append("INBOX", &[], first).unwrap().expect("APPENDUID");
    let uid2 = c.append("INBOX", &["\\Seen"], second).unwrap().expect("APPENDUID");
    let uid3 = c.append(folder, &["\\Flagged"], first).unwrap().expect("APPENDUID");
    assert!(uid2 > uid1, "{uid1} {uid2}");
    let e = c.append("No such folder", &[], second).unwrap_err();
    assert!(matches!(&e, Error::No(t) if t == "Mailbox does not exist"), "{e:?}");

    let st = c.status(folder).unwrap();
    assert_eq!((st.messages, st.unseen), (1, 1), "{st:?}");
    assert_eq!(st.uidnext, uid3 + 1);
    assert!(st.uidvalidity > 0);
    let inbox = c.status("INBOX").unwrap();
    assert_eq!((inbox.messages, inbox.unseen), (2, 1), "{inbox:?}");

    let sel = c.select("INBOX", false).unwrap();
    assert_eq!(sel, Selected { exists: 2, uidvalidity: inbox.uidvalidity, uidnext: inbox.uidnext });

    // Searches: ASCII, non-ASCII (CHARSET UTF-8 and a literal), quotes and backslashes.
    assert_eq!(c.uid_search(&[Arg::Atom("ALL")]).unwrap(), vec![uid1, uid2]);
    assert_eq!(c.uid_search(&[Arg::Atom("UNSEEN")]).unwrap(), vec![uid1]);
    assert_eq!(c.uid_search(&[Arg::Atom("SUBJECT"), Arg::Str("plain")]).unwrap(), vec![uid2]);
    assert_eq!(c.uid_search(&[Arg::Atom("SUBJECT"), Arg::Str("Grüße")]).unwrap(), vec![uid1]);
    assert_eq!(c.uid_search(&[Arg::Atom("FROM"), Arg::Str("José")]).unwrap(), vec![uid1]);
    assert_eq!(c.uid_search(&[Arg::Atom("BODY"), Arg::Str("say \"hi\" \\o/")]).unwrap(), vec![uid2]);
    assert_eq!(c.uid_search(&[Arg::Atom("TEXT"), Arg::Str("line two\r\n")]).unwrap(), vec![uid1]);
    assert_eq!(
        c.uid_search(&[Arg::Atom("SUBJECT"), Arg::Str("nowhere to be found")]).unwrap(),
        Vec::<u32>::new()
    );

    // Headers of both, then one whole message, byte for byte.
    let set = format!("{uid1}:{uid2}");
    let heads = c
        .uid_fetch(
            &set,
            "(UID FLAGS RFC822.SIZE INTERNALDATE BODY.PEEK[HEADER.FIELDS (FROM TO SUBJECT DATE)])",
        )
        .unwrap();
    assert_eq!(heads.iter().map(|d| d.uid).collect::<Vec<_>>(), vec![Some(uid1), Some(uid2)]);
    let h = heads[0].section("BODY[HEADER.FIELDS (FROM TO SUBJECT DATE)]").expect("the header section");
    assert!(h.starts_with(b"From: Jos\xc3\xa9 <jose@example.test>\r\n"), "{}", lossy(h));
    assert!(h.windows(9).any(|w| w == b"Subject: "), "{}", lossy(h));
    assert!(h.ends_with(b"\r\n\r\n"), "{}", lossy(h));
    assert_eq!(heads[0].size, Some(first.len() as u64));
    // RFC 3501 2.3.2: this session is the first to see both appended messages, so they are \Recent
    // here besides their stored flags.
    let stored = |d: &buzon::web::imapc::FetchData| {
        let all = d.flags.clone().unwrap_or_default();
        assert!(all.contains(&"\\Recent".to_string()), "{all:?}");
        all.into_iter().filter(|f| f != "\\Recent").collect::<Vec<_>>()
    };
    assert_eq!(stored(&heads[0]), Vec::<String>::new());
    assert_eq!(stored(&heads[1]), vec!["\\Seen".to_string()]);
    assert!(heads[0].internaldate.as_deref().is_some_and(|d| d.ends_with(" +0000")), "{:?}", heads[0]);
    let whole = c.uid_fetch(&uid1.to_string(), "(UID BODY.PEEK[])").unwrap();
    assert_eq!(whole.len(), 1);
    assert_eq!(lossy(whole[0].section("BODY[]").unwrap()), lossy(first));
    assert_eq!(whole[0].section("BODY[]").unwrap(), &first[..]);
    // PEEK left \Seen alone.
    assert_eq!(c.uid_search(&[Arg::Atom("UNSEEN")]).unwrap(), vec![uid1]);

    // Flags.
    c.uid_store(&uid1.to_string(), "+FLAGS.SILENT", &["\\Flagged", "$Label1"]).unwrap();
    let f = c.uid_fetch(&uid1.to_string(), "(UID FLAGS)").unwrap();
    let flags = f[0].flags.clone().unwrap();
    assert!(flags.contains(&"\\Flagged".into()) && flags.contains(&"$Label1".into()), "{flags:?}");
    c.uid_store(&uid1.to_string(), "-FLAGS.SILENT", &["$Label1"]).unwrap();
    assert_eq!(
        stored(&c.uid_fetch(&uid1.to_string(), "(UID FLAGS)").unwrap()[0]),
        vec!["\\Flagged".to_string()]
    );

    // Copy and move into the non-ASCII folder, expunge in it.
    c.uid_copy(&uid2.to_string(), nested).unwrap();
    c.uid_move(&uid1.to_string(), folder).unwrap();
    assert_eq!(c.uid_search(&[Arg::Atom("ALL")]).unwrap(), vec![uid2]);
    assert_eq!(c.status(folder).unwrap().messages, 2);
    assert_eq!(c.status(nested).unwrap().messages, 1);
    let sel = c.select(folder, false).unwrap();
    assert_eq!(sel.exists, 2);
    let uids = c.uid_search(&[Arg::Atom("ALL")]).unwrap();
    assert_eq!(uids.len(), 2);
    let moved = c.uid_fetch(&format!("{}:*", uids[0]), "(UID BODY.PEEK[])").unwrap();
    assert!(moved.iter().all(|d| d.section("BODY[]") == Some(&first[..])), "{moved:?}");
    c.uid_store(&uids[0].to_string(), "+FLAGS.SILENT", &["\\Deleted"]).unwrap();
    c.uid_expunge(&uids.iter().map(u32::to_string).collect::<Vec<_>>().join(",")).unwrap();
    assert_eq!(c.uid_search(&[Arg::Atom("ALL")]).unwrap(), vec![uids[1]]);
    assert_eq!(c.select(nested, true).unwrap().exists, 1);

    // Failures keep the server's words; the client goes on after them.
    let e = c.select("Does not exist", false).unwrap_err();
    assert!(matches!(&e, Error::No(t) if t == "Mailbox does not exist"), "{e:?}");
    let e = c.command(&[Arg::Atom("FROBNICATE")]).unwrap_err();
    assert!(matches!(&e, Error::Bad(_)), "{e:?}");
    c.noop().unwrap();

    // Another session's APPEND shows as an unsolicited EXISTS (RFC 9051 7.4.1).
    c.select("INBOX", false).unwrap();
    let mut other = Client::new(login(&server));
    other.append("INBOX", &[], second).unwrap();
    other.logout().unwrap();
    assert!(c.noop().unwrap().contains(&Untagged::Exists(2)));

    // A message with NUL goes as a literal8 (RFC 3516 4.4) and comes back whole with BINARY.
    let nul = b"Subject: nul\r\n\r\na\0b\r\n";
    let uid = c.append("INBOX", &[], nul).unwrap().expect("APPENDUID").to_string();
    let got = c.uid_fetch(&uid, "(UID BINARY.PEEK[])").unwrap();
    assert_eq!(got[0].section("BINARY[]"), Some(&nul[..]));

    // Search text past the server's literal limit goes as a synchronizing literal: the server
    // refuses it before it is sent, and the session goes on.
    let e = c.uid_search(&[Arg::Atom("BODY"), Arg::Str(&"x".repeat(70_000))]).unwrap_err();
    assert!(matches!(&e, Error::No(t) if t.starts_with("Literal too big")), "{e:?}");
    let e = c.uid_search(&[Arg::Atom("BODY"), Arg::Str("nul\0")]).unwrap_err();
    assert!(matches!(&e, Error::Argument(_)), "{e:?}");
    assert_eq!(
        c.uid_search(&[Arg::Atom("BODY"), Arg::Str(&"say ".repeat(2000))]).unwrap(),
        Vec::<u32>::new()
    );

    c.logout().unwrap();
    assert!(matches!(c.noop(), Err(Error::Io(_))));
}

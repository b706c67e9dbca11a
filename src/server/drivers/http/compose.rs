//! Writing mail in the webmail: the compose page (new, reply, reply to all, forward, a draft
//! again), and the form's two ends: send (into the queue as a logged-in submission, then a copy
//! in Sent) and save (in Drafts). Messages are written here: RFC 5322 fields, RFC 2047 encoded
//! words for non-ASCII text, MIME (RFC 2045-2049) with quoted-printable text and base64
//! attachments, lines within RFC 5322's 78 characters.

use std::fmt::Write as _;

use base64::Engine;
use mailparse::MailHeaderMap;

use super::app::{self, Call};
use super::state::{self, Session};
use super::webmail::{self, Mail};
use crate::web::http::{self, Response, url_encode};
use crate::web::imapc::Error;
use crate::web::pages::{self, Attachment};

/// One file to attach.
pub struct File {
    pub name: String,
    pub mime: String,
    pub data: Vec<u8>,
}

/// A message as the form gives it.
#[derive(Default)]
pub struct Draft {
    pub from: String,
    pub to: String,
    pub cc: String,
    pub bcc: String,
    pub subject: String,
    pub body: String,
    pub in_reply_to: String,
    pub references: String,
}

/// The compose page: empty, or filled from the message it answers or forwards, or a draft.
pub fn page(call: &Call, s: &Session, mail: &mut Mail) -> Result<Response, Error> {
    let folders = webmail::folders(mail)?;
    let f = call.param("f").unwrap_or_else(|| "INBOX".into());
    let uid: Option<u32> = call.param("uid").and_then(|u| u.parse().ok());
    let mode = call.param("mode").unwrap_or_default();
    let mut d = Draft::default();
    let mut fwd_atts: Vec<Attachment> = Vec::new();
    let mut forward = None;
    let mut draft_uid = None;
    if let Some(uid) = uid {
        let (raw, _) = webmail::fetch_message(mail, &f, uid, false)?;
        let m = mailparse::parse_mail(&raw).map_err(|e| Error::No(e.to_string()))?;
        let h = |n: &str| m.headers.get_first_value(n).unwrap_or_default();
        let all = webmail::leaves(&m);
        let text = webmail::plain_text(&all).unwrap_or_default();
        let subject = h("Subject");
        let msgid = h("Message-ID");
        match mode.as_str() {
            "reply" | "all" => {
                d.to = if h("Reply-To").is_empty() { h("From") } else { h("Reply-To") };
                if mode == "all" {
                    let others: Vec<String> = [h("To"), h("Cc")]
                        .iter()
                        .flat_map(|v| addresses(v))
                        .filter(|a| !a.eq_ignore_ascii_case(&s.email))
                        .collect();
                    d.cc = others.join(", ");
                }
                d.subject = prefixed("Re: ", &subject);
                d.in_reply_to = msgid.clone();
                d.references = format!("{} {msgid}", h("References")).trim().to_string();
                let mut q = format!("\n\nOn {}, {} wrote:\n", h("Date"), h("From"));
                for line in text.lines() {
                    q.push_str(if line.starts_with('>') { ">" } else { "> " });
                    q.push_str(line);
                    q.push('\n');
                }
                d.body = q;
            }
            "forward" => {
                d.subject = prefixed("Fwd: ", &subject);
                d.body = format!(
                    "\n\n---------- Forwarded message ----------\nFrom: {}\nDate: {}\nSubject: {}\nTo: {}\n\n{}",
                    h("From"),
                    h("Date"),
                    subject,
                    h("To"),
                    text
                );
                fwd_atts = webmail::attachments(&all);
                forward = Some(uid);
            }
            _ => {
                // A draft, opened again.
                d.to = h("To");
                d.cc = h("Cc");
                d.bcc = h("Bcc");
                d.subject = subject;
                d.body = text;
                d.in_reply_to = h("In-Reply-To");
                d.references = h("References");
                draft_uid = Some(uid);
            }
        }
    }
    let forward = forward.map(|u| (f.as_str(), u, fwd_atts.as_slice()));
    Ok(draw(s, &folders, &d, forward, draft_uid, None))
}

/// The compose page with `d` filled in; with a notice, the form came back with a problem (422).
fn draw(
    s: &Session,
    folders: &[pages::Folder],
    d: &Draft,
    forward: Option<(&str, u32, &[Attachment])>,
    draft_uid: Option<u32>,
    notice: Option<&str>,
) -> Response {
    let c = pages::Compose {
        to: &d.to,
        cc: &d.cc,
        bcc: &d.bcc,
        subject: &d.subject,
        body: &d.body,
        in_reply_to: &d.in_reply_to,
        references: &d.references,
        forward,
        draft_uid,
    };
    let frame = pages::Frame { user: &s.email, csrf: &s.csrf, folders, current: "", notice };
    Response::html(if notice.is_some() { 422 } else { 200 }, pages::compose(&frame, &c))
}

/// `Re: ` once, not `Re: Re: `.
fn prefixed(prefix: &str, subject: &str) -> String {
    let p = prefix.trim_end();
    // `get`: the subject is the sender's text, and byte 3 may fall inside a character.
    if subject.get(..p.len()).is_some_and(|head| head.eq_ignore_ascii_case(p)) {
        return subject.to_string();
    }
    format!("{prefix}{subject}")
}

/// The addresses of an address-list field.
pub fn addresses(field: &str) -> Vec<String> {
    let Ok(list) = mailparse::addrparse(field) else { return Vec::new() };
    let mut out = Vec::new();
    for a in list.iter() {
        match a {
            mailparse::MailAddr::Single(s) => out.push(s.addr.clone()),
            mailparse::MailAddr::Group(g) => out.extend(g.addrs.iter().map(|s| s.addr.clone())),
        }
    }
    out
}

/// The form, sent or saved.
pub fn post(call: &Call, s: &Session) -> Result<Response, Error> {
    let ctype = call.req.header("content-type").unwrap_or_default().to_string();
    let parts = match http::multipart(&ctype, &call.req.body, 64) {
        Ok(p) => p,
        Err(e) => return Ok(app::error(400, &format!("The form could not be read: {e}"))),
    };
    let field = |name: &str| {
        parts
            .iter()
            .find(|p| p.name == name && p.filename.is_none())
            .map(|p| String::from_utf8_lossy(&p.data).replace("\r\n", "\n"))
            .unwrap_or_default()
    };
    if !state::same(&field("csrf"), &s.csrf) {
        return Ok(app::error(403, "That form did not come from this session: reload the page."));
    }
    let d = Draft {
        from: s.email.clone(),
        to: field("to"),
        cc: field("cc"),
        bcc: field("bcc"),
        subject: field("subject"),
        body: field("body"),
        in_reply_to: field("in_reply_to"),
        references: field("references"),
    };
    let mut files: Vec<File> = parts
        .iter()
        .filter(|p| p.name == "attach" && p.filename.as_deref().is_some_and(|n| !n.is_empty()))
        .map(|p| File {
            name: p.filename.clone().unwrap_or_default(),
            mime: p.content_type.clone().unwrap_or_else(|| "application/octet-stream".into()),
            data: p.data.clone(),
        })
        .collect();
    let mut mail = s.mail();
    // A forward keeps the original's attachments the user left ticked.
    let fwd_uid: Option<u32> = field("fwd_uid").parse().ok();
    if let Some(uid) = fwd_uid {
        let keep: Vec<String> = parts
            .iter()
            .filter(|p| p.name == "fwd_part")
            .map(|p| String::from_utf8_lossy(&p.data).into_owned())
            .collect();
        if !keep.is_empty() {
            let (raw, _) = webmail::fetch_message(&mut mail, &field("fwd_f"), uid, false)?;
            if let Ok(m) = mailparse::parse_mail(&raw) {
                for l in webmail::leaves(&m).iter().filter(|l| l.attachment && keep.contains(&l.part)) {
                    files.push(File {
                        name: webmail::file_name(l),
                        mime: l.mail.ctype.mimetype.clone(),
                        data: l.mail.get_body_raw().unwrap_or_default(),
                    });
                }
            }
        }
    }
    let folders = webmail::folders(&mut mail)?;
    let old_draft: Option<u32> = field("draft").parse().ok();
    let drafts = webmail::special(&folders, "\\Drafts", "Drafts");
    let id = format!("{}@{}", state::token(), call.ctx.config.hostname);
    let date = crate::timefmt::rfc5322(std::time::SystemTime::now());
    let action = field("action");
    if action == "save" {
        let msg = write(&d, &files, &date, &id, true);
        mail.append(&drafts, &["\\Draft", "\\Seen"], &msg)?;
        remove_draft(&mut mail, &drafts, old_draft)?;
        return Ok(Response::redirect(&format!(
            "/folder?f={}&notice={}",
            url_encode(&drafts),
            url_encode("Draft saved.")
        )));
    }
    let rcpts: Vec<String> = [&d.to, &d.cc, &d.bcc].iter().flat_map(|v| addresses(v)).collect();
    let bad = [&d.to, &d.cc, &d.bcc].iter().any(|v| !v.trim().is_empty() && mailparse::addrparse(v).is_err());
    if rcpts.is_empty()
        || bad
        || rcpts.iter().any(|r| !r.contains('@') || r.chars().any(|c| c.is_control() || c == ' '))
    {
        return Ok(draw(
            s,
            &folders,
            &d,
            None,
            old_draft,
            Some("Check the recipients: each needs a full address like name@example.org."),
        ));
    }
    if rcpts.len() > call.ctx.config.smtp_max_recipients {
        return Ok(draw(s, &folders, &d, None, old_draft, Some("Too many recipients for one message.")));
    }
    let msg = write(&d, &files, &date, &id, false);
    if msg.len() as u64 > call.ctx.config.message_size_limit {
        return Ok(draw(
            s,
            &folders,
            &d,
            None,
            old_draft,
            Some("The message is larger than this server sends."),
        ));
    }
    if let Err(e) = super::mail::submit(call, &s.user, &s.email, &rcpts, &msg) {
        log::error!("session={} event=webmail_submit_failed error=\"{e}\"", call.sid);
        return Ok(draw(
            s,
            &folders,
            &d,
            None,
            old_draft,
            Some("The message could not be queued; nothing was sent. Try again later."),
        ));
    }
    let sent = webmail::special(&folders, "\\Sent", "Sent");
    mail.append(&sent, &["\\Seen"], &msg)?;
    remove_draft(&mut mail, &drafts, old_draft)?;
    Ok(Response::redirect(&format!("/folder?f=INBOX&notice={}", url_encode("Message sent."))))
}

fn remove_draft(mail: &mut Mail, drafts: &str, uid: Option<u32>) -> Result<(), Error> {
    let Some(uid) = uid else { return Ok(()) };
    mail.select(drafts, false)?;
    mail.uid_store(&uid.to_string(), "+FLAGS.SILENT", &["\\Deleted"])?;
    mail.uid_expunge(&uid.to_string())
}

/// RFC 2047 encoded words for a header's text when it is not plain ASCII.
fn encode_words(text: &str) -> String {
    if text.chars().all(|c| c.is_ascii() && !c.is_ascii_control()) {
        return text.to_string();
    }
    // Each word at most 75 characters (RFC 2047 2): 45 octets of UTF-8 make 60 of base64.
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in text.chars().filter(|c| !c.is_control()) {
        if chunk.len() + c.len_utf8() > 45 {
            words.push(std::mem::take(&mut chunk));
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(chunk);
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    words
        .iter()
        .map(|w| format!("=?utf-8?b?{}?=", b64.encode(w.as_bytes())))
        .collect::<Vec<_>>()
        .join("\r\n ")
}

/// An address list as a field body: display names encoded when needed, addresses as given.
fn address_field(list: &str) -> String {
    let Ok(parsed) = mailparse::addrparse(list) else { return String::new() };
    let mut out = Vec::new();
    for a in parsed.iter() {
        if let mailparse::MailAddr::Single(s) = a {
            match s.display_name.as_deref().map(str::trim).filter(|n| !n.is_empty()) {
                Some(n) if n.is_ascii() => {
                    out.push(format!("\"{}\" <{}>", n.replace(['"', '\\'], ""), s.addr))
                }
                Some(n) => out.push(format!("{} <{}>", encode_words(n), s.addr)),
                None => out.push(s.addr.clone()),
            }
        } else if let mailparse::MailAddr::Group(g) = a {
            out.extend(g.addrs.iter().map(|s| s.addr.clone()));
        }
    }
    out.join(",\r\n ")
}

/// Quoted-printable (RFC 2045 6.7) with CRLF line ends, lines of at most 76 characters.
fn quoted_printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let mut col = 0;
        let bytes = line.as_bytes();
        for (i, &b) in bytes.iter().enumerate() {
            let last = i + 1 == bytes.len();
            let enc = match b {
                b'=' => true,
                b' ' | b'\t' => last,
                33..=126 => false,
                _ => true,
            };
            let piece = if enc { format!("={b:02X}") } else { (b as char).to_string() };
            if col + piece.len() > 75 {
                out.push_str("=\r\n");
                col = 0;
            }
            // A line starting with "From " or "." survives every transport as "=46rom" or "=2E".
            let piece = match (col, b) {
                (0, b'.') => "=2E".to_string(),
                (0, b'F') if line[i..].starts_with("From ") => "=46".to_string(),
                _ => piece,
            };
            col += piece.len();
            out.push_str(&piece);
        }
        out.push_str("\r\n");
    }
    if out.ends_with("\r\n") && !text.ends_with('\n') {
        out.truncate(out.len() - 2);
        out.push_str("\r\n");
    }
    out
}

/// The message, CRLF line ends. Bcc is kept in a draft only.
pub fn write(d: &Draft, files: &[File], date: &str, id: &str, draft: bool) -> Vec<u8> {
    let mut h = String::new();
    let _ = write!(h, "Date: {date}\r\nFrom: {}\r\n", address_field(&d.from));
    for (name, v) in [("To", &d.to), ("Cc", &d.cc)] {
        if !v.trim().is_empty() {
            let _ = write!(h, "{name}: {}\r\n", address_field(v));
        }
    }
    if draft && !d.bcc.trim().is_empty() {
        let _ = write!(h, "Bcc: {}\r\n", address_field(&d.bcc));
    }
    let _ = write!(h, "Subject: {}\r\nMessage-ID: <{id}>\r\n", encode_words(d.subject.trim()));
    for (name, v) in [("In-Reply-To", &d.in_reply_to), ("References", &d.references)] {
        let ids: Vec<&str> =
            v.split_whitespace().filter(|w| w.starts_with('<') && w.ends_with('>') && w.is_ascii()).collect();
        if !ids.is_empty() {
            let _ = write!(h, "{name}: {}\r\n", ids.join("\r\n "));
        }
    }
    h.push_str("MIME-Version: 1.0\r\n");
    let text_part = format!(
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n{}",
        quoted_printable(&d.body)
    );
    if files.is_empty() {
        h.push_str(&text_part);
        return h.into_bytes();
    }
    let boundary = format!("=_buzon_{}", &id[..id.find('@').unwrap_or(id.len()).min(24)]);
    let _ = write!(
        h,
        "Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\nThis is a MIME message.\r\n"
    );
    let _ = write!(h, "--{boundary}\r\n{text_part}");
    let b64 = base64::engine::general_purpose::STANDARD;
    for f in files {
        let mime = if f.mime.contains('/') && f.mime.is_ascii() && !f.mime.contains(['\r', '\n', ';', '"']) {
            f.mime.as_str()
        } else {
            "application/octet-stream"
        };
        let name = f.name.rsplit(['/', '\\']).next().unwrap_or("file").replace(['"', '\r', '\n'], "");
        let quoted = if name.is_ascii() { name.clone() } else { encode_words(&name).replace("\r\n ", "") };
        let _ = write!(
            h,
            "--{boundary}\r\nContent-Type: {mime}; name=\"{quoted}\"\r\nContent-Disposition: attachment; filename=\"{quoted}\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        );
        let enc = b64.encode(&f.data);
        for chunk in enc.as_bytes().chunks(76) {
            h.push_str(std::str::from_utf8(chunk).unwrap_or_default());
            h.push_str("\r\n");
        }
    }
    let _ = write!(h, "--{boundary}--\r\n");
    h.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft() -> Draft {
        Draft {
            from: "alice@example.org".into(),
            to: "Bob <bob@example.net>, \"Zoë Ünïcode\" <zoe@example.net>".into(),
            subject: "Grüße".into(),
            body: "Hello =\nFrom here.\n.\n".into(),
            in_reply_to: "<a@b> junk".into(),
            ..Draft::default()
        }
    }

    #[test]
    fn a_message_parses_back() {
        let files = [File {
            name: "rép.bin".into(),
            mime: "application/octet-stream".into(),
            data: vec![0, 1, 2, 255],
        }];
        let raw = write(&draft(), &files, "Mon, 7 Dec 2026 10:00:00 +0000", "tok@mx.example.org", false);
        assert!(raw.windows(2).all(|w| w[1] != b'\n' || w[0] == b'\r'), "CRLF only");
        assert!(raw.split(|&b| b == b'\n').all(|l| l.len() <= 78), "short lines");
        let m = mailparse::parse_mail(&raw).unwrap();
        assert_eq!(m.headers.get_first_value("Subject").as_deref(), Some("Grüße"));
        assert_eq!(m.headers.get_first_value("In-Reply-To").as_deref(), Some("<a@b>"));
        assert_eq!(
            addresses(&m.headers.get_first_value("To").unwrap()),
            ["bob@example.net", "zoe@example.net"]
        );
        assert!(m.headers.get_first_value("To").unwrap().contains("Zoë Ünïcode"));
        assert_eq!(m.subparts.len(), 2);
        assert_eq!(m.subparts[0].get_body().unwrap(), "Hello =\r\nFrom here.\r\n.\r\n");
        assert_eq!(m.subparts[1].get_body_raw().unwrap(), vec![0, 1, 2, 255]);
        assert_eq!(
            m.subparts[1].get_content_disposition().params.get("filename").map(String::as_str),
            Some("rép.bin")
        );
    }

    #[test]
    fn bcc_only_in_drafts_and_prefixes_once() {
        let mut d = draft();
        d.bcc = "carol@example.net".into();
        let sent = String::from_utf8(write(&d, &[], "x", "i@h", false)).unwrap();
        let saved = String::from_utf8(write(&d, &[], "x", "i@h", true)).unwrap();
        assert!(!sent.contains("Bcc:") && saved.contains("Bcc: carol@example.net"));
        assert_eq!(prefixed("Re: ", "RE: x"), "RE: x");
        assert_eq!(prefixed("Re: ", "x"), "Re: x");
        assert_eq!(prefixed("Re: ", "Grüße"), "Re: Grüße", "no panic inside a character");
        assert_eq!(prefixed("Fwd: ", "ü"), "Fwd: ü");
        assert!(quoted_printable(&"a".repeat(200)).lines().all(|l| l.len() <= 76));
    }
}

//! The webmail's pages over the user's IMAP session: folders with unread counts, a folder's
//! messages newest first (paged, searched with IMAP SEARCH TEXT), one message (its text, its HTML
//! in a sandboxed frame served from its own URL with a CSP that forbids scripts and, until the
//! user asks, remote images; its attachments), the raw source, the actions on messages (read,
//! unread, flag, move, delete to Trash) and the phone setup page.

use std::sync::Arc;

use mailparse::{MailHeaderMap, ParsedMail};

use super::app::{self, Call};
use super::state::{self, Session};
use crate::web::http::{Response, url_encode};
use crate::web::imapc::{Arg, Client, Error};
use crate::web::pages::{self, Attachment, Folder, Frame, Listing, Row};

pub type Mail = Client<std::os::unix::net::UnixStream>;

/// Messages per page of a folder.
const PAGE: usize = 50;

/// What a page needs from the session before it is drawn.
fn logged_in(call: &Call) -> Result<(String, Arc<Session>), Response> {
    call.session().ok_or_else(|| Response::redirect("/login"))
}

/// An IMAP failure as a page: a broken channel ends the web session (log in again).
fn failed(call: &Call, key: &str, e: Error) -> Response {
    match e {
        Error::No(t) | Error::Bad(t) => app::error(404, &format!("The mail server said: {t}")),
        Error::Argument(t) => app::error(400, &t),
        other => {
            log::warn!("session={} event=webmail_channel_lost error=\"{other}\"", call.sid);
            if let Some(web) = call.ctx.web.as_ref() {
                web.end(key);
            }
            Response::redirect("/login")
        }
    }
}

pub fn get(call: &Call) -> Response {
    let (key, s) = match logged_in(call) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let _waiting = call.blocker.map(|b| b.enter());
    let mut mail = s.mail();
    let r = match call.req.path.as_str() {
        "/folder" => folder(call, &s, &mut mail),
        "/msg" => message(call, &s, &mut mail),
        "/msg/html" => message_html(call, &mut mail),
        "/msg/part" => part(call, &mut mail),
        "/msg/raw" => raw(call, &mut mail),
        "/compose" => super::compose::page(call, &s, &mut mail),
        "/setup" => setup(call, &s, &mut mail),
        _ => mobileconfig(call, &s),
    };
    r.unwrap_or_else(|e| failed(call, &key, e))
}

pub fn post(call: &Call) -> Response {
    let (key, s) = match logged_in(call) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let _waiting = call.blocker.map(|b| b.enter());
    let r = match call.req.path.as_str() {
        "/compose" => super::compose::post(call, &s),
        _ => {
            if !state::same(&call.field("csrf").unwrap_or_default(), &s.csrf) {
                return app::error(403, "That form did not come from this session: reload the page.");
            }
            action(call, &s)
        }
    };
    r.unwrap_or_else(|e| failed(call, &key, e))
}

/// Every folder that can be opened, with its counts.
pub fn folders(mail: &mut Mail) -> Result<Vec<Folder>, Error> {
    let mut out = Vec::new();
    for m in mail.list()? {
        if m.flags
            .iter()
            .any(|f| f.eq_ignore_ascii_case("\\Noselect") || f.eq_ignore_ascii_case("\\NonExistent"))
        {
            continue;
        }
        let st = mail.status(&m.name)?;
        out.push(Folder { name: m.name, special: m.special, unseen: st.unseen, total: st.messages });
    }
    Ok(out)
}

/// The folder with a special use (`\\Trash`, `\\Sent`, `\\Drafts`), or the usual name.
pub fn special(folders: &[Folder], use_: &str, name: &str) -> String {
    folders
        .iter()
        .find(|f| f.special.as_deref().is_some_and(|s| s.eq_ignore_ascii_case(use_)))
        .map(|f| f.name.clone())
        .unwrap_or_else(|| name.to_string())
}

fn current_folder(call: &Call) -> String {
    call.param("f").filter(|f| !f.is_empty()).unwrap_or_else(|| "INBOX".into())
}

fn uid_param(call: &Call) -> Result<u32, Error> {
    call.param("uid")
        .and_then(|u| u.parse().ok())
        .filter(|&u| u > 0)
        .ok_or(Error::Argument("no such message".into()))
}

fn frame<'a>(s: &'a Session, folders: &'a [Folder], current: &'a str, notice: Option<&'a str>) -> Frame<'a> {
    Frame { user: &s.email, csrf: &s.csrf, folders, current, notice }
}

fn folder(call: &Call, s: &Session, mail: &mut Mail) -> Result<Response, Error> {
    let f = current_folder(call);
    let q = call.param("q").unwrap_or_default();
    let folders = folders(mail)?;
    mail.select(&f, true)?;
    let mut uids = match q.trim() {
        "" => mail.uid_search(&[Arg::Atom("ALL")])?,
        text => mail.uid_search(&[Arg::Atom("TEXT"), Arg::Str(text)])?,
    };
    uids.reverse();
    let total = uids.len();
    let pages = total.div_ceil(PAGE).max(1);
    let page = call.param("page").and_then(|p| p.parse().ok()).unwrap_or(1usize).clamp(1, pages);
    let shown: Vec<u32> = uids.iter().skip((page - 1) * PAGE).take(PAGE).copied().collect();
    let mut rows = Vec::new();
    if !shown.is_empty() {
        let set = shown.iter().map(|u| u.to_string()).collect::<Vec<_>>().join(",");
        let items = "(UID FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (FROM SUBJECT DATE CONTENT-TYPE)])";
        for d in mail.uid_fetch(&set, items)? {
            let Some(uid) = d.uid else { continue };
            let head = d.section("BODY[HEADER.FIELDS (FROM SUBJECT DATE CONTENT-TYPE)]").unwrap_or_default();
            let (headers, _) = mailparse::parse_headers(head).unwrap_or_default();
            let flags = d.flags.clone().unwrap_or_default();
            let has = |f: &str| flags.iter().any(|x| x.eq_ignore_ascii_case(f));
            rows.push(Row {
                uid,
                from: sender_name(headers.get_first_value("From").as_deref().unwrap_or("")),
                subject: headers.get_first_value("Subject").unwrap_or_default(),
                date: short_date(headers.get_first_value("Date").as_deref().unwrap_or("")),
                seen: has("\\Seen"),
                flagged: has("\\Flagged"),
                answered: has("\\Answered"),
                attachment: headers
                    .get_first_value("Content-Type")
                    .is_some_and(|t| t.trim_start().to_ascii_lowercase().starts_with("multipart/mixed")),
                size: d.size.unwrap_or(0),
            });
        }
    }
    rows.sort_by_key(|r| std::cmp::Reverse(r.uid));
    let listing = Listing { rows: &rows, page, pages, total, query: &q };
    let notice = call.param("notice");
    Ok(Response::html(200, pages::folder(&frame(s, &folders, &f, notice.as_deref()), &listing)))
}

/// A From field's display name, else its address.
fn sender_name(from: &str) -> String {
    match mailparse::addrparse(from).ok().and_then(|l| l.into_inner().into_iter().next()) {
        Some(mailparse::MailAddr::Single(a)) => {
            a.display_name.filter(|n| !n.trim().is_empty()).unwrap_or(a.addr)
        }
        Some(mailparse::MailAddr::Group(g)) => g.group_name,
        None => from.trim().to_string(),
    }
}

/// A Date field shortened for a list: `7 Dec 2026 14:05`.
fn short_date(date: &str) -> String {
    match mailparse::dateparse(date) {
        Ok(t) if t > 0 => {
            crate::timefmt::short(std::time::UNIX_EPOCH + std::time::Duration::from_secs(t as u64))
        }
        _ => String::new(),
    }
}

/// A message, whole, from its folder.
pub fn fetch_message(
    mail: &mut Mail,
    f: &str,
    uid: u32,
    write: bool,
) -> Result<(Vec<u8>, Vec<String>), Error> {
    mail.select(f, !write)?;
    let got = mail.uid_fetch(&uid.to_string(), "(UID FLAGS BODY.PEEK[])")?;
    let d = got.into_iter().find(|d| d.uid == Some(uid)).ok_or(Error::No("no such message".into()))?;
    let body = d.section("BODY[]").map(<[u8]>::to_vec).unwrap_or_default();
    Ok((body, d.flags.unwrap_or_default()))
}

/// A leaf of the MIME tree with its IMAP part number (RFC 9051 6.4.5).
pub struct Leaf<'a> {
    pub part: String,
    pub mail: &'a ParsedMail<'a>,
    pub attachment: bool,
}

/// The leaves of a message, in order (a message/rfc822 part is one leaf, an attachment).
pub fn leaves<'a>(m: &'a ParsedMail<'a>) -> Vec<Leaf<'a>> {
    fn walk<'a>(m: &'a ParsedMail<'a>, part: String, out: &mut Vec<Leaf<'a>>) {
        if m.subparts.is_empty() || m.ctype.mimetype.eq_ignore_ascii_case("message/rfc822") {
            let disposition = m.get_content_disposition();
            let named = disposition.params.contains_key("filename") || m.ctype.params.contains_key("name");
            let textual = m.ctype.mimetype.eq_ignore_ascii_case("text/plain")
                || m.ctype.mimetype.eq_ignore_ascii_case("text/html");
            let attachment =
                disposition.disposition == mailparse::DispositionType::Attachment || named || !textual;
            out.push(Leaf { part: if part.is_empty() { "1".into() } else { part }, mail: m, attachment });
            return;
        }
        for (i, sub) in m.subparts.iter().enumerate() {
            let p = if part.is_empty() { (i + 1).to_string() } else { format!("{part}.{}", i + 1) };
            walk(sub, p, out);
        }
    }
    let mut out = Vec::new();
    walk(m, String::new(), &mut out);
    out
}

/// An attachment's file name (RFC 2183 filename, else the Content-Type name), or a made-up one.
pub fn file_name(l: &Leaf) -> String {
    let d = l.mail.get_content_disposition();
    d.params
        .get("filename")
        .or_else(|| l.mail.ctype.params.get("name"))
        .cloned()
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| format!("part-{}", l.part))
}

pub fn attachments(all: &[Leaf]) -> Vec<Attachment> {
    all.iter()
        .filter(|l| l.attachment)
        .map(|l| Attachment {
            part: l.part.clone(),
            name: file_name(l),
            mime: l.mail.ctype.mimetype.clone(),
            size: l.mail.get_body_raw().map(|b| b.len() as u64).unwrap_or(0),
        })
        .collect()
}

/// The readable text of a message: its first text/plain part.
pub fn plain_text(all: &[Leaf]) -> Option<String> {
    all.iter()
        .find(|l| !l.attachment && l.mail.ctype.mimetype.eq_ignore_ascii_case("text/plain"))
        .and_then(|l| l.mail.get_body().ok())
}

fn html_part<'a>(all: &'a [Leaf<'a>]) -> Option<&'a Leaf<'a>> {
    all.iter().find(|l| !l.attachment && l.mail.ctype.mimetype.eq_ignore_ascii_case("text/html"))
}

/// Whether HTML refers to images or styles elsewhere (shown only when the user asks).
fn remote_refs(html: &str) -> bool {
    let h = html.to_ascii_lowercase();
    [
        "src=\"http",
        "src='http",
        "src=http",
        "url(http",
        "url('http",
        "url(\"http",
        "srcset=",
        "background=\"http",
    ]
    .iter()
    .any(|p| h.contains(p))
}

fn message(call: &Call, s: &Session, mail: &mut Mail) -> Result<Response, Error> {
    let f = current_folder(call);
    let uid = uid_param(call)?;
    let folders = folders(mail)?;
    let (raw, flags) = fetch_message(mail, &f, uid, true)?;
    let has = |x: &str| flags.iter().any(|g| g.eq_ignore_ascii_case(x));
    let seen = has("\\Seen");
    if !seen {
        mail.uid_store(&uid.to_string(), "+FLAGS.SILENT", &["\\Seen"])?;
    }
    let uids = mail.uid_search(&[Arg::Atom("ALL")])?;
    let at = uids.iter().position(|&u| u == uid);
    let newer = at.and_then(|i| uids.get(i + 1)).copied();
    let older = at.and_then(|i| i.checked_sub(1)).and_then(|i| uids.get(i)).copied();
    let parsed = match mailparse::parse_mail(&raw) {
        Ok(p) => p,
        Err(_) => return Ok(raw_response(&raw)),
    };
    let all = leaves(&parsed);
    let html = html_part(&all);
    let images = call.param("images").as_deref() == Some("1");
    let images_blocked =
        !images && html.and_then(|l| l.mail.get_body().ok()).is_some_and(|h| remote_refs(&h));
    let text = if html.is_some() { None } else { plain_text(&all) };
    let atts = attachments(&all);
    let h = |n: &str| parsed.headers.get_first_value(n).unwrap_or_default();
    let (from, to, cc, date, subject) = (h("From"), h("To"), h("Cc"), h("Date"), h("Subject"));
    let m = pages::Message {
        uid,
        from: &from,
        to: &to,
        cc: &cc,
        date: &date,
        subject: &subject,
        text: text.as_deref(),
        has_html: html.is_some(),
        images_blocked,
        images_shown: images,
        attachments: &atts,
        seen: true,
        flagged: has("\\Flagged"),
        prev: newer,
        next: older,
    };
    Ok(Response::html(200, pages::message(&frame(s, &folders, &f, None), &m)))
}

/// The message's HTML, alone, for the sandboxed frame: its own CSP forbids scripts, forms,
/// plugins and (unless asked) every remote load; only our page may frame it.
fn message_html(call: &Call, mail: &mut Mail) -> Result<Response, Error> {
    let f = current_folder(call);
    let uid = uid_param(call)?;
    let (raw, _) = fetch_message(mail, &f, uid, false)?;
    let parsed = mailparse::parse_mail(&raw).map_err(|e| Error::No(e.to_string()))?;
    let all = leaves(&parsed);
    let body = html_part(&all).and_then(|l| l.mail.get_body().ok()).unwrap_or_default();
    let images = call.param("images").as_deref() == Some("1");
    let img = if images { "img-src data: https: http:" } else { "img-src data:" };
    let csp = format!(
        "sandbox allow-popups allow-popups-to-escape-sandbox; default-src 'none'; {img}; style-src 'unsafe-inline'; font-src data:; frame-ancestors 'self'"
    );
    let doc = format!("<!doctype html><meta charset=\"utf-8\"><base target=\"_blank\">{}", scrub(&body));
    Ok(Response::html(200, doc)
        .with("Content-Security-Policy", &csp)
        .with("X-Frame-Options", "SAMEORIGIN")
        .with("Cache-Control", "private, no-store"))
}

/// A light scrub behind the CSP: script, style-changing meta and embedded-object elements are
/// dropped with their content, so a browser without CSP support still runs nothing.
fn scrub(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let lower = html.to_ascii_lowercase();
    let mut i = 0;
    'outer: while i < html.len() {
        for tag in ["script", "iframe", "object", "embed", "meta", "link", "form", "base"] {
            let open = format!("<{tag}");
            if lower[i..].starts_with(&open)
                && lower[i + open.len()..]
                    .chars()
                    .next()
                    .is_none_or(|c| c == '>' || c == '/' || c.is_whitespace())
            {
                let close = format!("</{tag}");
                let end = match (matches!(tag, "meta" | "link" | "base"), lower[i..].find(&close)) {
                    (true, _) => lower[i..].find('>').map_or(html.len(), |g| i + g + 1),
                    (false, Some(e)) => {
                        let e = i + e;
                        lower[e..].find('>').map_or(html.len(), |g| e + g + 1)
                    }
                    // Never closed: everything after it is its content.
                    (false, None) => html.len(),
                };
                i = end;
                continue 'outer;
            }
        }
        let c = html[i..].chars().next().unwrap_or(' ');
        out.push(c);
        i += c.len_utf8().max(1);
    }
    out
}

/// An attachment, always as a download (never rendered on our origin).
fn part(call: &Call, mail: &mut Mail) -> Result<Response, Error> {
    let f = current_folder(call);
    let uid = uid_param(call)?;
    let want = call.param("part").unwrap_or_default();
    let (raw, _) = fetch_message(mail, &f, uid, false)?;
    let parsed = mailparse::parse_mail(&raw).map_err(|e| Error::No(e.to_string()))?;
    let all = leaves(&parsed);
    let Some(leaf) = all.iter().find(|l| l.part == want) else {
        return Ok(app::error(404, "That message has no such part."));
    };
    let data = leaf.mail.get_body_raw().unwrap_or_default();
    let name = file_name(leaf);
    let ascii: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || ".-_ ".contains(c) { c } else { '_' }).collect();
    let mut r = Response::new(200)
        .with("Content-Type", "application/octet-stream")
        .with(
            "Content-Disposition",
            &format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{}", url_encode(&name)),
        )
        .with("Content-Security-Policy", "sandbox; default-src 'none'");
    r.body = data;
    Ok(r)
}

fn raw_response(raw: &[u8]) -> Response {
    let mut r = Response::new(200).with("Content-Type", "text/plain; charset=utf-8");
    r.body = String::from_utf8_lossy(raw).into_owned().into_bytes();
    r
}

fn raw(call: &Call, mail: &mut Mail) -> Result<Response, Error> {
    let (raw, _) = fetch_message(mail, &current_folder(call), uid_param(call)?, false)?;
    Ok(raw_response(&raw).with("Content-Security-Policy", "sandbox; default-src 'none'"))
}

/// Read, unread, flag, unflag, move, delete (to Trash; in Trash, for good) on selected messages.
fn action(call: &Call, s: &Session) -> Result<Response, Error> {
    let form = call.req.form();
    let f = form.iter().find(|(k, _)| k == "f").map(|(_, v)| v.clone()).unwrap_or_else(|| "INBOX".into());
    let op = form.iter().find(|(k, _)| k == "op").map(|(_, v)| v.as_str()).unwrap_or("");
    let uids: Vec<u32> = form
        .iter()
        .filter(|(k, _)| k == "uid")
        .filter_map(|(_, v)| v.parse().ok())
        .filter(|&u| u > 0)
        .collect();
    let back = format!("/folder?f={}", url_encode(&f));
    if uids.is_empty() {
        return Ok(Response::redirect(&format!("{back}&notice={}", url_encode("Select messages first."))));
    }
    let set = uids.iter().map(|u| u.to_string()).collect::<Vec<_>>().join(",");
    let mut mail = s.mail();
    let trash = special(&folders(&mut mail)?, "\\Trash", "Trash");
    mail.select(&f, false)?;
    let one = uids.len() == 1;
    let to_message = format!("/msg?f={}&uid={}", url_encode(&f), uids[0]);
    match op {
        "read" => mail.uid_store(&set, "+FLAGS.SILENT", &["\\Seen"])?,
        "unread" => mail.uid_store(&set, "-FLAGS.SILENT", &["\\Seen"])?,
        "flag" => mail.uid_store(&set, "+FLAGS.SILENT", &["\\Flagged"])?,
        "unflag" => mail.uid_store(&set, "-FLAGS.SILENT", &["\\Flagged"])?,
        "move" => {
            let to = form.iter().find(|(k, _)| k == "to").map(|(_, v)| v.clone()).unwrap_or_default();
            if to.is_empty() || to == f {
                return Ok(Response::redirect(&back));
            }
            mail.uid_move(&set, &to)?;
        }
        "delete" if f == trash => {
            mail.uid_store(&set, "+FLAGS.SILENT", &["\\Deleted"])?;
            mail.uid_expunge(&set)?;
        }
        "delete" => mail.uid_move(&set, &trash)?,
        _ => return Ok(app::error(400, "Unknown action.")),
    }
    log::info!(
        "session={} event=web_action user={} op={op} folder=\"{}\" count={}",
        call.sid,
        s.user,
        crate::server::checks::log_text(&f),
        uids.len()
    );
    Ok(Response::redirect(if one && matches!(op, "flag" | "unflag") { &to_message } else { &back }))
}

fn setup(call: &Call, s: &Session, mail: &mut Mail) -> Result<Response, Error> {
    let folders = folders(mail)?;
    let o = app::offer(call.ctx, &s.email);
    let sec = |e: &crate::web::autoconfig::Endpoint| match e.security {
        crate::web::autoconfig::Security::Tls => "TLS",
        crate::web::autoconfig::Security::StartTls => "STARTTLS",
        crate::web::autoconfig::Security::Plain => "no encryption",
    };
    let mut hosts = vec![("User name".to_string(), o.username.to_string())];
    for (label, list) in [("IMAP server", &o.imap), ("POP3 server", &o.pop3), ("SMTP server", &o.smtp)] {
        if let Some(e) = list.first() {
            hosts.push((label.to_string(), format!("{}:{}, {}", o.hostname, e.port, sec(e))));
        }
    }
    Ok(Response::html(200, pages::setup(&frame(s, &folders, "", None), &s.email, &hosts)))
}

fn mobileconfig(call: &Call, s: &Session) -> Result<Response, Error> {
    let o = app::offer(call.ctx, &s.email);
    let Some(profile) = crate::web::autoconfig::mobileconfig(&o) else {
        return Ok(app::error(404, "This server offers no IMAP and submission ports to set up."));
    };
    let mut r = Response::new(200)
        .with("Content-Type", "application/x-apple-aspen-config")
        .with("Content-Disposition", "attachment; filename=\"buzon.mobileconfig\"");
    r.body = profile.into_bytes();
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_drops_active_content() {
        let h = "<p>hi</p><SCRIPT>alert(1)</script><b>x</b><iframe src=x></iframe><meta http-equiv=refresh content=0><img src=\"data:,\">";
        let s = scrub(h);
        assert_eq!(s, "<p>hi</p><b>x</b><img src=\"data:,\">");
        assert_eq!(scrub("<scripts>ok"), "<scripts>ok", "only the element itself");
        assert_eq!(scrub("<script>never closed"), "");
        assert_eq!(scrub("é<p>ü</p>"), "é<p>ü</p>");
    }

    #[test]
    fn parts_are_numbered_as_imap_does() {
        let raw = b"Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nplain\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>html</p>\r\n--b--\r\n--a\r\nContent-Type: application/pdf; name=\"r.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERg==\r\n--a--\r\n";
        let m = mailparse::parse_mail(raw).unwrap();
        let all = leaves(&m);
        let parts: Vec<&str> = all.iter().map(|l| l.part.as_str()).collect();
        assert_eq!(parts, ["1.1", "1.2", "2"]);
        assert_eq!(plain_text(&all).as_deref().map(str::trim), Some("plain"));
        let a = attachments(&all);
        assert_eq!((a[0].part.as_str(), a[0].name.as_str(), a[0].size), ("2", "r.pdf", 4));
        assert!(remote_refs("<img src=\"https://x/y.png\">") && !remote_refs("<img src=\"data:,\">"));
    }
}

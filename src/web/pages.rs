//! The webmail's pages as plain functions from data to HTML5 strings: login, a folder's message
//! list, one message, compose, phone setup and a small error page, with the embedded style sheet
//! and "select all" script they link from /static/. Every value from the data is escaped (html.rs)
//! and every query value in a link percent-encoded; every POST form carries the CSRF token. No
//! inline script or style, so the pages live under `script-src 'self'; style-src 'self'`.

use super::html::{Esc, linkify, url};
use std::fmt::{self, Display, Write};

/// The style sheet, served at /static/style.css.
pub const STYLE: &str = include_str!("assets/style.css");
/// The "select all" checkbox of the message list, served at /static/app.js (the forms work
/// without it).
pub const SCRIPT: &str = include_str!("assets/app.js");

/// One mailbox in the folder list.
pub struct Folder {
    /// The full UTF-8 name, e.g. "INBOX", "Archive/2025".
    pub name: String,
    /// The RFC 6154 special use: "\\Sent" "\\Drafts" "\\Trash" "\\Junk" "\\Archive".
    pub special: Option<String>,
    pub unseen: u32,
    pub total: u32,
}

/// What every signed-in page shows around its content.
pub struct Frame<'a> {
    pub user: &'a str,
    pub csrf: &'a str,
    pub folders: &'a [Folder],
    /// The folder shown (empty on pages of no folder).
    pub current: &'a str,
    /// One line, e.g. "Message sent." or an error.
    pub notice: Option<&'a str>,
}

/// One line of a message list.
pub struct Row {
    pub uid: u32,
    pub from: String,
    pub subject: String,
    /// Already formatted, short.
    pub date: String,
    pub seen: bool,
    pub flagged: bool,
    pub answered: bool,
    pub attachment: bool,
    pub size: u64,
}

/// One page of a folder's messages, newest first.
pub struct Listing<'a> {
    pub rows: &'a [Row],
    /// 1-based.
    pub page: usize,
    pub pages: usize,
    pub total: usize,
    pub query: &'a str,
}

/// A part of a message that can be downloaded.
pub struct Attachment {
    /// The MIME part path, e.g. "2" or "1.3".
    pub part: String,
    pub name: String,
    pub mime: String,
    pub size: u64,
}

/// One message as shown.
pub struct Message<'a> {
    pub uid: u32,
    pub from: &'a str,
    pub to: &'a str,
    pub cc: &'a str,
    pub date: &'a str,
    pub subject: &'a str,
    /// The text/plain body (or the HTML's text when there is no plain part).
    pub text: Option<&'a str>,
    pub has_html: bool,
    /// The HTML has remote images not shown (a link offers them).
    pub images_blocked: bool,
    /// The reader asked to see remote images: the HTML frame asks for `images=1`.
    pub images_shown: bool,
    pub attachments: &'a [Attachment],
    pub seen: bool,
    pub flagged: bool,
    pub prev: Option<u32>,
    pub next: Option<u32>,
}

/// The compose form's contents: empty for a new message, filled for a reply, forward or draft.
pub struct Compose<'a> {
    pub to: &'a str,
    pub cc: &'a str,
    pub bcc: &'a str,
    pub subject: &'a str,
    pub body: &'a str,
    pub in_reply_to: &'a str,
    pub references: &'a str,
    /// A forwarded message's folder, UID and attachments, kept with checkboxes.
    pub forward: Option<(&'a str, u32, &'a [Attachment])>,
    pub draft_uid: Option<u32>,
}

/// Appends to a page: `w!(o, "<b>{}</b>", Esc(x))`. Writing to a `String` cannot fail.
macro_rules! w {
    ($o:expr, $($t:tt)*) => {{
        let _ = write!($o, $($t)*);
    }};
}

/// A link target: `path?k=v&amp;k=v`, each value percent-encoded, ready for an attribute.
struct Href<'a>(&'a str, &'a [(&'a str, &'a str)]);

impl Display for Href<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)?;
        for (i, (k, v)) in self.1.iter().enumerate() {
            write!(f, "{}{k}={}", if i == 0 { "?" } else { "&amp;" }, url(v))?;
        }
        Ok(())
    }
}

/// A hidden form field.
fn hidden(name: &str, value: &str) -> String {
    format!("<input type=\"hidden\" name=\"{name}\" value=\"{}\">", Esc(value))
}

/// The login form.
pub fn login(error: Option<&str>, csrf: &str, user: &str) -> String {
    let mut o = String::with_capacity(1536);
    head(&mut o, "Log in", false);
    o.push_str("<body><main class=\"login\"><h1>buzon</h1>");
    if let Some(e) = error {
        note(&mut o, e);
    }
    w!(
        o,
        "<form method=\"post\" action=\"/login\">{}<label for=\"user\">User name</label><input \
         id=\"user\" name=\"user\" autocomplete=\"username\" autocapitalize=\"off\" \
         spellcheck=\"false\" required value=\"{}\"><label for=\"pw\">Password</label><input \
         id=\"pw\" type=\"password\" name=\"password\" autocomplete=\"current-password\" required>\
         <button class=\"pri\">Log in</button></form></main></body></html>\n",
        hidden("csrf", csrf),
        Esc(user)
    );
    o
}

/// A folder's message list with search, paging and the actions on selected messages.
pub fn folder(frame: &Frame, l: &Listing) -> String {
    let mut o = String::with_capacity(4096 + 400 * l.rows.len());
    let (f, q, page) = (frame.current, l.query, l.page.max(1));
    let shown = frame.folders.iter().find(|x| x.name == f);
    let name = shown.map_or(f, label);
    let title = match shown.map_or(0, |x| x.unseen) {
        0 => name.to_string(),
        n => format!("{name} ({n})"),
    };
    open(&mut o, frame, &title, true);
    w!(
        o,
        "<h1>{}</h1><form class=\"search\" method=\"get\" action=\"/folder\" role=\"search\">{}\
         <input type=\"search\" name=\"q\" aria-label=\"Search\" placeholder=\"Search\" \
         value=\"{}\"><button>Search</button></form>",
        Esc(name),
        hidden("f", f),
        Esc(q)
    );
    if !q.is_empty() {
        let all = Href("/folder", &[("f", f)]);
        w!(
            o,
            "<p class=\"meta\">{} matching “{}” · <a href=\"{all}\">Show all</a></p>",
            count(l.total),
            Esc(q)
        );
    }
    let link = |o: &mut String, n: usize, rel: &str, text: &str| {
        let n = n.to_string();
        let with_q = [("f", f), ("page", &n), ("q", q)];
        let href = Href("/folder", if q.is_empty() { &with_q[..2] } else { &with_q });
        w!(o, "<a href=\"{href}\"{rel}>{text}</a>");
    };
    if l.rows.is_empty() {
        if page > 1 {
            o.push_str("<p class=\"empty\">");
            link(&mut o, 1, "", "Back to the first page");
            o.push_str("</p>");
        } else if q.is_empty() {
            o.push_str("<p class=\"empty\">No messages.</p>");
        }
        close(&mut o, frame);
        return o;
    }
    w!(
        o,
        "<form method=\"post\" action=\"/msg/action\">{}{}<div class=\"bar\"><label class=\"ck\" \
         hidden><input type=\"checkbox\" data-all aria-label=\"Select all\"></label>",
        hidden("csrf", frame.csrf),
        hidden("f", f)
    );
    for (value, text) in [("read", "Read"), ("unread", "Unread"), ("flag", "Flag"), ("unflag", "Unflag")] {
        o.push_str(&op(value, text));
    }
    o.push_str(&op("delete", "Delete"));
    move_to(&mut o, frame);
    o.push_str("</div><ul class=\"list\">");
    for r in l.rows {
        row(&mut o, f, r);
    }
    o.push_str("</ul></form><nav class=\"pg\" aria-label=\"Pages\">");
    match page {
        1 => o.push_str("<span></span>"),
        _ => link(&mut o, page - 1, " rel=\"prev\"", "← Newer"),
    }
    w!(o, "<span>Page {page} of {} · {}</span>", l.pages.max(page), count(l.total));
    match page < l.pages {
        true => link(&mut o, page + 1, " rel=\"next\"", "Older →"),
        false => o.push_str("<span></span>"),
    }
    o.push_str("</nav>");
    close(&mut o, frame);
    o
}

/// One line of the message list: a checkbox and a link to the message.
fn row(o: &mut String, f: &str, r: &Row) {
    let uid = r.uid.to_string();
    let (unseen, flagged) = (if r.seen { "" } else { " u" }, if r.flagged { " f" } else { "" });
    w!(
        o,
        "<li class=\"r{unseen}{flagged}\"><label class=\"ck\"><input type=\"checkbox\" name=\"uid\" \
         value=\"{uid}\" aria-label=\"Select\"></label><a href=\"{}\"><span class=\"fr\">{}</span>\
         <span class=\"su\">{}</span>",
        Href("/msg", &[("f", f), ("uid", &uid)]),
        Esc(or(&r.from, "(no sender)")),
        Esc(or(&r.subject, "(no subject)"))
    );
    if r.flagged || r.answered || r.attachment {
        o.push_str("<span class=\"mk\">");
        let marks =
            [(r.flagged, "Flagged\">★"), (r.answered, "Answered\">↩"), (r.attachment, "Attachment\">📎")];
        for (_, m) in marks.iter().filter(|m| m.0) {
            w!(o, "<b title=\"{m}</b>");
        }
        o.push_str("</span>");
    }
    w!(o, "<span class=\"sz\">{}</span><span class=\"dt\">{}</span></a></li>", human(r.size), Esc(&r.date));
}

/// One message: actions, headers, attachments, the text body and the HTML in a sandboxed frame.
pub fn message(frame: &Frame, m: &Message) -> String {
    let text = m.text.map(linkify);
    let mut o = String::with_capacity(6144 + text.as_ref().map_or(0, String::len));
    let (f, uid) = (frame.current, m.uid.to_string());
    let subject = or(m.subject, "(no subject)");
    open(&mut o, frame, subject, false);
    let back = frame.folders.iter().find(|x| x.name == f).map_or(f, label);
    w!(
        o,
        "<div class=\"bar\"><a class=\"btn back\" href=\"{}\">← {}</a>",
        Href("/folder", &[("f", f)]),
        Esc(back)
    );
    for (mode, text) in [("reply", "Reply"), ("all", "Reply all"), ("forward", "Forward")] {
        let href = Href("/compose", &[("f", f), ("uid", &uid), ("mode", mode)]);
        w!(o, "<a class=\"btn\" href=\"{href}\">{text}</a>");
    }
    w!(
        o,
        "<form method=\"post\" action=\"/msg/action\">{}{}{}{}{}{}",
        hidden("csrf", frame.csrf),
        hidden("f", f),
        hidden("uid", &uid),
        op("delete", "Delete"),
        if m.seen { op("unread", "Mark unread") } else { op("read", "Mark read") },
        if m.flagged { op("unflag", "Unflag") } else { op("flag", "Flag") }
    );
    move_to(&mut o, frame);
    let star = if m.flagged { "<b class=\"star\" title=\"Flagged\">★</b> " } else { "" };
    w!(o, "</form></div><article class=\"msg\"><h1>{star}{}</h1><dl class=\"hd\">", Esc(subject));
    for (k, v) in [("From", m.from), ("To", m.to), ("Cc", m.cc), ("Date", m.date)] {
        if !v.is_empty() {
            w!(o, "<dt>{k}</dt><dd>{}</dd>", Esc(v));
        }
    }
    o.push_str("</dl>");
    if !m.attachments.is_empty() {
        o.push_str("<ul class=\"att\">");
        for at in m.attachments {
            w!(
                o,
                "<li><a href=\"{}\">{}</a> <span class=\"meta\">{}, {}</span></li>",
                Href("/msg/part", &[("f", f), ("uid", &uid), ("part", &at.part)]),
                Esc(or(&at.name, "(unnamed)")),
                Esc(&at.mime),
                human(at.size)
            );
        }
        o.push_str("</ul>");
    }
    let q = [("f", f), ("uid", &uid), ("images", "1")];
    match (m.has_html, &text) {
        (true, _) => {
            if m.images_blocked {
                w!(
                    o,
                    "<p class=\"meta\">Remote images are hidden. <a href=\"{}\">Show remote images</a></p>",
                    Href("/msg", &q)
                );
            }
            let src = Href("/msg/html", if m.images_shown { &q } else { &q[..2] });
            w!(
                o,
                "<iframe sandbox=\"allow-popups allow-popups-to-escape-sandbox\" title=\"Message\" src=\"{src}\"></iframe>"
            );
            if let Some(t) = &text {
                w!(o, "<details><summary>Plain text</summary><pre class=\"txt\">{t}</pre></details>");
            }
        }
        (false, Some(t)) => w!(o, "<pre class=\"txt\">{t}</pre>"),
        (false, None) => o.push_str("<p class=\"empty\">This message has no text.</p>"),
    }
    o.push_str("</article><nav class=\"pg\" aria-label=\"Messages\">");
    match m.prev {
        Some(n) => w!(
            o,
            "<a href=\"{}\" rel=\"prev\">← Previous</a>",
            Href("/msg", &[("f", f), ("uid", &n.to_string())])
        ),
        None => o.push_str("<span></span>"),
    }
    w!(o, "<a href=\"{}\">View source</a>", Href("/msg/raw", &q[..2]));
    match m.next {
        Some(n) => w!(
            o,
            "<a href=\"{}\" rel=\"next\">Next →</a>",
            Href("/msg", &[("f", f), ("uid", &n.to_string())])
        ),
        None => o.push_str("<span></span>"),
    }
    o.push_str("</nav>");
    close(&mut o, frame);
    o
}

/// The compose form (multipart: files can be attached).
pub fn compose(frame: &Frame, c: &Compose) -> String {
    let mut o = String::with_capacity(4096 + c.body.len() + c.references.len());
    let title = if c.draft_uid.is_some() { "Draft" } else { "New message" };
    open(&mut o, frame, title, false);
    w!(
        o,
        "<h1>{title}</h1><form class=\"compose\" method=\"post\" action=\"/compose\" \
         enctype=\"multipart/form-data\">{}{}{}",
        hidden("csrf", frame.csrf),
        hidden("in_reply_to", c.in_reply_to),
        hidden("references", c.references)
    );
    if let Some(d) = c.draft_uid {
        o.push_str(&hidden("draft", &d.to_string()));
    }
    let back = if frame.current.is_empty() { "INBOX" } else { frame.current };
    // The first submit button is the one Enter in a field presses: saving, not sending.
    w!(
        o,
        "<div class=\"bar\"><button name=\"action\" value=\"save\" formnovalidate>Save draft</button>\
         <button class=\"pri send\" name=\"action\" value=\"send\">Send</button><a class=\"btn\" \
         href=\"{}\">Cancel</a></div><div class=\"cf\">",
        Href("/folder", &[("f", back)])
    );
    for (name, label, value) in [("to", "To", c.to), ("cc", "Cc", c.cc), ("bcc", "Bcc", c.bcc)] {
        let required = if name == "to" { " required" } else { "" };
        w!(
            o,
            "<label for=\"{name}\">{label}</label><input id=\"{name}\" name=\"{name}\" \
             inputmode=\"email\" autocapitalize=\"off\" spellcheck=\"false\"{required} value=\"{}\">",
            Esc(value)
        );
    }
    // HTML 13.1.2.5: a newline right after <textarea> is dropped; a second one keeps the first.
    let nl = if c.body.starts_with('\n') { "\n" } else { "" };
    w!(
        o,
        "<label for=\"subject\">Subject</label><input id=\"subject\" name=\"subject\" value=\"{}\">\
         </div><textarea name=\"body\" rows=\"16\" aria-label=\"Message\">{nl}{}</textarea>",
        Esc(c.subject),
        Esc(c.body)
    );
    if let Some((ff, fuid, parts)) = c.forward {
        w!(o, "{}{}", hidden("fwd_f", ff), hidden("fwd_uid", &fuid.to_string()));
        if !parts.is_empty() {
            o.push_str("<fieldset><legend>Forwarded attachments</legend>");
            for p in parts {
                w!(
                    o,
                    "<label class=\"opt\"><input type=\"checkbox\" name=\"fwd_part\" value=\"{}\" \
                     checked><span>{} <span class=\"meta\">{}</span></span></label>",
                    Esc(&p.part),
                    Esc(or(&p.name, "(unnamed)")),
                    human(p.size)
                );
            }
            o.push_str("</fieldset>");
        }
    }
    o.push_str(
        "<label class=\"opt files\">Attach files <input type=\"file\" name=\"attach\" multiple></label></form>",
    );
    close(&mut o, frame);
    o
}

/// Settings for phones and other mail apps: the Apple profile and a table to copy from.
pub fn setup(frame: &Frame, email: &str, hosts: &[(String, String)]) -> String {
    let mut o = String::with_capacity(4096);
    open(&mut o, frame, "Set up a phone", false);
    w!(
        o,
        "<h1>Set up a phone</h1><p>On an iPhone, iPad or Mac: download the profile, then open \
         Settings and install it from “Profile Downloaded”.</p><p><a class=\"btn pri\" \
         href=\"/setup/buzon.mobileconfig\" download>Download the profile</a></p><h2>Other mail \
         apps</h2><p>Most apps find these settings from the address alone. If one asks:</p>\
         <table><tbody><tr><th>Email address</th><td>{}</td></tr><tr><th>User name</th><td>{}\
         </td></tr><tr><th>Password</th><td>Your webmail password</td></tr>",
        Esc(email),
        Esc(frame.user)
    );
    for (k, v) in hosts {
        w!(o, "<tr><th>{}</th><td>{}</td></tr>", Esc(k), Esc(v));
    }
    o.push_str("</tbody></table>");
    close(&mut o, frame);
    o
}

/// A small standalone page for an HTTP error.
pub fn error(status: u16, text: &str) -> String {
    // RFC 9110 15: the reason phrases.
    const REASONS: &str = "400 Bad Request|403 Forbidden|404 Not Found|405 Method Not Allowed|408 Request \
        Timeout|413 Content Too Large|429 Too Many Requests|500 Internal Server Error|502 Bad Gateway|503 \
        Service Unavailable";
    let code = format!("{status} ");
    let title =
        REASONS.split('|').find(|r| r.starts_with(&code)).map_or(code.clone() + "Error", str::to_string);
    let mut o = String::with_capacity(1024);
    head(&mut o, &title, false);
    w!(
        o,
        "<body><main class=\"login\"><h1>{title}</h1><p>{}</p><p><a href=\"/folder?f=INBOX\">\
         Back to the inbox</a></p></main></body></html>\n",
        Esc(text)
    );
    o
}

/// From the doctype to `</head>`.
fn head(o: &mut String, title: &str, script: bool) {
    w!(
        o,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" \
         content=\"width=device-width, initial-scale=1\"><meta name=\"referrer\" \
         content=\"same-origin\"><title>{} · buzon</title><link rel=\"stylesheet\" \
         href=\"/static/style.css\">{}</head>",
        Esc(title),
        if script { "<script src=\"/static/app.js\" defer></script>" } else { "" }
    );
}

/// The head, the top bar and the start of the content.
fn open(o: &mut String, frame: &Frame, title: &str, script: bool) {
    head(o, title, script);
    w!(
        o,
        "<body><header class=\"top\"><a class=\"brand\" href=\"/folder?f=INBOX\">buzon</a><a \
         class=\"btn pri\" href=\"/compose\">Compose</a><a class=\"btn narrow\" href=\"#folders\">\
         Folders</a><span class=\"who\">{}</span><form method=\"post\" action=\"/logout\">{}\
         <button>Log out</button></form></header><div class=\"page\"><main>",
        Esc(frame.user),
        hidden("csrf", frame.csrf)
    );
    if let Some(n) = frame.notice {
        note(o, n);
    }
}

/// The end of the content, the folder list and the end of the page.
fn close(o: &mut String, frame: &Frame) {
    o.push_str("</main><nav id=\"folders\" class=\"side\" aria-label=\"Folders\"><ul>");
    for f in sorted(frame.folders) {
        let current = if f.name == frame.current { " aria-current=\"page\"" } else { "" };
        w!(o, "<li><a href=\"{}\"{current}>{}", Href("/folder", &[("f", &f.name)]), Esc(label(f)));
        if f.unseen > 0 {
            w!(o, "<span class=\"n\">{}</span>", f.unseen);
        }
        o.push_str("</a></li>");
    }
    o.push_str("</ul><p><a href=\"/setup\">Set up a phone</a></p></nav></div></body></html>\n");
}

/// The notice line.
fn note(o: &mut String, text: &str) {
    w!(o, "<p class=\"note\" role=\"status\">{}</p>", Esc(text));
}

/// An action button of the `/msg/action` forms.
fn op(value: &str, text: &str) -> String {
    format!("<button name=\"op\" value=\"{value}\">{text}</button>")
}

/// The folder choice and button that move messages, inside an action form.
fn move_to(o: &mut String, frame: &Frame) {
    o.push_str("<span class=\"mv\"><select name=\"to\" aria-label=\"Move to\">");
    for f in sorted(frame.folders).into_iter().filter(|f| f.name != frame.current) {
        w!(o, "<option value=\"{}\">{}</option>", Esc(&f.name), Esc(label(f)));
    }
    w!(o, "</select>{}</span>", op("move", "Move"));
}

/// The special folders' order: Inbox, Drafts, Sent, Junk, Trash, Archive, then the rest.
fn rank(f: &Folder) -> u8 {
    const SPECIAL: [&str; 5] = ["\\Drafts", "\\Sent", "\\Junk", "\\Trash", "\\Archive"];
    if f.name.eq_ignore_ascii_case("INBOX") {
        return 0;
    }
    SPECIAL.iter().position(|s| f.special.as_deref() == Some(s)).map_or(6, |i| i as u8 + 1)
}

/// The folders in display order, the rest alphabetically (ignoring case, then exactly).
fn sorted(folders: &[Folder]) -> Vec<&Folder> {
    let mut v: Vec<&Folder> = folders.iter().collect();
    v.sort_by(|x, y| {
        let key = |f: &Folder| (rank(f), f.name.to_lowercase());
        key(x).cmp(&key(y)).then_with(|| x.name.cmp(&y.name))
    });
    v
}

/// The name a folder is shown by: its special use's, or its own.
fn label(f: &Folder) -> &str {
    ["Inbox", "Drafts", "Sent", "Junk", "Trash", "Archive"]
        .get(usize::from(rank(f)))
        .copied()
        .unwrap_or(&f.name)
}

fn or<'a>(s: &'a str, empty: &'a str) -> &'a str {
    if s.trim().is_empty() { empty } else { s }
}

/// "1 message", "230 messages".
fn count(n: usize) -> String {
    format!("{n} message{}", if n == 1 { "" } else { "s" })
}

/// A size for people: "512 B", "12 KB", "3.4 MB", "1.2 GB" (powers of 1024).
fn human(n: u64) -> String {
    const K: u64 = 1024;
    match n {
        n if n < K => format!("{n} B"),
        n if n < K * K => format!("{} KB", n.div_ceil(K)),
        n if n < 10 * K * K => format!("{}.{} MB", n / (K * K), n % (K * K) * 10 / (K * K)),
        n if n < K * K * K => format!("{} MB", n / (K * K)),
        n => format!("{}.{} GB", n / (K * K * K), n % (K * K * K) * 10 / (K * K * K)),
    }
}

#[cfg(test)]
mod tests;

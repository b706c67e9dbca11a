//! The pages' tests: escaping, CSRF fields, sizes, well-formed HTML.

use super::*;

const EVIL: &str = "<script>alert(1)</script>\"'&";
const AMP: &str = "A & B c";
const BODY: &str = "Hello Ana,\n\nThe notes are at https://example.org/notes?week=48&lang=en.\n\
    Write to mailto:team@example.org (or reply).\n\n> quoted line from the earlier message, \
    long enough to wrap on a phone screen at three hundred sixty pixels\n\n-- \nLuis\n";

fn sample_folders(evil: &str) -> Vec<Folder> {
    let specs = ["Archive/2025", "Papelera \\Trash", evil, "Sent Messages \\Sent", "INBOX", AMP];
    let more = ["Drafts \\Drafts", "Junk \\Junk", "Archive \\Archive", "lists"];
    let folder = |s: &&str| {
        let (name, special) = match s.rsplit_once(" \\") {
            Some((n, sp)) if s != &evil => (n, Some(format!("\\{sp}"))),
            _ => (*s, None),
        };
        Folder { name: name.into(), special, unseen: name.len() as u32 % 4, total: 40 }
    };
    specs.iter().chain(&more).map(folder).collect()
}

fn sample_rows(evil: &str) -> Vec<Row> {
    let row = |i: u32| Row {
        uid: 1000 - i,
        from: if i == 0 { evil.into() } else { format!("Ana Lucía Pérez {i}") },
        subject: match i {
            0 => evil.into(),
            _ => format!("Re: the meeting notes for week {i}, and the plan for the rest of the year"),
        },
        date: if i < 3 { "14:05".into() } else { format!("{} Nov", 30 - i % 28) },
        seen: !i.is_multiple_of(3),
        flagged: i.is_multiple_of(7),
        answered: i.is_multiple_of(5),
        attachment: i.is_multiple_of(4),
        size: u64::from(i) * 3001 + 900,
    };
    (0..50).map(row).collect()
}

/// (file name, page) for every page, with `evil` in each data value.
fn all_pages(evil: &str, notice: Option<&str>) -> Vec<(&'static str, String)> {
    let (folders, rows) = (sample_folders(evil), sample_rows(evil));
    let long = "Quarterly report with a long file name, final version.pdf";
    let att = |part: &str, name: &str, mime: &str, size| Attachment {
        part: part.into(),
        name: name.into(),
        mime: mime.into(),
        size,
    };
    let atts = [att("2", evil, "text/html", 12_300), att("1.3", long, "application/pdf", 2_400_000)];
    let frame = Frame { user: "ana@example.org", csrf: "TOKEN", folders: &folders, current: "INBOX", notice };
    let evil_frame = Frame { current: evil, user: evil, ..frame };
    let listing = Listing { rows: &rows, page: 2, pages: 5, total: 230, query: evil };
    let empty = Listing { rows: &[], page: 1, pages: 1, total: 0, query: "" };
    let msg = |text, has_html, images_blocked| Message {
        uid: 42,
        from: "Luis <luis@example.org>",
        to: "Ana <ana@example.org>",
        cc: evil,
        date: "Mon, 7 Dec 2026 14:05",
        subject: evil,
        text,
        has_html,
        images_blocked,
        images_shown: !images_blocked,
        attachments: &atts,
        seen: true,
        flagged: true,
        prev: Some(41),
        next: Some(43),
    };
    let (to, subject, body, refs) = (evil, evil, BODY, "<a@b> <c@d>");
    let (fwd, draft) = (Some((evil, 42, &atts[..])), Some(7));
    let c = Compose {
        to,
        cc: "",
        bcc: "",
        subject,
        body,
        in_reply_to: "<a@b>",
        references: refs,
        forward: fwd,
        draft_uid: draft,
    };
    let new = Compose { to: "", subject: "", body: "\nquoted", forward: None, draft_uid: None, ..c };
    let hosts = [("IMAP server".into(), "mail.example.org:993, TLS".into()), (evil.into(), evil.into())];
    vec![
        ("login.html", login(Some(evil), "TOKEN", evil)),
        ("folder.html", folder(&frame, &listing)),
        ("folder-evil.html", folder(&evil_frame, &listing)),
        ("folder-amp.html", folder(&Frame { current: AMP, ..evil_frame }, &empty)),
        ("message.html", message(&frame, &msg(Some(BODY), false, false))),
        ("message-html.html", message(&evil_frame, &msg(Some(evil), true, true))),
        ("message-shown.html", message(&frame, &msg(None, true, false))),
        ("message-empty.html", message(&frame, &msg(None, false, false))),
        ("compose.html", compose(&frame, &c)),
        ("compose-new.html", compose(&Frame { current: "", ..frame }, &new)),
        ("setup.html", setup(&Frame { current: "", ..frame }, evil, &hosts)),
        ("error.html", error(404, evil)),
    ]
}

fn page<'a>(pages: &'a [(&str, String)], name: &str) -> &'a str {
    pages.iter().find(|p| p.0 == name).map_or("", |p| p.1.as_str())
}

/// The pages use these elements and no others: data never becomes a tag.
const TAGS: &str = " !doctype html head meta title link script body header main nav div span a b h1 h2 \
    p ul li form input button label select option article dl dt dd iframe details summary pre \
    textarea fieldset legend table tbody tr th td ";

#[test]
fn data_never_becomes_markup() {
    for (name, page) in all_pages(EVIL, Some(EVIL)) {
        assert!(!page.contains("<script>") && !page.contains("alert(1)</script>"), "{name}");
        let escaped = "&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&amp;";
        assert!(page.contains(escaped), "{name}: the value is shown escaped");
        assert!(!page.contains("style="), "{name}: no inline style");
        for (i, _) in page.match_indices('<') {
            let rest = page[i + 1..].trim_start_matches('/');
            let tag: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '!').collect();
            assert!(TAGS.contains(&format!(" {tag} ")), "{name}: <{tag} at {i}");
        }
        for (i, _) in page.match_indices('&') {
            let ok = ["&amp;", "&lt;", "&gt;", "&quot;", "&#39;"].iter().any(|e| page[i..].starts_with(e));
            assert!(ok, "{name}: bare & at {i}");
        }
        let top = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" \
            content=\"width=device-width, initial-scale=1\">";
        assert!(page.starts_with(top) && page.contains("<title>"), "{name}");
        assert!(page.contains("<link rel=\"stylesheet\" href=\"/static/style.css\">"), "{name}");
    }
    // Query values in links are percent-encoded, never raw.
    let pages = all_pages(EVIL, None);
    let enc = "%3Cscript%3Ealert%281%29%3C%2Fscript%3E%22%27%26";
    let evil = page(&pages, "folder-evil.html");
    assert!(evil.contains(&format!("/msg?f={enc}&amp;uid=1000\"")));
    assert!(evil.contains(&format!("/folder?f={enc}&amp;page=3&amp;q={enc}\" rel=\"next\"")));
    assert!(
        page(&pages, "message-html.html").contains(&format!("/msg/part?f={enc}&amp;uid=42&amp;part=2\""))
    );
}

#[test]
fn folder_names_round_trip_through_links() {
    let pages = all_pages("x", None);
    let folder = page(&pages, "folder.html");
    let hrefs: Vec<&str> =
        folder.split("href=\"/folder?f=").skip(1).filter_map(|s| s.split('"').next()).collect();
    let decode = |s: &str| {
        let mut b = s.bytes();
        let mut out = Vec::new();
        while let Some(c) = b.next() {
            let hex =
                |b: &mut std::str::Bytes| b.next().and_then(|d| char::from(d).to_digit(16)).unwrap_or(0);
            out.push(if c == b'%' { (hex(&mut b) * 16 + hex(&mut b)) as u8 } else { c });
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    let names: Vec<String> = hrefs.iter().map(|h| decode(h)).collect();
    assert!(hrefs.contains(&"A%20%26%20B%20c") && names.contains(&AMP.to_string()), "{names:?}");
    assert!(names.contains(&"Archive/2025".to_string()));
    assert!(folder.contains("<option value=\"A &amp; B c\">A &amp; B c</option>"));
}

#[test]
fn every_form_carries_the_csrf_token() {
    for (name, page) in all_pages(EVIL, None) {
        let forms: Vec<&str> = page.split("<form ").skip(1).collect();
        assert_eq!(forms.is_empty(), name == "error.html", "{name}");
        for f in forms.iter().map(|f| f.split("</form>").next().unwrap_or("")) {
            if f.starts_with("class=\"search\" method=\"get\" action=\"/folder\"") {
                // The search form is a GET: the token stays out of URLs and logs.
                assert!(!f.contains("csrf"), "{name}");
            } else {
                assert!(f.contains("method=\"post\""), "{name}: {f}");
                assert!(f.contains("<input type=\"hidden\" name=\"csrf\" value=\"TOKEN\">"), "{name}: {f}");
            }
        }
    }
}

#[test]
fn folders_sort_inbox_specials_then_names() {
    let folders = sample_folders("zeta");
    let order: Vec<&str> = sorted(&folders).iter().map(|f| f.name.as_str()).collect();
    let want = "INBOX|Drafts|Sent Messages|Junk|Papelera|Archive|A & B c|Archive/2025|lists|zeta";
    assert_eq!(order, want.split('|').collect::<Vec<_>>());
    let labels: Vec<&str> = sorted(&folders).into_iter().map(label).collect();
    assert_eq!(&labels[..6], ["Inbox", "Drafts", "Sent", "Junk", "Trash", "Archive"]);
}

#[test]
fn message_and_compose_links() {
    let pages = all_pages("x", None);
    let plain = page(&pages, "message.html");
    for want in [
        "<a href=\"https://example.org/notes?week=48&amp;lang=en\" rel=\"noopener noreferrer\"",
        "href=\"/msg/part?f=INBOX&amp;uid=42&amp;part=1.3\"",
        "href=\"/compose?f=INBOX&amp;uid=42&amp;mode=all\"",
        "href=\"/msg/raw?f=INBOX&amp;uid=42\"",
        "href=\"/msg?f=INBOX&amp;uid=41\" rel=\"prev\"",
        "value=\"unflag\"",
        "value=\"unread\"",
        "2.2 MB",
        "13 KB",
    ] {
        assert!(plain.contains(want), "{want}");
    }
    assert!(!plain.contains("<iframe"));
    let html = page(&pages, "message-html.html");
    assert!(html.contains("<iframe sandbox=\"allow-popups allow-popups-to-escape-sandbox\" title=\"Message\" src=\"/msg/html?f=x&amp;uid=42\">"));
    assert!(html.contains("href=\"/msg?f=x&amp;uid=42&amp;images=1\">Show remote images</a>"));
    let shown = page(&pages, "message-shown.html");
    assert!(
        shown.contains("src=\"/msg/html?f=INBOX&amp;uid=42&amp;images=1\"") && !shown.contains("Show remote")
    );
    let c = page(&pages, "compose.html");
    assert!(c.contains("enctype=\"multipart/form-data\"") && c.contains("name=\"draft\" value=\"7\""));
    assert!(c.contains("<input type=\"checkbox\" name=\"fwd_part\" value=\"1.3\" checked>"));
    assert!(c.contains("name=\"fwd_uid\" value=\"42\"") && c.contains("name=\"fwd_f\" value=\"x\""));
    let save = c.find("value=\"save\"").unwrap_or(usize::MAX);
    assert!(save < c.find("value=\"send\"").unwrap_or(0), "Enter saves, never sends");
    let new = page(&pages, "compose-new.html");
    assert!(new.contains("aria-label=\"Message\">\n\nquoted</textarea>") && !new.contains("fwd_"));
    assert_eq!([human(0), human(1023), human(1024), human(12_300)], ["0 B", "1023 B", "1 KB", "13 KB"]);
    assert_eq!([human(2_400_000), human(52_428_800), human(3 << 30)], ["2.2 MB", "50 MB", "3.0 GB"]);
}

#[test]
fn pages_stay_small() {
    let pages = all_pages("x", Some("Message sent."));
    for (name, page) in &pages {
        println!("{name}: {} bytes", page.len());
    }
    println!("style.css: {} bytes, app.js: {} bytes", STYLE.len(), SCRIPT.len());
    assert!(page(&pages, "folder.html").len() < 30_000);
    assert!(STYLE.len() < 8192 && SCRIPT.len() < 1024);
}

/// Each page parses with Python's html.parser, every element closed in order, no attribute twice.
#[test]
fn pages_are_well_formed() {
    let python = std::path::Path::new("/usr/bin/python3");
    let Ok(dir) = tempfile::tempdir() else { return };
    if !python.exists() {
        return;
    }
    let mut files = Vec::new();
    for (name, page) in all_pages(EVIL, Some("Saved.")) {
        files.push(dir.path().join(name));
        assert!(std::fs::write(dir.path().join(name), page).is_ok());
    }
    let Ok(out) = std::process::Command::new(python).arg("-c").arg(WELL_FORMED).args(&files).output() else {
        return;
    };
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

const WELL_FORMED: &str = r#"
import sys
from html.parser import HTMLParser
class P(HTMLParser):
    def handle_starttag(self, tag, attrs):
        if len({a for a, _ in attrs}) != len(attrs): self.errors.append("attribute twice in " + tag)
        if tag not in ("meta", "link", "input"): self.stack.append(tag)
    def handle_endtag(self, tag):
        if not self.stack or self.stack.pop() != tag: self.errors.append("</%s> at %s" % (tag, self.getpos()))
for path in sys.argv[1:]:
    p = P(); p.stack, p.errors = [], []; p.feed(open(path, encoding="utf-8").read()); p.close()
    if p.stack or p.errors: sys.exit("%s: %s unclosed: %s" % (path, p.errors, p.stack))
"#;

/// Writes the sample pages and assets to $BUZON_PAGES_DIR (default /tmp/buzon-pages) for a
/// look in a browser: `cargo test --lib web::pages -- --ignored`.
#[test]
#[ignore]
fn write_sample_pages() {
    let dir = std::env::var("BUZON_PAGES_DIR").unwrap_or_else(|_| "/tmp/buzon-pages".into());
    let dir = std::path::Path::new(&dir);
    assert!(std::fs::create_dir_all(dir.join("static")).is_ok());
    for (name, page) in all_pages("<b>Evil & Co</b>", Some("Message sent.")) {
        assert!(std::fs::write(dir.join(name), page).is_ok());
    }
    assert!(std::fs::write(dir.join("static/style.css"), STYLE).is_ok());
    assert!(std::fs::write(dir.join("static/app.js"), SCRIPT).is_ok());
}

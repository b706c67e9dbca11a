//! The streamed SEARCH text against the one built in memory, over the shared corpus.

use super::*;
use crate::imap::message::{body_text, contains, header};

/// A reader that gives at most `n` octets at a time.
struct Trickle<'a>(&'a [u8], usize);

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.0.len().min(buf.len()).min(self.1);
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

fn crlf(raw: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(raw.len());
    for (i, &b) in raw.iter().enumerate() {
        if b == b'\n' && (i == 0 || raw[i - 1] != b'\r') {
            m.push(b'\r');
        }
        m.push(b);
    }
    m
}

/// Needles: words of the text (whole, halves, with the character before and after), others
/// made to fall across the pieces, non-ASCII ones and some found nowhere.
fn needles(text: &str) -> Vec<String> {
    let mut out: Vec<String> = ["", "zzqx-nowhere", "é", "ß", "σ", "ς", "ü", "€", "\u{fffd}", "\n", "日本"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let words: Vec<&str> = text.split_whitespace().collect();
    let step = (words.len() / 40).max(1);
    for w in words.iter().step_by(step) {
        out.push(fold(w));
        let cs: Vec<char> = w.chars().collect();
        out.push(fold(&cs[cs.len() / 2..].iter().collect::<String>()));
    }
    let chars: Vec<char> = text.chars().collect();
    for at in [PIECE / 4, PIECE / 2, PIECE - 1, PIECE, PIECE + 1, 2 * PIECE, chars.len().saturating_sub(3)] {
        for len in [1, 2, 5, 17] {
            if let Some(s) = chars.get(at.saturating_sub(len / 2)..(at + len).min(chars.len())) {
                out.push(fold(&s.iter().collect::<String>()));
            }
        }
    }
    out
}

fn check(name: &str, m: &[u8], pieces: &[usize]) {
    let parsed = Parsed::read(m).unwrap();
    let body = fold(&body_text(m));
    let head = crate::imap::message::header_text(header(m));
    let mut ns = needles(&body);
    ns.extend(needles(&head).into_iter().take(30));
    for n in &ns {
        let want = body.contains(n.as_str());
        for &piece in pieces {
            let got = body_contains(&parsed, Trickle(m, piece), n).unwrap();
            assert_eq!(got, want, "{name}: BODY {n:?} read {piece} at a time");
            let got = header_contains(Trickle(m, piece), n).unwrap();
            assert_eq!(got, contains(&head, n), "{name}: TEXT header {n:?} read {piece} at a time");
        }
    }
}

#[test]
fn streamed_search_is_the_in_memory_search() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/eml");
    let Ok(dirs) = std::fs::read_dir(&root) else {
        eprintln!("corpus: {} not found, skipped", root.display());
        return;
    };
    let mut n = 0;
    for dir in dirs.flatten() {
        let Ok(files) = std::fs::read_dir(dir.path()) else { continue };
        for f in files.flatten() {
            if f.path().extension().is_none_or(|e| e != "eml") {
                continue;
            }
            let m = crlf(&std::fs::read(f.path()).unwrap());
            check(&f.path().display().to_string(), &m, &[1, 7, 4096]);
            n += 1;
        }
    }
    assert!(n >= 50, "corpus: only {n} messages");
}

/// Long texts where pieces are cut: sigmas at word ends, multi-octet characters, charsets.
#[test]
fn pieces_fold_and_match_as_the_whole() {
    let mut words = String::new();
    for i in 0..12_000 {
        words.push_str(["ΣΟΦΟΣ ", "Straße ", "ΑΣ.Σ ", "日本語", "x", "ÉTÉ\r\n", "ǅ", "İ"][i % 8]);
    }
    // A run of sigmas longer than a piece, with no place to cut.
    let sigma_run = "ΑΣ".repeat(20_000);
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("utf-8", words.clone().into_bytes()),
        ("utf-8", sigma_run.into_bytes()),
        ("iso-8859-7", b"\xd3\xcf\xd6\xcf\xd3 ".repeat(20_000)),
        ("shift_jis", b"\x93\xfa\x96\x7b\x8c\xea x ".repeat(12_000)),
        ("utf-7", b"+AOk-t+AOk- caf+AOk-\r\n".repeat(5_000)),
        ("x-unknown", b"caf\xe9 ok\r\n".repeat(8_000)),
    ];
    for (cs, body) in bodies {
        for cte in ["8bit", "base64", "quoted-printable"] {
            let enc = match cte {
                "base64" => {
                    use base64::Engine;
                    let b = base64::engine::general_purpose::STANDARD.encode(&body);
                    b.as_bytes().chunks(76).flat_map(|c| [c, b"\r\n"].concat()).collect()
                }
                "quoted-printable" => body
                    .iter()
                    .flat_map(|b| format!("={b:02X}").into_bytes())
                    .collect::<Vec<u8>>()
                    .chunks(75)
                    .flat_map(|c| [c, b"=\r\n"].concat())
                    .collect(),
                _ => body.clone(),
            };
            let mut m = format!(
                "Subject: t\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset={cs}\r\n\
                 Content-Transfer-Encoding: {cte}\r\n\r\n"
            )
            .into_bytes();
            m.extend(enc);
            check(&format!("{cs} {cte}"), &m, &[4093, 65536]);
        }
    }
}

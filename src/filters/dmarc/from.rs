//! The RFC5322.From domain DMARC checks (RFC 7489 3.1, 6.6.1): the message must have exactly one
//! From field (RFC 5322 3.6) holding exactly one mailbox (3.4: `display-name <addr-spec>` or a
//! bare `addr-spec`, comments and quoted strings anywhere, RFC 2047 encoded words in the name).
//! Groups, several mailboxes, no From, or an address without a usable domain are errors, which
//! 6.6.1 lets the receiver reject; the SMTP side decides.

/// The header section of `message` (all of it when there is no empty line).
fn header_section(message: &[u8]) -> &[u8] {
    let mut at = 0;
    for line in message.split_inclusive(|&b| b == b'\n') {
        if line == b"\n" || line == b"\r\n" {
            return &message[..at];
        }
        at += line.len();
    }
    message
}

/// The unfolded values of every field named `name` (RFC 5322 2.2.3; obsolete white space before
/// the colon, 4.5, is accepted).
fn field_values(header: &[u8], name: &str) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    let mut current: Option<Vec<u8>> = None;
    for line in header.split_inclusive(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.first().is_some_and(|&b| b == b' ' || b == b'\t') {
            if let Some(v) = current.as_mut() {
                v.extend_from_slice(line);
            }
            continue;
        }
        out.extend(current.take());
        if let Some(colon) = line.iter().position(|&b| b == b':') {
            let mut field = &line[..colon];
            while let Some(f) = field.strip_suffix(b" ").or_else(|| field.strip_suffix(b"\t")) {
                field = f;
            }
            if field.eq_ignore_ascii_case(name.as_bytes()) {
                current = Some(line[colon + 1..].to_vec());
            }
        }
    }
    out.extend(current);
    out
}

/// The domain of the single mailbox in a From field's value.
fn mailbox_domain(value: &[u8]) -> Result<String, String> {
    // Walk the value once, dropping comments and display names: what is left is either the text
    // inside <...> or, without angle brackets, the bare addr-spec.
    let mut angle: Option<Vec<u8>> = None;
    let mut bare: Vec<u8> = Vec::new();
    let (mut in_angle, mut angles) = (false, 0);
    let mut i = 0;
    while i < value.len() {
        let c = value[i];
        let sink = if in_angle { angle.get_or_insert_with(Vec::new) } else { &mut bare };
        match c {
            b'(' => {
                let mut depth = 0usize;
                while i < value.len() {
                    match value[i] {
                        b'\\' => i += 1,
                        b'(' => depth += 1,
                        b')' => depth -= 1,
                        _ => {}
                    }
                    i += 1;
                    if depth == 0 {
                        break;
                    }
                }
                if depth > 0 {
                    return Err("unterminated comment in From".into());
                }
                sink.push(b' ');
                continue;
            }
            b'"' => {
                sink.push(b'"');
                i += 1;
                loop {
                    match value.get(i) {
                        None => return Err("unterminated quoted string in From".into()),
                        Some(b'\\') => {
                            sink.extend(value.get(i..i + 2).unwrap_or_default());
                            i += 2;
                        }
                        Some(b'"') => break,
                        Some(&b) => {
                            sink.push(b);
                            i += 1;
                        }
                    }
                }
                sink.push(b'"');
            }
            b'=' if !in_angle && value.get(i + 1) == Some(&b'?') => {
                // An RFC 2047 encoded word, kept whole: senders put raw commas and the like in them.
                let word = encoded_word(&value[i..]);
                sink.extend_from_slice(&value[i..i + word.max(1)]);
                i += word.max(1);
                continue;
            }
            b'<' if in_angle => return Err("nested '<' in From".into()),
            b'<' => {
                if angles > 0 {
                    return Err("more than one address in From".into());
                }
                angles += 1;
                in_angle = true;
                angle = Some(Vec::new());
                bare.clear(); // what came before was the display name
            }
            b'>' if in_angle => in_angle = false,
            b'>' => return Err("'>' without '<' in From".into()),
            b',' if !in_angle => return Err("more than one address in From".into()),
            b':' if !in_angle => return Err("group syntax in From".into()),
            b';' if !in_angle => return Err("group syntax in From".into()),
            _ => sink.push(c),
        }
        i += 1;
    }
    if in_angle {
        return Err("unterminated '<' in From".into());
    }
    let spec = match angle {
        Some(a) => {
            if !bare.iter().all(u8::is_ascii_whitespace) {
                return Err("text after the address in From".into());
            }
            a
        }
        None => bare,
    };
    // RFC 5322 4.4 obs-route: <@a,@b:user@example.com>.
    let spec = match spec.iter().rposition(|&b| b == b':') {
        Some(i) if spec.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'@') => spec[i + 1..].to_vec(),
        _ => spec,
    };
    addr_spec_domain(&spec)
}

/// The length of the encoded word `=?charset?enc?text?=` at the start of `s`, or 0.
fn encoded_word(s: &[u8]) -> usize {
    let mut q = 0;
    for (i, &b) in s.iter().enumerate().skip(2).take(200) {
        match b {
            b'?' => {
                q += 1;
                if q == 3 && s.get(i + 1) == Some(&b'=') {
                    return i + 2;
                }
            }
            b' ' | b'\t' | b'\r' | b'\n' => return 0,
            _ => {}
        }
    }
    0
}

/// The domain after the last `@` that is outside a quoted local part, checked and lowercased.
fn addr_spec_domain(spec: &[u8]) -> Result<String, String> {
    let mut quoted = false;
    let mut at = None;
    let mut i = 0;
    while i < spec.len() {
        match spec[i] {
            b'\\' if quoted => i += 1,
            b'"' => quoted = !quoted,
            b'@' if !quoted => at = Some(i),
            _ => {}
        }
        i += 1;
    }
    let Some(at) = at else {
        return Err("no domain in the From address".into());
    };
    if spec[..at].iter().all(u8::is_ascii_whitespace) {
        return Err("no local part in the From address".into());
    }
    let domain: Vec<u8> = spec[at + 1..].iter().copied().filter(|b| !b.is_ascii_whitespace()).collect();
    if domain.starts_with(b"[") {
        return Err("address literal in From: no domain to check".into());
    }
    let domain = String::from_utf8(domain).map_err(|_| "From domain is not UTF-8".to_string())?;
    let domain = domain.strip_suffix('.').unwrap_or(&domain).to_ascii_lowercase();
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || !c.is_ascii())
    };
    if domain.len() > 253 || !domain.split('.').all(label_ok) {
        return Err(format!("invalid From domain {domain:?}"));
    }
    Ok(domain)
}

/// The RFC5322.From domain of a message (its header section, or the whole message).
pub fn from_domain(header: &[u8]) -> Result<String, String> {
    let values = field_values(header_section(header), "from");
    match values.len() {
        0 => Err("no From field".into()),
        1 => mailbox_domain(&values[0]),
        n => Err(format!("{n} From fields")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(value: &str) -> Result<String, String> {
        from_domain(format!("Subject: hi\r\nFrom: {value}\r\nTo: bob@example.net\r\n\r\nbody\r\n").as_bytes())
    }

    #[test]
    fn plain_and_named_mailboxes() {
        assert_eq!(from("alice@Example.COM").as_deref(), Ok("example.com"));
        assert_eq!(from("Alice <alice@example.com>").as_deref(), Ok("example.com"));
        assert_eq!(from("\"Doe, Alice\" <alice@mail.example.com.>").as_deref(), Ok("mail.example.com"));
        assert_eq!(from("\"a@b\"@example.org").as_deref(), Ok("example.org"));
        assert_eq!(from("(comment) alice(x)@(y)example.com (trailing)").as_deref(), Ok("example.com"));
        assert_eq!(from("Alice (the <boss>, really) <alice@example.com>").as_deref(), Ok("example.com"));
        assert_eq!(from("<@relay.example:alice@example.com>").as_deref(), Ok("example.com"));
        assert_eq!(from("José <jose@ejemplo.es>").as_deref(), Ok("ejemplo.es"));
    }

    #[test]
    fn encoded_display_names() {
        assert_eq!(from("=?UTF-8?B?w4lsb2RpZQ==?= <e@example.com>").as_deref(), Ok("example.com"));
        // A raw comma (or colon) inside an encoded word does not split the address list.
        assert_eq!(from("=?utf-8?Q?Doe,_John:?= <j@example.com>").as_deref(), Ok("example.com"));
        // Not a complete encoded word: the comma splits.
        assert!(from("=?utf-8?Q?Doe, John <j@example.com>").is_err());
    }

    #[test]
    fn folded_and_obsolete_field_syntax() {
        let h = b"From\t: Alice\r\n <alice@example.com>\r\nSubject: x\r\n";
        assert_eq!(from_domain(h).as_deref(), Ok("example.com"));
        let h = b"Fr om: x@example.org\nfrom: alice@example.com\nsubject: x\n\nFrom: other@example.net\n";
        assert_eq!(
            from_domain(h).as_deref(),
            Ok("example.com"),
            "a From in the body or a broken name does not count"
        );
    }

    #[test]
    fn rejected_forms() {
        let two = b"From: a@example.com\r\nFrom: b@example.net\r\n\r\n";
        assert_eq!(from_domain(two), Err("2 From fields".into()));
        assert_eq!(
            from_domain(b"Subject: no from\r\n\r\nFrom: a@example.com\r\n"),
            Err("no From field".into())
        );
        assert_eq!(from_domain(b""), Err("no From field".into()));
        for bad in [
            "a@example.com, b@example.com",
            "A <a@example.com>, B <b@example.com>",
            "Friends: a@example.com, b@example.com;",
            "undisclosed-recipients:;",
            "Friends: a@example.com;",
            "alice",
            "<>",
            "@example.com",
            "alice@",
            "alice@[192.0.2.1]",
            "alice@exa mple..com",
            "alice@-bad.example",
            "<alice@example.com",
            "alice@example.com>",
            "\"unterminated <a@example.com>",
            "(unterminated a@example.com",
            "<a@example.com> <b@example.com>",
            "<a@example.com> junk",
        ] {
            assert!(from(bad).is_err(), "{bad}: {:?}", from(bad));
        }
    }
}

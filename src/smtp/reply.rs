//! SMTP replies: reply code, enhanced status code and text, written in wire form
//! (RFC 5321 4.2 reply syntax, 4.2.1 multi-line replies; RFC 2034 / RFC 3463 enhanced status codes).
//!
//! The named constructors below carry Postfix's wording so that logs and clients see familiar text.

use std::fmt;

/// One SMTP reply, possibly multi-line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    code: u16,
    /// RFC 3463 class.subject.detail; `None` for replies that carry none (220, EHLO's 250).
    enhanced: Option<(u8, u16, u16)>,
    lines: Vec<String>,
}

impl Reply {
    /// `enhanced` is `"2.1.0"` or `""` (none; also used if it does not parse). `text` may hold several
    /// lines separated by `\n`; each becomes one reply line.
    pub fn new(code: u16, enhanced: &str, text: impl Into<String>) -> Reply {
        let text = text.into();
        Reply::lines(code, enhanced, text.split('\n').map(str::to_string).collect())
    }

    /// A reply with the given lines (an empty list is written as one empty line).
    pub fn lines(code: u16, enhanced: &str, lines: Vec<String>) -> Reply {
        Reply { code, enhanced: parse_enhanced(enhanced), lines }
    }

    pub fn code(&self) -> u16 {
        self.code
    }

    pub fn enhanced(&self) -> Option<(u8, u16, u16)> {
        self.enhanced
    }

    pub fn text_lines(&self) -> &[String] {
        &self.lines
    }

    /// 4xx or 5xx.
    pub fn is_error(&self) -> bool {
        self.code >= 400
    }

    /// 4xx.
    pub fn is_temporary(&self) -> bool {
        (400..500).contains(&self.code)
    }

    /// Appends the wire form: `250-a\r\n250 b\r\n`, the enhanced code repeated on every line
    /// (RFC 2034 3). Control characters in the text are replaced by `?` so no text can end a line early.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let code = self.code.min(999);
        let empty = [String::new()];
        let lines: &[String] = if self.lines.is_empty() { &empty } else { &self.lines };
        for (i, line) in lines.iter().enumerate() {
            let sep = if i + 1 == lines.len() { ' ' } else { '-' };
            let mut s = format!("{code:03}{sep}");
            if let Some((c, s1, s2)) = self.enhanced {
                s.push_str(&format!("{c}.{s1}.{s2}"));
                if !line.is_empty() {
                    s.push(' ');
                }
            }
            s.extend(line.chars().map(|c| if c.is_control() { '?' } else { c }));
            let s = s.trim_end_matches(' ');
            out.extend_from_slice(s.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }

    /// The wire form as a byte vector.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.write_to(&mut v);
        v
    }

    // --- Named replies (Postfix wording). ---

    /// `220 <hostname> ESMTP buzon` (RFC 5321 4.3.1: the greeting names the host).
    pub fn greeting(hostname: &str) -> Reply {
        Reply::new(220, "", format!("{hostname} ESMTP buzon"))
    }
    pub fn ok() -> Reply {
        Reply::new(250, "2.0.0", "Ok")
    }
    /// After MAIL (RFC 3463 X.1.0: other address status).
    pub fn sender_ok() -> Reply {
        Reply::new(250, "2.1.0", "Ok")
    }
    /// After RCPT (X.1.5: destination address valid).
    pub fn recipient_ok() -> Reply {
        Reply::new(250, "2.1.5", "Ok")
    }
    pub fn start_data() -> Reply {
        Reply::new(354, "", "End data with <CR><LF>.<CR><LF>")
    }
    pub fn queued(queue_id: &str) -> Reply {
        Reply::new(250, "2.0.0", format!("Ok: queued as {queue_id}"))
    }
    pub fn chunk_received(octets: u64) -> Reply {
        Reply::new(250, "2.0.0", format!("{octets} octets received"))
    }
    pub fn bye() -> Reply {
        Reply::new(221, "2.0.0", "Bye")
    }
    pub fn busy(hostname: &str) -> Reply {
        Reply::new(421, "4.3.2", format!("{hostname} Service not available, too busy"))
    }
    pub fn timeout(hostname: &str) -> Reply {
        Reply::new(421, "4.4.2", format!("{hostname} Error: timeout exceeded"))
    }
    pub fn shutting_down(hostname: &str) -> Reply {
        Reply::new(421, "4.3.2", format!("{hostname} Service shutting down"))
    }
    pub fn too_many_errors(hostname: &str) -> Reply {
        Reply::new(421, "4.7.0", format!("{hostname} Error: too many errors"))
    }
    /// RFC 5321 4.2.4 / 4.5.3.1.4: an over-long command line.
    pub fn line_too_long() -> Reply {
        Reply::new(500, "5.5.2", "Line too long")
    }
    pub fn not_recognized() -> Reply {
        Reply::new(500, "5.5.2", "Error: command not recognized")
    }
    pub fn not_implemented() -> Reply {
        Reply::new(502, "5.5.1", "Error: command not implemented")
    }
    /// RFC 5321 3.5.3: 252 when the server will not verify but will accept mail.
    pub fn vrfy() -> Reply {
        Reply::new(252, "2.0.0", "Send some mail, I'll try my best")
    }
    /// RFC 1870 6.1 / RFC 3463 X.3.4: message too big for system.
    pub fn too_big() -> Reply {
        Reply::new(552, "5.3.4", "Message size exceeds fixed limit")
    }
    /// RFC 5321 4.5.3.1.10: too many recipients (X.5.3).
    pub fn too_many_recipients() -> Reply {
        Reply::new(452, "4.5.3", "Error: too many recipients")
    }
    /// 503 bad sequence of commands (X.5.1: invalid command).
    pub fn bad_sequence(text: &str) -> Reply {
        Reply::new(503, "5.5.1", format!("Error: {text}"))
    }
    /// 501 syntax error in parameters (X.5.4: invalid command arguments).
    pub fn syntax(text: &str) -> Reply {
        Reply::new(501, "5.5.4", text)
    }
}

impl fmt::Display for Reply {
    /// One line for logs: `550 5.1.1 text` (several lines joined by ` / `).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code)?;
        if let Some((c, s1, s2)) = self.enhanced {
            write!(f, " {c}.{s1}.{s2}")?;
        }
        let text = self.lines.join(" / ");
        if !text.is_empty() {
            write!(f, " {}", text.replace(|c: char| c.is_control(), "?"))?;
        }
        Ok(())
    }
}

/// RFC 3463 2: class "." subject "." detail; class is 2, 4 or 5; subject and detail 1*3digit.
fn parse_enhanced(s: &str) -> Option<(u8, u16, u16)> {
    let mut it = s.split('.');
    let (c, s1, s2) = (it.next()?, it.next()?, it.next()?);
    let num = |p: &str| (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit());
    if it.next().is_some() || !num(s1) || !num(s2) || !matches!(c, "2" | "4" | "5") {
        return None;
    }
    Some((c.parse().ok()?, s1.parse().ok()?, s2.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(r: &Reply) -> String {
        String::from_utf8(r.to_bytes()).unwrap()
    }

    #[test]
    fn single_and_multi_line() {
        assert_eq!(wire(&Reply::ok()), "250 2.0.0 Ok\r\n");
        assert_eq!(wire(&Reply::new(250, "", "a\nb\nc")), "250-a\r\n250-b\r\n250 c\r\n");
        assert_eq!(wire(&Reply::new(214, "2.0.0", "x\ny")), "214-2.0.0 x\r\n214 2.0.0 y\r\n");
        assert_eq!(wire(&Reply::lines(250, "", vec![])), "250\r\n");
        assert_eq!(wire(&Reply::new(250, "2.0.0", "")), "250 2.0.0\r\n");
    }

    #[test]
    fn named_replies() {
        let cases = [
            (Reply::greeting("mx.example"), "220 mx.example ESMTP buzon\r\n"),
            (Reply::sender_ok(), "250 2.1.0 Ok\r\n"),
            (Reply::recipient_ok(), "250 2.1.5 Ok\r\n"),
            (Reply::start_data(), "354 End data with <CR><LF>.<CR><LF>\r\n"),
            (Reply::queued("ABC123"), "250 2.0.0 Ok: queued as ABC123\r\n"),
            (Reply::bye(), "221 2.0.0 Bye\r\n"),
            (Reply::busy("h"), "421 4.3.2 h Service not available, too busy\r\n"),
            (Reply::timeout("h"), "421 4.4.2 h Error: timeout exceeded\r\n"),
            (Reply::shutting_down("h"), "421 4.3.2 h Service shutting down\r\n"),
            (Reply::too_many_errors("h"), "421 4.7.0 h Error: too many errors\r\n"),
            (Reply::line_too_long(), "500 5.5.2 Line too long\r\n"),
            (Reply::too_big(), "552 5.3.4 Message size exceeds fixed limit\r\n"),
            (Reply::vrfy(), "252 2.0.0 Send some mail, I'll try my best\r\n"),
        ];
        for (r, w) in cases {
            assert_eq!(wire(&r), w);
        }
    }

    #[test]
    fn control_characters_cannot_break_lines() {
        let r = Reply::new(550, "5.1.1", "a\rb\0c\u{85}d");
        assert_eq!(wire(&r), "550 5.1.1 a?b?c?d\r\n");
    }

    #[test]
    fn enhanced_code_parsing() {
        assert_eq!(parse_enhanced("2.1.0"), Some((2, 1, 0)));
        assert_eq!(parse_enhanced("5.7.123"), Some((5, 7, 123)));
        for bad in ["", "2.1", "3.0.0", "2.1.0.0", "2.x.0", "2..0", "2.1234.0"] {
            assert_eq!(parse_enhanced(bad), None, "{bad}");
        }
        assert_eq!(Reply::new(250, "2.1.5", "Ok").enhanced(), Some((2, 1, 5)));
        assert!(Reply::new(451, "4.3.0", "x").is_temporary());
        assert_eq!(Reply::new(550, "5.1.1", "a\nb").to_string(), "550 5.1.1 a / b");
    }
}

//! What mail clients ask to set themselves up from an address alone: Thunderbird's autoconfig
//! (clientConfig 1.1, as Mozilla's ISP database serves it), Microsoft's Autodiscover for Outlook
//! (the 2006 "POX" schema, request and response) and an Apple configuration profile
//! (`com.apple.mail.managed`). Each offers what this server really listens on, implicit TLS first
//! (RFC 8314 3.1: prefer it to STARTTLS), and never a cleartext port when a TLS one exists.

use std::fmt::Write as _;

use sha2::{Digest, Sha256};

/// How a client secures an endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Security {
    /// TLS from the first byte (993, 995, 465).
    Tls,
    StartTls,
    /// No TLS at all (a server with no certificate: loopback and LAN use only).
    Plain,
}

/// A port a client may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub port: u16,
    pub security: Security,
}

/// What the server offers one address.
#[derive(Clone, Debug)]
pub struct Offer<'a> {
    /// The host name clients connect to.
    pub hostname: &'a str,
    /// The address's domain.
    pub domain: &'a str,
    pub email: &'a str,
    /// The login name: the whole address (virtual users) or its local part (system users).
    pub username: &'a str,
    /// Whether the login name is the whole address (Thunderbird's %EMAILADDRESS%) or the local
    /// part (%EMAILLOCALPART%).
    pub username_is_address: bool,
    /// Each service's endpoints, best first.
    pub imap: Vec<Endpoint>,
    pub pop3: Vec<Endpoint>,
    pub smtp: Vec<Endpoint>,
}

/// Sorts endpoints best first: implicit TLS, STARTTLS, then (only when nothing else) plain.
pub fn rank(mut v: Vec<Endpoint>) -> Vec<Endpoint> {
    v.sort_by_key(|e| (e.security as u8, e.port));
    v.dedup();
    if v.iter().any(|e| e.security != Security::Plain) {
        v.retain(|e| e.security != Security::Plain);
    }
    v
}

/// Escapes text for XML element content and attribute values.
fn xml(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            // XML 1.0 2.2: no control characters but tab and line ends.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {}
            c => o.push(c),
        }
    }
    o
}

/// Thunderbird's `config-v1.1.xml`.
pub fn thunderbird(o: &Offer) -> String {
    let user = if o.username_is_address { "%EMAILADDRESS%" } else { "%EMAILLOCALPART%" };
    let socket = |s: Security| match s {
        Security::Tls => "SSL",
        Security::StartTls => "STARTTLS",
        Security::Plain => "plain",
    };
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<clientConfig version=\"1.1\">\n");
    let d = xml(o.domain);
    let _ = writeln!(x, "  <emailProvider id=\"{d}\">\n    <domain>{d}</domain>");
    let _ =
        writeln!(x, "    <displayName>{d} mail</displayName>\n    <displayShortName>{d}</displayShortName>");
    let mut server = |tag: &str, kind: &str, e: &Endpoint| {
        let _ = writeln!(
            x,
            "    <{tag} type=\"{kind}\">\n      <hostname>{}</hostname>\n      <port>{}</port>\n      \
             <socketType>{}</socketType>\n      <authentication>password-cleartext</authentication>\n      \
             <username>{user}</username>\n    </{tag}>",
            xml(o.hostname),
            e.port,
            socket(e.security)
        );
    };
    for e in &o.imap {
        server("incomingServer", "imap", e);
    }
    for e in &o.pop3 {
        server("incomingServer", "pop3", e);
    }
    for e in &o.smtp {
        server("outgoingServer", "smtp", e);
    }
    x.push_str("  </emailProvider>\n</clientConfig>\n");
    x
}

/// The address an Autodiscover request asks about (its `EMailAddress` element), if it is one.
pub fn autodiscover_address(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let start = text.find("<EMailAddress>")? + "<EMailAddress>".len();
    let len = text.get(start..)?.find("</EMailAddress>")?;
    let addr = text.get(start..start + len)?.trim();
    // RFC 5321 4.5.3.1.3: a path is at most 256 octets; nothing that needs escaping.
    let ok = addr.len() <= 254
        && addr.split_once('@').is_some_and(|(l, d)| !l.is_empty() && !d.is_empty())
        && addr
            .chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, '<' | '>' | '&' | '"' | '\'') || c as u32 >= 0x80);
    ok.then(|| addr.to_string())
}

/// Outlook's Autodiscover answer (responseschema 2006, outlook responseschema 2006a).
pub fn autodiscover(o: &Offer) -> String {
    let mut x = String::from(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<Autodiscover xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006\">\n  \
         <Response xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a\">\n    \
         <Account>\n      <AccountType>email</AccountType>\n      <Action>settings</Action>\n",
    );
    let mut protocol = |kind: &str, e: &Endpoint| {
        let (ssl, encryption) = match e.security {
            Security::Tls => ("on", "SSL"),
            Security::StartTls => ("on", "TLS"),
            Security::Plain => ("off", "None"),
        };
        let _ = writeln!(
            x,
            "      <Protocol>\n        <Type>{kind}</Type>\n        <Server>{}</Server>\n        <Port>{}</Port>\n        \
             <LoginName>{}</LoginName>\n        <DomainRequired>off</DomainRequired>\n        <SPA>off</SPA>\n        \
             <SSL>{ssl}</SSL>\n        <Encryption>{encryption}</Encryption>\n        <AuthRequired>on</AuthRequired>\n      </Protocol>",
            xml(o.hostname),
            e.port,
            xml(o.username)
        );
    };
    if let Some(e) = o.imap.first() {
        protocol("IMAP", e);
    }
    if let Some(e) = o.pop3.first() {
        protocol("POP3", e);
    }
    if let Some(e) = o.smtp.first() {
        protocol("SMTP", e);
    }
    x.push_str("    </Account>\n  </Response>\n</Autodiscover>\n");
    x
}

/// A stable UUID (RFC 9562 version 8, name-based) for a profile's payload, so downloading the
/// profile twice updates the account instead of adding a second one.
fn uuid(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    let mut b: [u8; 16] = [0; 16];
    b.copy_from_slice(&h.finalize()[..16]);
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02X}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
}

/// An Apple configuration profile (`.mobileconfig`, an unsigned XML property list) with one IMAP
/// account; None when the server offers no IMAP or no submission endpoint.
pub fn mobileconfig(o: &Offer) -> Option<String> {
    let imap = o.imap.first()?;
    let smtp = o.smtp.first()?;
    // Reversed host name as the identifier's root, as Apple's own profiles do.
    let rev: Vec<&str> = o.hostname.rsplit('.').collect();
    let id = format!("{}.buzon.{}", rev.join("."), o.email.replace('@', ".at."));
    let s = |k: &str, v: &str| format!("\t\t\t<key>{k}</key>\n\t\t\t<string>{}</string>\n", xml(v));
    let n = |k: &str, v: u16| format!("\t\t\t<key>{k}</key>\n\t\t\t<integer>{v}</integer>\n");
    let b = |k: &str, v: bool| format!("\t\t\t<key>{k}</key>\n\t\t\t<{v}/>\n");
    let mut account = String::new();
    account += &s("EmailAccountDescription", o.email);
    account += &s("EmailAccountName", o.email);
    account += &s("EmailAccountType", "EmailTypeIMAP");
    account += &s("EmailAddress", o.email);
    account += &s("IncomingMailServerAuthentication", "EmailAuthPassword");
    account += &s("IncomingMailServerHostName", o.hostname);
    account += &n("IncomingMailServerPortNumber", imap.port);
    account += &b("IncomingMailServerUseSSL", imap.security != Security::Plain);
    account += &s("IncomingMailServerUsername", o.username);
    account += &s("OutgoingMailServerAuthentication", "EmailAuthPassword");
    account += &s("OutgoingMailServerHostName", o.hostname);
    account += &n("OutgoingMailServerPortNumber", smtp.port);
    account += &b("OutgoingMailServerUseSSL", smtp.security != Security::Plain);
    account += &s("OutgoingMailServerUsername", o.username);
    account += &b("OutgoingPasswordSameAsIncomingPassword", true);
    account += &s("PayloadDescription", &format!("Mail account {}", o.email));
    account += &s("PayloadDisplayName", o.email);
    account += &s("PayloadIdentifier", &format!("{id}.account"));
    account += &s("PayloadType", "com.apple.mail.managed");
    account += &s("PayloadUUID", &uuid(&[o.hostname, o.email, "account"]));
    account += "\t\t\t<key>PayloadVersion</key>\n\t\t\t<integer>1</integer>\n";
    account += &b("PreventAppSheet", false);
    account += &b("PreventMove", false);
    account += &b("SMIMEEnabled", false);
    let top = |k: &str, v: &str| format!("\t<key>{k}</key>\n\t<string>{}</string>\n", xml(v));
    let mut p = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \
         \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n<plist version=\"1.0\">\n<dict>\n",
    );
    p += "\t<key>PayloadContent</key>\n\t<array>\n\t\t<dict>\n";
    p += &account;
    p += "\t\t</dict>\n\t</array>\n";
    p += &top("PayloadDescription", &format!("Mail settings for {} from {}", o.email, o.hostname));
    p += &top("PayloadDisplayName", &format!("{} mail", o.domain));
    p += &top("PayloadIdentifier", &id);
    p += "\t<key>PayloadRemovalDisallowed</key>\n\t<false/>\n";
    p += &top("PayloadType", "Configuration");
    p += &top("PayloadUUID", &uuid(&[o.hostname, o.email, "profile"]));
    p += "\t<key>PayloadVersion</key>\n\t<integer>1</integer>\n</dict>\n</plist>\n";
    Some(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer() -> Offer<'static> {
        Offer {
            hostname: "mail.example.org",
            domain: "example.org",
            email: "alice@example.org",
            username: "alice@example.org",
            username_is_address: true,
            imap: rank(vec![
                Endpoint { port: 143, security: Security::StartTls },
                Endpoint { port: 993, security: Security::Tls },
            ]),
            pop3: vec![],
            smtp: rank(vec![
                Endpoint { port: 587, security: Security::StartTls },
                Endpoint { port: 465, security: Security::Tls },
            ]),
        }
    }

    #[test]
    fn implicit_tls_first_and_plain_only_alone() {
        let o = offer();
        assert_eq!(o.imap[0], Endpoint { port: 993, security: Security::Tls });
        assert_eq!(o.smtp[0].port, 465);
        let r = rank(vec![
            Endpoint { port: 143, security: Security::Plain },
            Endpoint { port: 143, security: Security::StartTls },
        ]);
        assert_eq!(r, vec![Endpoint { port: 143, security: Security::StartTls }]);
        let r = rank(vec![Endpoint { port: 1143, security: Security::Plain }]);
        assert_eq!(r.len(), 1, "a server without TLS still offers its plain port");
    }

    #[test]
    fn thunderbird_document() {
        let x = thunderbird(&offer());
        assert!(x.contains("<incomingServer type=\"imap\">\n      <hostname>mail.example.org</hostname>\n      <port>993</port>\n      <socketType>SSL</socketType>"), "{x}");
        assert!(x.contains("<username>%EMAILADDRESS%</username>"));
        assert!(x.find("<port>993</port>") < x.find("<port>143</port>"));
        assert!(x.contains("<outgoingServer type=\"smtp\">"));
        assert!(!x.contains("pop3"));
    }

    #[test]
    fn autodiscover_request_and_response() {
        let req = br#"<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">
  <Request>
    <EMailAddress>alice@example.org</EMailAddress>
    <AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema>
  </Request>
</Autodiscover>"#;
        assert_eq!(autodiscover_address(req).as_deref(), Some("alice@example.org"));
        assert_eq!(autodiscover_address(b"<EMailAddress>a<b@x</EMailAddress>"), None);
        assert_eq!(autodiscover_address(b"<EMailAddress>nobody</EMailAddress>"), None);
        assert_eq!(autodiscover_address(b"<EMailAddress>x@y"), None);
        let x = autodiscover(&offer());
        assert!(
            x.contains(
                "<Type>IMAP</Type>\n        <Server>mail.example.org</Server>\n        <Port>993</Port>"
            ),
            "{x}"
        );
        assert!(x.contains(
            "<Type>SMTP</Type>\n        <Server>mail.example.org</Server>\n        <Port>465</Port>"
        ));
        assert!(x.contains("<LoginName>alice@example.org</LoginName>"));
    }

    #[test]
    fn profile_is_stable_and_escaped() {
        let mut o = offer();
        let a = mobileconfig(&o).unwrap();
        assert_eq!(a, mobileconfig(&o).unwrap(), "the same profile twice: same UUIDs");
        assert!(a.contains("<key>IncomingMailServerPortNumber</key>\n\t\t\t<integer>993</integer>"));
        assert!(a.contains("<key>PayloadType</key>\n\t\t\t<string>com.apple.mail.managed</string>"));
        o.email = "a&b@example.org";
        let b = mobileconfig(&o).unwrap();
        assert!(b.contains("a&amp;b@example.org") && !b.contains("a&b@"));
        let u = uuid(&["x"]);
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "8", "version 8");
        o.imap.clear();
        assert!(mobileconfig(&o).is_none());
    }
}

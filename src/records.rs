//! `buzon dns-records DOMAIN`: the DNS records a domain served by this host should publish, as
//! zone-file lines with comments: MX, SPF (RFC 7208), DMARC (RFC 7489), the DKIM keys made by
//! `buzon dkim keygen` (RFC 6376), and the service records mail clients look for (RFC 6186,
//! RFC 8314 5.1), with the ports this configuration really listens on.

use std::io::Write;
use std::net::SocketAddr;

use crate::config::Config;
use crate::filters::cli::CliError;
use crate::filters::dkim;

/// A service record line: the first configured port, or RFC 6186 4's "not offered" (target `.`).
fn srv(out: &mut String, domain: &str, service: &str, listen: &[SocketAddr], host: &str, what: &str) {
    let name = format!("_{service}._tcp.{domain}.");
    match listen.first() {
        Some(a) => out.push_str(&format!("{name:<32} IN SRV 0 1 {} {host}.   ; {what}\n", a.port())),
        None => out.push_str(&format!("{name:<32} IN SRV 0 0 0 .   ; {what}: not offered\n")),
    }
}

/// The records for `domain`, as text.
pub fn records(config: &Config, domain: &str) -> Result<String, String> {
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    if domain.is_empty()
        || !domain.contains('.')
        || domain.bytes().any(|b| !(b.is_ascii_alphanumeric() || b == b'-' || b == b'.'))
    {
        return Err(format!("{domain:?} is not a domain name (use its A-label form for IDNs)"));
    }
    let host = config.hostname.trim_end_matches('.');
    let mut o = String::new();
    o.push_str(&format!("; DNS records for {domain}, whose mail this host, {host}, receives and sends.\n"));
    if !config.is_local_domain(&domain) {
        o.push_str(&format!("; note: {domain} is not in local_domains: add it there too.\n"));
    }
    o.push_str("$TTL 3600\n");
    o.push_str(&format!(
        "; {host} itself needs A (and AAAA) records with this server's public addresses, and the\n\
         ; provider of each address a PTR record back to {host}.\n"
    ));
    o.push_str(&format!("{:<32} IN MX 10 {host}.\n", format!("{domain}.")));
    o.push_str(&format!(
        "{:<32} IN TXT \"v=spf1 mx -all\"   ; SPF: only the MX host sends\n",
        format!("{domain}.")
    ));
    o.push_str(&format!(
        "{:<32} IN TXT \"v=DMARC1; p=quarantine; rua=mailto:postmaster@{domain}\"\n",
        format!("_dmarc.{domain}.")
    ));
    let keys =
        dkim::keys_for(&config.data_dir.join("dkim"), &domain, config.filters.dkim_selector.as_deref())?;
    if keys.is_empty() {
        o.push_str(&format!("; DKIM: no key yet; make one with `buzon dkim keygen {domain}`.\n"));
    }
    for k in &keys {
        o.push_str(&format!("; DKIM, {}:\n", k.algorithm().name()));
        o.push_str(&dkim::zone_line(&domain, &k.selector, &k.record()));
        o.push('\n');
    }
    o.push_str("; Mail client settings (RFC 6186, RFC 8314 5.1):\n");
    srv(&mut o, &domain, "submissions", &config.submissions_listen, host, "submission over TLS");
    srv(&mut o, &domain, "submission", &config.submission_listen, host, "submission with STARTTLS");
    srv(&mut o, &domain, "imaps", &config.imaps_listen, host, "IMAP over TLS");
    srv(&mut o, &domain, "imap", &config.imap_listen, host, "IMAP with STARTTLS");
    srv(&mut o, &domain, "pop3s", &config.pop3s_listen, host, "POP3 over TLS");
    srv(&mut o, &domain, "pop3", &config.pop3_listen, host, "POP3 with STLS");
    if !config.managesieve.listen.is_empty() {
        // RFC 5804 1.8: clients find the ManageSieve server by _sieve._tcp.
        srv(&mut o, &domain, "sieve", &config.managesieve.listen, host, "ManageSieve with STARTTLS");
    }
    if config.web.tls_listen.is_empty() && config.web.listen.is_empty() {
        o.push_str(
            "; Client self-configuration: no web listener (web.tls_listen) to answer it.
",
        );
    } else {
        // Thunderbird asks autoconfig.DOMAIN, Outlook autodiscover.DOMAIN; both then speak HTTPS
        // to this host, whose certificate must carry these names too.
        o.push_str(
            "; Client self-configuration (Thunderbird autoconfig, Outlook autodiscover), served by
",
        );
        o.push_str(
            "; web.tls_listen; this host's certificate must name them too:
",
        );
        for name in ["autoconfig", "autodiscover"] {
            o.push_str(&format!(
                "{:<32} IN CNAME {host}.
",
                format!("{name}.{domain}.")
            ));
        }
        if config.web.tls_listen.iter().any(|a| a.port() == 443) {
            let name = format!("_autodiscover._tcp.{domain}.");
            o.push_str(&format!(
                "{name:<32} IN SRV 0 1 443 {host}.
"
            ));
        }
    }
    Ok(o)
}

/// `buzon dns-records DOMAIN`.
pub fn cli(config: &Config, args: &[String], out: &mut dyn Write) -> Result<(), CliError> {
    let [domain] = args else {
        return Err(CliError::Usage("usage: buzon dns-records [-c file] DOMAIN".into()));
    };
    let text = records(config, domain).map_err(CliError::Failed)?;
    out.write_all(text.as_bytes()).map_err(|e| CliError::Failed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_follow_the_configuration() {
        let dir = tempfile::tempdir().unwrap();
        let c = Config::parse(
            &format!(
                "hostname = mx.example.org\nlocal_domains = example.org\ndata_dir = {}\n\
                 smtp.listen = 0.0.0.0:25\nsubmission.listen = 0.0.0.0:587\nimaps.listen = [::]:993\n\
                 tls.cert = /etc/ssl/c.pem\ntls.key = /etc/ssl/k.pem\n",
                dir.path().display()
            ),
            "t",
        )
        .unwrap();
        let r = records(&c, "Example.ORG.").unwrap();
        assert!(r.contains("example.org.                     IN MX 10 mx.example.org.\n"), "{r}");
        assert!(r.contains("IN TXT \"v=spf1 mx -all\""));
        assert!(r.contains("_dmarc.example.org."));
        assert!(r.contains("buzon dkim keygen example.org"));
        assert!(r.contains("_submission._tcp.example.org.    IN SRV 0 1 587 mx.example.org."), "{r}");
        assert!(r.contains("_imaps._tcp.example.org.         IN SRV 0 1 993 mx.example.org."), "{r}");
        assert!(r.contains("_pop3s._tcp.example.org.         IN SRV 0 0 0 ."), "{r}");
        assert!(!r.contains("not in local_domains"));
        assert!(r.contains("no web listener"));
        let web = Config::parse(
            &format!(
                "hostname = mx.example.org\ndata_dir = {}\nweb.tls_listen = 0.0.0.0:443\n\
                 tls.cert = /etc/ssl/c.pem\ntls.key = /etc/ssl/k.pem\n",
                dir.path().display()
            ),
            "t",
        )
        .unwrap();
        let r = records(&web, "example.org").unwrap();
        assert!(r.contains("autoconfig.example.org.          IN CNAME mx.example.org."), "{r}");
        assert!(r.contains("autodiscover.example.org.        IN CNAME mx.example.org."), "{r}");
        assert!(r.contains("_autodiscover._tcp.example.org.  IN SRV 0 1 443 mx.example.org."), "{r}");
        assert!(records(&c, "other.example").unwrap().contains("not in local_domains"));
        assert!(records(&c, "bad domain").is_err());
        assert!(records(&c, "localhost").is_err());
    }
}

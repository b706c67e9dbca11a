//! The inbound checks at the SMTP stage where each belongs, on clients that are neither logged in
//! nor in relay.networks nor in `checks.skip_networks`: DNS blocklists and SPF at MAIL, greylisting
//! at RCPT, and at the end of the message DKIM, DMARC and the content scanners, whose results
//! become header fields (Authentication-Results, Received-SPF) or a refusal. The checks themselves
//! are in filters/; this is where they meet the configuration, the DNS and the log.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::addr::Address;
use crate::config::filters::Mode;
use crate::config::{Config, in_networks};
use crate::dns;
use crate::filters::dnsbl;
use crate::filters::greylist::{Grey, Greylist};
use crate::server::context::Context;
use crate::smtp::reply::Reply;
use crate::smtp::session::{Checked, MailCheck};

/// What the checks keep for the life of a configuration.
pub struct Checks {
    pub dns: Arc<dns::Resolver>,
    greylist: Option<Greylist>,
}

impl Checks {
    pub fn new(config: &Config) -> Result<Checks, String> {
        let dns = Arc::new(dns::Resolver::from_system(&config.dns_servers)?);
        let f = &config.filters;
        let greylist = f.greylist.then(|| Greylist::open(config.data_dir.join("greylist"), f.greylist_delay));
        Ok(Checks { dns, greylist })
    }
}

fn now_unix() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Whether the checks apply to a client at `ip` (the session has already left out logged-in
/// clients and relay.networks).
pub fn applies(config: &Config, ip: IpAddr) -> bool {
    !in_networks(&config.filters.skip_networks, ip)
}

/// At MAIL: the DNS blocklists, then SPF.
pub fn mail(ctx: &Context, sid: &str, ip: IpAddr, sender: Option<&Address>, helo: &str) -> MailCheck {
    let (config, checks) = (ctx.config.as_ref(), &ctx.checks);
    if !applies(config, ip) {
        return MailCheck::Accept(Checked::default());
    }
    for zone in &config.filters.dnsbl {
        match dnsbl::check(checks.dns.as_ref(), ip, zone) {
            Ok(Some(listing)) => {
                log::info!(
                    "session={sid} event=reject reason=dnsbl client={ip} zone={zone} answer=\"{}\" text=\"{}\"",
                    listing.meaning(),
                    listing.text.as_deref().unwrap_or("")
                );
                let why = match &listing.text {
                    Some(t) => {
                        format!("; {}", t.chars().filter(|c| !c.is_control()).take(200).collect::<String>())
                    }
                    None => String::new(),
                };
                return MailCheck::Refuse(Reply::new(
                    554,
                    "5.7.1",
                    format!("Service unavailable; client host [{ip}] blocked using {zone}{why}"),
                ));
            }
            Ok(None) => {}
            Err(e) => log::warn!("session={sid} event=dnsbl_failed zone={zone} error=\"{e}\""),
        }
    }
    let mut checked = Checked::default();
    if config.filters.spf != Mode::Off
        && let Some(refusal) = spf_stage(ctx, sid, ip, sender, helo, &mut checked)
    {
        return MailCheck::Refuse(refusal);
    }
    MailCheck::Accept(checked)
}

/// At each RCPT: greylisting.
pub fn recipient(
    ctx: &Context,
    sid: &str,
    ip: IpAddr,
    sender: Option<&Address>,
    rcpt: &Address,
) -> Option<Reply> {
    let (config, checks) = (ctx.config.as_ref(), &ctx.checks);
    let grey = checks.greylist.as_ref()?;
    if !applies(config, ip) {
        return None;
    }
    let from = sender.map(|a| a.to_string()).unwrap_or_default();
    match grey.check(now_unix(), ip, &from, &rcpt.to_string()) {
        Grey::Pass => None,
        Grey::Wait(secs) => {
            log::info!(
                "session={sid} event=greylisted client={ip} from=<{from}> to=<{rcpt}> retry_in={secs}s"
            );
            Some(Reply::new(
                450,
                "4.7.1",
                format!("<{rcpt}>: Recipient address rejected: greylisted, try again in {secs} seconds"),
            ))
        }
    }
}

/// SPF (RFC 7208) on the MAIL FROM identity, or the HELO one for the null sender; `reject` refuses
/// `fail` (RFC 7372 5.7.23). The other results are only recorded: `temperror` and `permerror` are
/// the sender's DNS trouble, which a tag-only result handles better than a bounce.
fn spf_stage(
    ctx: &Context,
    sid: &str,
    ip: IpAddr,
    sender: Option<&Address>,
    helo: &str,
    checked: &mut Checked,
) -> Option<Reply> {
    let (config, checks) = (ctx.config.as_ref(), &ctx.checks);
    use crate::filters::spf::{self, Scope, SpfResult};
    let from = sender.map(|a| a.to_string()).unwrap_or_default();
    let r = spf::check(checks.dns.as_ref(), ip, &from, helo, &config.hostname);
    log::info!(
        "session={sid} event=spf result={} identity={} domain={} client={ip}{}",
        r.result.as_str(),
        if r.scope == Scope::Helo { "helo" } else { "mailfrom" },
        r.domain,
        r.problem.as_ref().map(|p| format!(" problem=\"{p}\"")).unwrap_or_default()
    );
    if config.filters.spf == Mode::Reject && r.result == SpfResult::Fail {
        let why = r.explanation.as_deref().unwrap_or("the domain does not allow this host to send its mail");
        let why: String = why.chars().filter(|c| !c.is_control()).take(300).collect();
        return Some(Reply::new(550, "5.7.23", format!("SPF check failed for {}: {why}", r.domain)));
    }
    let received = r.received_spf(ip, helo, &config.hostname);
    if !received.is_empty() {
        checked.fields.push(received);
    }
    let property = match r.scope {
        Scope::MailFrom => format!("smtp.mailfrom={}", authres_value(&r.sender)),
        Scope::Helo => format!("smtp.helo={}", authres_value(helo)),
    };
    checked.results.push(format!("spf={} {property}", r.result.as_str()));
    if r.scope == Scope::MailFrom && !r.domain.is_empty() {
        checked.spf = Some((r.domain.clone(), r.result == SpfResult::Pass));
    }
    None
}

/// A property value (RFC 8601 2.2: a token, else a quoted string).
fn authres_value(v: &str) -> String {
    const TSPECIALS: &[u8] = b"()<>,;:\\\"/[]?=";
    let token =
        !v.is_empty() && v.bytes().all(|b| b == b'@' || (b.is_ascii_graphic() && !TSPECIALS.contains(&b)));
    if token {
        v.to_string()
    } else {
        let esc: String = v
            .chars()
            .filter(|c| !c.is_control())
            .flat_map(|c| if c == '"' || c == '\\' { vec!['\\', c] } else { vec![c] })
            .collect();
        format!("\"{esc}\"")
    }
}

/// What the checks at the end of a message decided.
#[derive(Debug)]
pub enum Inspected {
    /// Deliver it, with these header fields (each line ending in `\n`) below its Return-Path;
    /// `junk`: into the recipients' Junk folders.
    Accept { fields: String, junk: bool },
    /// Refused with this reply (DMARC reject, a virus, a spam score over the limit).
    Refuse(Reply),
    /// A check that must run could not (a scanner down under `scan.on_failure = tempfail`).
    Defer(String),
}

/// The largest header section the message checks read (a larger one is not checked: DKIM and DMARC
/// find nothing).
const MAX_HEADER: u64 = 256 * 1024;

/// The header section of the spooled message at `path` from offset `start` (LF line ends, without
/// the blank line), or `None` when it is over [`MAX_HEADER`].
fn read_header(path: &std::path::Path, start: u64) -> std::io::Result<Option<Vec<u8>>> {
    use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path)?;
    f.seek(SeekFrom::Start(start))?;
    let mut r = BufReader::new(f).take(MAX_HEADER + 1);
    let mut header = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        if r.read_until(b'\n', &mut line)? == 0 {
            break; // a message that is all header
        }
        if line == b"\n" {
            break;
        }
        header.extend_from_slice(&line);
        if header.len() as u64 > MAX_HEADER {
            return Ok(None);
        }
    }
    Ok(Some(header))
}

/// The checks at the end of a message from an untrusted client, on the spooled file at `path`
/// whose message starts at `start` (after the trace fields).
pub fn message(
    ctx: &Context,
    sid: &str,
    ip: IpAddr,
    tx: &crate::smtp::session::Transaction,
    trusted: bool,
    path: &std::path::Path,
    start: u64,
) -> Inspected {
    let (config, checks) = (ctx.config.as_ref(), &ctx.checks);
    let mut results = tx.checked.results.clone();
    let junk = false;
    if !trusted && applies(config, ip) {
        let header = match read_header(path, start) {
            Ok(h) => h,
            Err(e) => return Inspected::Defer(format!("cannot read the message: {e}")),
        };
        if header.is_none() {
            log::info!(
                "session={sid} event=checks_skipped reason=\"header section over {MAX_HEADER} octets\""
            );
        }
        let _ = (checks, &mut results);
    }
    let mut fields = String::new();
    if !results.is_empty() {
        fields.push_str(&format!("Authentication-Results: {}", config.hostname));
        for r in &results {
            fields.push_str(";\n\t");
            fields.push_str(r);
        }
        fields.push('\n');
    }
    for f in &tx.checked.fields {
        fields.push_str(f);
        fields.push('\n');
    }
    Inspected::Accept { fields, junk }
}

//! The inbound checks at the SMTP stage where each belongs, on clients that are neither logged in
//! nor in relay.networks nor in `checks.skip_networks`: DNS blocklists and SPF at MAIL, greylisting
//! at RCPT, and at the end of the message DKIM, DMARC and the content scanners, whose results
//! become header fields (Authentication-Results, Received-SPF) or a refusal. The checks themselves
//! are in filters/; this is where they meet the configuration, the DNS and the log.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::net::IpAddr;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::addr::Address;
use crate::config::filters::{Mode, ScanFailure};
use crate::config::{Config, in_networks};
use crate::dns;
use crate::filters::authres::AuthResults;
use crate::filters::greylist::{Grey, Greylist};
use crate::filters::rate::Rate;
use crate::filters::scan::{self, ScanAddr};
use crate::filters::{authres, dkim, dmarc, dnsbl};
use crate::server::context::Context;
use crate::smtp::reply::Reply;
use crate::smtp::session::{Checked, MailCheck, Transaction};

/// What the checks keep for the life of a configuration.
pub struct Checks {
    pub dns: Arc<dns::Resolver>,
    greylist: Option<Greylist>,
    /// Port 25 connections and messages a minute per client address.
    pub connections: Rate,
    messages: Rate,
}

impl Checks {
    pub fn new(config: &Config) -> Result<Checks, String> {
        let dns = Arc::new(dns::Resolver::from_system(&config.dns_servers)?);
        let f = &config.filters;
        let greylist = f.greylist.then(|| Greylist::open(config.data_dir.join("greylist"), f.greylist_delay));
        Ok(Checks { dns, greylist, connections: Rate::default(), messages: Rate::default() })
    }
}

fn now_unix() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Whether the checks apply to a client at `ip` (the session has already left out logged-in
/// clients and relay.networks). A client without an address (inetd over a pipe or a unix socket:
/// a local program) is this machine's, as loopback is.
pub fn applies(config: &Config, ip: IpAddr) -> bool {
    !ip.is_unspecified() && !in_networks(&config.filters.skip_networks, ip)
}

/// Text from the network or DNS made safe for one log line: no control characters, no quotes.
pub fn log_text(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).map(|c| if c == '"' { '\'' } else { c }).take(300).collect()
}

/// At MAIL: the DNS blocklists, then SPF.
pub fn mail(ctx: &Context, sid: &str, ip: IpAddr, sender: Option<&Address>, helo: &str) -> MailCheck {
    let (config, checks) = (ctx.config.as_ref(), &ctx.checks);
    if !applies(config, ip) {
        return MailCheck::Accept(Checked::default());
    }
    if !checks.messages.allow(ip, std::time::Instant::now(), config.filters.message_rate) {
        log::info!(
            "session={sid} event=reject reason=message_rate client={ip} limit={}",
            config.filters.message_rate
        );
        return MailCheck::Refuse(Reply::new(452, "4.3.2", format!("Error: too much mail from {ip}")));
    }
    for zone in &config.filters.dnsbl {
        match dnsbl::check(checks.dns.as_ref(), ip, zone) {
            Ok(Some(listing)) => {
                // The zone's TXT text goes into the log and the reply: no control characters, no quotes.
                let text = log_text(listing.text.as_deref().unwrap_or(""));
                log::info!(
                    "session={sid} event=reject reason=dnsbl client={ip} zone={zone} answer=\"{}\" text=\"{text}\"",
                    listing.meaning()
                );
                let why = if text.is_empty() { String::new() } else { format!("; {text}") };
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
        r.problem.as_ref().map(|p| format!(" problem=\"{}\"", log_text(p))).unwrap_or_default()
    );
    if config.filters.spf == Mode::Reject && r.result == SpfResult::Fail {
        let why = r.explanation.as_deref().unwrap_or("the domain does not allow this host to send its mail");
        let why: String = why.chars().filter(|c| !c.is_control()).take(300).collect();
        return Some(Reply::new(550, "5.7.23", format!("SPF check failed for {}: {why}", r.domain)));
    }
    checked.fields.push(r.received_spf(ip, helo, &config.hostname));
    let property = match r.scope {
        Scope::MailFrom => ("smtp.mailfrom".to_string(), r.sender.clone()),
        Scope::Helo => ("smtp.helo".to_string(), helo.to_string()),
    };
    checked.results.push(("spf".into(), r.result.as_str().into(), vec![property]));
    // RFC 7489 4.1: for the null sender, DMARC takes the SPF result of the HELO identity.
    if !r.domain.is_empty() {
        checked.spf = Some((r.domain.clone(), r.result == SpfResult::Pass));
    }
    None
}

/// The largest header section the message checks read (a larger one is not checked: DKIM and DMARC
/// find nothing).
const MAX_HEADER: u64 = 256 * 1024;

/// The spooled message's header section: its fields (LF line ends, the blank line left out) and
/// where its body starts in the file.
struct Header {
    text: Vec<u8>,
    body_at: u64,
}

/// Reads the header section of the message that starts at `start` in the spool file; `None` when
/// it is over [`MAX_HEADER`].
fn read_header(path: &Path, start: u64) -> io::Result<Option<Header>> {
    let mut f = File::open(path)?;
    f.seek(SeekFrom::Start(start))?;
    let mut r = BufReader::new(f).take(MAX_HEADER + 1);
    let mut text = Vec::new();
    let mut line = Vec::new();
    let mut at = start;
    loop {
        line.clear();
        let n = r.read_until(b'\n', &mut line)?;
        at += n as u64;
        if n == 0 || line == b"\n" {
            break; // the blank line, or a message that is all header
        }
        text.extend_from_slice(&line);
        if text.len() as u64 > MAX_HEADER {
            return Ok(None);
        }
    }
    Ok(Some(Header { text, body_at: at }))
}

/// LF line ends to CRLF (the spool keeps LF; DKIM works on the message as it travels).
fn crlf(lf: &[u8], out: &mut Vec<u8>) {
    for &b in lf {
        if b == b'\n' {
            out.push(b'\r');
        }
        out.push(b);
    }
}

/// Header fields as (start, end, name) byte ranges of an LF header section, continuation lines
/// included.
fn field_ranges(header: &[u8]) -> Vec<(usize, usize, &[u8])> {
    let mut out: Vec<(usize, usize, &[u8])> = Vec::new();
    let mut pos = 0;
    for line in header.split_inclusive(|&b| b == b'\n') {
        let end = pos + line.len();
        match (line.first(), out.last_mut()) {
            (Some(b' ' | b'\t'), Some(last)) => last.1 = end,
            _ => {
                let name = line.iter().position(|&b| b == b':').map_or(&line[..0], |i| &line[..i]);
                out.push((pos, end, name));
            }
        }
        pos = end;
    }
    out
}

/// Feeds the body (from `at` to the end of the file) to `feed`, as CRLF text in pieces.
fn feed_body(path: &Path, at: u64, feed: &mut dyn FnMut(&[u8])) -> io::Result<()> {
    let mut f = File::open(path)?;
    f.seek(SeekFrom::Start(at))?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut out = Vec::with_capacity(80 * 1024);
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        out.clear();
        crlf(&buf[..n], &mut out);
        feed(&out);
    }
}

/// What the checks at the end of a message decided.
#[derive(Debug)]
pub enum Inspected {
    /// Deliver it, with `fields` (LF line ends) put below its Return-Path and the header bytes in
    /// `drop` (file offsets: forged Authentication-Results) left out; `junk`: into the recipients'
    /// Junk folders.
    Accept { fields: String, drop: Vec<Range<u64>>, junk: bool },
    /// Refused with this reply (DMARC reject, a virus, a spam score over the limit).
    Refuse(Reply),
    /// A check that must run could not (a scanner down under `scan.on_failure = tempfail`).
    Defer(String),
}

/// The checks at the end of a message, on the spooled file at `path` whose message starts at
/// `start` (after the trace fields): for an untrusted client DKIM, DMARC and the scanners, whose
/// results join SPF's in one Authentication-Results field; for a trusted one, DKIM signing.
pub fn message(
    ctx: &Context,
    sid: &str,
    ip: IpAddr,
    tx: &Transaction,
    trusted: bool,
    path: &Path,
    start: u64,
) -> Inspected {
    let config = ctx.config.as_ref();
    if trusted || !applies(config, ip) {
        // Nothing to check; the mail of a trusted client is signed (without reading it at all when
        // there are no keys).
        let fields = if trusted { dkim_signature(config, sid, path, start) } else { String::new() };
        return Inspected::Accept { fields, drop: Vec::new(), junk: false };
    }
    let header = match read_header(path, start) {
        Ok(Some(h)) => h,
        Ok(None) => {
            log::info!(
                "session={sid} event=checks_skipped reason=\"header section over {MAX_HEADER} octets\""
            );
            Header { text: Vec::new(), body_at: start }
        }
        Err(e) => return Inspected::Defer(format!("cannot read the message: {e}")),
    };
    let mut fields = String::new();
    let mut ar = AuthResults::new(&config.hostname);
    for (method, result, props) in &tx.checked.results {
        let props: Vec<(&str, &str)> = props.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        ar.add(method, result, None, &props);
    }
    // DKIM (RFC 6376 6).
    let mut verdicts = Vec::new();
    if config.filters.dkim_verify && !header.text.is_empty() {
        let mut head = Vec::with_capacity(header.text.len() + header.text.len() / 20);
        crlf(&header.text, &mut head);
        let mut verifier = dkim::Verifier::new(&head);
        if let Err(e) = feed_body(path, header.body_at, &mut |b| verifier.feed(b)) {
            return Inspected::Defer(format!("cannot read the message: {e}"));
        }
        verdicts = verifier.finish(ctx.checks.dns.as_ref(), now_unix());
        for v in &verdicts {
            log::info!(
                "session={sid} event=dkim result={} domain={} selector={}{}",
                v.result.as_str(),
                v.domain,
                v.selector,
                v.reason.as_ref().map(|r| format!(" reason=\"{}\"", log_text(r))).unwrap_or_default()
            );
            ar.add(
                "dkim",
                v.result.as_str(),
                v.reason.as_deref(),
                &[("header.d", &v.domain), ("header.s", &v.selector), ("header.b", &v.header_b)],
            );
        }
        if verdicts.is_empty() {
            ar.add("dkim", "none", None, &[]);
        }
    }
    // DMARC (RFC 7489 6.6).
    let mut junk = false;
    if config.filters.dmarc != Mode::Off {
        match dmarc::from_domain(&header.text) {
            Ok(from) => {
                let dkim: Vec<(&str, bool)> = verdicts
                    .iter()
                    .map(|v| (v.domain.as_str(), v.result == dkim::DkimResult::Pass))
                    .collect();
                let ev = dmarc::Evidence {
                    spf: tx.checked.spf.as_ref().map(|(d, pass)| (d.as_str(), *pass)),
                    dkim: &dkim,
                };
                let d = dmarc::evaluate(ctx.checks.dns.as_ref(), &from, &ev, dmarc::draw());
                log::info!(
                    "session={sid} event=dmarc result={} from={} policy={} disposition={}{}",
                    d.result.as_str(),
                    d.from_domain,
                    d.policy.as_str(),
                    d.disposition.as_str(),
                    d.reason.as_ref().map(|r| format!(" reason=\"{}\"", log_text(r))).unwrap_or_default()
                );
                d.add_to(&mut ar);
                if config.filters.dmarc == Mode::Reject {
                    match d.disposition {
                        dmarc::Policy::Reject => {
                            return Inspected::Refuse(Reply::new(
                                550,
                                "5.7.1",
                                format!("Email rejected per DMARC policy for {}", d.from_domain),
                            ));
                        }
                        dmarc::Policy::Quarantine => junk = true,
                        dmarc::Policy::None => {}
                    }
                }
            }
            Err(e) => log::info!("session={sid} event=dmarc result=none reason=\"{}\"", log_text(&e)),
        }
    }
    // Content scanners.
    let mut spam_fields = String::new();
    match scan(ctx, sid, ip, tx, path, start) {
        Scanned::Clean => {}
        Scanned::Virus(name) => {
            return Inspected::Refuse(Reply::new(
                554,
                "5.7.1",
                format!("Message refused: infected with {name}"),
            ));
        }
        Scanned::Score(score, scanner) => {
            let f = &config.filters;
            log::info!("session={sid} event=spam_score scanner={scanner} score={score:.1}");
            if score >= f.spam_reject_score {
                return Inspected::Refuse(Reply::new(
                    550,
                    "5.7.1",
                    format!("Message refused as spam (score {score:.1}, limit {})", f.spam_reject_score),
                ));
            }
            let is_spam = score >= f.spam_junk_score;
            junk |= is_spam;
            spam_fields = format!(
                "X-Spam: {}\nX-Spam-Score: {score:.1} ({scanner}, junk at {}, refused at {})\n",
                if is_spam { "Yes" } else { "No" },
                f.spam_junk_score,
                f.spam_reject_score
            );
        }
        Scanned::Failed(why) => return Inspected::Defer(why),
    }
    // RFC 8601 5: fields that claim our name and came with the message are removed.
    let drop: Vec<Range<u64>> = field_ranges(&header.text)
        .into_iter()
        .filter(|(s, e, name)| {
            name.eq_ignore_ascii_case(b"Authentication-Results")
                && authres::is_ours(&header.text[*s + name.len() + 1..*e], &config.hostname)
        })
        .map(|(s, e, _)| start + s as u64..start + e as u64)
        .collect();
    if !drop.is_empty() {
        log::info!("session={sid} event=forged_authres removed={}", drop.len());
    }
    // One Authentication-Results field, when an authentication method is on (RFC 8601 2.2 would
    // otherwise say `none` in every message).
    let f = &config.filters;
    if f.spf != Mode::Off || f.dkim_verify || f.dmarc != Mode::Off {
        fields.push_str(&ar.header());
        fields.push('\n');
    }
    for f in &tx.checked.fields {
        fields.push_str(f);
        fields.push('\n');
    }
    if junk && spam_fields.is_empty() {
        // DMARC quarantine without a spam scanner: mbox users see it here (no Junk folder).
        spam_fields.push_str("X-Spam: Yes (DMARC quarantine)\n");
    }
    fields.push_str(&spam_fields);
    Inspected::Accept { fields: fields.replace("\r\n", "\n"), drop, junk }
}

/// What the content scanners found.
enum Scanned {
    Clean,
    Virus(String),
    /// A spam score, and which scanner gave it.
    Score(f64, &'static str),
    /// A scanner failed and `scan.on_failure = tempfail`.
    Failed(String),
}

/// Runs the configured scanners on the message (from `start` in the spool file): clamd first, then
/// spamd or rspamd. A scanner that fails is logged; under `scan.on_failure = tempfail` the
/// message is then deferred.
fn scan(ctx: &Context, sid: &str, ip: IpAddr, tx: &Transaction, path: &Path, start: u64) -> Scanned {
    let f = &ctx.config.filters;
    if f.clamd.is_none() && f.spamd.is_none() && f.rspamd.is_none() {
        return Scanned::Clean;
    }
    let failed = |why: String| {
        log::warn!("session={sid} event=scan_failed error=\"{why}\"");
        match f.scan_failure {
            ScanFailure::Tempfail => {
                Some(Scanned::Failed("Error: the content scanner is unavailable".into()))
            }
            ScanFailure::Accept => None,
        }
    };
    let open = || -> io::Result<(File, u64)> {
        let mut file = File::open(path)?;
        let len = file.metadata()?.len().saturating_sub(start);
        file.seek(SeekFrom::Start(start))?;
        Ok((file, len))
    };
    if let Some(addr) = &f.clamd {
        let verdict = ScanAddr::parse(addr)
            .map_err(scan::ScanError)
            .and_then(|a| open().map_err(|e| scan::ScanError(e.to_string())).map(|(file, _)| (a, file)))
            .and_then(|(a, mut file)| scan::clamd_scan(&a, &mut file, f.scan_timeout));
        match verdict {
            Ok(scan::ClamVerdict::Infected(name)) => {
                log::info!("session={sid} event=reject reason=virus virus=\"{name}\"");
                return Scanned::Virus(name);
            }
            Ok(scan::ClamVerdict::Clean) => {}
            Err(e) => {
                if let Some(s) = failed(format!("clamd: {e}")) {
                    return s;
                }
            }
        }
    }
    let score = if let Some(addr) = &f.spamd {
        ScanAddr::parse(addr)
            .map_err(scan::ScanError)
            .and_then(|a| {
                open().map_err(|e| scan::ScanError(e.to_string())).map(|(file, len)| (a, file, len))
            })
            .and_then(|(a, mut file, len)| scan::spamd_check(&a, &mut file, len, None, f.scan_timeout))
            .map(|s| (s.score, "spamd"))
    } else if let Some(url) = &f.rspamd {
        let rcpt: Vec<String> = tx.recipients.iter().map(|r| r.to_string()).collect();
        let from = tx.sender.as_ref().map(|a| a.to_string()).unwrap_or_default();
        let meta = scan::RspamdMeta {
            ip: Some(ip),
            from: Some(&from),
            rcpt: &rcpt,
            hostname: None,
            queue_id: Some(sid),
            ..scan::RspamdMeta::default()
        };
        open()
            .map_err(|e| scan::ScanError(e.to_string()))
            .and_then(|(mut file, len)| scan::rspamd_check(url, &mut file, len, &meta, f.scan_timeout))
            .map(|s| (s.score, "rspamd"))
    } else {
        return Scanned::Clean;
    };
    match score {
        Ok((score, scanner)) if score.is_finite() => Scanned::Score(score, scanner),
        Ok(_) => failed("spam scanner: the score is not a number".into()).unwrap_or(Scanned::Clean),
        Err(e) => failed(e.to_string()).unwrap_or(Scanned::Clean),
    }
}

/// The DKIM-Signature fields (LF line ends) for the message spooled at `path` from `start`, when
/// its From: domain has keys in `data_dir/dkim`; empty otherwise, or when signing fails (logged:
/// the message still goes, unsigned). For trusted SMTP clients and mail that sendmail(8) drops.
pub fn dkim_signature(config: &Config, id: &str, path: &Path, start: u64) -> String {
    if !config.data_dir.join("dkim").is_dir() {
        return String::new();
    }
    match read_header(path, start) {
        Ok(Some(header)) => sign(config, id, path, &header),
        Ok(None) => String::new(),
        Err(e) => {
            log::warn!("id={id} event=dkim_sign_failed error=\"{e}\"");
            String::new()
        }
    }
}

/// DKIM-signs the mail of a trusted client whose From: domain has a key in `data_dir/dkim`.
fn sign(config: &Config, sid: &str, path: &Path, header: &Header) -> String {
    let mut fields = String::new();
    let Ok(domain) = dmarc::from_domain(&header.text) else { return fields };
    let dir = config.data_dir.join("dkim");
    let keys = match dkim::keys_for(&dir, &domain, config.filters.dkim_selector.as_deref()) {
        Ok(k) if k.is_empty() => return fields,
        Ok(k) => k,
        Err(e) => {
            log::warn!("session={sid} event=dkim_sign_failed domain={domain} error=\"{e}\"");
            return fields;
        }
    };
    let mut head = Vec::new();
    crlf(&header.text, &mut head);
    let mut signer = dkim::Signer::new(keys, &head, now_unix());
    if let Err(e) = feed_body(path, header.body_at, &mut |b| signer.feed(b)) {
        log::warn!("session={sid} event=dkim_sign_failed domain={domain} error=\"{e}\"");
        return fields;
    }
    match signer.finish() {
        Ok(sigs) => {
            log::info!("session={sid} event=dkim_signed domain={domain} signatures={}", sigs.len());
            for s in sigs {
                fields.push_str(&s.replace("\r\n", "\n"));
                fields.push('\n');
            }
        }
        Err(e) => log::warn!("session={sid} event=dkim_sign_failed domain={domain} error=\"{e}\""),
    }
    fields
}

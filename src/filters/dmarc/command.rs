//! `buzon dmarc check FROM-DOMAIN [--spf DOMAIN:pass|fail] [--dkim DOMAIN:pass|fail ...]
//! [--draw N]` and `buzon dmarc org-domain DOMAIN`: DMARC (RFC 7489) by hand, with the SPF and DKIM
//! outcomes given on the command line and the policy looked up in DNS (`dns.servers` or
//! /etc/resolv.conf).

use std::io::Write;

use super::{Evidence, evaluate, organizational_domain};
use crate::config::Config;
use crate::filters::authres::AuthResults;
use crate::filters::cli::CliError;

const USAGE: &str = "usage: buzon dmarc check FROM-DOMAIN [--spf DOMAIN:pass|fail] [--dkim DOMAIN:pass|fail ...] [--draw 0-99]\n       buzon dmarc org-domain DOMAIN";

fn usage(why: &str) -> CliError {
    CliError::Usage(format!("{why}\n{USAGE}"))
}

/// `DOMAIN:pass` or `DOMAIN:fail`.
fn outcome(arg: Option<&String>, flag: &str) -> Result<(String, bool), CliError> {
    let arg = arg.ok_or_else(|| usage(&format!("{flag} needs DOMAIN:pass|fail")))?;
    match arg.rsplit_once(':') {
        Some((d, "pass")) if !d.is_empty() => Ok((d.to_string(), true)),
        Some((d, "fail")) if !d.is_empty() => Ok((d.to_string(), false)),
        _ => Err(usage(&format!("{flag} {arg}: expected DOMAIN:pass or DOMAIN:fail"))),
    }
}

fn io(e: std::io::Error) -> CliError {
    CliError::Failed(e.to_string())
}

/// `buzon dmarc ...`.
pub fn cli(config: &Config, args: &[String], out: &mut dyn Write) -> Result<(), CliError> {
    match args.first().map(String::as_str) {
        Some("org-domain") if args.len() == 2 => {
            writeln!(out, "{}", organizational_domain(&args[1])).map_err(io)
        }
        Some("check") => check(config, &args[1..], out),
        _ => Err(usage("unknown or missing subcommand")),
    }
}

fn check(config: &Config, args: &[String], out: &mut dyn Write) -> Result<(), CliError> {
    let (mut from, mut spf, mut dkim, mut draw) = (None, None, Vec::new(), None);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--spf" => spf = Some(outcome(it.next(), "--spf")?),
            "--dkim" => dkim.push(outcome(it.next(), "--dkim")?),
            "--draw" => {
                let n = it.next().and_then(|n| n.parse::<u8>().ok()).filter(|n| *n < 100);
                draw = Some(n.ok_or_else(|| usage("--draw needs a number from 0 to 99"))?);
            }
            s if s.starts_with('-') => return Err(usage(&format!("unknown option {s}"))),
            s if from.is_none() => from = Some(s.to_string()),
            s => return Err(usage(&format!("unexpected argument {s}"))),
        }
    }
    let from = from.ok_or_else(|| usage("FROM-DOMAIN is missing"))?;
    let dns = crate::dns::Resolver::from_system(&config.dns_servers).map_err(CliError::Failed)?;
    let dkim_refs: Vec<(&str, bool)> = dkim.iter().map(|(d, p)| (d.as_str(), *p)).collect();
    let ev = Evidence { spf: spf.as_ref().map(|(d, p)| (d.as_str(), *p)), dkim: &dkim_refs };
    let d = evaluate(&dns, &from, &ev, draw.unwrap_or_else(super::draw));
    // The field the SMTP side would add for these results.
    let mut ar = AuthResults::new(&config.hostname);
    if let Some((domain, pass)) = ev.spf {
        ar.add("spf", if pass { "pass" } else { "fail" }, None, &[("smtp.mailfrom", domain)]);
    }
    for (domain, pass) in ev.dkim {
        ar.add("dkim", if *pass { "pass" } else { "fail" }, None, &[("header.d", domain)]);
    }
    d.add_to(&mut ar);
    let text = format!(
        "result: {}\nfrom-domain: {}\npolicy-domain: {}\npolicy: {}\ndisposition: {}\nreason: {}\n{}\n",
        d.result.as_str(),
        d.from_domain,
        d.policy_domain.as_deref().unwrap_or("-"),
        d.policy.as_str(),
        d.disposition.as_str(),
        d.reason.as_deref().unwrap_or("-"),
        ar.header().replace("\r\n", "\n"),
    );
    out.write_all(text.as_bytes()).map_err(io)
}

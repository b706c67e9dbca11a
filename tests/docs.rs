//! Keeps the documentation honest: every configuration key in
//! `buzon::config::all_keys()` is described in man/buzon.conf.5 and listed in the
//! sample etc/buzon.conf, the sample parses as it ships, and the man pages
//! pass `mandoc -Tlint -Wwarning` (when mandoc is installed).

use std::path::{Path, PathBuf};
use std::process::Command;

use buzon::config::{Config, MailboxKind, UsersSpec, all_keys};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    let p = root().join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()))
}

/// The keys that man/buzon.conf.5 documents, as `.It Cm key` items
/// (mdoc escapes no character of a key name).
fn man_keys(man: &str) -> Vec<String> {
    man.lines()
        .filter_map(|l| l.strip_prefix(".It Cm "))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// The keys that etc/buzon.conf sets or shows as `# key = default`.
fn sample_keys(conf: &str) -> Vec<String> {
    conf.lines()
        .map(|l| l.trim().trim_start_matches('#').trim())
        .filter_map(|l| l.split_once('='))
        .map(|(k, _)| k.trim())
        .filter(|k| !k.is_empty() && !k.contains(' '))
        .map(str::to_string)
        .collect()
}

#[test]
fn every_key_is_in_the_man_page() {
    let documented = man_keys(&read("man/buzon.conf.5"));
    let missing: Vec<&str> = all_keys().filter(|k| !documented.iter().any(|d| d == k)).collect();
    assert!(missing.is_empty(), "keys missing from man/buzon.conf.5 (as `.It Cm KEY`): {missing:?}");
    let unknown: Vec<&String> = documented.iter().filter(|d| !all_keys().any(|k| k == d.as_str())).collect();
    assert!(unknown.is_empty(), "man/buzon.conf.5 documents keys that do not exist: {unknown:?}");
}

#[test]
fn every_key_is_in_the_sample_config() {
    let listed = sample_keys(&read("etc/buzon.conf"));
    let missing: Vec<&str> = all_keys().filter(|k| !listed.iter().any(|d| d == k)).collect();
    assert!(
        missing.is_empty(),
        "keys missing from etc/buzon.conf (set or as `# key = default`): {missing:?}"
    );
}

#[test]
fn sample_config_parses_as_shipped() {
    let c = Config::parse(&read("etc/buzon.conf"), "etc/buzon.conf").unwrap_or_else(|e| panic!("{e}"));
    // The settings a real machine needs, as the sample promises them.
    assert_eq!(c.smtp_listen, vec!["0.0.0.0:25".parse().unwrap()]);
    assert_eq!(c.users, UsersSpec::System);
    assert_eq!(c.mailbox.kind, MailboxKind::Maildir);
    assert_eq!(c.mailbox.template, "~/Maildir");
    assert_eq!(c.aliases.as_deref(), Some(Path::new("/etc/aliases")));
    assert_eq!(c.data_dir, Path::new("/var/lib/buzon"));
    assert_eq!(c.user.as_deref(), Some("buzon"), "the server drops root; its helper writes as each owner");
    assert!(c.relay_networks.is_empty(), "the sample must not relay for anyone");
    // What `check-config` prints from it parses again to the same settings.
    let again = Config::parse(&c.render(), "rendered").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(again.render(), c.render());
}

/// The commented defaults in the sample are the real defaults: uncommenting
/// every `# key = value` line that has a value changes nothing.
#[test]
fn sample_defaults_are_the_real_defaults() {
    let text = read("etc/buzon.conf");
    let shipped = Config::parse(&text, "etc/buzon.conf").unwrap_or_else(|e| panic!("{e}"));
    let set = sample_keys(
        &text.lines().filter(|l| !l.trim_start().starts_with('#')).collect::<Vec<_>>().join("\n"),
    );
    let mut uncommented = String::new();
    for line in text.lines() {
        let t = line.trim();
        let body = t.trim_start_matches('#').trim();
        let is_default = t.starts_with('#')
            && body.split_once('=').is_some_and(|(k, v)| {
                let k = k.trim();
                all_keys().any(|x| x == k) && !v.trim().is_empty() && !set.iter().any(|s| s == k)
            });
        if is_default {
            uncommented.push_str(body);
        } else {
            uncommented.push_str(line);
        }
        uncommented.push('\n');
    }
    let c = Config::parse(&uncommented, "uncommented")
        .unwrap_or_else(|e| panic!("{e}\n--- uncommented sample ---\n{uncommented}"));
    assert_eq!(c.render(), shipped.render());
}

/// The default that man/buzon.conf.5 states for `key`, when it is a single
/// value that ends its sentence: `Default: 64.` or `Default:` then `.Cm info .`
fn man_default(man: &str, key: &str) -> Option<String> {
    let lines: Vec<&str> = man.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.strip_prefix(".It Cm ").and_then(|r| r.split_whitespace().next()) == Some(key))?;
    let item = lines[start + 1..].iter().take_while(|l| !l.starts_with(".It") && !l.starts_with(".El"));
    let item: Vec<&str> = item.copied().collect();
    let at = item.iter().position(|l| l.starts_with("Default:"))?;
    let rest = item[at].trim_start_matches("Default:").trim();
    let value = if rest.is_empty() {
        let next = item.get(at + 1)?;
        let v = next.strip_suffix(" .")?;
        v.split_once(' ')?.1.to_string() // drop the macro (.Cm, .Ql, .Pa)
    } else {
        rest.strip_suffix('.')?.to_string()
    };
    (!value.contains(' ') && value != "none" && value != "empty").then_some(value)
}

/// The defaults the man page states are the ones the code has.
#[test]
fn man_page_defaults_are_the_real_defaults() {
    let man = read("man/buzon.conf.5");
    let base = "smtp.listen = 127.0.0.1:25\n";
    let defaults = Config::parse(base, "base").unwrap_or_else(|e| panic!("{e}")).render();
    let mut checked = 0;
    for key in all_keys() {
        let Some(value) = man_default(&man, key) else { continue };
        let with = Config::parse(&format!("{base}{key} = {value}\n"), "man")
            .unwrap_or_else(|e| panic!("man/buzon.conf.5 default of {key} does not parse: {e}"));
        let line = |r: &str| r.lines().find(|l| l.starts_with(&format!("{key} ="))).map(str::to_string);
        assert_eq!(
            line(&with.render()),
            line(&defaults),
            "man/buzon.conf.5 states the default of {key} as {value:?}"
        );
        checked += 1;
    }
    assert!(checked >= 12, "only {checked} defaults found in man/buzon.conf.5");
}

#[test]
fn man_pages_pass_mandoc_lint() {
    let mut pages: Vec<PathBuf> = std::fs::read_dir(root().join("man"))
        .unwrap_or_else(|e| panic!("man/: {e}"))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "5" || x == "8"))
        .collect();
    pages.sort();
    assert!(pages.len() >= 2, "expected man/buzon.8 and man/buzon.conf.5, found {pages:?}");
    let out = match Command::new("mandoc").args(["-Tlint", "-Wwarning"]).args(&pages).output() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("note: mandoc not runnable ({e}); man page lint skipped (apt-get install mandoc)");
            return;
        }
    };
    assert!(
        out.status.success(),
        "mandoc -Tlint -Wwarning failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

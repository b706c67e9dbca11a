//! The sendmail(8) command line as Sendmail and Postfix take it: getopt-style letters that may be
//! grouped (`-ti`), option arguments joined or separate (`-fuser`, `-f user`), options and
//! recipients in any order until `--`.

use std::path::PathBuf;

/// What the command is to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `-bm` (default): read a message and submit it.
    Deliver,
    /// `-bs`: an SMTP session on standard input and output.
    Smtp,
    /// `-bp` (`mailq`): list the queue.
    ListQueue,
    /// `-bi` (`newaliases`): check the aliases file.
    Aliases,
    /// `-q`: attempt every queued message now.
    Flush,
    /// `-bv`: say how each recipient would be delivered.
    Verify,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub mode: Mode,
    pub recipients: Vec<String>,
    /// `-t`.
    pub extract: bool,
    /// `-i`, `-oi`: a line with a single dot does not end the message.
    pub ignore_dots: bool,
    /// `-f`/`-r`: the envelope sender ("" for `<>`).
    pub sender: Option<String>,
    /// `-F`.
    pub full_name: Option<String>,
    /// `-C`.
    pub config: Option<PathBuf>,
    /// `-v`.
    pub verbose: bool,
}

/// Options taking an argument that are accepted and ignored, with what they mean elsewhere:
/// -B body type, -N DSN notify, -R DSN return, -X traffic log, -V envelope id, -L syslog label,
/// -h hop count, -p protocol, -O long option, -e error mode.
const IGNORED_WITH_ARG: &str = "BNRXVLhpOe";
/// Flags accepted and ignored: -v verbose (noted), -n no aliasing, -m me too, -G gateway,
/// -U initial submission, -x, -c (old: do not connect).
const IGNORED_FLAGS: &str = "nmGUxc";

/// Parses the arguments after the program name. `prog` is the name it was called by
/// (`newaliases` and `mailq` change the default mode).
pub fn parse(prog: &str, args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        mode: match prog {
            "newaliases" => Mode::Aliases,
            "mailq" => Mode::ListQueue,
            _ => Mode::Deliver,
        },
        recipients: Vec::new(),
        extract: false,
        ignore_dots: false,
        sender: None,
        full_name: None,
        config: None,
        verbose: false,
    };
    let mut i = 0;
    let mut only_operands = false;
    while let Some(arg) = args.get(i) {
        i += 1;
        if only_operands || !arg.starts_with('-') || arg == "-" {
            o.recipients.push(arg.clone());
            continue;
        }
        if arg == "--" {
            only_operands = true;
            continue;
        }
        let letters: Vec<char> = arg.chars().skip(1).collect();
        let mut k = 0;
        while let Some(&c) = letters.get(k) {
            k += 1;
            let takes_arg = "bfrFCoq".contains(c) || IGNORED_WITH_ARG.contains(c);
            if !takes_arg {
                match c {
                    't' => o.extract = true,
                    'i' => o.ignore_dots = true,
                    'v' => o.verbose = true,
                    c if IGNORED_FLAGS.contains(c) => {}
                    c => return Err(format!("unknown option -{c}")),
                }
                continue;
            }
            let joined: String = letters.get(k..).unwrap_or_default().iter().collect();
            // -q and -o take their argument only joined (-q alone is "flush now").
            let value = if !joined.is_empty() || c == 'q' {
                joined
            } else {
                let v = args.get(i).ok_or_else(|| format!("option -{c} needs an argument"))?;
                i += 1;
                v.clone()
            };
            k = letters.len();
            match c {
                'b' => {
                    o.mode = match value.as_str() {
                        "m" => Mode::Deliver,
                        "s" => Mode::Smtp,
                        "p" => Mode::ListQueue,
                        "i" => Mode::Aliases,
                        "v" => Mode::Verify,
                        m => {
                            return Err(format!("-b{m}: mode not supported (use -bm, -bs, -bp, -bi or -bv)"));
                        }
                    }
                }
                'f' | 'r' => o.sender = Some(strip_angles(&value).to_string()),
                'F' => o.full_name = Some(value),
                'C' => o.config = Some(PathBuf::from(value)),
                // sendmail -oi: ignore dots; every other -oX is accepted and ignored.
                'o' if value == "i" => o.ignore_dots = true,
                'o' => {}
                // -q alone flushes; -qInterval (daemon mode) and -qR/-qS/-qI selections flush too.
                'q' => o.mode = Mode::Flush,
                _ => {}
            }
        }
    }
    Ok(o)
}

/// `<addr>` → `addr`, `<>` → "".
fn strip_angles(s: &str) -> &str {
    let t = s.trim();
    t.strip_prefix('<').and_then(|x| x.strip_suffix('>')).unwrap_or(t)
}

/// Splits recipient arguments the way sendmail reads them: each may be an address list
/// (`"Alice <alice@x>, bob"`); the addresses are returned in order.
pub fn recipient_addresses(args: &[String]) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for a in args {
        let list = super::header::address_list(a).map_err(|e| format!("{a:?}: {e}"))?;
        if list.is_empty() && !a.contains(':') {
            return Err(format!("{a:?}: no address"));
        }
        out.extend(list);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Options, String> {
        parse("sendmail", &args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn table() {
        let o = p(&["-oi", "-t"]).unwrap();
        assert!(o.ignore_dots && o.extract && o.recipients.is_empty() && o.mode == Mode::Deliver);
        let o = p(&["-ti", "-fjoe@x.test", "-F", "Joe Bloggs", "bob", "-v", "--", "-weird"]).unwrap();
        assert!(o.extract && o.ignore_dots && o.verbose);
        assert_eq!(o.sender.as_deref(), Some("joe@x.test"));
        assert_eq!(o.full_name.as_deref(), Some("Joe Bloggs"));
        assert_eq!(o.recipients, ["bob", "-weird"]);
        assert_eq!(p(&["-f", "<>", "a"]).unwrap().sender.as_deref(), Some(""));
        assert_eq!(p(&["-r", "<x@y>", "a"]).unwrap().sender.as_deref(), Some("x@y"));
        assert_eq!(p(&["-f", "", "a"]).unwrap().sender.as_deref(), Some(""));
        assert_eq!(p(&["-C", "/etc/x.conf"]).unwrap().config, Some(PathBuf::from("/etc/x.conf")));
        assert_eq!(p(&["-C/etc/y"]).unwrap().config, Some(PathBuf::from("/etc/y")));
        for (args, mode) in [
            (&["-bm"][..], Mode::Deliver),
            (&["-bs"], Mode::Smtp),
            (&["-bp"], Mode::ListQueue),
            (&["-b", "i"], Mode::Aliases),
            (&["-bv", "a"], Mode::Verify),
            (&["-q"], Mode::Flush),
            (&["-q30m"], Mode::Flush),
        ] {
            assert_eq!(p(args).unwrap().mode, mode, "{args:?}");
        }
        // Accepted and ignored.
        let o =
            p(&["-B", "8BITMIME", "-N", "never", "-R", "hdrs", "-X", "/tmp/log", "-odb", "-oem", "-n", "a"])
                .unwrap();
        assert_eq!(o.recipients, ["a"]);
        assert!(!o.ignore_dots);
        assert_eq!(parse("newaliases", &[]).unwrap().mode, Mode::Aliases);
        assert_eq!(parse("mailq", &[]).unwrap().mode, Mode::ListQueue);
    }

    #[test]
    fn errors() {
        for (args, want) in [
            (&["-k"][..], "unknown option -k"),
            (&["-tz"], "unknown option -z"),
            (&["-f"], "needs an argument"),
            (&["-bd"], "not supported"),
            (&["-bt"], "not supported"),
            (&["-F"], "needs an argument"),
        ] {
            let e = p(args).unwrap_err();
            assert!(e.contains(want), "{args:?}: {e}");
        }
    }

    #[test]
    fn recipient_lists() {
        let args: Vec<String> = ["alice", "Bob <bob@x.test>, carol@y.test", "team: d@x.test;"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(recipient_addresses(&args).unwrap(), ["alice", "bob@x.test", "carol@y.test", "d@x.test"]);
        assert!(recipient_addresses(&["<>".to_string()]).is_err());
    }
}

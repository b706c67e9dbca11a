//! IMAP session: the commands valid in every state (RFC 3501 6.1, RFC 9051 6.1): CAPABILITY, NOOP,
//! LOGOUT, ID (RFC 2971); and ENABLE (RFC 5161, RFC 6855 UTF8=ACCEPT, RFC 9051 IMAP4rev2).

use super::{Backend, Outcome, Reply, Session, bad, clean_text, ok};
use crate::imap::types::Command;

impl Session {
    pub(super) fn capability(&mut self, _: &str, _: Command, _: &dyn Backend, out: &mut Vec<u8>) -> Reply {
        out.extend_from_slice(format!("* CAPABILITY {}\r\n", self.capabilities()).as_bytes());
        Some(ok("CAPABILITY completed"))
    }

    pub(super) fn noop(&mut self, _: &str, _: Command, _: &dyn Backend, _: &mut Vec<u8>) -> Reply {
        // RFC 3501 6.1.2: the untagged updates follow from on_command's sync.
        Some(ok("NOOP completed"))
    }

    pub(super) fn logout(&mut self, _: &str, _: Command, _: &dyn Backend, out: &mut Vec<u8>) -> Reply {
        // RFC 3501 6.1.3: BYE, then the tagged OK, then close.
        out.extend_from_slice(b"* BYE buzon IMAP server logging out\r\n");
        Some(ok("LOGOUT completed").then(Outcome::Close))
    }

    /// RFC 2971 3.1: our identity; the client's goes to the log.
    pub(super) fn id(&mut self, _: &str, cmd: Command, _: &dyn Backend, out: &mut Vec<u8>) -> Reply {
        if let Command::Id(Some(fields)) = &cmd {
            let get = |k: &str| {
                fields.iter().find(|(n, _)| n.eq_ignore_ascii_case(k)).and_then(|(_, v)| v.as_deref())
            };
            if let Some(name) = get("name") {
                log::info!(
                    "session={} event=imap_id name=\"{}\" version=\"{}\"",
                    self.peer.sid,
                    clean_text(name),
                    clean_text(get("version").unwrap_or("-"))
                );
            }
        }
        out.extend_from_slice(
            format!("* ID (\"name\" \"buzon\" \"version\" \"{}\")\r\n", env!("CARGO_PKG_VERSION")).as_bytes(),
        );
        Some(ok("ID completed"))
    }

    /// RFC 5161 3.1: ENABLED lists what this command turned on.
    pub(super) fn enable(&mut self, _: &str, cmd: Command, _: &dyn Backend, out: &mut Vec<u8>) -> Reply {
        let Command::Enable(caps) = cmd else { return Some(bad("Internal error")) };
        let mut line = String::from("* ENABLED");
        let mut extra = Vec::new();
        for cap in caps {
            // Unknown names are ignored (RFC 5161 3.1); ENABLED lists only what is new.
            if cap.eq_ignore_ascii_case("IMAP4rev2") && !self.rev2 {
                self.rev2 = true;
                line.push_str(" IMAP4rev2");
            } else if cap.eq_ignore_ascii_case("UTF8=ACCEPT") && !self.utf8_accept {
                self.utf8_accept = true;
                line.push_str(" UTF8=ACCEPT");
            } else if cap.eq_ignore_ascii_case("QRESYNC") && !self.qresync {
                // RFC 7162 3.2.3: QRESYNC implies CONDSTORE.
                self.qresync = true;
                let mut ok_line = Vec::new();
                let _ = self.use_condstore(&mut ok_line, false);
                extra.extend_from_slice(&ok_line);
                line.push_str(" QRESYNC");
            } else if cap.eq_ignore_ascii_case("CONDSTORE") && !self.condstore {
                // RFC 7162 3.1: the selected mailbox's HIGHESTMODSEQ follows, if any.
                let mut ok_line = Vec::new();
                let _ = self.use_condstore(&mut ok_line, false);
                extra.extend_from_slice(&ok_line);
                line.push_str(" CONDSTORE");
            }
        }
        line.push_str("\r\n");
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(&extra);
        Some(ok("ENABLE completed"))
    }
}

//! The SMTP server state machine, free of I/O: lines in, replies and "what to read next" out
//! (RFC 5321 3 and 4.1.4 command order; RFC 1870 SIZE; RFC 2920 PIPELINING; RFC 3030 CHUNKING;
//! RFC 6152 8BITMIME; RFC 6531 SMTPUTF8; RFC 2034 / RFC 3463 enhanced status codes).
//!
//! The caller (the connection glue) reads a line, calls [`Session::on_line`], writes the reply and
//! follows [`Next`]: after `Data` it decodes the message with `DataDecoder` and calls
//! [`Session::on_message`]; after `Chunk` it reads exactly `size` octets and, unless `discard` is set,
//! calls [`Session::on_chunk`] (not LAST) or [`Session::on_message`] (LAST). Every command is checked
//! against one dispatch table ([`TABLE`]) listing its handler and the phases where it is allowed.

use std::net::IpAddr;
use std::sync::Arc;

use crate::addr::Address;
use crate::smtp::command::{self, Body, Command, CommandError, RcptTo, Verb};
use crate::smtp::reply::Reply;

/// Limits and names a session needs (built once from the configuration).
#[derive(Clone, Debug)]
pub struct Params {
    pub hostname: String,
    /// RFC 1870 SIZE, octets.
    pub message_size_limit: u64,
    pub max_recipients: usize,
    /// Error replies after which the next command gets `421 4.7.0 ... too many errors` (as Postfix's
    /// smtpd_hard_error_limit).
    pub max_errors: usize,
}

/// The client at the other end.
#[derive(Clone, Debug)]
pub struct Peer {
    pub ip: IpAddr,
    pub port: u16,
    /// The client may send mail to non-local domains (relay.networks, later AUTH).
    pub relay_allowed: bool,
}

/// What the recipient lookup says about one RCPT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RcptCheck {
    Accept,
    /// The domain is not one of ours.
    NotLocal,
    /// Our domain, no such user.
    UnknownUser,
    /// Lookup failed for now (e.g. user database unreadable): 4xx.
    Temp(String),
    /// Refused for good for another reason: 5xx.
    Perm(String),
}

/// Recipient validation, supplied by the caller.
pub trait Recipients {
    fn check(&self, rcpt: &Address) -> RcptCheck;
}

/// What the caller reads next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Next {
    /// Another command line.
    Command,
    /// Write the reply (if any) and close the connection.
    Close,
    /// Message text after DATA: decode it, then call [`Session::on_message`].
    Data,
    /// Read exactly `size` octets after the BDAT line. With `discard` false, then call `on_chunk` (not
    /// `last`) or `on_message` (`last`); the reply is `None` and comes from that call. With `discard` true
    /// the step already carries the error reply (its place among the replies is what counts, so it may be
    /// written before the octets are skipped); the octets are thrown away, and a following `on_chunk` or
    /// `on_message` call is optional and answers nothing.
    Chunk { size: u64, last: bool, discard: bool },
}

/// The result of one event: an optional reply to write, and what to do next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub reply: Option<Reply>,
    pub next: Next,
}

impl Step {
    fn reply(reply: Reply) -> Step {
        Step { reply: Some(reply), next: Next::Command }
    }
    fn close(reply: Reply) -> Step {
        Step { reply: Some(reply), next: Next::Close }
    }
}

/// The mail transaction in progress (RFC 5321 3.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transaction {
    /// `None` for the null reverse-path `<>`.
    pub sender: Option<Address>,
    /// Accepted recipients, without duplicates.
    pub recipients: Vec<Address>,
    /// RFC 6531 SMTPUTF8 was given on MAIL.
    pub smtputf8: bool,
    /// RFC 6152 BODY=8BITMIME was given on MAIL.
    pub eight_bit: bool,
    /// RFC 1870 SIZE= from MAIL.
    pub declared_size: Option<u64>,
}

/// What became of a message after DATA or BDAT LAST.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MessageResult {
    /// Durably stored (RFC 5321 6.1: only now may we say 250).
    Stored { queue_id: String },
    /// Over `message_size_limit`.
    TooBig,
    /// Could not store it now: 4xx, the client retries.
    Temp(String),
    /// Refused for good: 5xx.
    Perm(String),
}

/// Where the session is in the command sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Before HELO/EHLO.
    Connected,
    /// Greeted, no transaction.
    Ready,
    /// MAIL accepted; RCPTs may follow.
    Mail,
    /// At least one non-LAST BDAT chunk accepted.
    Bdat,
    /// A BDAT chunk failed; further chunks are discarded until BDAT LAST or RSET (RFC 3030 2).
    BdatFailed,
    /// 354 sent; waiting for `on_message`.
    ReadingData,
    /// BDAT accepted; waiting for `on_chunk`/`on_message`.
    ReadingChunk { last: bool },
    /// QUIT answered or 421 sent.
    Closed,
}

use Phase::{Bdat, BdatFailed, Connected, Mail, Ready};

const ANY: &[Phase] = &[Connected, Ready, Mail, Bdat, BdatFailed];

type Handler = fn(&mut Session, Command, &dyn Recipients) -> Step;

/// One row of the dispatch table.
pub struct Entry {
    pub verb: Verb,
    /// Phases in which the command is accepted; elsewhere [`Session::refuse`] answers.
    pub allowed: &'static [Phase],
    handler: Handler,
}

/// RFC 5321 4.1.4 command order, in one place.
pub const TABLE: &[Entry] = &[
    Entry { verb: Verb::Helo, allowed: ANY, handler: Session::helo },
    Entry { verb: Verb::Ehlo, allowed: ANY, handler: Session::helo },
    Entry { verb: Verb::Mail, allowed: &[Ready, BdatFailed], handler: Session::mail },
    Entry { verb: Verb::Rcpt, allowed: &[Mail], handler: Session::rcpt },
    Entry { verb: Verb::Data, allowed: &[Mail], handler: Session::data },
    Entry { verb: Verb::Bdat, allowed: &[Mail, Bdat], handler: Session::bdat },
    Entry { verb: Verb::Rset, allowed: ANY, handler: Session::rset },
    Entry { verb: Verb::Noop, allowed: ANY, handler: Session::simple },
    Entry { verb: Verb::Quit, allowed: ANY, handler: Session::simple },
    Entry { verb: Verb::Vrfy, allowed: ANY, handler: Session::simple },
    Entry { verb: Verb::Help, allowed: ANY, handler: Session::simple },
    Entry { verb: Verb::Expn, allowed: ANY, handler: Session::simple },
    Entry { verb: Verb::StartTls, allowed: ANY, handler: Session::simple },
    Entry { verb: Verb::Auth, allowed: ANY, handler: Session::simple },
];

/// One SMTP server conversation.
pub struct Session {
    params: Arc<Params>,
    peer: Peer,
    phase: Phase,
    helo: Option<String>,
    ehlo: bool,
    transaction: Option<Transaction>,
    /// Octets announced by accepted BDAT commands of this transaction.
    bdat_octets: u64,
    errors: usize,
    /// 452 too-many-recipients replies, counted as errors only beyond another `max_recipients`.
    rcpt_overshoot: usize,
    /// A refused BDAT chunk was just answered; the caller may still report it (`on_chunk`/`on_message`).
    discarded_chunk: bool,
}

impl Session {
    pub fn new(params: Arc<Params>, peer: Peer) -> Session {
        Session {
            params,
            peer,
            phase: Connected,
            helo: None,
            ehlo: false,
            transaction: None,
            bdat_octets: 0,
            errors: 0,
            rcpt_overshoot: 0,
            discarded_chunk: false,
        }
    }

    /// RFC 5321 4.3.1: `220 <hostname> ESMTP buzon`.
    pub fn greeting(&self) -> Reply {
        Reply::greeting(&self.params.hostname)
    }

    /// Sent instead of the greeting when no worker is free.
    pub fn busy(hostname: &str) -> Reply {
        Reply::busy(hostname)
    }

    pub fn on_timeout(&mut self) -> Reply {
        self.phase = Phase::Closed;
        Reply::timeout(&self.params.hostname)
    }

    pub fn on_shutdown(&mut self) -> Reply {
        self.phase = Phase::Closed;
        Reply::shutting_down(&self.params.hostname)
    }

    pub fn transaction(&self) -> Option<&Transaction> {
        self.transaction.as_ref()
    }

    pub fn helo_name(&self) -> Option<&str> {
        self.helo.as_deref()
    }

    pub fn peer(&self) -> &Peer {
        &self.peer
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Error replies so far.
    pub fn errors(&self) -> usize {
        self.errors
    }

    /// The `with` protocol name for Received: (RFC 3848, RFC 6531 3.7.3).
    pub fn protocol(&self) -> &'static str {
        match (self.ehlo, self.transaction.as_ref().is_some_and(|t| t.smtputf8)) {
            (true, true) => "UTF8SMTP",
            (true, false) => "ESMTP",
            (false, _) => "SMTP",
        }
    }

    /// One command line, CRLF stripped.
    pub fn on_line(&mut self, line: &[u8], rcpts: &dyn Recipients) -> Step {
        self.discarded_chunk = false;
        if let Some(step) = self.precheck() {
            return step;
        }
        let cmd = match command::parse(line) {
            Ok(cmd) => cmd,
            // RFC 3030 2: without a valid size we cannot tell chunk octets from commands, and reading
            // them as commands would let message text be taken for SMTP commands: hang up.
            Err(CommandError::Syntax(Verb::Bdat)) => {
                self.phase = Phase::Closed;
                let text = format!("{} Error: bad BDAT syntax, closing", self.params.hostname);
                return Step::close(Reply::new(421, "4.5.4", text));
            }
            Err(e) => return self.fail(e.reply()),
        };
        let Some(entry) = TABLE.iter().find(|e| e.verb == cmd.verb()) else {
            return self.fail(Reply::not_recognized());
        };
        if entry.allowed.contains(&self.phase) {
            (entry.handler)(self, cmd, rcpts)
        } else {
            self.refuse(&cmd)
        }
    }

    /// A command line longer than the limit was read (and skipped) by the caller.
    pub fn on_line_too_long(&mut self) -> Step {
        self.discarded_chunk = false;
        if let Some(step) = self.precheck() {
            return step;
        }
        self.fail(Reply::line_too_long())
    }

    /// A non-LAST BDAT chunk was read; `too_big` when the caller could not take it.
    pub fn on_chunk(&mut self, size: u64, too_big: bool) -> Step {
        if std::mem::take(&mut self.discarded_chunk) {
            return Step { reply: None, next: Next::Command };
        }
        if self.phase != (Phase::ReadingChunk { last: false }) {
            return self.out_of_order();
        }
        if too_big {
            self.abort_bdat(false);
            return self.fail(Reply::too_big());
        }
        self.phase = Bdat;
        Step::reply(Reply::chunk_received(size))
    }

    /// The message after DATA, or the BDAT LAST chunk, was read and handled.
    pub fn on_message(&mut self, result: MessageResult) -> Step {
        if std::mem::take(&mut self.discarded_chunk) {
            return Step { reply: None, next: Next::Command };
        }
        if !matches!(self.phase, Phase::ReadingData | Phase::ReadingChunk { last: true }) {
            return self.out_of_order();
        }
        self.reset_transaction();
        self.phase = Ready;
        match result {
            MessageResult::Stored { queue_id } => Step::reply(Reply::queued(&queue_id)),
            MessageResult::TooBig => self.fail(Reply::too_big()),
            // Storage trouble is ours, not the client's: not counted as a client error.
            MessageResult::Temp(m) => Step::reply(Reply::new(451, "4.3.0", m)),
            MessageResult::Perm(m) => Step::reply(Reply::new(554, "5.3.0", m)),
        }
    }

    // --- internals ---

    /// Checks done before any command: closed session, caller misuse, error limit.
    fn precheck(&mut self) -> Option<Step> {
        match self.phase {
            Phase::Closed => return Some(Step { reply: None, next: Next::Close }),
            Phase::ReadingData | Phase::ReadingChunk { .. } => return Some(self.out_of_order()),
            _ => {}
        }
        if self.errors >= self.params.max_errors {
            self.phase = Phase::Closed;
            return Some(Step::close(Reply::too_many_errors(&self.params.hostname)));
        }
        None
    }

    /// The caller broke the protocol between session and glue; fail safe by closing.
    fn out_of_order(&mut self) -> Step {
        self.phase = Phase::Closed;
        Step::close(Reply::new(421, "4.3.0", format!("{} Error: internal error", self.params.hostname)))
    }

    /// An error reply to the client, counted towards `max_errors`.
    fn fail(&mut self, reply: Reply) -> Step {
        self.errors += 1;
        Step::reply(reply)
    }

    fn reset_transaction(&mut self) {
        self.transaction = None;
        self.bdat_octets = 0;
        self.rcpt_overshoot = 0;
    }

    /// A BDAT chunk failed: the transaction is dead; later chunks are discarded until LAST.
    fn abort_bdat(&mut self, last: bool) {
        self.reset_transaction();
        self.phase = if last { Ready } else { BdatFailed };
    }

    /// Answer for a command outside the phases the table allows.
    fn refuse(&mut self, cmd: &Command) -> Step {
        let text = match (cmd.verb(), self.phase) {
            (Verb::Mail, Connected) => "send HELO/EHLO first",
            (Verb::Mail, _) => "nested MAIL command",
            (Verb::Rcpt, Bdat) => "RCPT after BDAT",
            (Verb::Rcpt, _) => "need MAIL command",
            (Verb::Data, Bdat) => "DATA after BDAT",
            (Verb::Data, _) => "need RCPT command",
            (Verb::Bdat, BdatFailed) => "previous BDAT failed, send RSET",
            (Verb::Bdat, Connected | Ready) => "need MAIL command",
            _ => "bad sequence of commands",
        };
        let step = self.fail(Reply::bad_sequence(text));
        match *cmd {
            // RFC 3030 2: the octets of a refused BDAT are still read (and thrown away).
            Command::Bdat { size, last } => {
                if last && self.phase == BdatFailed {
                    self.phase = Ready;
                }
                self.discarded_chunk = true;
                Step { reply: step.reply, next: Next::Chunk { size, last, discard: true } }
            }
            _ => step,
        }
    }

    fn helo(&mut self, cmd: Command, _: &dyn Recipients) -> Step {
        // RFC 5321 4.1.4: HELO/EHLO in a session also resets any transaction (as RSET).
        self.reset_transaction();
        self.phase = Ready;
        let host = &self.params.hostname;
        match cmd {
            Command::Ehlo(name) => {
                self.helo = Some(name);
                self.ehlo = true;
                let lines = vec![
                    host.clone(),
                    "PIPELINING".into(),                                // RFC 2920
                    format!("SIZE {}", self.params.message_size_limit), // RFC 1870
                    "8BITMIME".into(),                                  // RFC 6152
                    "ENHANCEDSTATUSCODES".into(),                       // RFC 2034
                    "SMTPUTF8".into(),                                  // RFC 6531
                    "CHUNKING".into(),                                  // RFC 3030
                ];
                Step::reply(Reply::lines(250, "", lines))
            }
            Command::Helo(name) => {
                self.helo = Some(name);
                self.ehlo = false;
                Step::reply(Reply::new(250, "", host.clone()))
            }
            _ => self.out_of_order(),
        }
    }

    fn mail(&mut self, cmd: Command, _: &dyn Recipients) -> Step {
        let Command::Mail { from, params } = cmd else { return self.out_of_order() };
        // RFC 6531 3.4: a non-ASCII address needs SMTPUTF8 on MAIL.
        if from.as_ref().is_some_and(|a| !a.is_ascii()) && !params.smtputf8 {
            return self.fail(Reply::new(553, "5.6.7", "Error: non-ASCII sender address needs SMTPUTF8"));
        }
        // RFC 1870 6.2: refuse a declared size over the limit right away.
        if params.size.is_some_and(|s| s > self.params.message_size_limit) {
            return self.fail(Reply::too_big());
        }
        self.reset_transaction();
        self.transaction = Some(Transaction {
            sender: from,
            recipients: Vec::new(),
            smtputf8: params.smtputf8,
            eight_bit: params.body == Some(Body::EightBitMime),
            declared_size: params.size,
        });
        self.phase = Mail;
        Step::reply(Reply::sender_ok())
    }

    fn rcpt(&mut self, cmd: Command, rcpts: &dyn Recipients) -> Step {
        let Command::Rcpt { to, .. } = cmd else { return self.out_of_order() };
        let Some(t) = self.transaction.as_ref() else { return self.out_of_order() };
        let smtputf8 = t.smtputf8;
        // RFC 5321 4.5.3.1.8: refuse recipients over the limit with 452, the client sends them later.
        if t.recipients.len() >= self.params.max_recipients {
            self.rcpt_overshoot += 1;
            if self.rcpt_overshoot > self.params.max_recipients {
                self.errors += 1;
            }
            return Step::reply(Reply::too_many_recipients());
        }
        let addr = match to {
            // RFC 5321 4.5.1: <Postmaster> is always accepted for delivery to this host's postmaster.
            RcptTo::Postmaster => Address::new_unchecked("postmaster", &self.params.hostname),
            RcptTo::Address(a) => a,
        };
        if !addr.is_ascii() && !smtputf8 {
            let text = format!("<{addr}>: Recipient address needs SMTPUTF8");
            return self.fail(Reply::new(553, "5.6.7", text));
        }
        let reply = match rcpts.check(&addr) {
            RcptCheck::Accept => {
                if let Some(t) = self.transaction.as_mut()
                    && !t.recipients.contains(&addr)
                {
                    t.recipients.push(addr);
                }
                return Step::reply(Reply::recipient_ok());
            }
            RcptCheck::NotLocal if self.peer.relay_allowed => {
                Reply::new(550, "5.3.3", format!("<{addr}>: Delivery to other domains is not available yet"))
            }
            RcptCheck::NotLocal => Reply::new(554, "5.7.1", format!("<{addr}>: Relay access denied")),
            RcptCheck::UnknownUser => {
                Reply::new(550, "5.1.1", format!("<{addr}>: Recipient address rejected: User unknown"))
            }
            RcptCheck::Temp(m) => Reply::new(451, "4.3.0", format!("<{addr}>: {m}")),
            RcptCheck::Perm(m) => Reply::new(550, "5.1.1", format!("<{addr}>: {m}")),
        };
        self.fail(reply)
    }

    fn has_recipients(&self) -> bool {
        self.transaction.as_ref().is_some_and(|t| !t.recipients.is_empty())
    }

    fn data(&mut self, _: Command, _: &dyn Recipients) -> Step {
        if !self.has_recipients() {
            return self.fail(Reply::bad_sequence("no valid recipients"));
        }
        self.phase = Phase::ReadingData;
        Step { reply: Some(Reply::start_data()), next: Next::Data }
    }

    fn bdat(&mut self, cmd: Command, _: &dyn Recipients) -> Step {
        let Command::Bdat { size, last } = cmd else { return self.out_of_order() };
        let discard = |s: &mut Session, reply: Reply| {
            s.errors += 1;
            s.discarded_chunk = true;
            Step { reply: Some(reply), next: Next::Chunk { size, last, discard: true } }
        };
        if !self.has_recipients() {
            return discard(self, Reply::bad_sequence("no valid recipients"));
        }
        // RFC 3030 2 / RFC 1870: chunk sizes are message octets; refuse as soon as the sum is too big.
        let total = self.bdat_octets.saturating_add(size);
        if total > self.params.message_size_limit {
            self.abort_bdat(last);
            return discard(self, Reply::too_big());
        }
        self.bdat_octets = total;
        self.phase = Phase::ReadingChunk { last };
        Step { reply: None, next: Next::Chunk { size, last, discard: false } }
    }

    fn rset(&mut self, _: Command, _: &dyn Recipients) -> Step {
        self.reset_transaction();
        if self.phase != Connected {
            self.phase = Ready;
        }
        Step::reply(Reply::ok())
    }

    /// Commands that do not touch the transaction.
    fn simple(&mut self, cmd: Command, _: &dyn Recipients) -> Step {
        match cmd {
            Command::Noop => Step::reply(Reply::ok()),
            Command::Quit => {
                self.phase = Phase::Closed;
                Step::close(Reply::bye())
            }
            // RFC 5321 3.5.3: do not reveal users; 252 says "will accept and try".
            Command::Vrfy(_) => Step::reply(Reply::vrfy()),
            Command::Help(_) => Step::reply(Reply::new(
                214,
                "2.0.0",
                "Commands: HELO EHLO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP",
            )),
            // RFC 5321 3.5.2: EXPN may be disabled; STARTTLS and AUTH are not offered yet.
            _ => self.fail(Reply::not_implemented()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    /// example.org has alice, bob and postmaster; tmp@ fails temporarily, perm@ permanently.
    #[derive(Default)]
    struct Users {
        asked: RefCell<Vec<String>>,
    }

    impl Recipients for Users {
        fn check(&self, rcpt: &Address) -> RcptCheck {
            self.asked.borrow_mut().push(rcpt.to_string());
            if rcpt.domain() != "example.org" && rcpt.domain() != "mx.example.org" {
                return RcptCheck::NotLocal;
            }
            match rcpt.local() {
                "alice" | "bob" | "postmaster" | "jörg" => RcptCheck::Accept,
                "tmp" => RcptCheck::Temp("Temporary lookup failure".into()),
                "perm" => RcptCheck::Perm("Mailbox disabled".into()),
                _ => RcptCheck::UnknownUser,
            }
        }
    }

    fn params(max_errors: usize) -> Arc<Params> {
        Arc::new(Params {
            hostname: "mx.example.org".into(),
            message_size_limit: 1000,
            max_recipients: 3,
            max_errors,
        })
    }

    fn session_with(relay: bool, max_errors: usize) -> Session {
        let peer = Peer { ip: "192.0.2.7".parse().unwrap(), port: 40000, relay_allowed: relay };
        Session::new(params(max_errors), peer)
    }

    fn session() -> Session {
        session_with(false, 100)
    }

    fn wire(step: &Step) -> String {
        step.reply.as_ref().map(|r| String::from_utf8(r.to_bytes()).unwrap()).unwrap_or_default()
    }

    /// Feeds lines and checks each reply starts with the expected text; returns the last step.
    fn script(s: &mut Session, users: &Users, lines: &[(&str, &str)]) -> Step {
        let mut last = Step { reply: None, next: Next::Command };
        for (line, want) in lines {
            last = s.on_line(line.as_bytes(), users);
            let got = wire(&last);
            assert!(got.starts_with(want), "{line:?}: got {got:?}, want {want:?}");
        }
        last
    }

    fn chunk(size: u64, last: bool, discard: bool) -> Next {
        Next::Chunk { size, last, discard }
    }

    #[test]
    fn full_transaction_like_rfc5321_appendix_d() {
        let (mut s, users) = (session(), Users::default());
        assert_eq!(s.greeting().to_string(), "220 mx.example.org ESMTP buzon");
        let ehlo = s.on_line(b"EHLO bar.example.com", &users);
        assert_eq!(
            wire(&ehlo),
            "250-mx.example.org\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250-8BITMIME\r\n\
             250-ENHANCEDSTATUSCODES\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n"
        );
        assert_eq!(s.protocol(), "ESMTP");
        let step = script(
            &mut s,
            &users,
            &[
                ("MAIL FROM:<Smith@bar.example.com>", "250 2.1.0 Ok\r\n"),
                ("RCPT TO:<Jones@example.org>", "550 5.1.1 <Jones@example.org>: Recipient address rejected"),
                ("RCPT TO:<alice@Example.ORG>", "250 2.1.5 Ok\r\n"),
                ("RCPT TO:<bob@example.org>", "250 2.1.5 Ok\r\n"),
                ("DATA", "354 End data with <CR><LF>.<CR><LF>\r\n"),
            ],
        );
        assert_eq!(step.next, Next::Data);
        let t = s.transaction().unwrap();
        assert_eq!(t.sender.as_ref().unwrap().to_string(), "Smith@bar.example.com");
        let rcpts: Vec<String> = t.recipients.iter().map(|a| a.to_string()).collect();
        assert_eq!(rcpts, ["alice@example.org", "bob@example.org"]);
        assert_eq!(s.helo_name(), Some("bar.example.com"));
        let done = s.on_message(MessageResult::Stored { queue_id: "4Xq1".into() });
        assert_eq!(wire(&done), "250 2.0.0 Ok: queued as 4Xq1\r\n");
        assert_eq!(done.next, Next::Command);
        assert!(s.transaction().is_none());
        let quit = script(&mut s, &users, &[("QUIT", "221 2.0.0 Bye\r\n")]);
        assert_eq!(quit.next, Next::Close);
        assert_eq!(s.on_line(b"NOOP", &users), Step { reply: None, next: Next::Close });
    }

    #[test]
    fn helo_and_protocol_names() {
        let (mut s, users) = (session(), Users::default());
        assert_eq!(wire(&s.on_line(b"HELO client", &users)), "250 mx.example.org\r\n");
        assert_eq!(s.protocol(), "SMTP");
        script(&mut s, &users, &[("EHLO client", "250-"), ("MAIL FROM:<a@b.c> SMTPUTF8", "250 2.1.0")]);
        assert_eq!(s.protocol(), "UTF8SMTP");
        script(&mut s, &users, &[("RSET", "250 2.0.0 Ok")]);
        assert_eq!(s.protocol(), "ESMTP");
    }

    #[test]
    fn pipelined_group_with_rejections() {
        // RFC 2920 3.1: MAIL, RCPTs and DATA sent together; each gets its own reply, in order.
        let (mut s, users) = (session(), Users::default());
        let step = script(
            &mut s,
            &users,
            &[
                ("EHLO c", "250-"),
                ("MAIL FROM:<> BODY=8BITMIME SIZE=500", "250 2.1.0"),
                ("RCPT TO:<nobody@example.org>", "550 5.1.1"),
                ("RCPT TO:<x@elsewhere.net>", "554 5.7.1 <x@elsewhere.net>: Relay access denied"),
                ("DATA", "503 5.5.1 Error: no valid recipients"),
                ("RCPT TO:<alice@example.org>", "250 2.1.5"),
                ("DATA", "354 "),
            ],
        );
        assert_eq!(step.next, Next::Data);
        let t = s.transaction().unwrap();
        assert_eq!((t.sender.clone(), t.eight_bit, t.declared_size), (None, true, Some(500)));
        assert_eq!(s.errors(), 3);
    }

    #[test]
    fn sequence_and_syntax_errors() {
        // (prelude, line, reply)
        let cases: &[(&[&str], &str, &str)] = &[
            (&[], "MAIL FROM:<a@b.c>", "503 5.5.1 Error: send HELO/EHLO first"),
            (&[], "RCPT TO:<alice@example.org>", "503 5.5.1 Error: need MAIL command"),
            (&[], "DATA", "503 5.5.1 Error: need RCPT command"),
            (&[], "HELO", "501 5.5.4 Syntax: HELO hostname"),
            (&[], "EHLO", "501 5.5.4 Syntax: EHLO hostname"),
            (&[], "", "500 5.5.2"),
            (&[], "XYZZY", "500 5.5.2 Error: command not recognized"),
            (&[], "STARTTLS", "502 5.5.1"),
            (&[], "AUTH PLAIN", "502 5.5.1"),
            (&[], "EXPN staff", "502 5.5.1"),
            (&[], "VRFY alice", "252 2.0.0 Send some mail, I'll try my best"),
            (&[], "HELP", "214 2.0.0"),
            (&[], "NOOP", "250 2.0.0 Ok"),
            (&[], "RSET", "250 2.0.0 Ok"),
            (&["EHLO c"], "RCPT TO:<alice@example.org>", "503 5.5.1 Error: need MAIL command"),
            (&["EHLO c"], "DATA", "503 5.5.1 Error: need RCPT command"),
            (&["EHLO c"], "MAIL FROM:<a@b.c> SIZE=1001", "552 5.3.4 Message size exceeds fixed limit"),
            (&["EHLO c"], "MAIL FROM:<a@-b.c>", "501 5.1.7"),
            (&["EHLO c"], "MAIL FROM:<a@b.c> FOO=1", "555 5.5.4 Unsupported option: FOO"),
            (&["EHLO c"], "MAIL FROM:<jörg@b.c>", "553 5.6.7"),
            (&["EHLO c"], "MAIL FROM:<a@b.c> SMTPUTF8 SIZE=1000", "250 2.1.0"),
            (&["EHLO c", "MAIL FROM:<a@b.c>"], "MAIL FROM:<a@b.c>", "503 5.5.1 Error: nested MAIL command"),
            (&["EHLO c", "MAIL FROM:<a@b.c>"], "DATA", "503 5.5.1 Error: no valid recipients"),
            (&["EHLO c", "MAIL FROM:<a@b.c>"], "RCPT TO:<>", "501 5.1.3"),
            (&["EHLO c", "MAIL FROM:<a@b.c>"], "RCPT TO:<a@b.c> NOTIFY=NEVER", "555 5.5.4"),
            (&["EHLO c", "MAIL FROM:<a@b.c>"], "RCPT TO:<jörg@example.org>", "553 5.6.7"),
            (&["EHLO c", "MAIL FROM:<a@b.c> SMTPUTF8"], "RCPT TO:<jörg@example.org>", "250 2.1.5"),
            (
                &["EHLO c", "MAIL FROM:<a@b.c>"],
                "RCPT TO:<tmp@example.org>",
                "451 4.3.0 <tmp@example.org>: Temp",
            ),
            (
                &["EHLO c", "MAIL FROM:<a@b.c>"],
                "RCPT TO:<perm@example.org>",
                "550 5.1.1 <perm@example.org>: Mail",
            ),
            (
                &["EHLO c", "MAIL FROM:<a@b.c>"],
                "RCPT TO:<u@other.net>",
                "554 5.7.1 <u@other.net>: Relay access denied",
            ),
            (
                &["EHLO c", "MAIL FROM:<a@b.c>", "RCPT TO:<bob@example.org>"],
                "DATA x",
                "501 5.5.4 Syntax: DATA",
            ),
        ];
        for (prelude, line, want) in cases {
            let (mut s, users) = (session(), Users::default());
            for p in *prelude {
                let r = s.on_line(p.as_bytes(), &users);
                assert!(!r.reply.as_ref().unwrap().is_error(), "prelude {p}");
            }
            let got = wire(&s.on_line(line.as_bytes(), &users));
            assert!(got.starts_with(want), "{prelude:?} {line:?}: got {got:?}, want {want:?}");
            let is_error = want.starts_with('4') || want.starts_with('5');
            assert_eq!(s.errors(), usize::from(is_error), "{line}");
        }
    }

    #[test]
    fn non_utf8_and_too_long_lines() {
        let (mut s, users) = (session(), Users::default());
        assert!(wire(&s.on_line(b"HELO \xff", &users)).starts_with("500 5.5.2 Error: bad UTF-8 syntax"));
        assert_eq!(wire(&s.on_line_too_long()), "500 5.5.2 Line too long\r\n");
        assert_eq!(s.errors(), 2);
    }

    #[test]
    fn relay_allowed_but_not_implemented() {
        let (mut s, users) = (session_with(true, 100), Users::default());
        script(
            &mut s,
            &users,
            &[
                ("EHLO c", "250-"),
                ("MAIL FROM:<a@b.c>", "250"),
                (
                    "RCPT TO:<u@other.net>",
                    "550 5.3.3 <u@other.net>: Delivery to other domains is not available yet",
                ),
            ],
        );
    }

    #[test]
    fn postmaster_and_duplicates() {
        let (mut s, users) = (session(), Users::default());
        script(
            &mut s,
            &users,
            &[
                ("EHLO c", "250-"),
                ("MAIL FROM:<>", "250 2.1.0"),
                ("RCPT TO:<PostMaster>", "250 2.1.5"),
                ("RCPT TO:<@relay.example:alice@example.org>", "250 2.1.5"),
                ("RCPT TO:<alice@EXAMPLE.org>", "250 2.1.5"),
            ],
        );
        assert_eq!(
            *users.asked.borrow(),
            ["postmaster@mx.example.org", "alice@example.org", "alice@example.org"]
        );
        let got: Vec<String> = s.transaction().unwrap().recipients.iter().map(|a| a.to_string()).collect();
        assert_eq!(got, ["postmaster@mx.example.org", "alice@example.org"]);
    }

    #[test]
    fn too_many_recipients() {
        let (mut s, users) = (session(), Users::default());
        script(
            &mut s,
            &users,
            &[
                ("EHLO c", "250-"),
                ("MAIL FROM:<a@b.c>", "250"),
                ("RCPT TO:<alice@example.org>", "250"),
                ("RCPT TO:<bob@example.org>", "250"),
                ("RCPT TO:<postmaster@example.org>", "250"),
                ("RCPT TO:<jones@example.org>", "452 4.5.3 Error: too many recipients"),
            ],
        );
        assert_eq!(s.errors(), 0, "a bounded overshoot is not an error");
        assert_eq!(s.transaction().unwrap().recipients.len(), 3);
    }

    #[test]
    fn too_many_errors_closes() {
        let (mut s, users) = (session_with(false, 3), Users::default());
        script(
            &mut s,
            &users,
            &[("EHLO c", "250-"), ("FOO", "500"), ("BAR", "500"), ("MAIL FROM:<x>", "501")],
        );
        let step = s.on_line(b"NOOP", &users);
        assert_eq!(wire(&step), "421 4.7.0 mx.example.org Error: too many errors\r\n");
        assert_eq!(step.next, Next::Close);
        // Likewise for an over-long line once the limit is reached.
        let mut s = session_with(false, 1);
        s.on_line_too_long();
        assert_eq!(s.on_line_too_long().next, Next::Close);
    }

    #[test]
    fn message_results() {
        let cases = [
            (MessageResult::TooBig, "552 5.3.4 Message size exceeds fixed limit\r\n", 1),
            (MessageResult::Temp("Error: queue file write error".into()), "451 4.3.0 Error: queue file", 0),
            (MessageResult::Perm("Error: message rejected".into()), "554 5.3.0 Error: message rejected", 0),
        ];
        for (result, want, errors) in cases {
            let (mut s, users) = (session(), Users::default());
            let lines =
                [("EHLO c", "250-"), ("MAIL FROM:<a@b.c>", "250"), ("RCPT TO:<bob@example.org>", "250")];
            script(&mut s, &users, &lines);
            assert_eq!(s.on_line(b"DATA", &users).next, Next::Data);
            let step = s.on_message(result);
            assert!(wire(&step).starts_with(want), "{}", wire(&step));
            assert_eq!(s.errors(), errors);
            assert!(s.transaction().is_none());
            // The session is ready for the next transaction.
            script(&mut s, &users, &lines[1..]);
        }
    }

    #[test]
    fn bdat_transaction() {
        let (mut s, users) = (session(), Users::default());
        script(
            &mut s,
            &users,
            &[("EHLO c", "250-"), ("MAIL FROM:<a@b.c>", "250"), ("RCPT TO:<bob@example.org>", "250")],
        );
        let step = s.on_line(b"BDAT 400", &users);
        assert_eq!(step, Step { reply: None, next: chunk(400, false, false) });
        assert_eq!(wire(&s.on_chunk(400, false)), "250 2.0.0 400 octets received\r\n");
        script(
            &mut s,
            &users,
            &[("DATA", "503 5.5.1 Error: DATA after BDAT"), ("RCPT TO:<alice@example.org>", "503 5.5.1")],
        );
        let step = s.on_line(b"BDAT 600 LAST", &users);
        assert_eq!(step, Step { reply: None, next: chunk(600, true, false) });
        // A LAST chunk is answered by on_message only.
        assert_eq!(s.on_chunk(600, false).next, Next::Close);
    }

    #[test]
    fn bdat_last_stores() {
        let (mut s, users) = (session(), Users::default());
        script(
            &mut s,
            &users,
            &[("EHLO c", "250-"), ("MAIL FROM:<a@b.c>", "250"), ("RCPT TO:<bob@example.org>", "250")],
        );
        assert_eq!(s.on_line(b"BDAT 0 LAST", &users).next, chunk(0, true, false));
        assert_eq!(
            wire(&s.on_message(MessageResult::Stored { queue_id: "Q1".into() })),
            "250 2.0.0 Ok: queued as Q1\r\n"
        );
        script(&mut s, &users, &[("MAIL FROM:<a@b.c>", "250 2.1.0")]);
    }

    #[test]
    fn bdat_refused_octets_are_still_read() {
        // RFC 3030 2: the chunk is read and discarded before the error reply.
        let cases: &[(&[&str], &str, &str)] = &[
            (&[], "BDAT 10", "503 5.5.1 Error: need MAIL command"),
            (&["EHLO c"], "BDAT 10 LAST", "503 5.5.1 Error: need MAIL command"),
            (&["EHLO c", "MAIL FROM:<a@b.c>"], "BDAT 10", "503 5.5.1 Error: no valid recipients"),
        ];
        for (prelude, line, want) in cases {
            let (mut s, users) = (session(), Users::default());
            for p in *prelude {
                s.on_line(p.as_bytes(), &users);
            }
            let step = s.on_line(line.as_bytes(), &users);
            assert!(wire(&step).starts_with(want), "{line}: {}", wire(&step));
            assert!(matches!(step.next, Next::Chunk { size: 10, discard: true, .. }), "{line}");
            assert_eq!(s.errors(), 1);
            // The caller may report the discarded chunk; that answers nothing and changes nothing.
            let confirm = if line.ends_with("LAST") {
                s.on_message(MessageResult::Perm("discarded".into()))
            } else {
                s.on_chunk(10, true)
            };
            assert_eq!(confirm, Step { reply: None, next: Next::Command }, "{line}");
            assert_eq!(s.errors(), 1);
            // Only once: a second report is out of order.
            assert_eq!(s.on_chunk(10, false).next, Next::Close);
        }
    }

    #[test]
    fn bdat_too_big_then_discards_until_last() {
        let (mut s, users) = (session(), Users::default());
        script(
            &mut s,
            &users,
            &[("EHLO c", "250-"), ("MAIL FROM:<a@b.c>", "250"), ("RCPT TO:<bob@example.org>", "250")],
        );
        assert_eq!(s.on_line(b"BDAT 600", &users).next, chunk(600, false, false));
        assert!(wire(&s.on_chunk(600, false)).starts_with("250 2.0.0 600"));
        // 600 + 500 > 1000: refused before reading, octets discarded.
        let step = s.on_line(b"BDAT 500", &users);
        assert!(wire(&step).starts_with("552 5.3.4"));
        assert_eq!(step.next, chunk(500, false, true));
        assert_eq!(s.phase(), Phase::BdatFailed);
        assert!(s.transaction().is_none());
        // Pipelined chunks already on the way are discarded with an error.
        let step = s.on_line(b"BDAT 5", &users);
        assert!(wire(&step).starts_with("503 5.5.1 Error: previous BDAT failed"));
        assert_eq!(step.next, chunk(5, false, true));
        let step = s.on_line(b"BDAT 5 LAST", &users);
        assert_eq!(step.next, chunk(5, true, true));
        assert_eq!(s.on_message(MessageResult::Perm("x".into())), Step { reply: None, next: Next::Command });
        // LAST ends the failed transaction; a new one can start.
        script(&mut s, &users, &[("MAIL FROM:<a@b.c>", "250 2.1.0")]);
    }

    #[test]
    fn bdat_chunk_reported_too_big_and_mail_after_failure() {
        let (mut s, users) = (session(), Users::default());
        script(
            &mut s,
            &users,
            &[("EHLO c", "250-"), ("MAIL FROM:<a@b.c>", "250"), ("RCPT TO:<bob@example.org>", "250")],
        );
        s.on_line(b"BDAT 100", &users);
        assert!(wire(&s.on_chunk(100, true)).starts_with("552 5.3.4"));
        assert_eq!(s.phase(), Phase::BdatFailed);
        // Unlike a live transaction, a failed one can be replaced by MAIL directly; RSET works too.
        script(
            &mut s,
            &users,
            &[("MAIL FROM:<a@b.c>", "250 2.1.0"), ("RSET", "250 2.0.0"), ("MAIL FROM:<>", "250")],
        );
    }

    #[test]
    fn bdat_bad_syntax_hangs_up() {
        let (mut s, users) = (session(), Users::default());
        script(&mut s, &users, &[("EHLO c", "250-")]);
        let step = s.on_line(b"BDAT ten", &users);
        assert!(wire(&step).starts_with("421 4.5.4 mx.example.org"));
        assert_eq!(step.next, Next::Close);
    }

    #[test]
    fn helo_and_rset_reset_the_transaction() {
        for reset in ["RSET", "EHLO again", "HELO again"] {
            let (mut s, users) = (session(), Users::default());
            script(
                &mut s,
                &users,
                &[("EHLO c", "250-"), ("MAIL FROM:<a@b.c>", "250"), ("RCPT TO:<bob@example.org>", "250")],
            );
            script(&mut s, &users, &[(reset, "250"), ("DATA", "503 5.5.1 Error: need RCPT command")]);
            assert!(s.transaction().is_none());
        }
        // RSET before HELO does not count as a greeting.
        let (mut s, users) = (session(), Users::default());
        script(&mut s, &users, &[("RSET", "250"), ("MAIL FROM:<a@b.c>", "503 5.5.1 Error: send HELO")]);
    }

    #[test]
    fn fixed_replies_and_misuse() {
        let (mut s, users) = (session(), Users::default());
        assert_eq!(Session::busy("h").to_string(), "421 4.3.2 h Service not available, too busy");
        assert_eq!(s.on_shutdown().to_string(), "421 4.3.2 mx.example.org Service shutting down");
        assert_eq!(s.on_line(b"NOOP", &users).next, Next::Close);
        let mut s = session();
        assert_eq!(s.on_timeout().to_string(), "421 4.4.2 mx.example.org Error: timeout exceeded");
        // Glue calling the wrong hook gets a safe close, never a panic.
        let mut s = session();
        assert_eq!(s.on_message(MessageResult::TooBig).next, Next::Close);
        let mut s = session();
        assert_eq!(s.on_chunk(1, false).next, Next::Close);
        let mut s = session();
        script(
            &mut s,
            &users,
            &[("EHLO c", "250-"), ("MAIL FROM:<a@b.c>", "250"), ("RCPT TO:<bob@example.org>", "250")],
        );
        s.on_line(b"DATA", &users);
        assert_eq!(s.on_line(b"NOOP", &users).next, Next::Close);
    }

    #[test]
    fn every_verb_has_one_table_row() {
        for (i, e) in TABLE.iter().enumerate() {
            assert!(TABLE[i + 1..].iter().all(|o| o.verb != e.verb), "{:?} twice", e.verb);
        }
        assert_eq!(TABLE.len(), 14);
    }
}

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
pub use crate::auth::sasl::Login;
use crate::auth::sasl::Mechanism;
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
    /// STARTTLS is offered (a certificate is configured and the connection is not encrypted yet).
    pub starttls: bool,
    /// SASL mechanisms offered with AUTH (RFC 4954); empty: no AUTH on this listener.
    pub auth_mechanisms: Vec<Mechanism>,
    /// Submission: MAIL needs a logged-in user (RFC 6409 4.3; 530 5.7.0).
    pub require_auth: bool,
    /// Free octets the spool must keep (`spool.min_free`).
    pub min_free: u64,
    /// NOOP, RSET, VRFY, EXPN and HELP commands a session may send (`smtp.junk_command_limit`, as
    /// Postfix's smtpd_junk_command_limit); the next one is answered `421` and the session ends.
    pub junk_limit: usize,
}

/// The client at the other end.
#[derive(Clone, Debug)]
pub struct Peer {
    pub ip: IpAddr,
    pub port: u16,
    /// The client may send mail to non-local domains (relay.networks, or after AUTH).
    pub relay_allowed: bool,
    /// Mechanisms that send passwords in the clear are allowed without TLS (auth.cleartext_networks).
    pub cleartext_auth: bool,
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

/// One Authentication-Results result: method, result, properties (`ptype.property`, value).
pub type AuthResult = (String, String, Vec<(String, String)>);

/// What the sender checks at MAIL found (SPF), kept with the transaction for the message's headers
/// and for the checks at the end of the message (DMARC).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Checked {
    /// Header fields to add to the message (`Received-SPF: ...`), without line ends.
    pub fields: Vec<String>,
    /// Authentication-Results results: method, result, properties (`spf`, `pass`,
    /// `[("smtp.mailfrom", "a@example.org")]`).
    pub results: Vec<AuthResult>,
    /// The domain SPF checked and whether it passed.
    pub spf: Option<(String, bool)>,
}

/// The verdict of the checks at MAIL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MailCheck {
    Accept(Checked),
    Refuse(Reply),
}

/// What the session asks of the server it runs in (recipient checks; later logins and sender
/// ownership), supplied by the caller so the session itself stays free of I/O.
pub trait Backend: Login {
    fn check_rcpt(&self, rcpt: &Address) -> RcptCheck;
    /// Whether the authenticated `user` may use `sender` in MAIL FROM.
    fn sender_allowed(&self, _user: &str, _sender: Option<&Address>) -> bool {
        true
    }
    /// Free octets on the spool's file system, when known.
    fn spool_free(&self) -> Option<u64> {
        None
    }
    /// The checks on a client that is neither logged in nor in relay.networks, at MAIL (DNS
    /// blocklists, SPF).
    fn check_mail(&self, _sender: Option<&Address>, _helo: &str) -> MailCheck {
        MailCheck::Accept(Checked::default())
    }
    /// The checks on such a client at each accepted RCPT (greylisting): `Some` refuses it.
    fn check_recipient(&self, _sender: Option<&Address>, _rcpt: &Address) -> Option<Reply> {
        None
    }
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
    /// Write the reply (220), then start TLS on the connection and call [`Session::on_tls`]; any
    /// input already buffered must be thrown away (RFC 3207 4.2, CVE-2011-0411).
    StartTls,
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
    /// What the sender checks found (empty for trusted clients).
    pub checked: Checked,
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
    /// Refused by a check on the message (DMARC, a virus, spam), with its own reply.
    Refused(Reply),
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
    /// An AUTH exchange is in progress: lines are SASL responses (RFC 4954 4).
    Auth,
    /// QUIT answered or 421 sent.
    Closed,
}

use Phase::{Bdat, BdatFailed, Connected, Mail, Ready};

const ANY: &[Phase] = &[Connected, Ready, Mail, Bdat, BdatFailed];

type Handler = fn(&mut Session, Command, &dyn Backend) -> Step;

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
    // STARTTLS and AUTH check their phase themselves: "not offered" (502) comes before "not now" (503).
    Entry { verb: Verb::StartTls, allowed: ANY, handler: Session::starttls },
    Entry { verb: Verb::Auth, allowed: ANY, handler: Session::auth },
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
    /// Commands that move no mail (NOOP, RSET, VRFY, EXPN, HELP), against `junk_limit`.
    junk: usize,
    /// 452 too-many-recipients replies, counted as errors only beyond another `max_recipients`.
    rcpt_overshoot: usize,
    /// A refused BDAT chunk was just answered; the caller may still report it (`on_chunk`/`on_message`).
    discarded_chunk: bool,
    /// The TLS session, once there is one.
    tls: Option<crate::auth::sasl::TlsInfo>,
    /// The logged-in user.
    user: Option<String>,
    /// The SASL exchange in progress.
    sasl: Option<crate::auth::sasl::Conversation>,
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
            junk: 0,
            rcpt_overshoot: 0,
            discarded_chunk: false,
            tls: None,
            user: None,
            sasl: None,
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

    /// The `with` protocol name for Received: (RFC 3848 ESMTPS/ESMTPA/ESMTPSA, RFC 6531 3.7.3).
    pub fn protocol(&self) -> &'static str {
        let utf8 = self.transaction.as_ref().is_some_and(|t| t.smtputf8);
        match (self.ehlo, utf8, self.tls.is_some(), self.user.is_some()) {
            (false, ..) => "SMTP",
            (true, false, false, false) => "ESMTP",
            (true, false, true, false) => "ESMTPS",
            (true, false, false, true) => "ESMTPA",
            (true, false, true, true) => "ESMTPSA",
            (true, true, false, false) => "UTF8SMTP",
            (true, true, true, false) => "UTF8SMTPS",
            (true, true, false, true) => "UTF8SMTPA",
            (true, true, true, true) => "UTF8SMTPSA",
        }
    }

    /// The logged-in user, if any.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// The negotiated TLS protocol and cipher, if any.
    pub fn tls(&self) -> Option<&str> {
        self.tls.as_ref().map(|t| t.description.as_str())
    }

    /// One command line, CRLF stripped.
    pub fn on_line(&mut self, line: &[u8], backend: &dyn Backend) -> Step {
        self.discarded_chunk = false;
        if let Some(step) = self.precheck() {
            return step;
        }
        if self.phase == Phase::Auth {
            return self.sasl_line(line, backend);
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
        // A client that keeps a session open with commands that move no mail is shown the door.
        if matches!(cmd.verb(), Verb::Noop | Verb::Rset | Verb::Vrfy | Verb::Expn | Verb::Help) {
            self.junk += 1;
            if self.junk > self.params.junk_limit {
                self.phase = Phase::Closed;
                let text =
                    format!("{} Error: too many commands that send no mail, closing", self.params.hostname);
                return Step::close(Reply::new(421, "4.7.0", text));
            }
        }
        let Some(entry) = TABLE.iter().find(|e| e.verb == cmd.verb()) else {
            return self.fail(Reply::not_recognized());
        };
        if entry.allowed.contains(&self.phase) {
            (entry.handler)(self, cmd, backend)
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
            MessageResult::Refused(reply) => Step::reply(reply),
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

    fn helo(&mut self, cmd: Command, _: &dyn Backend) -> Step {
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
                let mut lines = lines;
                if self.params.starttls && self.tls.is_none() {
                    lines.push("STARTTLS".into()); // RFC 3207
                }
                if let Some(mechs) = self.offered_mechanisms() {
                    lines.push(format!("AUTH {mechs}")); // RFC 4954
                }
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

    fn mail(&mut self, cmd: Command, backend: &dyn Backend) -> Step {
        let Command::Mail { from, params } = cmd else { return self.out_of_order() };
        // RFC 6409 4.3 / RFC 4954 6: submission needs a login first.
        if self.params.require_auth && self.user.is_none() {
            return self.fail(Reply::new(530, "5.7.0", "Authentication required"));
        }
        if let Some(user) = &self.user
            && !backend.sender_allowed(user, from.as_ref())
        {
            let who = from.as_ref().map(|a| a.to_string()).unwrap_or_default();
            let text = format!("<{who}>: Sender address rejected: not owned by user {user}");
            return self.fail(Reply::new(553, "5.7.1", text));
        }
        // RFC 6531 3.4: a non-ASCII address needs SMTPUTF8 on MAIL.
        if from.as_ref().is_some_and(|a| !a.is_ascii()) && !params.smtputf8 {
            return self.fail(Reply::new(553, "5.6.7", "Error: non-ASCII sender address needs SMTPUTF8"));
        }
        // RFC 1870 6.2: refuse a declared size over the limit right away.
        if params.size.is_some_and(|s| s > self.params.message_size_limit) {
            return self.fail(Reply::too_big());
        }
        // RFC 3463 4.3.1 / RFC 5321 4.5.3.1.10: no room in the spool now; the client retries later,
        // before anything is acknowledged (Postfix's queue_minfree).
        let need = self.params.min_free.saturating_add(params.size.unwrap_or(0));
        if backend.spool_free().is_some_and(|free| free < need) {
            return Step::reply(Reply::new(452, "4.3.1", "Insufficient system storage"));
        }
        let checked = match self.trusted() {
            true => Checked::default(),
            false => match backend.check_mail(from.as_ref(), self.helo.as_deref().unwrap_or("")) {
                MailCheck::Accept(c) => c,
                MailCheck::Refuse(reply) => return self.fail(reply),
            },
        };
        self.reset_transaction();
        self.transaction = Some(Transaction {
            checked,
            sender: from,
            recipients: Vec::new(),
            smtputf8: params.smtputf8,
            eight_bit: params.body == Some(Body::EightBitMime),
            declared_size: params.size,
        });
        self.phase = Mail;
        Step::reply(Reply::sender_ok())
    }

    fn rcpt(&mut self, cmd: Command, backend: &dyn Backend) -> Step {
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
        let reply = match backend.check_rcpt(&addr) {
            RcptCheck::Accept if !self.trusted() => {
                let sender = self.transaction.as_ref().and_then(|t| t.sender.as_ref());
                match backend.check_recipient(sender, &addr) {
                    // A temporary refusal (greylisting) is no client error.
                    Some(reply) if reply.code() < 500 => return Step::reply(reply),
                    Some(reply) => reply,
                    None => return self.accept(addr),
                }
            }
            RcptCheck::Accept => return self.accept(addr),
            // RFC 5321 3.6.1: relaying only for clients this server trusts (relay.networks).
            RcptCheck::NotLocal if self.peer.relay_allowed => return self.accept(addr),
            RcptCheck::NotLocal => Reply::new(554, "5.7.1", format!("<{addr}>: Relay access denied")),
            RcptCheck::UnknownUser => {
                Reply::new(550, "5.1.1", format!("<{addr}>: Recipient address rejected: User unknown"))
            }
            RcptCheck::Temp(m) => Reply::new(451, "4.3.0", format!("<{addr}>: {m}")),
            RcptCheck::Perm(m) => Reply::new(550, "5.1.1", format!("<{addr}>: {m}")),
        };
        self.fail(reply)
    }

    /// A logged-in client or one in relay.networks: the sender checks do not apply.
    fn trusted(&self) -> bool {
        self.user.is_some() || self.peer.relay_allowed
    }

    /// Adds a recipient (once) to the transaction.
    fn accept(&mut self, addr: Address) -> Step {
        if let Some(t) = self.transaction.as_mut()
            && !t.recipients.contains(&addr)
        {
            t.recipients.push(addr);
        }
        Step::reply(Reply::recipient_ok())
    }

    fn has_recipients(&self) -> bool {
        self.transaction.as_ref().is_some_and(|t| !t.recipients.is_empty())
    }

    fn data(&mut self, _: Command, _: &dyn Backend) -> Step {
        if !self.has_recipients() {
            return self.fail(Reply::bad_sequence("no valid recipients"));
        }
        self.phase = Phase::ReadingData;
        Step { reply: Some(Reply::start_data()), next: Next::Data }
    }

    fn bdat(&mut self, cmd: Command, _: &dyn Backend) -> Step {
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

    fn rset(&mut self, _: Command, _: &dyn Backend) -> Step {
        self.reset_transaction();
        if self.phase != Connected {
            self.phase = Ready;
        }
        Step::reply(Reply::ok())
    }

    /// Commands that do not touch the transaction.
    fn simple(&mut self, cmd: Command, _: &dyn Backend) -> Step {
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
            // RFC 5321 3.5.2: EXPN may be disabled.
            _ => self.fail(Reply::not_implemented()),
        }
    }
}

mod auth;

#[cfg(test)]
mod tests;

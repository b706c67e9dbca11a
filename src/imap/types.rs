//! The IMAP command tree (RFC 3501 6 and 9, RFC 9051 6 and 9, and the extensions buzon offers): what
//! the parser in command.rs produces and the session in session.rs consumes. No behaviour here.

/// A message number or UID in a sequence set; `*` is the largest in use (RFC 3501 9 seq-number).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeqNum {
    Value(u32),
    Star,
}

/// `a:b` (either order, RFC 3501 9: "2:4" and "4:2" are the same) or a single number (start == end).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeqRange {
    pub start: SeqNum,
    pub end: SeqNum,
}

/// A sequence set (RFC 3501 9 sequence-set), or `$`: the result saved by SEARCH RETURN (SAVE)
/// (RFC 5182 2.1, part of RFC 9051).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SeqSet {
    Ranges(Vec<SeqRange>),
    Saved,
}

/// A message flag as a client names it (RFC 3501 2.3.2). System flags are matched case-insensitively
/// by the parser; keywords keep their spelling (atoms, no `\`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Flag {
    Seen,
    Answered,
    Flagged,
    Deleted,
    Draft,
    /// `\Recent`: only in SEARCH and responses; a STORE of it is a BAD.
    Recent,
    Keyword(String),
}

/// A calendar date (RFC 3501 9 date: `1-Feb-1994`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date {
    pub year: u16,
    pub month: u8,
    pub day: u8,
}

/// A date-time with its zone (RFC 3501 9 date-time: `"17-Jul-1996 02:44:25 -0700"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DateTime {
    /// Seconds since the Unix epoch (UTC).
    pub unix: i64,
    /// The zone the client gave, in minutes east of UTC.
    pub zone_minutes: i32,
}

/// Which part of a message (RFC 3501 6.4.5 section, RFC 9051 6.4.5).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Section {
    /// Part numbers, outermost first; empty = the whole message.
    pub part: Vec<u32>,
    pub text: Option<SectionText>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SectionText {
    Header,
    /// Field names as sent (matching is case-insensitive); the response echoes them upper-cased.
    HeaderFields(Vec<String>),
    HeaderFieldsNot(Vec<String>),
    Text,
    /// Only after a part number.
    Mime,
}

/// `<origin.length>` (RFC 3501 6.4.5 partial).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Partial {
    pub origin: u32,
    pub length: u32,
}

/// One FETCH data item (RFC 3501 6.4.5; RFC 3516 BINARY). The macros ALL, FAST and FULL are expanded
/// by the parser (FULL = FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODY).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FetchAtt {
    Envelope,
    Flags,
    InternalDate,
    Rfc822Size,
    Uid,
    /// `BODY` without a section: the non-extensible BODYSTRUCTURE.
    Body,
    BodyStructure,
    /// `RFC822` (= BODY[]), `RFC822.HEADER` (= BODY.PEEK[HEADER]), `RFC822.TEXT` (= BODY[TEXT]); the
    /// response names them as requested.
    Rfc822,
    Rfc822Header,
    Rfc822Text,
    BodySection {
        peek: bool,
        section: Section,
        partial: Option<Partial>,
    },
    Binary {
        peek: bool,
        part: Vec<u32>,
        partial: Option<Partial>,
    },
    BinarySize {
        part: Vec<u32>,
    },
    /// RFC 7162 3.1.4.1 `MODSEQ`.
    ModSeq,
}

/// How STORE changes flags (RFC 3501 6.4.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreOp {
    Replace,
    Add,
    Remove,
}

/// A SEARCH key (RFC 3501 6.4.4, RFC 9051 6.4.4). A parenthesised list is `And`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SearchKey {
    All,
    Answered,
    Bcc(String),
    Before(Date),
    Body(String),
    Cc(String),
    Deleted,
    Draft,
    Flagged,
    From(String),
    Header(String, String),
    Keyword(String),
    Larger(u64),
    New,
    Not(Box<SearchKey>),
    Old,
    On(Date),
    Or(Box<SearchKey>, Box<SearchKey>),
    Recent,
    Seen,
    SentBefore(Date),
    SentOn(Date),
    SentSince(Date),
    Since(Date),
    Smaller(u64),
    Subject(String),
    Text(String),
    To(String),
    Uid(SeqSet),
    Unanswered,
    Undeleted,
    Undraft,
    Unflagged,
    Unkeyword(String),
    Unseen,
    /// A bare sequence set (message numbers).
    Seq(SeqSet),
    /// RFC 7162 3.1.5 `MODSEQ [entry-name entry-type] n`: mod-sequence at least n (the entry, a
    /// per-flag mod-sequence, is accepted and not told apart: buzon keeps one per message).
    ModSeq(u64),
    And(Vec<SearchKey>),
}

/// ESEARCH return options (RFC 4731 3, RFC 5182 SAVE, RFC 9051 6.4.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SearchReturn {
    Min,
    Max,
    All,
    Count,
    Save,
}

/// A SORT key (RFC 5256 3; RFC 5957 DISPLAYFROM, DISPLAYTO).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortKey {
    Arrival,
    Cc,
    Date,
    From,
    Size,
    Subject,
    To,
    DisplayFrom,
    DisplayTo,
}

/// One SORT criterion: a key, reversed or not (RFC 5256 3: REVERSE applies to the key after it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SortCriterion {
    pub reverse: bool,
    pub key: SortKey,
}

/// A THREAD algorithm (RFC 5256 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThreadAlgorithm {
    OrderedSubject,
    References,
}

/// STATUS data items (RFC 3501 6.3.10, RFC 8438 SIZE, RFC 9051 DELETED).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusItem {
    Messages,
    Recent,
    UidNext,
    UidValidity,
    Unseen,
    Size,
    Deleted,
    /// RFC 7162 3.1.6.
    HighestModSeq,
}

/// LIST selection options (RFC 5258 3.1, RFC 6154 SPECIAL-USE).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListSelect {
    Subscribed,
    RemoteSubscribed,
    RecursiveMatch,
    SpecialUse,
}

/// LIST return options (RFC 5258 3.2, RFC 5819 LIST-STATUS, RFC 6154).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListReturn {
    Subscribed,
    Children,
    SpecialUse,
    Status(Vec<StatusItem>),
}

/// LIST in every form (RFC 3501 6.3.8, RFC 5258 extended). Names and patterns are raw bytes as the
/// client sent them (modified UTF-7 or, after ENABLE UTF8=ACCEPT / IMAP4rev2, UTF-8); the session
/// decodes them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListArgs {
    pub select: Vec<ListSelect>,
    pub reference: Vec<u8>,
    /// One or more patterns (RFC 5258 3: a parenthesised list is allowed).
    pub patterns: Vec<Vec<u8>>,
    pub ret: Vec<ListReturn>,
    /// The command had selection options, return options or several patterns (the extended form).
    pub extended: bool,
}

/// The RFC 7162 3.2.5 QRESYNC SELECT parameter: what the client knew of the mailbox. Its
/// sequence match data (a hint for finding expunges) is read and not needed: buzon tells the
/// client every UID of `known_uids` that is gone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Qresync {
    pub uidvalidity: u32,
    pub modseq: u64,
    pub known_uids: Option<SeqSet>,
}

/// A mailbox name as sent (raw bytes: an astring; see [`ListArgs`] for the encoding).
pub type MailboxName = Vec<u8>;

/// One IMAP command (RFC 3501 6, RFC 9051 6, and the extensions in CAPABILITY).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Capability,
    Noop,
    Logout,
    StartTls,
    /// RFC 3501 6.2.2; `initial` is the SASL-IR response (RFC 4959) still base64-encoded, `=` for empty.
    Authenticate {
        mechanism: String,
        initial: Option<Vec<u8>>,
    },
    Login {
        user: Vec<u8>,
        password: Vec<u8>,
    },
    /// RFC 5161.
    Enable(Vec<String>),
    /// SELECT, or EXAMINE when `readonly`; `condstore`: the RFC 7162 3.1.8 CONDSTORE parameter;
    /// `qresync`: the RFC 7162 3.2.5 QRESYNC parameter.
    Select {
        mailbox: MailboxName,
        readonly: bool,
        condstore: bool,
        qresync: Option<Qresync>,
    },
    Create(MailboxName),
    Delete(MailboxName),
    Rename {
        from: MailboxName,
        to: MailboxName,
    },
    Subscribe(MailboxName),
    Unsubscribe(MailboxName),
    List(ListArgs),
    Lsub {
        reference: Vec<u8>,
        pattern: Vec<u8>,
    },
    /// RFC 2342.
    Namespace,
    Status {
        mailbox: MailboxName,
        items: Vec<StatusItem>,
    },
    Append {
        mailbox: MailboxName,
        flags: Vec<Flag>,
        date: Option<DateTime>,
        message: Vec<u8>,
        /// Sent as a literal8 (RFC 3516 4.4), not in the RFC 6855 UTF8 form: kept octet for octet.
        binary: bool,
    },
    Check,
    Close,
    /// RFC 3691.
    Unselect,
    Expunge,
    /// UID EXPUNGE (RFC 4315 2.1).
    UidExpunge(SeqSet),
    Search {
        uid: bool,
        /// `RETURN (...)` (RFC 4731 ESEARCH); `Some(vec![])` means RETURN () = ALL.
        ret: Option<Vec<SearchReturn>>,
        charset: Option<String>,
        key: SearchKey,
    },
    /// RFC 5256 SORT; `ret` is RFC 5267 ESORT's `RETURN (...)` (`Some(vec![])` = ALL).
    Sort {
        uid: bool,
        ret: Option<Vec<SearchReturn>>,
        criteria: Vec<SortCriterion>,
        charset: String,
        key: SearchKey,
    },
    /// RFC 5256 THREAD.
    Thread {
        uid: bool,
        algorithm: ThreadAlgorithm,
        charset: String,
        key: SearchKey,
    },
    /// `changed_since`: the RFC 7162 3.1.4.1 CHANGEDSINCE modifier; `vanished`: the RFC 7162 3.2.6
    /// VANISHED modifier (UID FETCH with CHANGEDSINCE only).
    Fetch {
        uid: bool,
        set: SeqSet,
        items: Vec<FetchAtt>,
        changed_since: Option<u64>,
        vanished: bool,
    },
    /// `unchanged_since`: the RFC 7162 3.1.3 UNCHANGEDSINCE modifier.
    Store {
        uid: bool,
        set: SeqSet,
        op: StoreOp,
        silent: bool,
        flags: Vec<Flag>,
        unchanged_since: Option<u64>,
    },
    Copy {
        uid: bool,
        set: SeqSet,
        mailbox: MailboxName,
    },
    /// RFC 6851.
    Move {
        uid: bool,
        set: SeqSet,
        mailbox: MailboxName,
    },
    /// RFC 2177; `DONE` is read by the connection layer.
    Idle,
    /// RFC 2971: `ID NIL` or `ID ("name" "value" ...)`.
    Id(Option<Vec<(String, Option<String>)>>),
    /// RFC 4978 3: `COMPRESS` and the algorithm's name (upper case; the session knows `DEFLATE`).
    Compress(String),
}

//! The checked form of a Sieve script (RFC 5228 3-5 and the extensions' commands and tests):
//! what the parser builds and the interpreter walks. Strings are kept as written (encoded
//! characters already decoded); variables are expanded at run time.

/// A comparator (RFC 4790, RFC 5228 2.7.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cmp {
    Octet,
    AsciiCasemap,
    AsciiNumeric,
}

/// A relational operator (RFC 5231 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Rel {
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
    Ne,
}

/// A match type (RFC 5228 2.7.1, RFC 5231 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mt {
    Is,
    Contains,
    Matches,
    Value(Rel),
    Count(Rel),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Match {
    pub cmp: Cmp,
    pub mt: Mt,
}

/// RFC 5228 2.7.4 address parts, RFC 5233 :user and :detail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Part {
    All,
    Local,
    Domain,
    User,
    Detail,
}

/// RFC 5173 5 transforms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Transform {
    Raw,
    Content(Vec<String>),
    Text,
}

#[derive(Clone, Debug)]
pub(crate) enum Test {
    True,
    False,
    Not(Box<Test>),
    AllOf(Vec<Test>),
    AnyOf(Vec<Test>),
    Header {
        m: Match,
        names: Vec<String>,
        keys: Vec<String>,
    },
    Address {
        m: Match,
        part: Part,
        names: Vec<String>,
        keys: Vec<String>,
    },
    Envelope {
        m: Match,
        part: Part,
        names: Vec<String>,
        keys: Vec<String>,
    },
    Exists(Vec<String>),
    Size {
        over: bool,
        limit: u64,
    },
    Body {
        m: Match,
        transform: Transform,
        keys: Vec<String>,
    },
    /// RFC 5229 5.
    String {
        m: Match,
        sources: Vec<String>,
        keys: Vec<String>,
    },
    /// RFC 5232 4: `vars` empty means the internal flags variable.
    HasFlag {
        m: Match,
        vars: Vec<String>,
        keys: Vec<String>,
    },
    /// RFC 5490 3.1.
    MailboxExists(Vec<String>),
}

/// RFC 5229 4 modifiers of `set`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Modifier {
    Lower,
    Upper,
    LowerFirst,
    UpperFirst,
    QuoteWildcard,
    Length,
}

impl Modifier {
    /// RFC 5229 4.1: precedence; higher applies first, two of one precedence is an error.
    pub fn precedence(self) -> u8 {
        match self {
            Modifier::Lower | Modifier::Upper => 40,
            Modifier::LowerFirst | Modifier::UpperFirst => 30,
            Modifier::QuoteWildcard => 20,
            Modifier::Length => 10,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FlagOp {
    Set,
    Add,
    Remove,
}

#[derive(Clone, Debug)]
pub(crate) struct VacationArgs {
    pub days: Option<u64>,
    pub subject: Option<String>,
    pub from: Option<String>,
    pub addresses: Vec<String>,
    pub mime: bool,
    pub handle: Option<String>,
    pub reason: String,
}

#[derive(Clone, Debug)]
pub(crate) enum Cmd {
    /// `if`/`elsif` branches in order, then the `else` block.
    If(Vec<(Test, Vec<Stmt>)>, Option<Vec<Stmt>>),
    Stop,
    Keep {
        flags: Option<Vec<String>>,
    },
    Discard,
    FileInto {
        mailbox: String,
        flags: Option<Vec<String>>,
        copy: bool,
        create: bool,
    },
    Redirect {
        address: String,
        copy: bool,
    },
    Reject {
        reason: String,
        extended: bool,
    },
    Set {
        name: String,
        value: String,
        mods: Vec<Modifier>,
    },
    Flag {
        op: FlagOp,
        var: Option<String>,
        flags: Vec<String>,
    },
    Vacation(Box<VacationArgs>),
}

#[derive(Clone, Debug)]
pub(crate) struct Stmt {
    pub line: u32,
    pub cmd: Cmd,
}

//! The Sieve grammar (RFC 5228 8.2): commands with arguments, tests and test lists, string lists
//! and blocks, into a generic tree that parse.rs then checks command by command. Nesting of blocks
//! and tests is bounded by [`MAX_DEPTH`], so the recursion here has a fixed bound whatever the
//! script.

use super::lex::{Tok, Token};
use super::{MAX_DEPTH, MAX_LIST, ParseError};

#[derive(Clone, Debug)]
pub(crate) enum Arg {
    Tag(String),
    Num(u64),
    /// Strings, and whether they were written as a list in brackets.
    Strs(Vec<String>, bool),
}

#[derive(Clone, Debug)]
pub(crate) struct GArg {
    pub arg: Arg,
    pub line: u32,
}

#[derive(Clone, Debug)]
pub(crate) struct GTest {
    pub name: String,
    pub line: u32,
    pub args: Vec<GArg>,
    pub tests: Vec<GTest>,
    /// The tests were written as a parenthesised test list.
    pub list: bool,
}

#[derive(Clone, Debug)]
pub(crate) struct GCmd {
    pub name: String,
    pub line: u32,
    pub args: Vec<GArg>,
    pub tests: Vec<GTest>,
    pub list: bool,
    pub block: Option<Vec<GCmd>>,
}

fn err(line: u32, message: impl Into<String>) -> ParseError {
    ParseError { line, message: message.into() }
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Ident(s) => format!("identifier \"{s}\""),
        Tok::Tag(s) => format!("tag \":{s}\""),
        Tok::Num(n) => format!("number {n}"),
        Tok::Str(_) => "a string".to_string(),
        Tok::Punct(c) => format!("\"{}\"", *c as char),
    }
}

pub(crate) struct Grammar<'t> {
    toks: &'t [Token],
    i: usize,
}

impl<'t> Grammar<'t> {
    pub fn new(toks: &'t [Token]) -> Self {
        Grammar { toks, i: 0 }
    }

    fn peek(&self) -> Option<&'t Tok> {
        self.toks.get(self.i).map(|t| &t.tok)
    }

    /// The line of the next token, or of the last one at the end.
    fn line(&self) -> u32 {
        self.toks.get(self.i).or(self.toks.last()).map_or(1, |t| t.line)
    }

    fn unexpected(&self, wanted: &str) -> ParseError {
        match self.peek() {
            Some(t) => err(self.line(), format!("expected {wanted}, found {}", describe(t))),
            None => err(self.line(), format!("expected {wanted}, found the end of the script")),
        }
    }

    fn punct(&mut self, c: u8) -> bool {
        if self.peek() == Some(&Tok::Punct(c)) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    /// The whole script: commands to the end.
    pub fn script(&mut self) -> Result<Vec<GCmd>, ParseError> {
        let cmds = self.commands(0)?;
        match self.peek() {
            None => Ok(cmds),
            Some(_) => Err(self.unexpected("a command")),
        }
    }

    /// Commands up to a `}` or the end (not consumed).
    fn commands(&mut self, depth: usize) -> Result<Vec<GCmd>, ParseError> {
        let mut out = Vec::new();
        while let Some(Tok::Ident(_)) = self.peek() {
            out.push(self.command(depth)?);
        }
        Ok(out)
    }

    fn command(&mut self, depth: usize) -> Result<GCmd, ParseError> {
        let line = self.line();
        let Some(Tok::Ident(name)) = self.peek() else { return Err(self.unexpected("a command")) };
        self.i += 1;
        let (args, tests, list) = self.arguments(depth)?;
        let block = if self.punct(b';') {
            None
        } else if self.punct(b'{') {
            if depth + 1 > MAX_DEPTH {
                return Err(err(line, format!("blocks nested deeper than {MAX_DEPTH}")));
            }
            let cmds = self.commands(depth + 1)?;
            if !self.punct(b'}') {
                return Err(self.unexpected("a command or \"}\""));
            }
            Some(cmds)
        } else {
            return Err(self.unexpected(&format!("\";\" after command \"{name}\"")));
        };
        Ok(GCmd { name: name.clone(), line, args, tests, list, block })
    }

    /// RFC 5228 8.2 arguments: strings, lists, numbers and tags, then a test or a test list.
    #[allow(clippy::type_complexity)]
    fn arguments(&mut self, depth: usize) -> Result<(Vec<GArg>, Vec<GTest>, bool), ParseError> {
        let mut args = Vec::new();
        loop {
            let line = self.line();
            let arg = match self.peek() {
                Some(Tok::Tag(t)) => Arg::Tag(t.clone()),
                Some(Tok::Num(n)) => Arg::Num(*n),
                Some(Tok::Str(s)) => Arg::Strs(vec![s.clone()], false),
                Some(Tok::Punct(b'[')) => {
                    self.i += 1;
                    let mut v = Vec::new();
                    loop {
                        match self.peek() {
                            Some(Tok::Str(s)) => v.push(s.clone()),
                            _ => return Err(self.unexpected("a string in the list")),
                        }
                        self.i += 1;
                        if v.len() > MAX_LIST {
                            return Err(err(line, format!("string list longer than {MAX_LIST}")));
                        }
                        if self.punct(b']') {
                            break;
                        }
                        if !self.punct(b',') {
                            return Err(self.unexpected("\",\" or \"]\" in the string list"));
                        }
                    }
                    args.push(GArg { arg: Arg::Strs(v, true), line });
                    continue;
                }
                _ => break,
            };
            self.i += 1;
            args.push(GArg { arg, line });
            if args.len() > MAX_LIST {
                return Err(err(line, "too many arguments"));
            }
        }
        let (tests, list) = match self.peek() {
            Some(Tok::Ident(_)) => (vec![self.test(depth + 1)?], false),
            Some(Tok::Punct(b'(')) => {
                self.i += 1;
                let mut v = vec![self.test(depth + 1)?];
                while self.punct(b',') {
                    v.push(self.test(depth + 1)?);
                    if v.len() > MAX_LIST {
                        return Err(err(self.line(), format!("test list longer than {MAX_LIST}")));
                    }
                }
                if !self.punct(b')') {
                    return Err(self.unexpected("\",\" or \")\" in the test list"));
                }
                (v, true)
            }
            _ => (Vec::new(), false),
        };
        Ok((args, tests, list))
    }

    fn test(&mut self, depth: usize) -> Result<GTest, ParseError> {
        let line = self.line();
        if depth > MAX_DEPTH {
            return Err(err(line, format!("tests nested deeper than {MAX_DEPTH}")));
        }
        let Some(Tok::Ident(name)) = self.peek() else { return Err(self.unexpected("a test")) };
        self.i += 1;
        let (args, tests, list) = self.arguments(depth)?;
        Ok(GTest { name: name.clone(), line, args, tests, list })
    }
}

//! Parser tests: the grammar of RFC 5228 8, the examples of its sections 2-5, limits, and errors
//! with their line numbers.

use super::ast::{Cmd, Test};
use super::{MAX_DEPTH, MAX_SCRIPT, ParseError, parse};

fn ok(src: &str) -> super::Script {
    match parse(src.as_bytes()) {
        Ok(s) => s,
        Err(e) => panic!("{src:?} should parse: {e}"),
    }
}

fn bad(src: &str) -> ParseError {
    match parse(src.as_bytes()) {
        Ok(_) => panic!("{src:?} should not parse"),
        Err(e) => e,
    }
}

#[test]
fn comments_and_whitespace() {
    // RFC 5228 2.3: both comment forms, anywhere white space may be.
    let s = ok("# a comment\r\nif /* inline */ true { keep; } # trailing\n/* multi\nline */ stop;");
    assert_eq!(s.cmds.len(), 2);
    assert_eq!(s.cmds[1].line, 4);
    assert_eq!(bad("keep; /* never closed").line, 1);
    assert!(bad("keep; /* never closed").message.contains("unterminated"));
}

#[test]
fn strings_and_escapes() {
    // RFC 5228 2.4.2: \\ and \" are the escapes; a backslash before another character is dropped.
    let s = ok(r#"require "fileinto"; fileinto "a\\b\"c\d";"#);
    match &s.cmds[0].cmd {
        Cmd::FileInto { mailbox, .. } => assert_eq!(mailbox, "a\\b\"cd"),
        c => panic!("{c:?}"),
    }
}

#[test]
fn multiline_strings_dot_stuffing() {
    // RFC 5228 2.4.2: text: ... a lone "." ends it; ".." at a line start is one ".".
    let s = ok("require \"reject\";\nreject text:   # why\nline one\n..dotted\n.\n;\nkeep;");
    match &s.cmds[0].cmd {
        Cmd::Reject { reason, .. } => assert_eq!(reason, "line one\r\n.dotted\r\n"),
        c => panic!("{c:?}"),
    }
    // The line after the string is counted right.
    assert_eq!(s.cmds[1].line, 7);
    assert!(bad("require \"reject\";\nreject text:\nno end\n").message.contains("unterminated"));
}

#[test]
fn numbers_with_quantifiers() {
    // RFC 5228 2.4.1: K, M and G.
    for (src, n) in [("1", 1u64), ("2K", 2048), ("3m", 3 << 20), ("1G", 1 << 30)] {
        let s = ok(&format!("if size :over {src} {{ keep; }}"));
        match &s.cmds[0].cmd {
            Cmd::If(b, _) => match &b[0].0 {
                Test::Size { over: true, limit } => assert_eq!(*limit, n),
                t => panic!("{t:?}"),
            },
            c => panic!("{c:?}"),
        }
    }
    assert!(bad("if size :over 99999999999999999999999 { keep; }").message.contains("too large"));
    assert!(bad("if size :over 5000000000000G { keep; }").message.contains("too large"));
    assert!(bad("if size :over 10X { keep; }").message.contains("bad number"));
}

#[test]
fn rfc5228_section_9_example() {
    let s = ok(r#"#
# Example Sieve Filter
# Declare any optional features or extension used by the script
#
require ["fileinto"];

#
# Handle messages from known mailing lists
# Move messages from IETF filter discussion list to filter mailbox
#
if header :is "Sender" "owner-ietf-mta-filters@imc.org"
        {
        fileinto "filter";  # move to "filter" mailbox
        }
#
# Keep all messages to or from people in my company
#
elsif address :DOMAIN :is ["From", "To"] "example.com"
        {
        keep;               # keep in "In" mailbox
        }

#
# Try and catch unsolicited email.  If a message is not to me,
# or it contains a subject known to be spam, file it away.
#
elsif anyof (NOT address :all :contains
               ["To", "Cc", "Bcc"] "me@example.com",
             header :matches "subject"
               ["*make*money*fast*", "*university*dipl*mas*"])
        {
        fileinto "spam";   # move to "spam" mailbox
        }
else
        {
        # Move all other (non-company) mail to "personal"
        # mailbox.
        fileinto "personal";
        }
"#);
    match &s.cmds[0].cmd {
        Cmd::If(branches, Some(_)) => assert_eq!(branches.len(), 3),
        c => panic!("{c:?}"),
    }
}

#[test]
fn rfc5228_test_examples_parse() {
    for src in [
        r#"if header :contains :comparator "i;octet" "Subject" "MAKE MONEY FAST" { discard; }"#,
        r#"if address :is :all "from" "tim@example.com" { discard; }"#,
        r#"require "envelope"; if envelope :all :is "from" "tim@example.com" { discard; }"#,
        r#"if not exists ["From","Date"] { discard; }"#,
        r#"if size :over 500K { discard; }"#,
        r#"if allof (header :contains "From" "Cole", header :contains "Subject" "x") { stop; }"#,
        r#"if anyof (false, true) { keep; } else { discard; }"#,
        r#"redirect "bart@example.com";"#,
        r#"if true { if true { if true { stop; } } }"#,
        r#"require ["relational", "comparator-i;ascii-numeric"]; if header :value "ge" :comparator "i;ascii-numeric" "X-Score" "5" { discard; }"#,
        r#"require ["subaddress", "envelope"]; if envelope :user "to" "a" { keep; }"#,
    ] {
        ok(src);
    }
}

#[test]
fn errors_carry_line_numbers() {
    // RFC 5228 2.10.5, 3.2: unknown or unrequired commands and tests are errors at parse time.
    let e = bad("require \"fileinto\";\nif true {\n  if foo \"x\" { keep; }\n}\n");
    assert_eq!(e, ParseError { line: 3, message: "unknown test \"foo\"".into() });
    assert_eq!(e.to_string(), "line 3: unknown test \"foo\"");
    let e = bad("keep;\n\nfrobnicate;\n");
    assert_eq!((e.line, e.message.as_str()), (3, "unknown command \"frobnicate\""));
    let e = bad("# no require\nfileinto \"x\";");
    assert_eq!(e.line, 2);
    assert!(e.message.contains("require \"fileinto\""), "{e}");
    let e = bad("keep;\nrequire \"fileinto\";");
    assert_eq!(e.line, 2);
    assert!(e.message.contains("before any other command"));
    let e = bad("if true { require \"fileinto\"; }");
    assert!(e.message.contains("before any other command"));
    let e = bad("require [\"fileinto\", \"x-nope\"];");
    assert_eq!(e.message, "unsupported extension \"x-nope\"");
    let e = bad("keep;\nstop\n");
    assert_eq!(e.line, 2);
    assert!(e.message.contains("expected \";\" after command \"stop\""), "{e}");
    // `keep stop;` is grammatical (a command with a test) but keep takes none.
    let e = bad("keep\nstop;");
    assert_eq!((e.line, e.message.as_str()), (1, "command \"keep\" takes no test"));
    assert!(
        bad("if header :is :contains \"s\" \"x\" { keep; }").message.contains("more than one match type")
    );
    assert!(
        bad("if header :comparator \"i;nope\" \"s\" \"x\" { keep; }").message.contains("unknown comparator")
    );
    assert!(bad("if header :over \"s\" \"x\" { keep; }").message.contains("unknown tag"));
    assert!(bad("if header \"s\" { keep; }").message.contains("missing the key list"));
    assert!(bad("if header \"s\" \"k\" \"extra\" { keep; }").message.contains("too many arguments"));
    assert!(bad("else { keep; }").message.contains("without a preceding"));
    assert!(bad("if true { keep; } else { keep; } else { keep; }").message.contains("after \"else\""));
    assert!(bad("if true keep;").message.contains("needs a block"));
    assert!(bad("keep { stop; }").message.contains("takes no block"));
    assert!(bad("if allof true { keep; }").message.contains("test list"));
    assert!(bad("require \"copy\"; redirect :copy \"not an address\";").message.contains("invalid address"));
    assert!(bad("require \"fileinto\"; fileinto :copy \"x\";").message.contains("require \"copy\""));
    assert!(bad("require \"variables\"; set :lower :upper \"a\" \"b\";").message.contains("conflicts"));
    assert!(bad("require \"variables\"; set \"1a\" \"b\";").message.contains("invalid variable name"));
    assert!(bad("if header :count \"gt\" \"s\" \"1\" { keep; }").message.contains("require \"relational\""));
    assert!(
        bad("require \"comparator-i;ascii-numeric\"; if header :contains :comparator \"i;ascii-numeric\" \"s\" \"1\" { keep; }")
            .message
            .contains("cannot be used")
    );
    assert_eq!(bad("keep;\n\n\"stray\";").line, 3);
    assert!(bad("keep; \u{1}").message.contains("unexpected character"));
}

#[test]
fn not_utf8_is_refused_with_its_line() {
    let e = bad_bytes(b"keep;\nkeep;\nfileinto \"\xff\";");
    assert_eq!(e.line, 3);
}

fn bad_bytes(src: &[u8]) -> ParseError {
    match parse(src) {
        Ok(_) => panic!("should not parse"),
        Err(e) => e,
    }
}

#[test]
fn limits() {
    // Nesting beyond MAX_DEPTH is refused without recursing further.
    let deep = "if true { ".repeat(MAX_DEPTH + 1) + &"}".repeat(MAX_DEPTH + 1);
    assert!(bad(&deep).message.contains("nested deeper"));
    let fine = "if true { ".repeat(MAX_DEPTH - 1) + "keep;" + &" }".repeat(MAX_DEPTH - 1);
    ok(&fine);
    let nots = "if ".to_string() + &"not ".repeat(100_000) + "true { keep; }";
    assert!(bad(&nots).message.contains("nested deeper"));
    let anyofs = "if ".to_string() + &"anyof(".repeat(50_000) + "true" + &")".repeat(50_000) + " { keep; }";
    assert!(bad(&anyofs).message.contains("nested deeper"));
    let big = "#".repeat(MAX_SCRIPT + 1);
    assert!(bad(&big).message.contains("larger than"));
    let long = format!("redirect \"{}@example.org\";", "a".repeat(super::MAX_STRING + 1));
    assert!(bad(&long).message.contains("longer than"));
    let list = format!("if header :is \"s\" [{}] {{ keep; }}", vec!["\"x\""; super::MAX_LIST + 1].join(","));
    assert!(bad(&list).message.contains("list longer than"));
}

#[test]
fn encoded_character_only_when_required() {
    // RFC 5228 2.4.2.4.
    let s =
        ok(r#"require ["encoded-character", "fileinto"]; fileinto "${hex:40 41}${unicode:263a}${hex:zz}";"#);
    match &s.cmds[0].cmd {
        Cmd::FileInto { mailbox, .. } => assert_eq!(mailbox, "@A\u{263a}${hex:zz}"),
        c => panic!("{c:?}"),
    }
    let s = ok(r#"require "fileinto"; fileinto "${hex:40}";"#);
    match &s.cmds[0].cmd {
        Cmd::FileInto { mailbox, .. } => assert_eq!(mailbox, "${hex:40}"),
        c => panic!("{c:?}"),
    }
}

#[test]
fn identifiers_and_tags_are_case_insensitive() {
    ok("REQUIRE \"FileInto\"; IF Header :CONTAINS \"s\" \"x\" { FILEINTO \"a\"; } ELSE { Keep; }");
}

//! Session tests of SORT, THREAD and their UID forms (RFC 5256), SORT=DISPLAY (RFC 5957) and
//! ESORT (RFC 5267): command lines in as a client sends them, responses out.

use super::*;

/// One command line (without CRLF) through the codec and the session, as the driver does it.
fn line(s: &mut Session, b: &TestBackend, text: &str) -> String {
    let mut out = Vec::new();
    let actions = match crate::imap::command::parse(text.as_bytes()) {
        Ok((tag, cmd)) => s.on_command(tag, cmd, b),
        Err(e) => s.on_parse_error(e),
    };
    s.perform_into(actions, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

/// INBOX with five messages: crafted dates, subjects, senders and references.
fn mailbox() -> TestBackend {
    let b = TestBackend::new();
    let msgs = [
        "From: Carol <carol@x>\r\nTo: bob@x\r\nSubject: Lunch\r\nDate: Mon, 3 Jan 2000 10:00:00 +0000\r\nMessage-ID: <1@x>\r\n\r\nhi\r\n",
        "From: alice@x\r\nTo: Zed <zed@x>\r\nSubject: Re: lunch\r\nDate: Mon, 3 Jan 2000 12:00:00 +0200\r\nMessage-ID: <2@x>\r\nReferences: <1@x>\r\n\r\nyes\r\n",
        "From: Bob <bob@x>\r\nSubject: [team] Report\r\nDate: Sun, 2 Jan 2000 09:00:00 -0500\r\nMessage-ID: <3@x>\r\n\r\nlong body text here\r\n",
        "From: dave@x\r\nSubject: Re: Lunch\r\nDate: Tue, 4 Jan 2000 08:00:00 +0000\r\nMessage-ID: <4@x>\r\nIn-Reply-To: <1@x>\r\n\r\nme too\r\n",
        "From: erin@x\r\nSubject: Fwd: report\r\nMessage-ID: <5@x>\r\n\r\nno date\r\n",
    ];
    for m in msgs {
        b.world.deliver("INBOX", m, 0);
    }
    // INTERNALDATE: 5 Jan 2000 + i hours, in reverse order of delivery.
    let mut w = b.world.lock();
    if let Some(inbox) = w.boxes.get_mut("INBOX") {
        for (i, m) in inbox.msgs.iter_mut().enumerate() {
            m.date = 947_030_400 + (5 - i as i64) * 3600;
        }
    }
    drop(w);
    b
}

#[test]
fn sort_orders() {
    let b = mailbox();
    let mut s = selected(&b);
    // Sent dates in UTC: 3 (2 Jan 14:00), 2 (3 Jan 10:00), 1 (3 Jan 10:00, later number), 4, 5
    // (no Date: its INTERNALDATE, 5 Jan).
    assert_eq!(line(&mut s, &b, "a SORT (DATE) UTF-8 ALL"), "* SORT 3 1 2 4 5\r\na OK SORT completed\r\n");
    // Ties stay in message-number order, REVERSE or not (RFC 5256 3).
    assert_eq!(
        line(&mut s, &b, "a SORT (REVERSE DATE) UTF-8 ALL"),
        "* SORT 5 4 1 2 3\r\na OK SORT completed\r\n"
    );
    assert_eq!(
        line(&mut s, &b, "a SORT (ARRIVAL) US-ASCII ALL"),
        "* SORT 5 4 3 2 1\r\na OK SORT completed\r\n"
    );
    // Base subjects LUNCH (1, 2, 4) and REPORT (3, 5), then by date.
    assert_eq!(
        line(&mut s, &b, "a sort (subject date) utf-8 all"),
        "* SORT 1 2 4 3 5\r\na OK SORT completed\r\n"
    );
    assert_eq!(line(&mut s, &b, "a SORT (FROM) UTF-8 ALL"), "* SORT 2 3 1 4 5\r\na OK SORT completed\r\n");
    // No To: sorts first; DISPLAYFROM uses the names (RFC 5957).
    assert_eq!(line(&mut s, &b, "a SORT (TO) UTF-8 ALL"), "* SORT 3 4 5 1 2\r\na OK SORT completed\r\n");
    assert_eq!(
        line(&mut s, &b, "a SORT (DISPLAYFROM) UTF-8 ALL"),
        "* SORT 2 3 1 4 5\r\na OK SORT completed\r\n"
    );
    assert_eq!(
        line(&mut s, &b, "a SORT (DISPLAYTO) UTF-8 ALL"),
        "* SORT 3 4 5 1 2\r\na OK SORT completed\r\n"
    );
    let by_size = format!("* SORT {}\r\na OK SORT completed\r\n", size_order(&b));
    assert_eq!(line(&mut s, &b, "a SORT (REVERSE SIZE) UTF-8 ALL"), by_size);
    // The search keys of SEARCH narrow the set; UID SORT answers UIDs.
    assert_eq!(
        line(&mut s, &b, "a SORT (DATE) UTF-8 SUBJECT lunch"),
        "* SORT 1 2 4\r\na OK SORT completed\r\n"
    );
    assert_eq!(
        line(&mut s, &b, "a UID SORT (REVERSE DATE) UTF-8 2:4"),
        "* SORT 4 2 3\r\na OK SORT completed\r\n"
    );
    assert_eq!(
        line(&mut s, &b, "a UID SORT (DATE) UTF-8 SUBJECT nothing-matches"),
        "* SORT\r\na OK SORT completed\r\n"
    );
    assert_eq!(
        line(&mut s, &b, "a SORT (CC) UTF-8 OR FROM bob FROM carol"),
        "* SORT 1 3\r\na OK SORT completed\r\n"
    );
}

/// Message numbers by decreasing size (the fake store's sizes are the lengths of the texts).
fn size_order(b: &TestBackend) -> String {
    let w = b.world.lock();
    let mut v: Vec<(usize, usize)> =
        w.boxes["INBOX"].msgs.iter().enumerate().map(|(i, m)| (m.body.len(), i + 1)).collect();
    v.sort_by(|a, c| c.0.cmp(&a.0).then(a.1.cmp(&c.1)));
    v.iter().map(|(_, n)| n.to_string()).collect::<Vec<_>>().join(" ")
}

#[test]
fn thread_algorithms() {
    let b = mailbox();
    let mut s = selected(&b);
    // 2 and 4 answer 1; 5 is a forward of 3's subject and goes under it.
    assert_eq!(
        line(&mut s, &b, "a THREAD REFERENCES UTF-8 ALL"),
        "* THREAD (3 5)(1 (2)(4))\r\na OK THREAD completed\r\n"
    );
    assert_eq!(
        line(&mut s, &b, "a UID THREAD REFERENCES UTF-8 ALL"),
        "* THREAD (3 5)(1 (2)(4))\r\na OK THREAD completed\r\n"
    );
    assert_eq!(
        line(&mut s, &b, "a THREAD ORDEREDSUBJECT UTF-8 ALL"),
        "* THREAD (3 5)(1 (2)(4))\r\na OK THREAD completed\r\n"
    );
    // Without 1, its replies share a dummy parent.
    assert_eq!(
        line(&mut s, &b, "a THREAD REFERENCES UTF-8 NOT 1"),
        "* THREAD (3 5)((2)(4))\r\na OK THREAD completed\r\n"
    );
    assert_eq!(
        line(&mut s, &b, "a THREAD REFERENCES UTF-8 DELETED"),
        "* THREAD\r\na OK THREAD completed\r\n"
    );
}

#[test]
fn esort_return_options() {
    let b = mailbox();
    let mut s = selected(&b);
    assert_eq!(
        line(&mut s, &b, "a SORT RETURN (MIN MAX COUNT ALL) (DATE) UTF-8 ALL"),
        "* ESEARCH (TAG \"a\") MIN 3 MAX 5 ALL 3,1:2,4:5 COUNT 5\r\na OK SORT completed\r\n"
    );
    assert_eq!(
        line(&mut s, &b, "b UID SORT RETURN () (REVERSE ARRIVAL) UTF-8 ALL"),
        "* ESEARCH (TAG \"b\") UID ALL 1:5\r\nb OK SORT completed\r\n"
    );
    assert_eq!(
        line(&mut s, &b, "c SORT RETURN (COUNT) (DATE) UTF-8 DELETED"),
        "* ESEARCH (TAG \"c\") COUNT 0\r\nc OK SORT completed\r\n"
    );
    // SAVE keeps the set found for `$`.
    assert_eq!(
        line(&mut s, &b, "d SORT RETURN (SAVE) (DATE) UTF-8 SUBJECT report"),
        "d OK SORT completed\r\n"
    );
    assert_eq!(line(&mut s, &b, "e SEARCH $"), "* SEARCH 3 5\r\ne OK SEARCH completed\r\n");
    // A SORT with SAVE that fails leaves `$` empty (RFC 5182 2.1).
    let got = line(&mut s, &b, "f SORT RETURN (SAVE) (DATE) KOI8-R ALL");
    assert!(got.starts_with("f NO [BADCHARSET"), "{got}");
    assert_eq!(line(&mut s, &b, "g SEARCH $"), "* SEARCH\r\ng OK SEARCH completed\r\n");
}

#[test]
fn errors() {
    let b = mailbox();
    let mut s = session_with(true, 100);
    assert_eq!(line(&mut s, &b, "a SORT (DATE) UTF-8 ALL"), "a BAD Not logged in\r\n");
    run(&mut s, &b, "a0", login_cmd("mrose", "tanstaaf"));
    assert_eq!(line(&mut s, &b, "a SORT (DATE) UTF-8 ALL"), "a BAD No mailbox selected\r\n");
    assert_eq!(line(&mut s, &b, "a THREAD REFERENCES UTF-8 ALL"), "a BAD No mailbox selected\r\n");
    run(&mut s, &b, "a1", select("INBOX"));
    // RFC 5256 3: an unknown charset.
    assert_eq!(
        line(&mut s, &b, "a SORT (DATE) KOI8-R ALL"),
        "a NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset\r\n"
    );
    assert_eq!(
        line(&mut s, &b, "a UID THREAD REFERENCES ISO-2022-JP ALL"),
        "a NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset\r\n"
    );
    // Bad syntax: a BAD naming the problem, and the session goes on.
    for (cmd, why) in [
        ("a SORT (BOGUS) UTF-8 ALL", "unknown sort key"),
        ("a SORT () UTF-8 ALL", "sort key"),
        ("a SORT DATE UTF-8 ALL", "sort criteria"),
        ("a SORT (REVERSE) UTF-8 ALL", "sort key"),
        ("a SORT (DATE) UTF-8", "search criteria"),
        ("a SORT (DATE)", "charset"),
        ("a SORT (DATE) UTF-8 BOGUS", "unknown search key"),
        ("a THREAD (DATE) UTF-8 ALL", "threading algorithm"),
        ("a THREAD REFS UTF-8 ALL", "unknown threading algorithm"),
        ("a UID THREAD REFERENCES", "charset"),
        ("a SORT RETURN (FOO) (DATE) UTF-8 ALL", "unknown search return option"),
    ] {
        let got = line(&mut s, &b, cmd);
        assert!(got.starts_with("a BAD ") && got.contains(why), "{cmd}: {got}");
    }
    assert_eq!(line(&mut s, &b, "a SORT (DATE) UTF-8 1"), "* SORT 1\r\na OK SORT completed\r\n");
}

#[test]
fn keys_are_cached_per_uid() {
    // A second SORT reads nothing again: the keys of a message are kept by UID, so a message
    // rewritten behind the session's back (which a store never does) still sorts as first read.
    let b = mailbox();
    let mut s = selected(&b);
    assert_eq!(line(&mut s, &b, "a SORT (SUBJECT) UTF-8 ALL"), "* SORT 1 2 4 3 5\r\na OK SORT completed\r\n");
    if let Some(m) = b.world.lock().boxes.get_mut("INBOX").and_then(|i| i.msgs.get_mut(0)) {
        m.body = b"Subject: zzz\r\n\r\n".to_vec();
    }
    assert_eq!(line(&mut s, &b, "a SORT (SUBJECT) UTF-8 ALL"), "* SORT 1 2 4 3 5\r\na OK SORT completed\r\n");
    // A new message is read when it first sorts; a new SELECT starts afresh.
    b.world.deliver("INBOX", "Subject: aaa\r\n\r\n", 0);
    assert!(line(&mut s, &b, "a NOOP").contains("* 6 EXISTS"));
    assert_eq!(
        line(&mut s, &b, "a SORT (SUBJECT) UTF-8 ALL"),
        "* SORT 6 1 2 4 3 5\r\na OK SORT completed\r\n"
    );
    line(&mut s, &b, "a SELECT INBOX");
    assert_eq!(
        line(&mut s, &b, "a SORT (SUBJECT) UTF-8 ALL"),
        "* SORT 6 2 4 3 5 1\r\na OK SORT completed\r\n"
    );
}

#[test]
fn uid_forms_answer_uids() {
    // After message 3 is expunged, numbers and UIDs differ: 4 and 5 are UIDs 4 and 5 but message
    // numbers 3 and 4.
    let b = mailbox();
    let mut s = selected(&b);
    line(&mut s, &b, "a STORE 3 +FLAGS (\\Deleted)");
    assert!(line(&mut s, &b, "a EXPUNGE").contains("* 3 EXPUNGE"));
    assert_eq!(line(&mut s, &b, "a SORT (DATE) UTF-8 ALL"), "* SORT 1 2 3 4\r\na OK SORT completed\r\n");
    assert_eq!(line(&mut s, &b, "a UID SORT (DATE) UTF-8 ALL"), "* SORT 1 2 4 5\r\na OK SORT completed\r\n");
    assert_eq!(
        line(&mut s, &b, "a THREAD REFERENCES UTF-8 ALL"),
        "* THREAD (1 (2)(3))(4)\r\na OK THREAD completed\r\n"
    );
    assert_eq!(
        line(&mut s, &b, "a UID THREAD REFERENCES UTF-8 ALL"),
        "* THREAD (1 (2)(4))(5)\r\na OK THREAD completed\r\n"
    );
    assert_eq!(
        // MIN and MAX are the first and last in sort order (RFC 5267 3.2); 1 and 2 tie.
        line(&mut s, &b, "a UID SORT RETURN (MIN MAX) (REVERSE DATE) UTF-8 ALL"),
        "* ESEARCH (TAG \"a\") UID MIN 5 MAX 2\r\na OK SORT completed\r\n"
    );
}

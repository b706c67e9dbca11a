//! STUB (being written): the IMAP session state machine.

//! STUB (being written): ENVELOPE, BODYSTRUCTURE and sections of a message.

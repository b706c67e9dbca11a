//! STUB (being written): IMAP connection glue.
use crate::server::acceptor::Job;
use crate::smtp::backend::Context;

pub fn run(job: Job, _ctx: &Context) {
    let mut s = job.stream;
    let _ = std::io::Write::write_all(&mut s, &busy());
}

pub fn busy() -> Vec<u8> {
    b"* BYE [UNAVAILABLE] Server busy, try again later\r\n".to_vec()
}

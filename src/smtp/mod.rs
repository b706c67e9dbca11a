pub mod client;
pub mod command;
pub mod data;
pub mod reply;
pub mod session;

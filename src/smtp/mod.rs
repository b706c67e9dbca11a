pub mod backend;
pub mod client;
pub mod command;
pub mod conn;
pub mod data;
pub mod deliver;
pub mod reply;
pub mod session;

//! steward's integration tests: the whole app over real sockets.

mod architecture;
mod browser;
mod chat;
mod crash;
mod digest_crash;
mod engage;
mod fake_openai;
mod frames;
mod harness;
mod interpreter_eval;
mod openai;
mod planning;
mod process;
mod rest;
mod smtp;

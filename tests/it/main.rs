//! steward's integration tests: the whole app over real sockets.

mod chat;
mod crash;
mod fake_openai;
mod frames;
mod harness;
mod interpreter_eval;
mod openai;
mod planning;
mod process;

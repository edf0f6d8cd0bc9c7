//! steward's integration tests: the whole app over real sockets.

// Test code: a failed unwrap is a failed test, and tests print what they measured.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout, clippy::print_stderr)]

mod architecture;
mod browser;
mod chat;
mod cluster;
mod conversation;
mod crash;
mod damage;
mod digest_crash;
mod engage;
mod engine;
mod engine_crash;
mod fake_openai;
mod frames;
mod harness;
mod interpreter_eval;
mod limits;
mod model_context;
mod openai;
mod planning;
mod postgres;
mod process;
mod rest;
mod smtp;
mod tool_service;

//! Scanners: what the outside world (and our own cheap checks) say about a message.
//!
//! The interface is `scanner` (one check, one report), `registry` lists the configured ones,
//! `runner` runs them together (threads, the `gate` between blocking checks and the spam scan).
//! Each scanner is one file: its client (spamd, rspamd, clamd over `wire` and `http`; `command`
//! for command-line virus scanners, chained behind clamd by `virus`; `banned` over the message's
//! parts; `headers` for the bad-header checks, run inline) and its `Scanner` impl. `pool` walks a
//! scanner's servers; `stage` is the scan stage of a run and `marker` the loop marker. A scanner never turns a failure into "clean": what a failure means is the policy's
//! business (`[virus] on_failure`, `[spam] on_failure`).

pub mod auth;
pub mod banned;
pub mod clamd;
pub mod command;
pub mod gate;
pub mod headers;
pub mod http;
pub mod marker;
pub mod penpals;
pub mod pool;
pub mod registry;
pub mod rspamd;
pub mod runner;
pub mod scanner;
pub mod spamd;
pub mod stage;
#[cfg(test)]
pub mod testdata;
pub mod virus;
pub mod wire;

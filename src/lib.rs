//! pipescan as a library: the modules behind the `pipescan` binary, public so that the fuzz
//! targets (fuzz/) and benchmarks can drive the parsers, the header editor and the policy directly.
//! The binary (src/main.rs) is the supported interface; this API is not stable.
#![forbid(unsafe_code)]

pub mod act;
pub mod admin;
pub mod cli;
pub mod config;
pub mod dns;
pub mod envelope;
pub mod log;
pub mod lookup;
pub mod message;
pub mod nss;
pub mod outcome;
pub mod perms;
pub mod plan;
pub mod policy;
pub mod process;
pub mod report;
pub mod run;
pub mod scan;
pub mod spool;
pub mod sql;
pub mod timings;
pub mod verdict;

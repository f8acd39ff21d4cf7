//! What the MTA reads from a run: the exit code (sysexits), the enhanced status line, and the
//! [`Failure`] that carries both to `main`.
//!
//! Contract (DESIGN.md §1): the only codes an MTA-facing run emits are 0, 65, 69, 75 (and 78 from
//! check-config); anything unclassified is 75. The enhanced status line is written to stdout
//! once, first ([`crate::process::status_line`]: which line was first is process state; this
//! file holds none). A leaf: it imports nothing of ours.

/// The exit codes we use, named after sysexits.h.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    Ok = 0,
    Usage = 64,
    DataErr = 65,
    /// Interactive commands only (release: no such quarantined message).
    NoInput = 66,
    Unavailable = 69,
    /// Interactive commands only (quarantine expire: a file could not be removed).
    CantCreat = 73,
    TempFail = 75,
    Config = 78,
}

impl Exit {
    pub fn code(self) -> u8 {
        self as u8
    }
    pub fn sysexits(self) -> sysexits::ExitCode {
        match self {
            Exit::Ok => sysexits::ExitCode::Ok,
            Exit::Usage => sysexits::ExitCode::Usage,
            Exit::DataErr => sysexits::ExitCode::DataErr,
            Exit::NoInput => sysexits::ExitCode::NoInput,
            Exit::Unavailable => sysexits::ExitCode::Unavailable,
            Exit::CantCreat => sysexits::ExitCode::CantCreat,
            Exit::TempFail => sysexits::ExitCode::TempFail,
            Exit::Config => sysexits::ExitCode::Config,
        }
    }
}

/// A run that cannot deliver: the exit code, the enhanced status code, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub exit: Exit,
    /// Enhanced status code, e.g. "4.3.0".
    pub status: &'static str,
    pub reason: String,
}

impl Failure {
    pub fn tempfail(status: &'static str, reason: impl Into<String>) -> Failure {
        Failure {
            exit: Exit::TempFail,
            status,
            reason: reason.into(),
        }
    }
    pub fn bounce(status: &'static str, reason: impl Into<String>) -> Failure {
        Failure {
            exit: Exit::Unavailable,
            status,
            reason: reason.into(),
        }
    }
    /// The line for the MTA: "4.3.0 reason".
    pub fn line(&self) -> String {
        format!("{} {}", self.status, self.reason)
    }
}

/// Unclassified errors are temporary: the MTA keeps the message.
impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Failure {
        Failure::tempfail("4.3.0", format!("I/O error: {e}"))
    }
}

//! The interface of a delivery method, and the run's count of what it delivered.
//!
//! Contract: a courier hands one copy to the next hop and returns only when the hop has taken
//! it or refused it. `Ok` means the copy is the next hop's responsibility; every failure is a
//! [`Failure`] that knows its exit code (75 for anything temporary or unknown). A courier never
//! retries and never writes the status line. "Delivered" is a value: the caller counts each
//! `Ok` of [`Courier::deliver`] in [`Delivered`] and decides from that (the point of no return,
//! DESIGN.md §1); the process keeps its own copy only for the stop path (a signal after a
//! delivery must exit 0, see [`crate::process`]).

use crate::envelope::{Client, Envelope};
use crate::outcome::Failure;
use std::io::{self, Write};

/// What feeds the message to a courier: anything that writes to the writer it is given, and
/// says how many bytes it wrote.
pub type Feed<'a> = &'a mut dyn FnMut(&mut dyn Write) -> io::Result<u64>;

/// A recipient the next hop did not take while it took others (SMTP: a 5xx to its RCPT; LMTP
/// also a 4xx or no reply after the data, see `lmtp.rs`): the copy was delivered to those, not
/// (or not certainly) to this one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub recipient: String,
    /// The server's reply, e.g. "550 5.1.1 <x@example.org>: Recipient address rejected".
    pub reply: String,
}

/// Where the message being delivered came from, for the next hop (SMTP/LMTP: XFORWARD, so
/// Postfix logs `orig_client=` and `orig_queue_id=`; ENVID and ORCPT for its DSNs): the
/// envelope the MTA handed us, with its SMTP client, queue id, envelope id and the recipients'
/// addresses before rewriting. Mail we write ourselves (a DSN, a release) comes from nowhere:
/// [`Origin::NONE`].
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a>(Option<&'a Envelope>);

impl<'a> Origin<'a> {
    /// Nothing to forward.
    pub const NONE: Origin<'static> = Origin(None);

    /// The message of `env`.
    pub fn of(env: &'a Envelope) -> Origin<'a> {
        Origin(Some(env))
    }

    /// The SMTP client the MTA received the message from.
    pub fn client(&self) -> Option<&'a Client> {
        self.0.map(|e| &e.client)
    }

    /// The MTA's queue id.
    pub fn queue_id(&self) -> Option<&'a str> {
        self.0?.queue_id.as_deref()
    }

    /// The sender's RFC 3461 envelope id.
    pub fn envid(&self) -> Option<&'a str> {
        self.0?.envid.as_deref()
    }

    /// `recipient`'s address before rewriting, when the MTA gave it.
    pub fn original_recipient(&self, recipient: &str) -> Option<&'a str> {
        self.0?.original_recipient(recipient)
    }
}

/// A delivery method (sendmail, SMTP, LMTP).
pub trait Courier {
    /// Delivers the message from `sender` ("" is the null sender) to `recipients`. Success is
    /// the point of no return: a later failure must not make the MTA retry this copy. `Ok`
    /// lists the recipients refused for good while the others were delivered (sendmail: none,
    /// it cannot say). `origin` is where the message came from, for the next hop's log.
    fn deliver(
        &self,
        sender: &str,
        recipients: &[String],
        origin: Origin,
        message: Feed,
    ) -> Result<Vec<Refusal>, Failure>;

    /// Sends mail that does not deliver the message itself (a quarantine copy to a mailbox, a
    /// notice): a retry after a later failure only duplicates this copy.
    fn send(&self, sender: &str, recipients: &[String], message: Feed) -> Result<(), Failure>;

    /// What [`Courier::deliver`] would do, for --dry-run (e.g. `reinject argv [...]`).
    fn describe(&self, sender: &str, recipients: &[String]) -> String;
}

/// How many copies of the message this run has delivered (the point of no return is passed
/// once there is one).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delivered(pub usize);

impl Delivered {
    /// Counts `result` if it delivered a copy, and hands it back.
    pub fn count<T>(&mut self, result: Result<T, Failure>) -> Result<T, Failure> {
        if result.is_ok() {
            self.0 += 1;
        }
        result
    }

    /// Past the point of no return: a retry would deliver a copy twice.
    pub fn any(&self) -> bool {
        self.0 > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_group_after_a_delivered_one_is_past_the_point_of_no_return() {
        let mut d = Delivered::default();
        assert!(
            d.count(Err::<(), _>(Failure::tempfail("4.3.0", "first")))
                .is_err()
        );
        assert!(
            !d.any(),
            "nothing delivered yet: the whole message can be retried"
        );
        assert!(d.count(Ok(())).is_ok());
        assert!(
            d.count(Err::<(), _>(Failure::tempfail("4.3.0", "third")))
                .is_err()
        );
        assert!(d.any());
        assert_eq!(d, Delivered(1));
    }
}

//! Couriers: how a copy of the message leaves pipescan. [`traits`] holds the interface every
//! delivery method implements and what a run counts of its deliveries; [`registry`] chooses the
//! courier from the configuration; one file per method ([`sendmail`], [`smtp`], [`lmtp`]; a new
//! method is one file here plus one line in the registry). [`smtp_wire`] is the SMTP/LMTP wire
//! both protocol couriers share, [`tls`] its STARTTLS.

pub mod lmtp;
pub mod registry;
pub mod sendmail;
pub mod smtp;
pub mod smtp_wire;
pub mod tls;
pub mod traits;

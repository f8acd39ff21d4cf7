//! The SMTP envelope as the MTA hands it to us in argv.
//!
//! Contract: the sender may be empty (the null sender, for bounces) and stays empty on
//! reinjection. Addresses are kept exactly as given (a recipient may start with `-`: it is always
//! passed after `--`). An address with CR, LF or NUL is refused before it can reach any header
//! field or log line we write.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// Empty for the null sender `<>`.
    pub sender: String,
    pub recipients: Vec<String>,
}

/// An envelope argument we cannot use: exit 65 (`5.1.3`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadAddress(pub String);

impl fmt::Display for BadAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Envelope {
    pub fn new(sender: String, recipients: Vec<String>) -> Result<Envelope, BadAddress> {
        check("sender", &sender, true)?;
        for r in &recipients {
            check("recipient", r, false)?;
        }
        Ok(Envelope { sender, recipients })
    }

    #[cfg(test)]
    pub fn null_sender(&self) -> bool {
        self.sender.is_empty()
    }
}

fn check(what: &str, addr: &str, may_be_empty: bool) -> Result<(), BadAddress> {
    if addr.is_empty() && !may_be_empty {
        return Err(BadAddress(format!("empty {what} address")));
    }
    if let Some(c) = addr.chars().find(|c| c.is_control()) {
        return Err(BadAddress(format!(
            "{what} address {:?} contains the control character {:?}",
            addr.escape_debug().to_string(),
            c
        )));
    }
    if addr.len() > 998 {
        return Err(BadAddress(format!(
            "{what} address is longer than 998 bytes"
        )));
    }
    Ok(())
}

/// `<addr>` as in log lines; `<>` for the null sender.
pub struct Angle<'a>(pub &'a str);

impl fmt::Display for Angle<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{}>", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_sender_and_dash_recipients_are_fine() {
        let e = Envelope::new(String::new(), vec!["-oQ/tmp/x@example.com".into()]).unwrap();
        assert!(e.null_sender());
        assert_eq!(e.recipients, ["-oQ/tmp/x@example.com"]);
    }

    #[test]
    fn control_characters_are_refused() {
        for bad in ["a@b\r\nBcc: x@y", "a\0@b", "a\n@b"] {
            assert!(
                Envelope::new("s@x".into(), vec![bad.into()]).is_err(),
                "{bad:?}"
            );
            assert!(
                Envelope::new(bad.into(), vec!["r@x".into()]).is_err(),
                "{bad:?}"
            );
        }
        assert!(Envelope::new("s@x".into(), vec![String::new()]).is_err());
    }
}

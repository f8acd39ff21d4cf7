//! One source of lookup entries: the interface every kind of entry (inline, regex, a `file:`
//! list, a database later) implements, so that a [`crate::lookup::table::Table`] can ask them in
//! order without knowing what they are.

use std::fmt;

/// A source of entries, asked in table order.
///
/// `address` is already lower-cased; the table asks again without the address extension when
/// no source answered. Answers: `Some(true)`: listed; `Some(false)`: a `!` entry matched (listed
/// as "not in the table", which ends the search too); `None`: not here, ask the next source.
pub trait Source: fmt::Debug + Send + Sync {
    fn find(&self, address: &str) -> Result<Option<bool>, LookupError>;
}

/// A source could not answer (a database down, later): neither "listed" nor "not listed".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupError {
    pub message: String,
}

impl LookupError {
    pub fn new(message: impl Into<String>) -> LookupError {
        LookupError {
            message: message.into(),
        }
    }
}

impl fmt::Display for LookupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for LookupError {}

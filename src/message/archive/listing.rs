//! What every format's lister shares: the [`Format`]s, the [`Listing`] of [`Entry`]s, and the
//! [`Caps`] through which each member's content is read within the caller's budget. A leaf of
//! `message::archive`: the format files and `mod.rs` import it, it imports only `sniff`.

use crate::message::sniff::{PROBE_BYTES, is_deep, sniff};
use std::borrow::Cow;
use std::io::Read;

/// The archive formats we open, by the kind `sniff` gives them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Zip,
    Tar,
    Gzip,
    Bzip2,
    Xz,
    SevenZ,
    Rar,
    Cab,
    Iso,
}

impl Format {
    /// The format of a sniffed kind ("office-macro" is a zip too when it is OOXML).
    pub fn of(kind: &str) -> Option<Format> {
        Some(match kind {
            "zip" => Format::Zip,
            "tar" => Format::Tar,
            "gzip" => Format::Gzip,
            "bzip2" => Format::Bzip2,
            "xz" => Format::Xz,
            "7z" => Format::SevenZ,
            "rar" => Format::Rar,
            "cab" => Format::Cab,
            "iso" => Format::Iso,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Format::Zip => "zip",
            Format::Tar => "tar",
            Format::Gzip => "gzip",
            Format::Bzip2 => "bzip2",
            Format::Xz => "xz",
            Format::SevenZ => "7z",
            Format::Rar => "rar",
            Format::Cab => "cab",
            Format::Iso => "iso",
        }
    }
}

/// One member as listed.
pub struct Entry<'a> {
    /// Its names (the first is the one shown; zip local headers may add another).
    pub names: Vec<String>,
    /// The uncompressed size the archive declares (gzip/bzip2/xz: the bytes read).
    pub size: u64,
    pub is_dir: bool,
    /// Its content needs a password: nobody can look inside.
    pub encrypted: bool,
    /// What was read of its content (see [`Caps::read`]), and how much of it that is.
    pub content: Option<Cow<'a, [u8]>>,
    pub got: Got,
}

/// How much of a member's content [`Caps::read`] got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Got {
    /// All of it.
    Whole,
    /// Its first bytes only: its type needs no more, or the rest would not fit the budget.
    Head,
    /// Decompression failed (corrupt or truncated data): what came before the failure.
    Broken,
    /// Nothing (a directory, a link, encrypted data).
    Nothing,
}

/// Why an archive (or part of it) could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trouble {
    /// The archive's names or content need a password.
    Encrypted(String),
    /// Truncated, corrupt or of an unsupported variant.
    Corrupt(String),
}

#[derive(Default)]
pub struct Listing<'a> {
    pub entries: Vec<Entry<'a>>,
    /// More members than `Caps::max_members`: the rest were not listed.
    pub too_many: bool,
    pub trouble: Option<Trouble>,
}

impl<'a> Listing<'a> {
    pub(super) fn corrupt(why: impl std::fmt::Display) -> Listing<'a> {
        Listing {
            trouble: Some(Trouble::Corrupt(why.to_string())),
            ..Listing::default()
        }
    }

    /// Adds an entry; false (and `too_many` set) when the member limit is reached.
    pub(super) fn push(&mut self, caps: &Caps, entry: Entry<'a>) -> bool {
        if self.entries.len() >= caps.max_members {
            self.too_many = true;
            return false;
        }
        self.entries.push(entry);
        true
    }
}

/// What the caller allows a listing to read.
pub struct Caps {
    /// Members listed; past it, `Listing::too_many`.
    pub max_members: usize,
    /// Decompressed bytes this listing may still hold in memory (the expansion budget left).
    pub budget: u64,
}

impl Caps {
    /// Reads a member through `r`: its first [`PROBE_BYTES`], and the rest when its type must
    /// be looked into and `declared` (or, with None, whatever comes) fits in the budget.
    pub fn read(&mut self, r: &mut dyn Read, declared: Option<u64>) -> (Vec<u8>, Got) {
        let mut head = Vec::new();
        if r.take(PROBE_BYTES as u64).read_to_end(&mut head).is_err() {
            return (head, Got::Broken);
        }
        if head.len() < PROBE_BYTES {
            self.charge(head.len() as u64);
            return (head, Got::Whole);
        }
        let deep = sniff(&head).is_some_and(is_deep);
        if !deep || declared.is_some_and(|d| d > self.budget) {
            return (head, Got::Head);
        }
        let limit = declared.unwrap_or(self.budget).min(self.budget);
        let mut rest = r.take(limit.saturating_sub(head.len() as u64) + 1);
        let got = match rest.read_to_end(&mut head) {
            Err(_) => Got::Broken,
            Ok(_) if head.len() as u64 > limit => Got::Head,
            Ok(_) => Got::Whole,
        };
        head.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        self.charge(head.len() as u64);
        (head, got)
    }

    fn charge(&mut self, n: u64) {
        self.budget = self.budget.saturating_sub(n);
    }
}

/// Member names as bytes made text: UTF-8 when valid, else Latin-1 (tar and cab keep no
/// encoding; a name is shown, matched by the rules and never used as a path).
pub(super) fn name_of(raw: &[u8]) -> String {
    match std::str::from_utf8(raw) {
        Ok(s) => s.to_string(),
        Err(_) => raw.iter().map(|&b| char::from(b)).collect(),
    }
}

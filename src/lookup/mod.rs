//! amavisd-new style lookup tables: is this address in that list?
//!
//! Contract: a table is an ordered list of entries, checked first to last; the first entry that
//! matches decides (true, or false for a `!` entry); no match is false. Entries, as admins write
//! them in amavisd.conf:
//!
//! | entry | matches |
//! |---|---|
//! | `user@example.com` | that address |
//! | `user@` | that local part at any domain |
//! | `@example.com` or `example.com` | any address at exactly that domain |
//! | `.example.com` or `@.example.com` | that domain and all its subdomains |
//! | `.` | every address |
//! | `/regex/` | the whole address, by regular expression (case-insensitive) |
//! | `!entry` | a match means "not in the table" |
//! | `file:/path` | the entries of that file, one per line, `#` comments, in place |
//!
//! Matching is case-insensitive. Addresses are matched with their extension (`user+tag@`) as
//! given and, when nothing matched, without it, as amavisd does with `$recipient_delimiter = '+'`.
//!
//! Layout: a [`table::Table`] is an ordered list of [`source::Source`]s, each chosen by the
//! entry's form when the table is compiled: [`inline`] (addresses, `user@`, domains, `.`),
//! [`regex`] (`/re/`), [`file`] (`file:`, read when the table is compiled). A source can fail
//! ([`source::LookupError`]): `Table::lookup` returns the error, so a source that cannot answer
//! (a database, later) becomes a tempfail in one place instead of a wrong "not listed".
//! A new source is one file here implementing `Source`, plus its prefix in `table::entry`.
//! [`pg`] (amavisd's SQL tables, `[sql] lookups`) is not an entry form: `policy::Lists::compile`
//! puts its policy flags first in the matching tables, and `policy::recipient` reads its levels
//! and wblist.

pub mod file;
pub mod inline;
pub mod pg;
pub mod regex;
pub mod source;
pub mod table;

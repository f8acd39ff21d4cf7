//! The message: a view over its raw bytes, built once per run, and the only edits we make.
//!
//! `header` (fields with byte offsets), `edit` (the splices: our fields on top, forged ones out,
//! the Subject tag), `text` (what we write, made safe), `parts` (the parts a person would find,
//! over `mime`, `sniff` and `archive`).

pub mod archive;
pub mod edit;
pub mod header;
pub mod mime;
pub mod parts;
pub mod sniff;
#[cfg(test)]
mod tests;
pub mod text;

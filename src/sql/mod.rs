//! amavisd-new's SQL schema in PostgreSQL, shared by every mail host of a site.
//!
//! Contract: one connection per run ([`conn::Db`]), opened only when something asks, with a
//! connect timeout and a timeout on every query ([sql] connect_timeout, query_timeout); every
//! value reaches the server as a bound parameter, never inside the statement text (SECURITY.md).
//! A failure is a [`conn::DbError`]; what it means (tempfail or ignore) is decided by its user.
//!
//! Layout: [`conn`] (the connection and its timeouts; the DSN described without a password),
//! [`keys`] (amavisd's lookup keys for an address, by priority), [`schema`] (the schema we print
//! with `pipescan sql schema` and check with `check-config --ping`). The lookups over these
//! tables are `lookup::pg`.

pub mod conn;
pub mod keys;
pub mod schema;

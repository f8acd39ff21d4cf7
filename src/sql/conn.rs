//! The run's one database connection: opened lazily, every query bound by a timeout.
//!
//! tokio-postgres is driven by a one-thread runtime owned by the [`Db`] (the process has no
//! other async code), so that a query can be abandoned when the server or a pooler in front of
//! it stalls: `tokio::time::timeout` around each call, and a connection that timed out is
//! dropped, never reused. Errors never contain the DSN (it may hold a password): [`describe`]
//! names the server by host, port, database and user only.

use crate::config::sql::Sql;
use std::fmt;
use std::str::FromStr;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::timeout;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, Config, NoTls, Row};

/// A bound value and its PostgreSQL type.
pub type Param<'a> = (&'a (dyn ToSql + Sync), Type);

/// The database could not answer: down, slow, refused, or a query failed (a missing table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbError(pub String);

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DbError {}

/// Parses a DSN (key=value pairs or a postgresql:// URL); the error never repeats it.
pub fn parse_dsn(dsn: &str) -> Result<Config, String> {
    Config::from_str(dsn).map_err(|e| format!("not a PostgreSQL connection string: {e}"))
}

/// The server a DSN names, for logs and errors: no password, whatever the DSN holds.
pub fn describe(cfg: &Config) -> String {
    use tokio_postgres::config::Host;
    let hosts: Vec<String> = cfg
        .get_hosts()
        .iter()
        .map(|h| match h {
            Host::Tcp(s) => s.clone(),
            Host::Unix(p) => p.display().to_string(),
        })
        .collect();
    let port = cfg.get_ports().first().copied().unwrap_or(5432);
    format!(
        "{} port {port} db {} user {}",
        if hosts.is_empty() {
            "localhost".into()
        } else {
            hosts.join(",")
        },
        cfg.get_dbname().unwrap_or("-"),
        cfg.get_user().unwrap_or("-"),
    )
}

/// The run's connection: nothing happens until the first query.
pub struct Db {
    config: Result<Config, String>,
    connect_timeout: Duration,
    query_timeout: Duration,
    state: Mutex<Option<Open>>,
}

struct Open {
    rt: tokio::runtime::Runtime,
    client: Client,
}

impl fmt::Debug for Db {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Db({})", self.server())
    }
}

impl Db {
    /// The run's connection when `[sql]` is in use (opened by its first query).
    pub fn for_run(cfg: &crate::config::settings::Config) -> Option<std::sync::Arc<Db>> {
        use crate::config::delivery::QuarantineMethod;
        let used = cfg.sql.enabled()
            || (!cfg.sql.dsn.is_empty() && cfg.quarantine.method == QuarantineMethod::Sql);
        used.then(|| std::sync::Arc::new(Db::new(&cfg.sql)))
    }

    pub fn new(sql: &Sql) -> Db {
        Db {
            config: parse_dsn(&sql.dsn),
            connect_timeout: sql.connect_timeout.0,
            query_timeout: sql.query_timeout.0,
            state: Mutex::new(None),
        }
    }

    /// host, port, database and user (never the password).
    pub fn server(&self) -> String {
        match &self.config {
            Ok(c) => describe(c),
            Err(_) => "an unparsable sql.dsn".into(),
        }
    }

    /// Rows of a statement. The statement is fixed text; every value is in `params`, with its
    /// type: sent as an unnamed statement in one round trip, so that nothing prepared outlives
    /// the call (PgBouncer's transaction pooling hands the server connection to other clients
    /// between transactions, and a named prepared statement would meet the next client there).
    pub fn query(&self, sql: &str, params: &[Param]) -> Result<Vec<Row>, DbError> {
        let mut guard = self.connected()?;
        let answer = match guard.as_ref() {
            Some(o) => o.rt.block_on(async {
                timeout(self.query_timeout, o.client.query_typed(sql, params)).await
            }),
            None => return Err(DbError("no connection".into())),
        };
        self.settle(&mut guard, answer)
    }

    /// An INSERT/UPDATE/DELETE; returns the rows it returned (its RETURNING clause's).
    pub fn execute(&self, sql: &str, params: &[Param]) -> Result<u64, DbError> {
        self.query(sql, params).map(|rows| rows.len() as u64)
    }

    /// Statements without parameters, e.g. BEGIN / COMMIT (one round trip, simple protocol).
    pub fn batch(&self, sql: &str) -> Result<(), DbError> {
        let mut guard = self.connected()?;
        let answer = match guard.as_ref() {
            Some(o) => o
                .rt
                .block_on(async { timeout(self.query_timeout, o.client.batch_execute(sql)).await }),
            None => return Err(DbError("no connection".into())),
        };
        self.settle(&mut guard, answer)
    }

    /// The connection, opened now if this is the run's first query.
    fn connected(&self) -> Result<MutexGuard<'_, Option<Open>>, DbError> {
        let mut guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if guard.is_none() {
            *guard = Some(self.open()?);
        }
        Ok(guard)
    }

    /// A query's answer as ours; a connection that timed out or broke is not used again.
    fn settle<T>(
        &self,
        guard: &mut Option<Open>,
        answer: Result<Result<T, tokio_postgres::Error>, tokio::time::error::Elapsed>,
    ) -> Result<T, DbError> {
        match answer {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                if guard.as_ref().is_none_or(|o| o.client.is_closed()) {
                    *guard = None;
                }
                Err(DbError(format!("{}: {}", self.server(), error_text(&e))))
            }
            Err(_) => {
                *guard = None;
                Err(DbError(format!(
                    "{}: no answer within {:?} (sql.query_timeout)",
                    self.server(),
                    self.query_timeout
                )))
            }
        }
    }

    fn open(&self) -> Result<Open, DbError> {
        let config = self.config.clone().map_err(DbError)?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| DbError(format!("cannot start the database client: {e}")))?;
        let mut config = config;
        config.connect_timeout(self.connect_timeout);
        // The static build would crash in an NSS module loaded to resolve a host name
        // (crate::nss): say so instead (unix sockets and IP addresses need no lookup).
        let named = config.get_hosts().iter().any(|h| {
            matches!(h, tokio_postgres::config::Host::Tcp(name)
                if name.parse::<std::net::IpAddr>().is_err())
        });
        if named && let Some(why) = crate::nss::hosts_unsupported(crate::process::static_build()) {
            return Err(DbError(format!(
                "cannot connect to {}: {why}",
                describe(&config)
            )));
        }
        // libpq's default user is the process's; tokio-postgres would ask libc (getpwuid, NSS),
        // which the static build must not: /etc/passwd, as everywhere else in pipescan.
        if config.get_user().is_none() {
            let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
            let uid = nix::unistd::geteuid().as_raw();
            match crate::nss::user_name(&passwd, uid) {
                Some(name) => {
                    config.user(name);
                }
                None => {
                    return Err(DbError(format!(
                        "sql.dsn names no user, and uid {uid} has no name in /etc/passwd: add user=NAME"
                    )));
                }
            }
        }
        let server = describe(&config);
        let connected =
            rt.block_on(async { timeout(self.connect_timeout, config.connect(NoTls)).await });
        let (client, connection) = match connected {
            Ok(Ok(pair)) => pair,
            Ok(Err(e)) => {
                return Err(DbError(format!(
                    "cannot connect to {server}: {}",
                    error_text(&e)
                )));
            }
            Err(_) => {
                return Err(DbError(format!(
                    "cannot connect to {server}: no answer within {:?} (sql.connect_timeout)",
                    self.connect_timeout
                )));
            }
        };
        rt.spawn(connection);
        Ok(Open { rt, client })
    }
}

/// The server's message (and SQLSTATE) when it sent one; the client's error otherwise.
fn error_text(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => match std::error::Error::source(e) {
            Some(cause) => format!("{e}: {cause}"),
            None => e.to_string(),
        },
    }
}

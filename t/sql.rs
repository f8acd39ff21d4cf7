//! `[sql]`: amavisd-new's tables in a real PostgreSQL (and through a real PgBouncer), started
//! once per test run by scripts/pg-stack (scripts/test does it), which loads the schema that
//! `pipescan sql schema` prints. Each test works in a database of its own, cloned from that
//! schema (`CREATE DATABASE … TEMPLATE pipescan_template`), and drops it at the end.
//!
//! The stories: per-recipient policy rows decide lovers and levels, by amavisd's key
//! priorities, before the TOML tables; wblist white- and blacklists senders per recipient; a
//! database that is down, stalled, locked or missing a table holds the mail (exit 75) unless
//! on_failure = "ignore"; hostile addresses reach the database only as bound parameters.

mod common;

use common::*;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const HOW: &str = "run scripts/test, or: scripts/pg-stack up DIR && set -a && eval \"$(scripts/pg-stack env DIR)\" && set +a (after cargo build: the stack loads `target/debug/pipescan sql schema`)";

fn env_var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: {HOW}"))
}

/// One test's own database.
struct TestDb {
    name: String,
}

impl TestDb {
    fn new(tag: &str) -> TestDb {
        let name = format!("t_{tag}_{}", std::process::id());
        let template = env_var("PIPESCAN_PG_TEMPLATE");
        // Two commands: psql runs one -c's statements in one transaction, where DROP DATABASE
        // may not run.
        psql(
            &admin_dsn(),
            &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        );
        psql(
            &admin_dsn(),
            &format!("CREATE DATABASE {name} TEMPLATE {template}"),
        );
        TestDb { name }
    }

    /// The DSN of this database, straight to PostgreSQL or through PgBouncer.
    fn dsn(&self, bouncer: bool) -> String {
        let base = env_var(if bouncer {
            "PIPESCAN_PGBOUNCER_DSN"
        } else {
            "PIPESCAN_PG_DSN"
        });
        with_dbname(&base, &self.name)
    }

    fn sql(&self, q: &str) -> String {
        psql(&self.dsn(false), q)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args(["-X", "-q", "-d", &admin_dsn(), "-c"])
            .arg(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .output();
    }
}

fn with_dbname(dsn: &str, db: &str) -> String {
    let mut parts: Vec<String> = dsn
        .split_whitespace()
        .filter(|p| !p.starts_with("dbname="))
        .map(str::to_string)
        .collect();
    parts.push(format!("dbname={db}"));
    parts.join(" ")
}

fn admin_dsn() -> String {
    with_dbname(&env_var("PIPESCAN_PG_DSN"), "postgres")
}

/// Runs SQL with psql (PostgreSQL's own client); panics with its error.
fn psql(dsn: &str, q: &str) -> String {
    let out = Command::new("psql")
        .args([
            "-X",
            "-q",
            "-tA",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            dsn,
            "-c",
            q,
        ])
        .output()
        .unwrap_or_else(|e| panic!("cannot run psql ({e}): {HOW}"));
    assert!(
        out.status.success(),
        "psql failed on {q}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn spamd() -> String {
    real_spamd()
}

fn gtube(from: &str) -> Vec<u8> {
    let g = concat!(
        "XJS*C4JDBQADN1.NSBN3*2IDNEN*",
        "GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
    );
    format!(
        "From: {from}\nTo: team@example.com\nSubject: you won\nDate: Mon, 23 Nov 2026 10:00:00 +0000\nMessage-ID: <gtube@example.net>\n\n{g}\n"
    )
    .into_bytes()
}

/// A filter asking spamd, discarding spam (so "delivered or not" shows each recipient's
/// verdict), with `[sql]` on `dsn`.
fn sql_filter(dsn: &str, extra: &str) -> Filter {
    let lookups = if extra.contains("lookups =") {
        ""
    } else {
        "lookups = true\n"
    };
    Filter::new(&format!(
        "[destiny]\nspam = \"discard\"\n[spamd]\nservers = [\"{}\"]\n[sql]\ndsn = \"{dsn}\"\n{lookups}connect_timeout = \"2s\"\nquery_timeout = \"2s\"\n{extra}",
        spamd()
    ))
}

/// Every recipient handed to sendmail, over all its calls, sorted.
fn delivered(f: &Filter) -> Vec<String> {
    let mut all = Vec::new();
    for n in 0..f.calls() {
        let argv = f.call_argv(n);
        if let Some(at) = argv.iter().position(|a| a == "--") {
            all.extend(argv[at + 1..].iter().cloned());
        }
    }
    all.sort();
    all
}

/// The policies and users of the lookup stories (amavisd's README priorities: 8 for a full
/// address, 5 for a domain).
fn load_policies(db: &TestDb) {
    db.sql(
        "INSERT INTO policy (id, policy_name, spam_lover) VALUES (1, 'defaults', NULL), (2, 'lovers', 'Y'), (4, 'strict', 'N');
         INSERT INTO policy (id, policy_name, spam_tag2_level, spam_kill_level) VALUES (3, 'relaxed', 1500, 2000);
         INSERT INTO users (priority, policy_id, email) VALUES
           (8, 2, 'bob@example.com'), (5, 3, '@example.com'), (8, 1, 'dave@example.com'),
           (8, 4, 'frank@example.com'), (8, 2, 'o''hara@example.com');",
    );
}

fn lookup_story(bouncer: bool) {
    let db = TestDb::new(if bouncer {
        "lookups_bouncer"
    } else {
        "lookups"
    });
    load_policies(&db);
    // TOML says dave and frank love spam: dave's SQL policy leaves spam_lover NULL (the TOML
    // decides), frank's says N (SQL comes first).
    let f = sql_filter(
        &db.dsn(bouncer),
        "[lists]\nspam_lovers = [\"dave@example.com\", \"frank@example.com\"]\n",
    );
    let rcpts = [
        "bob@example.com",
        "carol@example.com",
        "dave@example.com",
        "erin@other.test",
        "frank@example.com",
    ];
    let mut args = vec!["-v", "-f", "promo@example.net", "--"];
    args.extend(rcpts);
    let r = f.run(&args, &gtube("promo@example.net"));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        delivered(&f),
        [
            "bob@example.com",   // users row bob@: policy lovers (spam_lover Y)
            "carol@example.com", // @example.com: kill level 2000 > GTUBE's 1000
            "dave@example.com",  // policy defaults: NULL, the TOML spam_lovers decides
        ],
        "erin has no row (TOML levels: discarded); frank's N beats the TOML; log: {}",
        r.stderr
    );
    // carol is below her tag2 level 1500: no spam flag on her copy; bob's copy is flagged.
    for n in 0..f.calls() {
        let argv = f.call_argv(n);
        let msg = String::from_utf8_lossy(&f.call_msg(n)).into_owned();
        if argv.iter().any(|a| a == "carol@example.com") {
            assert!(!msg.contains("X-Spam-Flag: YES"), "{msg}");
            assert!(
                msg.contains("X-Spam-Level"),
                "carol is above tag_level: {msg}"
            );
        }
        if argv.iter().any(|a| a == "bob@example.com") {
            assert!(msg.contains("X-Spam-Flag: YES"), "{msg}");
        }
    }
}

#[test]
fn sql_policy_rows_decide_lovers_and_levels_by_priority_before_toml() {
    lookup_story(false);
}

#[test]
fn the_same_story_through_pgbouncer_in_transaction_pooling() {
    lookup_story(true);
}

#[test]
fn wblist_white_and_blacklists_senders_per_recipient() {
    let db = TestDb::new("wblist");
    load_policies(&db);
    db.sql(
        "INSERT INTO policy (id, policy_name, spam_tag_level) VALUES (5, 'tag everything', -999);
         INSERT INTO users (priority, policy_id, email) VALUES (8, 5, 'alice@example.com');
         INSERT INTO mailaddr (priority, email) VALUES (8, 'spammer@bad.test'), (5, '@friend.test'), (0, '@.');
         INSERT INTO wblist (rid, sid, wb) SELECT u.id, m.id, 'B' FROM users u, mailaddr m
           WHERE u.email = 'alice@example.com' AND m.email = 'spammer@bad.test';
         INSERT INTO wblist (rid, sid, wb) SELECT u.id, m.id, 'W' FROM users u, mailaddr m
           WHERE u.email = 'alice@example.com' AND m.email = '@friend.test';
         INSERT INTO wblist (rid, sid, wb) SELECT u.id, m.id, ' ' FROM users u, mailaddr m
           WHERE u.email = 'alice@example.com' AND m.email = '@.';
         INSERT INTO mailaddr (priority, email) VALUES (5, '@soft.test');
         INSERT INTO wblist (rid, sid, wb) SELECT u.id, m.id, '-1.5' FROM users u, mailaddr m
           WHERE u.email = 'alice@example.com' AND m.email = '@soft.test';",
    );
    let dsn = db.dsn(false);
    // A clean message from a blacklisted sender: spam for alice, not for bob (no wblist row).
    let f = sql_filter(&dsn, "");
    let r = f.run(
        &[
            "-v",
            "-f",
            "spammer@bad.test",
            "--",
            "alice@example.com",
            "carol@example.com",
        ],
        PLAIN,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(delivered(&f), ["carol@example.com"], "{}", r.stderr);
    // From a whitelisted domain (the From: author; the envelope sender is neutral): alice's
    // copy (her policy tags everything, spam_tag_level -999) shows the whitelisting. (carol
    // is there so that spamd is asked at all: nobody asks it for whitelisted-only mail.)
    let pal = String::from_utf8_lossy(PLAIN)
        .replace("Alice <alice@example.org>", "Pal <pal@friend.test>");
    let f = sql_filter(&dsn, "");
    let r = f.run(
        &[
            "-v",
            "-f",
            "bulk@mailer.test",
            "--",
            "alice@example.com",
            "carol@example.com",
        ],
        pal.as_bytes(),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        delivered(&f),
        ["alice@example.com", "carol@example.com"],
        "{}",
        r.stderr
    );
    let alices = (0..f.calls())
        .find(|&n| f.call_argv(n).iter().any(|a| a == "alice@example.com"))
        .unwrap();
    let msg = String::from_utf8_lossy(&f.call_msg(alices)).into_owned();
    assert!(msg.contains("WHITELISTED"), "{msg}");
    // A neutral sender (only the `@.` row, wb = space): no verdict either way.
    let f = sql_filter(&dsn, "");
    let r = f.run(
        &["-v", "-f", "x@neutral.test", "--", "alice@example.com"],
        PLAIN,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(delivered(&f), ["alice@example.com"], "{}", r.stderr);
    let msg = String::from_utf8_lossy(&f.call_msg(0)).into_owned();
    assert!(
        msg.contains("X-Spam-Status: No") && !msg.contains("WHITELISTED"),
        "{msg}"
    );
    // A soft score (wb = -1.5): points off alice's score, as the test AM.WBL.
    let f = sql_filter(&dsn, "");
    let r = f.run(
        &["-v", "-f", "news@soft.test", "--", "alice@example.com"],
        PLAIN,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let msg = String::from_utf8_lossy(&f.call_msg(0)).into_owned();
    assert!(msg.contains("AM.WBL=-1.5"), "{msg}");
}

#[test]
fn a_database_that_is_down_holds_the_mail_and_never_logs_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let dsn = format!(
        "host={} port=25532 user=postgres password=s3cret-pw dbname=nothing",
        dir.path().display()
    );
    let f = sql_filter(&dsn, "");
    let started = Instant::now();
    let r = f.run(
        &["-v", "-f", "a@example.net", "--", "bob@example.com"],
        PLAIN,
    );
    assert_eq!(r.code, 75, "{}", r.stderr);
    assert!(r.stdout.starts_with("4.3.0"), "{}", r.stdout);
    assert!(r.stderr.contains("cannot connect to"), "{}", r.stderr);
    assert!(
        !r.stderr.contains("s3cret") && !r.stdout.contains("s3cret"),
        "{}",
        r.stderr
    );
    assert_eq!(f.calls(), 0);
    assert!(started.elapsed() < Duration::from_secs(10));
    // on_failure = "ignore": logged, and the TOML tables decide.
    let f = sql_filter(&dsn, "on_failure = \"ignore\"\n");
    let r = f.run(
        &["-v", "-f", "a@example.net", "--", "bob@example.com"],
        PLAIN,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(delivered(&f), ["bob@example.com"]);
    assert!(
        r.stderr.contains("sql.on_failure = \"ignore\""),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("s3cret"), "{}", r.stderr);
    // check-config --ping says so, and shows the DSN without its password.
    let mut c = f.command(&["check-config", "--ping"]);
    c.stdin(Stdio::null());
    let o = c.output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(69), "{text}");
    assert!(
        text.contains("# ping sql: NOT USABLE: cannot connect"),
        "{text}"
    );
    assert!(
        text.contains("password=***") && !text.contains("s3cret"),
        "{text}"
    );
}

#[test]
fn a_stalled_server_is_a_tempfail_within_the_connect_timeout() {
    let db = TestDb::new("stalled");
    let dsn = env_var("PIPESCAN_PG_DSN");
    let field = |k: &str| {
        dsn.split_whitespace()
            .find_map(|p| p.strip_prefix(k))
            .unwrap_or_else(|| panic!("no {k} in PIPESCAN_PG_DSN {dsn}"))
            .to_string()
    };
    let sock_dir = format!("{}/.s.PGSQL.{}", field("host="), field("port="));
    // A TCP proxy in front of the real server's socket that holds every answer for 60 s.
    let proxy = slow_proxy(&sock_dir, Duration::from_secs(60));
    let (host, port) = proxy.rsplit_once(':').unwrap();
    let dsn = format!("host={host} port={port} user=postgres dbname={}", db.name);
    let f = sql_filter(&dsn, "");
    let started = Instant::now();
    let r = f.run(
        &["-v", "-f", "a@example.net", "--", "bob@example.com"],
        PLAIN,
    );
    let took = started.elapsed();
    assert_eq!(r.code, 75, "{}", r.stderr);
    assert!(r.stderr.contains("sql.connect_timeout"), "{}", r.stderr);
    assert!(took < Duration::from_secs(8), "{took:?}");
    assert_eq!(f.calls(), 0);
}

#[test]
fn a_locked_table_is_a_tempfail_within_the_query_timeout() {
    let db = TestDb::new("locked");
    load_policies(&db);
    // Another session holds users locked (a long migration, a stuck transaction).
    let mut locker = Command::new("psql")
        .args(["-X", "-q", "-d", &db.dsn(false)])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = locker.stdin.take().unwrap();
    stdin
        .write_all(b"BEGIN; LOCK TABLE users IN ACCESS EXCLUSIVE MODE;\n")
        .unwrap();
    stdin.flush().unwrap();
    let t = Instant::now();
    while db.sql("SELECT count(*) FROM pg_locks l JOIN pg_class c ON l.relation = c.oid WHERE c.relname = 'users' AND l.mode = 'AccessExclusiveLock'") != "1" {
        assert!(t.elapsed() < Duration::from_secs(10), "the lock was not taken");
        std::thread::sleep(Duration::from_millis(20));
    }
    let f = sql_filter(&db.dsn(false), "");
    let started = Instant::now();
    let r = f.run(
        &["-v", "-f", "a@example.net", "--", "bob@example.com"],
        PLAIN,
    );
    let took = started.elapsed();
    drop(stdin);
    let _ = locker.kill();
    let _ = locker.wait();
    assert_eq!(r.code, 75, "{}", r.stderr);
    assert!(r.stderr.contains("sql.query_timeout"), "{}", r.stderr);
    assert!(took < Duration::from_secs(8), "{took:?}");
    assert_eq!(f.calls(), 0);
}

#[test]
fn a_missing_table_holds_the_mail_and_ping_names_it() {
    let db = TestDb::new("missing");
    db.sql("DROP TABLE wblist");
    let f = sql_filter(&db.dsn(false), "");
    // The recipient has a users row, so wblist is asked.
    db.sql(
        "INSERT INTO policy (id) VALUES (1); INSERT INTO users (email) VALUES ('bob@example.com')",
    );
    let r = f.run(
        &["-v", "-f", "a@example.net", "--", "bob@example.com"],
        PLAIN,
    );
    assert_eq!(r.code, 75, "{}", r.stderr);
    assert!(
        r.stderr.contains("\"wblist\" does not exist"),
        "{}",
        r.stderr
    );
    assert_eq!(f.calls(), 0);
    let mut c = f.command(&["check-config", "--ping"]);
    c.stdin(Stdio::null());
    let o = c.output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(69), "{text}");
    assert!(text.contains("NOT USABLE: table wblist"), "{text}");
    // With every table there, --ping answers.
    let good = TestDb::new("ping_ok");
    let f = sql_filter(&good.dsn(true), "");
    let mut c = f.command(&["check-config", "--ping"]);
    c.stdin(Stdio::null());
    let o = c.output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("# ping sql ")
            && text.contains("tables present: users, policy, mailaddr, wblist ("),
        "{text}"
    );
    // With the log and the SQL quarantine, their tables are checked too.
    let f = sql_filter(
        &good.dsn(false),
        "log = true\n[quarantine]\nmethod = \"sql\"\n",
    );
    good.sql("DROP TABLE quarantine");
    let mut c = f.command(&["check-config", "--ping"]);
    c.stdin(Stdio::null());
    let o = c.output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(69), "{text}");
    assert!(text.contains("NOT USABLE: table quarantine"), "{text}");
}

#[test]
fn hostile_addresses_are_only_ever_bound_parameters() {
    let db = TestDb::new("hostile");
    load_policies(&db);
    // The longest address the envelope accepts (998 bytes), and a 1 KB local part in From:.
    let long = format!("{}@example.com", "a".repeat(998 - "@example.com".len()));
    let injection = "x');DROP TABLE users;--@example.com";
    let quoted = "\"john doe\"@example.com";
    let f = sql_filter(&db.dsn(true), "log = true\n");
    let r = f.run(
        &[
            "-v",
            "-f",
            "o'hara@example.net",
            "--",
            "o'hara@example.com",
            injection,
            &long,
            quoted,
            "' OR '1'='1@example.com",
        ],
        &gtube(&format!(
            "Evil <e\u{0}vil'\";--{}@bad.test>",
            "b".repeat(1024)
        )),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    // o'hara has a users row of her own (policy lovers) and gets the spam; every other one
    // matches only @example.com (kill level 2000): delivered too, but not via a row that
    // an injected OR would have matched.
    let got = delivered(&f);
    assert!(got.contains(&"o'hara@example.com".to_string()), "{got:?}");
    assert_eq!(got.len(), 5, "{got:?} {}", r.stderr);
    assert_eq!(
        db.sql("SELECT count(*) FROM users"),
        "5",
        "the users table is intact"
    );
    // The message log holds them as data: the NUL of From: as ?, the addresses as given.
    assert_eq!(db.sql("SELECT count(*) FROM msgrcpt"), "5");
    assert!(
        db.sql("SELECT from_addr FROM msgs")
            .starts_with("Evil <e?vil'\";--bbb"),
        "{}",
        db.sql("SELECT from_addr FROM msgs")
    );
    assert_eq!(
        db.sql("SELECT count(*) FROM maddr WHERE email IN ('x'');drop table users;--@example.com', '\"john doe\"@example.com', 'o''hara@example.net')"),
        "3"
    );
    // Without the @example.com row, the injected OR finds nothing: discarded.
    db.sql("DELETE FROM users WHERE email = '@example.com'");
    let f = sql_filter(&db.dsn(false), "");
    let r = f.run(
        &[
            "-v",
            "-f",
            "a@example.net",
            "--",
            "' OR '1'='1@x.test",
            injection,
        ],
        &gtube("a@example.net"),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(delivered(&f).is_empty(), "{:?}", delivered(&f));
}

#[test]
fn the_printed_schema_is_amavisds_eight_tables() {
    // scripts/pg-stack loaded `pipescan sql schema` into the template: every table with
    // amavisd-new 2.13's column count (README.sql-pg).
    let db = TestDb::new("schema");
    let got = db.sql(
        "SELECT table_name || ':' || count(*) FROM information_schema.columns
         WHERE table_schema = 'public' GROUP BY table_name ORDER BY table_name",
    );
    assert_eq!(
        got.lines().collect::<Vec<_>>(),
        [
            "maddr:4",
            "mailaddr:3",
            "msgrcpt:12",
            "msgs:20",
            "policy:45",
            "quarantine:4",
            "users:5",
            "wblist:3",
        ]
    );
    let o = run_bin(&["sql", "schema"], b"", &[]);
    assert_eq!(o.code, 0);
    assert_eq!(o.stdout.matches("CREATE TABLE ").count(), 8);
}

#[test]
fn sql_settings_are_checked_against_the_deadline() {
    let f = Filter::new(
        "[general]\ndeadline = \"30s\"\n[sql]\nlookups = true\nquery_timeout = \"30s\"\n[policy.X.sql]\ndsn = \"host=/x\"\n",
    );
    let mut c = f.command(&["check-config"]);
    c.stdin(Stdio::null());
    let o = c.output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(78), "{err}");
    assert!(
        err.contains("sql.lookups") && err.contains("needs sql.dsn"),
        "{err}"
    );
    assert!(
        err.contains("sql.query_timeout") && err.contains("below general.deadline"),
        "{err}"
    );
}

fn mail_id_of(stderr: &str) -> String {
    let at = stderr
        .find("mail_id: ")
        .unwrap_or_else(|| panic!("no mail_id in the log: {stderr}"));
    stderr[at + 9..at + 21].to_string()
}

#[test]
fn the_message_log_has_amavisds_rows_and_columns() {
    let db = TestDb::new("msglog");
    load_policies(&db);
    let f = sql_filter(&db.dsn(true), "log = true\n");
    let msg = gtube("Promo <promo@example.net>");
    let r = f.run(
        &[
            "-v",
            "--client-address",
            "192.0.2.7",
            "-f",
            "Promo@Example.NET",
            "--",
            "bob@example.com",
            "erin@other.test",
        ],
        &msg,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let id = mail_id_of(&r.stderr);
    let row = db.sql(
        "SELECT convert_from(mail_id, 'UTF8'), am_id ~ '^[0-9]{5,}-01$', time_num > 0, \
         abs(extract(epoch FROM time_iso) - time_num) < 1, client_addr, size, originating, \
         content, quar_type, dsn_sent, spam_level >= 900, message_id, from_addr, subject, host, \
         convert_from(s.email, 'UTF8'), s.domain \
         FROM msgs JOIN maddr s ON s.id = msgs.sid",
    );
    assert_eq!(
        row,
        format!(
            "{id}|t|t|t|192.0.2.7|{}|N|S| |N|t|<gtube@example.net>|Promo <promo@example.net>|you won|mx.test|promo@example.net|net.example",
            msg.len()
        )
    );
    let rcpts = db.sql(
        "SELECT rseqnum, convert_from(r.email, 'UTF8'), is_local, content, ds, rs, bl, wl, \
         bspam_level >= 900, smtp_resp FROM msgrcpt JOIN maddr r ON r.id = msgrcpt.rid \
         ORDER BY rseqnum",
    );
    assert_eq!(
        rcpts.lines().collect::<Vec<_>>(),
        [
            "1|bob@example.com|Y|S|P| |N|N|t|250 2.0.0 Ok",
            "2|erin@other.test|Y|S|D| |N|N|t|250 2.7.0 Ok, discarded",
        ]
    );
    // A second message from the same sender, on another connection: one maddr row each.
    let f = sql_filter(&db.dsn(false), "log = true\n");
    let r = f.run(
        &["-v", "-f", "promo@example.net", "--", "bob@example.com"],
        PLAIN,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(db.sql("SELECT count(*) FROM msgs"), "2");
    assert_eq!(
        db.sql("SELECT count(*) FROM maddr WHERE email = 'promo@example.net'"),
        "1"
    );
    // Mail submitted here (the ORIGINATING bank's transport): policy and originating say so.
    let f = sql_filter(
        &db.dsn(false),
        "log = true\n[policy.ORIGINATING.general]\nmax_received = 50\n",
    );
    let r = f.run(
        &[
            "-v",
            "--policy",
            "ORIGINATING",
            "-f",
            "bob@example.com",
            "--",
            "x@far.test",
        ],
        PLAIN,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        db.sql("SELECT policy, originating FROM msgs JOIN maddr s ON s.id = msgs.sid WHERE s.email = 'bob@example.com'"),
        "ORIGINATING|Y"
    );
}

#[test]
fn a_log_write_that_fails_logs_and_delivers() {
    // A database that is down (log only, no lookups): delivered, and the log says why.
    let dir = tempfile::tempdir().unwrap();
    let down = format!(
        "host={} port=25532 user=postgres dbname=x",
        dir.path().display()
    );
    let f = sql_filter(&down, "lookups = false\nlog = true\n");
    let r = f.run(
        &["-v", "-f", "a@example.net", "--", "bob@example.com"],
        PLAIN,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(delivered(&f), ["bob@example.com"]);
    assert!(
        r.stderr.contains("sql message log not written"),
        "{}",
        r.stderr
    );
    // A read-only replica as the log database: the INSERTs are refused; delivered all the same.
    let db = TestDb::new("readonly");
    db.sql(&format!(
        "ALTER DATABASE {} SET default_transaction_read_only = on",
        db.name
    ));
    let f = sql_filter(&db.dsn(false), "log = true\n");
    let r = f.run(
        &["-v", "-f", "a@example.net", "--", "bob@example.com"],
        PLAIN,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(delivered(&f), ["bob@example.com"]);
    assert!(
        r.stderr.contains("sql message log not written") && r.stderr.contains("read-only"),
        "{}",
        r.stderr
    );
}

/// A message with a Windows program attached (banned, discarded and quarantined by default),
/// over three 16 KiB chunks.
fn banned_mail() -> Vec<u8> {
    format!(
        "From: mallory@example.net\nTo: bob@example.com\nSubject: invoice\nDate: Mon, 23 Nov 2026 10:00:00 +0000\nMessage-ID: <att@example.net>\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b1\"\n\n--b1\nContent-Type: text/plain\n\nsee attachment\n{}\n--b1\nContent-Type: application/octet-stream; name=\"invoice.exe\"\nContent-Transfer-Encoding: base64\nContent-Disposition: attachment; filename=\"invoice.exe\"\n\n{}\n--b1--\n",
        "padding line of the text part, to spread the copy over several chunks\n".repeat(600),
        base64_lines(b"MZ\x90\0\x03\0\0\0")
    )
    .into_bytes()
}

#[test]
fn quarantined_on_mx1_listed_and_released_on_mx2_arrives_once() {
    let db = TestDb::new("twohosts");
    let both = "log = true\n[quarantine]\nmethod = \"sql\"\n";
    // mx1 straight to PostgreSQL, mx2 through PgBouncer: two hosts, one database.
    let mx1 = sql_filter(&db.dsn(false), both);
    let mx2 = sql_filter(&db.dsn(true), both);
    let msg = banned_mail();
    let r = mx1.run(
        &[
            "-v",
            "-f",
            "mallory@example.net",
            "--",
            "bob@example.com",
            "carol@example.com",
        ],
        &msg,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("Blocked BANNED"), "{}", r.stderr);
    assert_eq!(mx1.calls(), 0, "discarded on mx1");
    assert!(mx1.quarantined().is_empty(), "no file: the copy is in SQL");
    let id = mail_id_of(&r.stderr);
    assert_eq!(
        db.sql(&format!(
            "SELECT count(*), max(chunk_ind), bool_and(length(mail_text) <= 16384) FROM quarantine WHERE mail_id = '{id}'::bytea"
        )),
        "3|3|t",
        "chunked"
    );
    assert_eq!(
        db.sql("SELECT content, quar_type, convert_from(mail_id, 'UTF8') = quar_loc FROM msgs"),
        "B|Q|t"
    );
    // mx2 lists it ...
    let mut c = mx2.command(&["quarantine", "list"]);
    c.stdin(Stdio::null());
    let o = c.output().unwrap();
    let list = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{list}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let line = list
        .lines()
        .find(|l| l.starts_with(&id))
        .unwrap_or_else(|| panic!("{list}"));
    assert!(
        line.contains("BANNED")
            && line.contains("<mallory@example.net>")
            && line.contains("invoice"),
        "{line}"
    );
    let o = mx2.run(&["quarantine", "list", "--category", "spam"], b"");
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(
        o.stdout.lines().count(),
        1,
        "only the title line: {}",
        o.stdout
    );
    // ... and releases it: it arrives once, byte for byte, to both recipients.
    let o = mx2.run(&["release", &id], b"");
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
    assert_eq!(mx2.calls(), 1);
    assert_eq!(mx1.calls(), 0);
    let argv = mx2.call_argv(0);
    assert!(
        argv.ends_with(&[
            "--".into(),
            "bob@example.com".into(),
            "carol@example.com".into()
        ]),
        "{argv:?}"
    );
    assert!(
        argv.contains(&"mallory@example.net".to_string()),
        "{argv:?}"
    );
    assert_eq!(mx2.call_msg(0), msg, "the original bytes");
    assert_eq!(
        db.sql(&format!(
            "SELECT string_agg(rs, '' ORDER BY rseqnum) FROM msgrcpt WHERE mail_id = '{id}'::bytea"
        )),
        "RR",
        "marked released for every host and UI"
    );
    // An id that is not there, and one that is not an id.
    assert_eq!(mx2.run(&["release", "AAAAAAAAAAAA"], b"").code, 66);
    assert_eq!(mx2.run(&["release", "x' OR '1'='1"], b"").code, 66);
}

#[test]
fn a_sql_quarantine_that_cannot_be_written_keeps_the_message() {
    let db = TestDb::new("quarfail");
    db.sql("DROP TABLE quarantine");
    let f = sql_filter(&db.dsn(false), "[quarantine]\nmethod = \"sql\"\n");
    let r = f.run(
        &["-v", "-f", "mallory@example.net", "--", "bob@example.com"],
        &banned_mail(),
    );
    assert_eq!(r.code, 75, "{}", r.stderr);
    assert!(
        r.stderr.contains("cannot quarantine the message: sql"),
        "{}",
        r.stderr
    );
    assert_eq!(f.calls(), 0);
}

#[test]
fn a_reply_to_a_local_users_mail_gets_the_pen_pal_bonus_on_the_other_host() {
    let db = TestDb::new("penpals");
    // bob's own levels: GTUBE (1000) is spam for him, unless something takes 10 points off.
    db.sql(
        "INSERT INTO policy (id, policy_name, spam_tag2_level, spam_kill_level) VALUES (1, 'bob', 990, 990);
         INSERT INTO users (priority, policy_id, email) VALUES (8, 1, 'bob@example.com');",
    );
    let pals = "log = true\npenpals_bonus_score = 50\npenpals_halflife = \"7d\"\n";
    let mx1 = sql_filter(&db.dsn(false), pals);
    let mx2 = sql_filter(&db.dsn(true), pals);
    // bob writes to a friend outside, through mx1.
    let hello = b"From: Bob <bob@example.com>\nTo: friend@far.test\nSubject: lunch?\nMessage-ID: <hello-1@example.com>\n\nNoon?\n";
    let r = mx1.run(
        &["-v", "-f", "bob@example.com", "--", "friend@far.test"],
        hello,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(delivered(&mx1), ["friend@far.test"]);
    // The friend's reply reaches mx2: spammy, but a reply to bob's mail.
    let reply = String::from_utf8_lossy(&gtube("friend@far.test")).replace(
        "Subject: you won",
        "Subject: Re: lunch?\nIn-Reply-To: <hello-1@example.com>",
    );
    let r = mx2.run(
        &[
            "-v",
            "-f",
            "friend@far.test",
            "--",
            "bob@example.com",
            "carol@example.com",
        ],
        reply.as_bytes(),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        delivered(&mx2),
        ["bob@example.com"],
        "carol never wrote to the friend: {}",
        r.stderr
    );
    let msg = String::from_utf8_lossy(&mx2.call_msg(0)).into_owned();
    assert!(msg.contains("AM.PENPAL=-"), "{msg}");
    assert!(
        r.stderr.contains("penpals: bonus 50.0") || r.stderr.contains("penpals: bonus 49.9"),
        "{}",
        r.stderr
    );
    // A stranger's GTUBE to bob: no bonus, discarded.
    let f = sql_filter(&db.dsn(true), pals);
    let r = f.run(
        &["-v", "-f", "stranger@else.test", "--", "bob@example.com"],
        &gtube("stranger@else.test"),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(delivered(&f).is_empty(), "{}", r.stderr);
    // The database gone while pen pals are asked: held (on_failure = "tempfail").
    let dir = tempfile::tempdir().unwrap();
    let down = format!(
        "host={} port=25532 user=postgres dbname=x",
        dir.path().display()
    );
    let f = sql_filter(&down, "lookups = false\npenpals_bonus_score = 50\n");
    let r = f.run(
        &["-v", "-f", "friend@far.test", "--", "bob@example.com"],
        reply.as_bytes(),
    );
    assert_eq!(r.code, 75, "{}", r.stderr);
    assert!(r.stderr.contains("pen pals"), "{}", r.stderr);
}

#[test]
fn a_dsn_without_a_user_connects_as_the_process_user_from_etc_passwd() {
    let db = TestDb::new("nouser");
    let dsn: String = db
        .dsn(false)
        .split_whitespace()
        .filter(|p| !p.starts_with("user="))
        .collect::<Vec<_>>()
        .join(" ");
    let f = sql_filter(&dsn, "");
    let r = f.run(
        &["-v", "-f", "a@example.net", "--", "bob@example.com"],
        PLAIN,
    );
    // The cluster has no role for the test's user (root in CI): PostgreSQL names it.
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|v| v.split_whitespace().nth(1))
        .unwrap()
        .to_string();
    let me = std::fs::read_to_string("/etc/passwd")
        .unwrap()
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() > 2 && f[2] == uid).then(|| f[0].to_string())
        })
        .unwrap();
    assert_eq!(r.code, 75, "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!("role \"{me}\" does not exist")),
        "{}",
        r.stderr
    );
}

#[test]
fn a_policy_rows_quarantine_to_decides_for_its_recipient() {
    let db = TestDb::new("quarto");
    db.sql(
        "INSERT INTO policy (id, policy_name, banned_quarantine_to, spam_quarantine_to) VALUES
           (1, 'no banned copies', '', NULL), (2, 'keep my spam', NULL, 'spam-quarantine');
         INSERT INTO users (priority, policy_id, email) VALUES
           (8, 1, 'bob@example.com'), (8, 2, 'dave@example.com');",
    );
    // No directory at all: the SQL quarantine is the store.
    let f = || {
        sql_filter(
            &db.dsn(false),
            "[quarantine]\nmethod = \"sql\"\ndirectory = \"\"\n",
        )
    };
    let kept = |stderr: &str| {
        db.sql(&format!(
            "SELECT count(*) > 0 FROM quarantine WHERE mail_id = '{}'::bytea",
            mail_id_of(stderr)
        )) == "t"
    };
    // Banned, for bob alone: he wants no copy ([quarantine] banned = true by default).
    let r = f().run(
        &["-v", "-f", "m@example.net", "--", "bob@example.com"],
        &banned_mail(),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!kept(&r.stderr), "{}", r.stderr);
    // Banned, for bob and carol (no row: the configuration's default): kept.
    let r = f().run(
        &[
            "-v",
            "-f",
            "m@example.net",
            "--",
            "bob@example.com",
            "carol@example.com",
        ],
        &banned_mail(),
    );
    assert!(kept(&r.stderr), "{}", r.stderr);
    // Spam ([quarantine] spam = false by default): kept for dave, who asks for it ...
    let r = f().run(
        &["-v", "-f", "m@example.net", "--", "dave@example.com"],
        &gtube("m@example.net"),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(kept(&r.stderr), "{}", r.stderr);
    // ... not for carol.
    let r = f().run(
        &["-v", "-f", "m@example.net", "--", "carol@example.com"],
        &gtube("m@example.net"),
    );
    assert!(!kept(&r.stderr), "{}", r.stderr);
}

#[test]
fn quarantine_expire_removes_old_sql_copies_only() {
    let db = TestDb::new("expire");
    let f = sql_filter(
        &db.dsn(true),
        "log = true\n[quarantine]\nmethod = \"sql\"\n",
    );
    let mut ids = Vec::new();
    for _ in 0..2 {
        let r = f.run(
            &["-v", "-f", "m@example.net", "--", "bob@example.com"],
            &banned_mail(),
        );
        assert_eq!(r.code, 0, "{}", r.stderr);
        ids.push(mail_id_of(&r.stderr));
    }
    // The first one arrived 40 days ago (max_age is 30 days).
    db.sql(&format!(
        "UPDATE msgs SET time_num = time_num - 40 * 86400 WHERE mail_id = '{}'::bytea",
        ids[0]
    ));
    let o = f.run(&["quarantine", "expire", "-n"], b"");
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stdout.contains("would remove 1 copies"), "{}", o.stdout);
    assert_eq!(
        db.sql("SELECT count(DISTINCT mail_id) FROM quarantine"),
        "2"
    );
    let o = f.run(&["quarantine", "expire"], b"");
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stdout.contains("removed 1 copies"), "{}", o.stdout);
    assert_eq!(
        db.sql("SELECT string_agg(DISTINCT convert_from(mail_id, 'UTF8'), ',') FROM quarantine"),
        ids[1]
    );
    assert_eq!(db.sql("SELECT count(*) FROM msgs"), "2", "the log stays");
    assert_eq!(f.run(&["release", &ids[0]], b"").code, 66);
}

#[test]
fn a_policy_rows_admin_gets_the_notice_for_its_recipient() {
    let db = TestDb::new("admins");
    db.sql(
        "INSERT INTO policy (id, policy_name, banned_admin) VALUES (1, 'own admin', 'desk@example.com'), (2, 'no admin', '');
         INSERT INTO users (priority, policy_id, email) VALUES (8, 1, 'bob@example.com'), (8, 2, 'erin@example.com');",
    );
    let f = sql_filter(
        &db.dsn(false),
        "[notify]\nbanned_admin = \"postmaster@example.com\"\n",
    );
    let r = f.run(
        &[
            "-v",
            "-f",
            "m@example.net",
            "--",
            "bob@example.com",
            "carol@example.com",
            "erin@example.com",
        ],
        &banned_mail(),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    // Discarded for all three: the only mail is the admin notice, to bob's own admin and to
    // [notify]'s for carol (erin's policy says none).
    assert_eq!(
        delivered(&f),
        ["desk@example.com", "postmaster@example.com"],
        "{}",
        r.stderr
    );
}

#[test]
fn a_database_stopped_behind_pgbouncer_is_a_tempfail_within_the_timeouts() {
    // PgBouncer answers, the server behind it (pg-stack's "stopped" entry) does not run.
    let dsn = with_dbname(&env_var("PIPESCAN_PGBOUNCER_DSN"), "stopped");
    let f = sql_filter(&dsn, "log = true\n");
    let started = Instant::now();
    let r = f.run(
        &["-v", "-f", "a@example.net", "--", "bob@example.com"],
        PLAIN,
    );
    let took = started.elapsed();
    assert_eq!(r.code, 75, "{}", r.stderr);
    assert!(r.stdout.starts_with("4.3.0"), "{}", r.stdout);
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert_eq!(f.calls(), 0);
}

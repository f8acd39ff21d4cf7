//! What serde cannot check: values that must agree with each other, paths that must be
//! absolute, templates, addresses, lookup entries. Each check returns every offending key
//! (dotted) with its problem; `config::load` locates them in the file.
//!
//! The lookup tables are compiled here only to find bad entries (a `file:` list is read); the
//! compiled tables are not kept: a run compiles them again with `policy::Lists::compile`.

use crate::config::general::{is_field_name, is_header_safe};
use crate::config::settings::Config;
use crate::verdict::OnFailure;
use std::path::Path;
use std::time::Duration;

/// Every problem of `cfg` as (dotted key, message), in a fixed order.
pub fn problems(cfg: &Config) -> Vec<(String, String)> {
    let mut errs: Vec<(String, String)> = Vec::new();
    general(cfg, &mut errs);
    headers_and_reinject(cfg, &mut errs);
    servers(cfg, &mut errs);
    spam(cfg, &mut errs);
    if let Err(e) = lists(cfg) {
        errs.push(e);
    }
    sections(cfg, &mut errs);
    addresses(cfg, &mut errs);
    sql(cfg, &mut errs);
    authentication(cfg, &mut errs);
    errs
}

/// `[auth]`, `[dns]` and `[dkim]`: the resolver, the networks, and every signing key loaded
/// (a key that cannot sign would defer every outbound message).
fn authentication(cfg: &Config, errs: &mut Vec<(String, String)>) {
    for s in &cfg.dns.servers {
        if let Err(e) = crate::dns::server(s) {
            errs.push(("dns.servers".into(), e));
            break;
        }
    }
    // Above [general] deadline is fine: a run cuts the DNS budget to what the deadline leaves.
    if cfg.dns.timeout.0 < Duration::from_millis(100) {
        errs.push(("dns.timeout".into(), "must be at least 100ms".into()));
    }
    if cfg.auth.max_signatures == 0 {
        errs.push(("auth.max_signatures".into(), "must be at least 1".into()));
    }
    if !cfg.auth.dmarc_fail_score.is_finite() {
        errs.push(("auth.dmarc_fail_score".into(), "must be a number".into()));
    }
    for entry in &cfg.auth.whitelist_authenticated_sender {
        if anyone_can_join(entry) {
            errs.push((
                "auth.whitelist_authenticated_sender".into(),
                format!(
                    "{entry:?} matches authors of any domain or of a whole top-level domain: anyone with a key for a domain of their own would be whitelisted; name the domains or addresses"
                ),
            ));
        }
    }
    for id in &cfg.auth.remove_authserv_ids {
        if id.is_empty()
            || id.contains(|c: char| c.is_whitespace() || c.is_control() || ";()\"".contains(c))
        {
            errs.push((
                "auth.remove_authserv_ids".into(),
                format!("{id:?} is not an authserv-id (a host name such as \"mx2.example.org\")"),
            ));
        }
    }
    for domain in cfg.auth.author_policy_banks.keys() {
        if domain.is_empty() || domain.contains(['@', ' ']) {
            errs.push((
                "auth.author_policy_banks".into(),
                format!("{domain:?} is not a domain name"),
            ));
        } else if !domain.trim_matches('.').contains('.') {
            // Every proven author under it would get the bank: anyone can sign for a domain
            // of their own under a top-level domain.
            errs.push((
                "auth.author_policy_banks".into(),
                format!(
                    "{domain:?} has one label: every DKIM-proven author under it would get the bank; name the partner's domain"
                ),
            ));
        }
    }
    for n in &cfg.lists.mynetworks {
        match crate::envelope::Network::parse(n) {
            Err(e) => errs.push(("lists.mynetworks".into(), e)),
            // Every client ours: all mail from the Internet would be originating (the
            // originating bank, unscanned as shipped, and DKIM-signed).
            Ok(net) if net.is_every_address() => errs.push((
                "lists.mynetworks".into(),
                format!(
                    "{n:?} is every address: all mail from the Internet would be ours (auth.originating_bank, DKIM signing); list your own networks"
                ),
            )),
            Ok(_) => {}
        }
    }
    for k in &cfg.dkim.keys {
        let bad = |what: &str| {
            (
                "dkim.key".to_string(),
                format!("{what} (domain {:?})", k.domain),
            )
        };
        if k.domain.is_empty() || k.domain.contains(['@', ' ', ';']) {
            errs.push(bad("domain must be a domain name"));
        } else if k.selector.is_empty()
            || !k
                .selector
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            errs.push(bad("selector must be letters, digits, '-', '_' or '.'"));
        } else if !k.key_file.is_absolute() {
            errs.push(bad("key_file must be an absolute path"));
        } else if let Err(e) = crate::act::sign::load_key(&k.key_file) {
            errs.push(bad(&e));
        }
    }
    if cfg
        .dkim
        .headers
        .iter()
        .all(|h| !h.eq_ignore_ascii_case("From"))
    {
        errs.push((
            "dkim.headers".into(),
            "must contain From (RFC 6376 §5.4)".into(),
        ));
    }
}

/// `[general]`, and every path that must be absolute.
fn general(cfg: &Config, errs: &mut Vec<(String, String)>) {
    let g = &cfg.general;
    if !g.hostname.is_empty() && !is_header_safe(&g.hostname) {
        errs.push((
            "general.hostname".into(),
            "must be printable ASCII without spaces".into(),
        ));
    }
    if g.tempdir.as_os_str().is_empty() {
        errs.push(("general.tempdir".into(), "must not be empty".into()));
    }
    // A relative path means "relative to wherever the MTA started us": fine from one
    // directory, broken (or writing somewhere unexpected) from another.
    let n = &cfg.notify;
    for (key, path) in [
        ("general.tempdir", g.tempdir.as_path()),
        ("general.syslog_socket", g.syslog_socket.as_path()),
        ("quarantine.directory", cfg.quarantine.directory.as_path()),
        ("loop_marker.key_file", cfg.loop_marker.key_file.as_path()),
        ("notify.admin_template", Path::new(&n.admin_template)),
        (
            "notify.recipient_template",
            Path::new(&n.recipient_template),
        ),
        ("notify.sender_template", Path::new(&n.sender_template)),
        ("reinject.tls_ca_file", cfg.reinject.tls_ca_file.as_path()),
    ] {
        if !path.as_os_str().is_empty() && !path.is_absolute() {
            errs.push((
                key.into(),
                format!(
                    "{path:?} is a relative path (it would depend on the directory pipescan is started in): give an absolute path, starting with /"
                ),
            ));
        }
    }
    if let Some(program) = cfg.reinject.command.first()
        && program.contains('/')
        && !Path::new(program).is_absolute()
    {
        errs.push((
            "reinject.command".into(),
            format!(
                "{program:?} is a relative path (it would depend on the directory pipescan is started in): give an absolute path, e.g. \"/usr/sbin/sendmail\""
            ),
        ));
    }
    if g.deadline.0 < Duration::from_secs(1) {
        errs.push(("general.deadline".into(), "must be at least 1s".into()));
    }
    if g.max_message_size.0 == 0 {
        errs.push(("general.max_message_size".into(), "must be above 0".into()));
    }
    if g.user
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || c == ':')
    {
        errs.push((
            "general.user".into(),
            "must be a user name (no spaces, colons or control characters)".into(),
        ));
    }
    if g.max_received == 0 {
        errs.push(("general.max_received".into(), "must be above 0".into()));
    }
}

/// `[headers]` field name and line, and the `[reinject]` command.
fn headers_and_reinject(cfg: &Config, errs: &mut Vec<(String, String)>) {
    let h = &cfg.headers;
    if !h.x_header_tag.is_empty() && !is_field_name(&h.x_header_tag) {
        errs.push((
            "headers.x_header_tag".into(),
            "must be a header field name (printable ASCII, no colon or space)".into(),
        ));
    }
    if h.x_header_line.contains(['\r', '\n', '\0']) {
        errs.push((
            "headers.x_header_line".into(),
            "must be a single line".into(),
        ));
    }
    if cfg.reinject.command.is_empty() || cfg.reinject.command[0].is_empty() {
        errs.push((
            "reinject.command".into(),
            "must name a program, e.g. [\"/usr/sbin/sendmail\", \"-i\"]".into(),
        ));
    }
    if cfg.reinject.command.iter().any(|a| a == "-t") {
        errs.push((
            "reinject.command".into(),
            "must not contain -t: recipients come from the envelope, never from the header".into(),
        ));
    }
    let smtp = match cfg.reinject.method() {
        Ok(m) => m != crate::config::delivery::Method::Sendmail,
        Err(e) => {
            errs.push(e);
            true
        }
    };
    // Checked only for SMTP (the sendmail courier does not use it).
    let timeout = cfg.reinject.timeout.0;
    if smtp && (timeout < Duration::from_secs(1) || timeout >= cfg.general.deadline.0) {
        errs.push((
            "reinject.timeout".into(),
            format!(
                "must be at least 1s and below general.deadline ({}): the run's deadline must not cut a delivery short",
                cfg.general.deadline
            ),
        ));
    }
    // STARTTLS needs a host name or address to check the certificate against: a unix socket
    // has none, so "verify" there would defer every message.
    if cfg.reinject.tls == crate::config::delivery::TlsLevel::Verify
        && let Ok(
            crate::config::delivery::Method::Smtp(servers)
            | crate::config::delivery::Method::Lmtp(servers),
        ) = cfg.reinject.method()
        && let Some(sock) = servers.iter().find(|s| s.starts_with('/'))
    {
        errs.push((
            "reinject.tls".into(),
            format!(
                "\"verify\" cannot check a certificate over the unix socket {sock}: use \"auto\" (none on a socket) or a TCP server"
            ),
        ));
    }
}

/// The server pools of spamd, clamd and rspamd: addresses and timeouts.
fn servers(cfg: &Config, errs: &mut Vec<(String, String)>) {
    let pools = [
        (
            "spamd",
            &cfg.spamd.servers,
            cfg.spamd.timeout,
            cfg.spamd.connect_timeout,
        ),
        (
            "clamd",
            &cfg.clamd.servers,
            cfg.clamd.timeout,
            cfg.clamd.connect_timeout,
        ),
        (
            "rspamd",
            &cfg.rspamd.servers,
            cfg.rspamd.timeout,
            cfg.rspamd.connect_timeout,
        ),
    ];
    for (name, servers, timeout, connect) in pools {
        for s in servers {
            if let Err(e) = s.parse::<crate::scan::wire::ServerAddr>() {
                errs.push((format!("{name}.servers"), e));
                break;
            }
        }
        if timeout.0 < Duration::from_millis(100) {
            errs.push((format!("{name}.timeout"), "must be at least 100ms".into()));
        }
        // A connect_timeout above the timeout is fine: the whole exchange, connect
        // included, never outlasts the timeout.
        if connect.0 < Duration::from_millis(10) {
            errs.push((
                format!("{name}.connect_timeout"),
                "must be at least 10ms".into(),
            ));
        }
    }
}

/// `[spam]`: the failure mode, the order of the levels; the Subject tags.
fn spam(cfg: &Config, errs: &mut Vec<(String, String)>) {
    if cfg.spam.on_failure == OnFailure::Unchecked {
        errs.push((
            "spam.on_failure".into(),
            "must be \"pass\" or \"tempfail\" (\"unchecked\" is for viruses)".into(),
        ));
    }
    let sp = &cfg.spam;
    if !(sp.tag_level <= sp.tag2_level && sp.tag2_level <= sp.kill_level) {
        // Name the level that breaks the order: kill_level below tag2_level (the classic
        // "kill_level = 5.0" alone), else tag2_level below tag_level.
        let key = if sp.tag2_level > sp.kill_level {
            "spam.kill_level"
        } else {
            "spam.tag2_level"
        };
        errs.push((
            key.into(),
            format!(
                "the spam levels must satisfy tag_level <= tag2_level <= kill_level, but tag_level = {:?}, tag2_level = {:?}, kill_level = {:?} (the defaults are 2.0, 6.2, 6.9): set the others too",
                sp.tag_level, sp.tag2_level, sp.kill_level
            ),
        ));
    }
    for (key, tag) in [
        ("headers.spam_subject_tag", &cfg.headers.spam_subject_tag),
        ("headers.virus_subject_tag", &cfg.headers.virus_subject_tag),
        (
            "headers.unchecked_subject_tag",
            &cfg.headers.unchecked_subject_tag,
        ),
    ] {
        if tag.contains(['\r', '\n', '\0']) {
            errs.push((key.into(), "must be a single line".into()));
        }
    }
}

/// Every lookup table compiles (its `file:` lists read): the first bad one, with its key, in
/// the order `policy::Lists::compile` compiles them.
fn lists(cfg: &Config) -> Result<(), (String, String)> {
    let tables = cfg.lookup_tables();
    for (key, entries) in tables {
        crate::lookup::table::Table::new(entries).map_err(|e| (key.to_string(), e.0))?;
    }
    Ok(())
}

/// The sections whose owners check them: quarantine templates, banned rules, the loop marker
/// key, the command-line scanners.
fn sections(cfg: &Config, errs: &mut Vec<(String, String)>) {
    if let Err(e) = crate::config::delivery::validate_quarantine(&cfg.quarantine) {
        errs.push(e);
    }
    if let Err(e) = crate::scan::banned::validate(&cfg.banned) {
        errs.push(e);
    }
    let m = &cfg.loop_marker;
    if !m.key.is_empty() && !m.key_file.as_os_str().is_empty() {
        errs.push((
            "loop_marker.key".into(),
            "set key or key_file, not both".into(),
        ));
    }
    if !m.key.is_empty() && m.key.len() < crate::scan::marker::MIN_KEY_LEN {
        errs.push((
            "loop_marker.key".into(),
            format!(
                "must be at least {} bytes, e.g. the output of `head -c 32 /dev/urandom | base64`",
                crate::scan::marker::MIN_KEY_LEN
            ),
        ));
    }
    for c in &cfg.av_command {
        if let Err(e) = crate::scan::command::validate(c) {
            errs.push(("av_command".to_string(), e));
        }
    }
}

/// Values that end up in protocol lines or on a command line: passwords, addresses, user
/// names; and the notice templates, which must be readable.
fn addresses(cfg: &Config, errs: &mut Vec<(String, String)>) {
    let n = &cfg.notify;
    if cfg.rspamd.password.chars().any(char::is_control) {
        errs.push((
            "rspamd.password".into(),
            "must not contain control characters".into(),
        ));
    }
    if cfg.quarantine.address.chars().any(char::is_control) {
        errs.push((
            "quarantine.address".into(),
            "must not contain control characters".into(),
        ));
    }
    for (key, addr) in [
        ("notify.virus_admin", &n.virus_admin),
        ("notify.banned_admin", &n.banned_admin),
        ("notify.spam_admin", &n.spam_admin),
        ("notify.bad_header_admin", &n.bad_header_admin),
    ] {
        if addr.chars().any(|c| c.is_control() || c.is_whitespace()) {
            errs.push((key.into(), "must be one address without spaces".into()));
        }
    }
    for (key, path) in [
        ("notify.admin_template", &n.admin_template),
        ("notify.recipient_template", &n.recipient_template),
        ("notify.sender_template", &n.sender_template),
    ] {
        if Path::new(path).is_absolute() && std::fs::metadata(path).is_err() {
            errs.push((key.into(), format!("cannot read template file {path:?}")));
        }
    }
    for (i, p) in cfg.per_recipient.iter().enumerate() {
        if p.recipients.is_empty() {
            errs.push((
                "per_recipient.recipients".into(),
                format!("entry {} matches no one: recipients is empty", i + 1),
            ));
        }
    }
    if cfg.spamd.default_user.chars().any(char::is_control) {
        errs.push((
            "spamd.default_user".into(),
            "must not contain control characters".into(),
        ));
    }
}

/// `[sql]`: a DSN that parses when anything uses it, timeouts inside the run's deadline.
fn sql(cfg: &Config, errs: &mut Vec<(String, String)>) {
    let q = &cfg.sql;
    let sql_quarantine = cfg.quarantine.method == crate::config::delivery::QuarantineMethod::Sql;
    for (key, on) in [
        ("sql.lookups", q.lookups),
        ("sql.log", q.log),
        ("quarantine.method", sql_quarantine),
        ("sql.penpals_bonus_score", q.penpals()),
    ] {
        if on && q.dsn.is_empty() {
            errs.push((
                key.into(),
                "needs sql.dsn (e.g. \"host=/run/postgresql dbname=mail user=pipescan\")".into(),
            ));
        }
    }
    if !q.dsn.is_empty()
        && let Err(e) = crate::sql::conn::parse_dsn(&q.dsn)
    {
        errs.push(("sql.dsn".into(), e));
    }
    if !q.penpals_bonus_score.is_finite() || q.penpals_bonus_score < 0.0 {
        errs.push((
            "sql.penpals_bonus_score".into(),
            "must be a number, 0 (off) or more".into(),
        ));
    }
    // Checked against the deadline only when a database is in use (a short test deadline
    // must not trip over the defaults of an unused section).
    if q.dsn.is_empty() {
        return;
    }
    let deadline = cfg.general.deadline.0;
    for (key, d) in [
        ("sql.connect_timeout", q.connect_timeout.0),
        ("sql.query_timeout", q.query_timeout.0),
    ] {
        if d.is_zero() {
            errs.push((key.into(), "must be above 0".into()));
        } else if d >= deadline {
            errs.push((
                key.into(),
                format!("must be below general.deadline ({})", cfg.general.deadline),
            ));
        }
    }
}

/// An inline lookup entry that an author of a domain anyone can register matches: `.`, `user@`
/// (any domain), or a domain of one label (`com`, `.com`, `@com`, `@.com`). Negations, regex and
/// file entries are not judged.
fn anyone_can_join(entry: &str) -> bool {
    let e = entry.trim();
    if e.starts_with('!') || e.starts_with('/') || e.starts_with("file:") {
        return false;
    }
    if e == "." || e == "@." || e.ends_with('@') {
        return true;
    }
    let domain = match e.split_once('@') {
        // @domain, @.domain
        Some(("", d)) => d,
        // user@domain: one address
        Some(_) => return false,
        // domain, .domain
        None => e,
    };
    !domain.trim_matches('.').contains('.')
}

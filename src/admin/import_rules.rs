//! What `import-amavisd` translates: amavisd-new variables (as `admin::import` reads them from
//! Perl) to pipescan keys, and why the others have no equivalent. Values arrive in the tagged
//! JSON forms `import.pl` describes.

use crate::admin::import_vars::{Vars, quoted};
use serde_json::Value;

/// The settings of the global scope: everything a policy bank can set, and what only the
/// global configuration has (quarantine, scanners, host names).
pub fn global(v: &mut Vars) {
    scope(v);
    // Its banks are translated one by one (admin::import::translate).
    v.get("%policy_bank");
    quarantine(v);
    scanners(v);
    banned(v);
    reinject(v);
    if let Some(s) = v.get("$myhostname").and_then(Value::as_str) {
        v.set("general", "hostname", quoted(s), "$myhostname");
    }
    if v.get("$mydomain").is_some() {
        v.note(
            "$mydomain",
            "no pipescan key: its value is already expanded in the settings built from it",
        );
    }
    if let Some(r) = v.get("$recipient_delimiter") {
        let why = if r.as_str() == Some("+") {
            "pipescan always retries a lookup without a +extension (the same as '+')"
        } else {
            "pipescan's lookups always strip a +extension; other delimiters are not supported"
        };
        v.note("$recipient_delimiter", why);
    }
    // $DO_SYSLOG and $LOGFILE are amavisd's aliases of $do_syslog and $logfile.
    for (name, key) in [
        ("$syslog_ident", "syslog_ident"),
        ("$LOGFILE", "log_file"),
        ("$logfile", "log_file"),
    ] {
        if let Some(s) = v.get(name).and_then(Value::as_str) {
            v.set("general", key, quoted(s), name);
        }
    }
    for name in ["$DO_SYSLOG", "$do_syslog"] {
        if let Some(d) = v.get(name) {
            v.set("general", "syslog", truthy(d).to_string(), name);
        }
    }
}

/// What a policy bank may set as well as the global configuration.
pub fn scope(v: &mut Vars) {
    levels(v);
    destinies(v);
    tables(v);
    strings(v);
}

fn levels(v: &mut Vars) {
    for (name, maps, key) in [
        ("$sa_tag_level_deflt", "@spam_tag_level_maps", "tag_level"),
        (
            "$sa_tag2_level_deflt",
            "@spam_tag2_level_maps",
            "tag2_level",
        ),
        (
            "$sa_kill_level_deflt",
            "@spam_kill_level_maps",
            "kill_level",
        ),
        (
            "$sa_dsn_cutoff_level",
            "@spam_dsn_cutoff_level_maps",
            "dsn_cutoff_level",
        ),
        (
            "$sa_quarantine_cutoff_level",
            "@spam_quarantine_cutoff_level_maps",
            "quarantine_cutoff_level",
        ),
    ] {
        for from in [name, maps] {
            let Some(val) = v.get(from) else { continue };
            match constant(val).and_then(number) {
                Some(n) => v.set("spam", key, toml::Value::Float(n).to_string(), from),
                None => v.note(
                    from,
                    "not one number (per-recipient levels: write [[per_recipient]] entries)",
                ),
            }
        }
    }
}

fn destinies(v: &mut Vars) {
    for cat in ["virus", "banned", "unchecked", "spam", "bad_header"] {
        let name = format!("$final_{cat}_destiny");
        let Some(val) = v.get(&name) else { continue };
        let d = match constant(val).and_then(number).map(|n| n as i64) {
            Some(1) => "pass",
            Some(0) => "discard",
            Some(-2) => "bounce",
            Some(-3) => "reject",
            Some(-4) => "tempfail",
            _ => {
                v.note(
                    &name,
                    "not one of D_PASS, D_DISCARD, D_BOUNCE, D_REJECT, D_TEMPFAIL",
                );
                continue;
            }
        };
        v.set("destiny", cat, quoted(d), &name);
    }
}

/// The lookup tables: `@X_maps`, built by amavisd from `%X`, `@X_acl` and `$X_re`.
fn tables(v: &mut Vars) {
    for (amavis, section, key) in [
        ("local_domains", "general", "local_domains"),
        ("bypass_virus_checks", "lists", "bypass_virus_checks"),
        ("bypass_spam_checks", "lists", "bypass_spam_checks"),
        ("bypass_banned_checks", "lists", "bypass_banned_checks"),
        ("bypass_header_checks", "lists", "bypass_header_checks"),
        ("virus_lovers", "lists", "virus_lovers"),
        ("spam_lovers", "lists", "spam_lovers"),
        ("banned_files_lovers", "lists", "banned_files_lovers"),
        ("bad_header_lovers", "lists", "bad_header_lovers"),
        ("whitelist_sender", "lists", "whitelist_sender"),
        ("blacklist_sender", "lists", "blacklist_sender"),
    ] {
        let maps = format!("@{amavis}_maps");
        let legacy = [
            format!("%{amavis}"),
            format!("@{amavis}_acl"),
            format!("${amavis}_re"),
        ];
        let Some(val) = v.get(&maps) else { continue };
        for l in &legacy {
            v.get(l);
        }
        let mut entries = Vec::new();
        let mut skipped = Vec::new();
        for table in val.as_array().map(Vec::as_slice).unwrap_or_default() {
            table_entries(table, &mut entries, &mut skipped);
        }
        if !skipped.is_empty() {
            v.note(&maps, format!("left out: {}", skipped.join("; ")));
        }
        let list: Vec<String> = entries.iter().map(|e| quoted(e)).collect();
        v.set(section, key, format!("[{}]", list.join(", ")), &maps);
    }
}

/// One amavisd lookup table as pipescan entries, first match wins.
fn table_entries(t: &Value, out: &mut Vec<String>, skipped: &mut Vec<String>) {
    match t {
        Value::Null => {}
        Value::Array(acl) => {
            for e in acl {
                match e.as_str() {
                    Some(s) => out.push(s.to_string()),
                    None => skipped.push("an access list entry that is not a string".into()),
                }
            }
        }
        Value::Object(o) => {
            if let Some(Value::Object(h)) = o.get("hash") {
                let mut keys: Vec<(&String, &Value)> = h.iter().collect();
                keys.sort_by_key(|(k, _)| specificity(k));
                for (k, val) in keys {
                    out.push(if truthy(val) {
                        k.clone()
                    } else {
                        format!("!{k}")
                    });
                }
            } else if let Some(inner) = o.get("ref") {
                table_entries(inner, out, skipped);
            } else if let Some(Value::Array(res)) = o.get("new_re") {
                for r in res {
                    match regex_entry(r) {
                        Ok(e) => out.push(e),
                        Err(e) => skipped.push(e),
                    }
                }
            } else if o.contains_key("re") {
                match regex_entry(t) {
                    Ok(e) => out.push(e),
                    Err(e) => skipped.push(e),
                }
            } else {
                skipped.push(format!(
                    "{} (a lookup object: SQL lookups are [sql] in pipescan, LDAP and others have no equivalent)",
                    describe(t)
                ));
            }
        }
        scalar => out.push(if truthy(scalar) {
            ".".into()
        } else {
            "!.".into()
        }),
    }
}

/// amavisd tries a hash's most specific key first: addresses, local parts, domains, then
/// parent domains from the longest, then ".".
fn specificity(k: &str) -> (u8, std::cmp::Reverse<usize>) {
    let class = match k {
        "." => 4,
        _ if k.starts_with('.') => 3,
        _ if k.ends_with('@') => 1,
        _ if k.contains('@') && !k.starts_with('@') => 0,
        _ => 2,
    };
    (class, std::cmp::Reverse(k.len()))
}

/// A `qr//` entry (value true unless given as [qr, 0]) as `/re/`, when Rust's regex reads it.
fn regex_entry(r: &Value) -> Result<String, String> {
    let (Some(pat), flags) = (
        r.get("re").and_then(Value::as_str),
        r.get("flags").and_then(Value::as_str),
    ) else {
        return Err(format!("{} in a new_RE list", describe(r)));
    };
    let mut inline = String::new();
    for f in flags.unwrap_or("").chars() {
        match f {
            'i' | 'm' | 's' | 'x' => inline.push(f),
            'u' | 'a' | 'l' | 'd' | 'p' | 'o' => {}
            _ => return Err(format!("regex /{pat}/ (flag {f} has no equivalent)")),
        }
    }
    let re = if inline.is_empty() {
        pat.to_string()
    } else {
        format!("(?{inline}){pat}")
    };
    if let Err(e) = regex::Regex::new(&re) {
        let first = e.to_string().lines().last().unwrap_or("").to_string();
        return Err(format!("regex /{pat}/ (Perl-only syntax: {first})"));
    }
    let negate = r.get("value").is_some_and(|v| !truthy(v));
    Ok(format!("{}/{re}/", if negate { "!" } else { "" }))
}

/// Subject tags, the scanned field and the admins' addresses.
fn strings(v: &mut Vars) {
    for (name, section, key) in [
        ("$sa_spam_subject_tag", "headers", "spam_subject_tag"),
        ("$X_HEADER_TAG", "headers", "x_header_tag"),
        ("$X_HEADER_LINE", "headers", "x_header_line"),
        ("$spam_admin", "notify", "spam_admin"),
        ("$bad_header_admin", "notify", "bad_header_admin"),
        ("$virus_admin", "notify", "virus_admin"),
        // amavisd's banned admin defaults to the virus admin (@banned_admin_maps).
        ("$virus_admin", "notify", "banned_admin"),
        ("$banned_admin", "notify", "banned_admin"),
        ("@virus_admin_maps", "notify", "virus_admin"),
        ("@spam_admin_maps", "notify", "spam_admin"),
        ("@spam_subject_tag2_maps", "headers", "spam_subject_tag"),
    ] {
        let Some(val) = v.get(name) else { continue };
        match constant(val) {
            Some(Value::String(s)) => v.set(section, key, quoted(s), name),
            Some(Value::Null) => v.set(section, key, quoted(""), name),
            _ => v.note(
                name,
                "not one string (per-recipient values have no pipescan equivalent)",
            ),
        }
    }
    if let Some(m) = v.get("$sa_spam_modifies_subj")
        && !truthy(m)
    {
        v.set(
            "headers",
            "spam_subject_tag",
            quoted(""),
            "$sa_spam_modifies_subj",
        );
    }
    if let Some(n) = v.get("$sa_mail_body_size_limit").and_then(number) {
        v.set(
            "spamd",
            "max_size",
            format!("{}", n as u64),
            "$sa_mail_body_size_limit",
        );
    }
}

/// $QUARANTINEDIR and the *_quarantine_to settings. amavisd keeps only blocked mail: a
/// category whose destiny is pass is not quarantined here either.
fn quarantine(v: &mut Vars) {
    let dir = v
        .get("$QUARANTINEDIR")
        .and_then(Value::as_str)
        .map(str::to_string);
    if let Some(d) = &dir {
        v.set("quarantine", "directory", quoted(d), "$QUARANTINEDIR");
    }
    if let Some(l) = v.get("$quarantine_subdir_levels").and_then(number) {
        let sub = if l >= 1.0 { "%s" } else { "" };
        v.set(
            "quarantine",
            "subdirectory",
            quoted(sub),
            "$quarantine_subdir_levels",
        );
    }
    let mut addresses = Vec::new();
    for (cat, key, default_to, default_destiny) in [
        ("virus", "virus", "virus-quarantine", 0),
        ("banned", "banned", "banned-quarantine", 0),
        ("unchecked", "unchecked", "unchecked-quarantine", 1),
        ("spam", "spam", "spam-quarantine", 1),
        ("bad_header", "bad_header", "bad-header-quarantine", 1),
    ] {
        let name = format!("${cat}_quarantine_to");
        let to = match v.get(&name) {
            Some(t) => t.as_str().unwrap_or("").to_string(),
            None => default_to.to_string(),
        };
        let destiny = v
            .get(&format!("$final_{cat}_destiny"))
            .and_then(number)
            .map_or(default_destiny, |n| n as i64);
        let wanted = !to.is_empty() && destiny != 1 && (dir.is_some() || to.contains('@'));
        if to.contains('@') && wanted {
            addresses.push(to.clone());
        }
        let why = if to.is_empty() {
            format!("{name} empty")
        } else if destiny == 1 {
            format!("{name}; the destiny is pass and amavisd keeps only blocked mail")
        } else if dir.is_none() && !to.contains('@') {
            format!("{name}; no $QUARANTINEDIR: amavisd kept no copy")
        } else {
            name.clone()
        };
        v.set("quarantine", key, wanted.to_string(), &why);
    }
    addresses.dedup();
    match addresses.as_slice() {
        [] => {}
        [one] => v.set("quarantine", "address", quoted(one), "$*_quarantine_to"),
        _ => v.note(
            "$*_quarantine_to",
            "different mailboxes per category: pipescan has one [quarantine] address",
        ),
    }
}

/// @av_scanners: ClamAV's clamd socket becomes [clamd] servers; the other scanners are noted.
fn scanners(v: &mut Vars) {
    let mut servers = Vec::new();
    let mut others = Vec::new();
    if let Some(Value::Array(list)) = v.get("@av_scanners") {
        for s in list {
            let name = s.get(0).and_then(Value::as_str).unwrap_or("?");
            let code = s.get(1).and_then(|c| c.get("code")).and_then(Value::as_str);
            let socket = s.get(2).and_then(|a| a.get(1)).and_then(Value::as_str);
            match (code, socket) {
                (Some("ask_daemon" | "ask_clamav"), Some(sock))
                    if name.to_lowercase().contains("clam") =>
                {
                    servers.push(quoted(sock.trim_start_matches("unix:")));
                }
                _ => others.push(name.to_string()),
            }
        }
    }
    if !servers.is_empty() {
        v.set(
            "clamd",
            "servers",
            format!("[{}]", servers.join(", ")),
            "@av_scanners",
        );
    }
    if !others.is_empty() {
        v.note(
            "@av_scanners",
            format!("{} other scanner(s) not translated (amavisd uses each whose program exists; pipescan runs clamd and the [[av_command]] programs you list)", others.len()),
        );
    }
}

const BANNED: &str = "pipescan's [banned] rules are built in (executables, double extensions, \
     program content under another name, by name, declared and sniffed type) and a site adds \
     exceptions or bans as [[banned.local_rules]] (action, name/declared/sniffed regexes); \
     amavisd's ordered list of name, MIME type and file(1) type regexes with allow/deny values \
     does not map one to one: write local_rules for what the built-in rules do not cover \
     (MIGRATING.md)";

/// The banned-file settings: not translated, but their rules are listed for the admin who
/// writes [[banned.local_rules]].
fn banned(v: &mut Vars) {
    for name in [
        "$banned_filename_re",
        "%banned_rules",
        "@banned_filename_maps",
        "$banned_namepath_re",
    ] {
        let Some(val) = v.get(name) else { continue };
        let mut rules = Vec::new();
        banned_rules(val, "", &mut rules);
        let why = if rules.is_empty() {
            BANNED.to_string()
        } else {
            format!(
                "{BANNED}; its rules, the first match deciding: {}",
                rules.join(", ")
            )
        };
        v.note(name, why);
    }
}

fn banned_rules(val: &Value, label: &str, out: &mut Vec<String>) {
    match val {
        Value::Array(a) => a.iter().for_each(|x| banned_rules(x, label, out)),
        Value::Object(o) => {
            if let Some(Value::Array(res)) = o.get("new_re") {
                for r in res {
                    let (Some(pat), flags) = (
                        r.get("re").and_then(Value::as_str),
                        r.get("flags").and_then(Value::as_str),
                    ) else {
                        continue;
                    };
                    let action = if r.get("value").is_some_and(|x| !truthy(x)) {
                        "allow"
                    } else {
                        "ban"
                    };
                    out.push(format!("{label}{action} /{pat}/{}", flags.unwrap_or("")));
                }
            } else if let Some(Value::Object(h)) = o.get("hash") {
                for (k, x) in h {
                    banned_rules(x, &format!("{k}: "), out);
                }
            } else if let Some(inner) = o.get("ref") {
                banned_rules(inner, label, out);
            }
        }
        _ => {}
    }
}

/// Why a variable nobody translated has no pipescan key.
/// `$forward_method` as `[reinject] method` (SMTP or LMTP: the return smtpd amavisd used stays
/// in master.cf and serves pipescan as it is); `$notify_method` is noted: pipescan sends
/// everything through the one courier.
fn reinject(v: &mut Vars) {
    if let Some(m) = v.get("$forward_method").and_then(Value::as_str) {
        match forward_method(m) {
            Ok(method) => v.set("reinject", "method", quoted(&method), "$forward_method"),
            Err(why) => v.note("$forward_method", why),
        }
    }
    if v.get("$notify_method").is_some() {
        v.note(
            "$notify_method",
            "pipescan sends DSNs and notices through [reinject] method, as the message itself",
        );
    }
}

/// amavisd's `smtp:[127.0.0.1]:10025`, `lmtp:[127.0.0.1]:24` or `lmtp:/path/to/socket` as
/// pipescan's method (`lmtp:unix:/path`), or why it has none (pipe:, bsmtp:, sql:, a list).
fn forward_method(m: &str) -> Result<String, String> {
    let m = m.trim();
    let method = match m.strip_prefix("lmtp:/") {
        Some(path) => format!("lmtp:unix:/{path}"),
        None => m.to_string(),
    };
    let r = crate::config::delivery::Reinject {
        method: method.clone(),
        ..Default::default()
    };
    match (m.starts_with("smtp:") || m.starts_with("lmtp:"), r.method()) {
        (true, Ok(_)) => Ok(method),
        (true, Err((_, why))) => Err(format!("not translated: {why}")),
        (false, _) => Err(format!(
            "{m:?}: pipescan reinjects with [reinject] command (sendmail) or over SMTP/LMTP only"
        )),
    }
}

pub fn why_not(name: &str) -> &'static str {
    let bare = name.trim_start_matches(['$', '@', '%']);
    for (prefixes, why) in WHY {
        if prefixes
            .iter()
            .any(|p| bare == *p || (p.ends_with('*') && bare.starts_with(p.trim_end_matches('*'))))
        {
            return why;
        }
    }
    "no pipescan equivalent"
}

const WHY: &[(&[&str], &str)] = &[
    (
        &[
            "banned_filename_re",
            "banned_filename_maps",
            "banned_rules",
            "banned_namepath_re",
        ],
        BANNED,
    ),
    (
        &[
            "max_servers",
            "max_requests",
            "child_timeout",
            "inet_socket_port",
            "inet_socket_bind",
            "unix_socketname",
            "listen_queue_size",
            "daemon_user",
            "daemon_group",
            "pid_file",
            "lock_file",
            "MYHOME",
            "TEMPBASE",
            "db_home",
            "enable_db",
            "enable_global_cache",
            "helpers_home",
            "daemon_chroot_dir",
            "nanny_details_level",
            "enable_zmq",
            "zmq_sockets",
        ],
        "amavisd is a daemon; pipescan runs once per message under the MTA (master.cf maxproc \
         limits the processes, the pipe's user= is the account)",
    ),
    (
        &[
            "interface_policy",
            "mynetworks",
            "mynetworks_maps",
            "client_ipaddr_policy",
            "policy_bank",
        ],
        "pipescan picks a policy bank by master.cf transport (--policy NAME), not by port or client address",
    ),
    (
        &["inet_socket_*", "smtpd_*", "localhost_name"],
        "pipescan is started by the MTA for each message (a pipe transport): it listens on no port",
    ),
    (
        &["sa_*", "spam_*", "score_sender_maps"],
        "SpamAssassin runs inside amavisd; pipescan asks spamd, which reads its own \
         local.cf (per-sender score boosts: only whitelist_sender/blacklist_sender, ±100)",
    ),
    (
        &[
            "file",
            "gzip",
            "bzip2",
            "lzop",
            "rpm2cpio",
            "cabextract",
            "uncompress",
            "unfreeze",
            "arc",
            "unarj",
            "unrar",
            "zoo",
            "lha",
            "pax",
            "cpio",
            "ar",
            "ripole",
            "dspam",
            "decoders",
            "path",
            "MAXLEVELS",
            "MAXFILES",
            "MIN_EXPANSION_QUOTA",
            "MAX_EXPANSION_QUOTA",
            "keep_decoded_original_maps",
            "map_full_type_to_short_type_maps",
        ],
        "pipescan runs no external decoders; it reads MIME and zip itself (limits: [banned] \
         max_depth, max_parts, max_archive_members, max_expanded_size)",
    ),
    (
        &["av_scanners_backup"],
        "backup scanners: list the command-line scanners to use as [[av_command]] entries",
    ),
    (
        &["viruses_that_fake_sender_maps"],
        "pipescan never sends a DSN for a virus ([dsn] suppress_for_viruses)",
    ),
    (
        &[
            "syslog_facility",
            "syslog_priority",
            "log_level",
            "log_recip_templ",
            "log_templ",
        ],
        "pipescan logs one line per message to facility mail",
    ),
    (
        &["enable_dkim_verification", "enable_dkim_signing", "dkim_*"],
        "pipescan does not verify or sign DKIM",
    ),
    (
        &["lookup_sql_dsn", "storage_sql_dsn", "sql_*"],
        "set [sql] by hand: pipescan reads amavisd's PostgreSQL schema with amavisd's queries \
         ([sql] dsn in libpq form, lookups, log; [quarantine] method = \"sql\"); custom \
         $sql_select_* clauses and MySQL are not supported (values not shown: they may hold \
         passwords)",
    ),
    (
        &["enable_ldap", "default_ldap", "ldap_*"],
        "pipescan has no LDAP lookups (values not shown: they may hold passwords)",
    ),
    (
        &["originating"],
        "pipescan has no originating flag: mail submitted here takes the bank's own master.cf \
         transport (--policy ORIGINATING); amavisd's DKIM signing for it is not done",
    ),
    (
        &[
            "myauthservid",
            "mydomain",
            "myproduct_name",
            "quarantine_subdir_levels",
        ],
        "only used to build other values",
    ),
];

fn constant(v: &Value) -> Option<&Value> {
    match v {
        Value::Array(a) if a.len() == 1 => constant(&a[0]),
        Value::Object(o) => o.get("ref").and_then(constant),
        other => Some(other),
    }
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Perl's truth: undef, "", "0" and 0 are false.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !(s.is_empty() || s == "0"),
        _ => true,
    }
}

fn describe(v: &Value) -> String {
    match v.as_object().and_then(|o| o.iter().next()) {
        Some((k, Value::String(s))) => format!("a {k} {s}"),
        Some((k, _)) => format!("a {k}"),
        None => "a value".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entries(t: Value) -> (Vec<String>, Vec<String>) {
        let (mut out, mut skipped) = (Vec::new(), Vec::new());
        table_entries(&t, &mut out, &mut skipped);
        (out, skipped)
    }

    #[test]
    fn forward_methods_amavisd_writes() {
        use super::forward_method;
        assert_eq!(
            forward_method("smtp:[127.0.0.1]:10025").as_deref(),
            Ok("smtp:[127.0.0.1]:10025")
        );
        assert_eq!(
            forward_method("lmtp:/var/run/dovecot/lmtp").as_deref(),
            Ok("lmtp:unix:/var/run/dovecot/lmtp")
        );
        assert_eq!(
            forward_method(" lmtp:[::1]:24 ").as_deref(),
            Ok("lmtp:[::1]:24")
        );
        for other in [
            "pipe:flags=q argv=/usr/sbin/sendmail -i -f ${sender} -- ${recipient}",
            "bsmtp:/var/spool/amavis/out-%i-%n",
            "smtp:[127.0.0.1]",
        ] {
            assert!(forward_method(other).is_err(), "{other}");
        }
    }

    #[test]
    fn constants_are_everyone_or_no_one() {
        assert_eq!(entries(json!(1)).0, ["."]);
        assert_eq!(entries(json!(0)).0, ["!."]);
        assert_eq!(entries(json!({"ref": "yes"})).0, ["."]);
        assert!(entries(json!(null)).0.is_empty());
    }

    #[test]
    fn regex_flags_and_perl_only_syntax() {
        let re = |pat: &str, flags: &str, value: Value| {
            entries(json!({"new_re": [{"re": pat, "flags": flags, "value": value}]}))
        };
        assert_eq!(re("^a b$", "ix", json!(1)).0, ["/(?ix)^a b$/"]);
        assert_eq!(re("^x@", "", json!(0)).0, ["!/^x@/"]);
        let (out, skipped) = re("^(?<!a)b", "", json!(1));
        assert!(
            out.is_empty() && skipped[0].contains("Perl-only"),
            "{skipped:?}"
        );
        let (out, skipped) = re("^b", "n", json!(1));
        assert!(
            out.is_empty() && skipped[0].contains("flag n"),
            "{skipped:?}"
        );
    }

    #[test]
    fn sql_and_other_objects_are_left_out_by_kind() {
        let (out, skipped) = entries(json!({"object": "Amavis::Lookup::SQLfield"}));
        assert!(out.is_empty());
        assert!(
            skipped[0].contains("Amavis::Lookup::SQLfield"),
            "{skipped:?}"
        );
    }

    #[test]
    fn hash_keys_most_specific_first() {
        let (out, _) = entries(
            json!({"hash": {".": 1, ".example.com": 1, ".a.example.com": 0,
            "a.example.com": 1, "u@": 1, "u@example.com": 0}}),
        );
        assert_eq!(
            out,
            [
                "!u@example.com",
                "u@",
                "a.example.com",
                "!.a.example.com",
                ".example.com",
                "."
            ]
        );
    }
}

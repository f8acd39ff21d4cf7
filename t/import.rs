//! `pipescan import-amavisd`: Debian's own amavisd-new configuration (installed with apt-get if
//! missing, never started) and a synthetic conf.d translate to TOML that pipescan's parser
//! loads, with the files' values; what cannot be translated is a comment; bad input is a clear
//! error. Needs root and Debian for the stock test (it skips with a message elsewhere).

mod common;

use pipescan::config::load::parse;
use pipescan::config::settings::Config;
use std::path::Path;
use std::process::{Command, Output};

fn import(args: &[&str], path_env: Option<&str>) -> Output {
    let mut c = Command::new(common::bin());
    c.arg("import-amavisd").args(args);
    if let Some(p) = path_env {
        c.env("PATH", p);
    }
    c.output().expect("run pipescan")
}

fn text(o: &Output) -> String {
    assert!(
        o.status.success(),
        "import failed: {:?}\n{}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn load(toml: &str, bank: Option<&str>) -> Config {
    parse(toml, "imported.toml", bank)
        .unwrap_or_else(|e| panic!("pipescan refuses the import: {e:?}\n{toml}"))
}

/// Processes whose name starts with "amavis" (the daemon, amavis-mc, the snmp agent).
fn amavis_processes() -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(comm) = std::fs::read_to_string(e.path().join("comm"))
            && comm.starts_with("amavis")
        {
            out.push(format!(
                "{}: {}",
                e.file_name().to_string_lossy(),
                comm.trim()
            ));
        }
    }
    out
}

/// Installs Debian's amavisd-new without starting it: a policy-rc.d that answers 101 (no
/// service starts from a maintainer script) for the length of the install; then its services
/// are disabled.
fn ensure_amavisd_installed() -> bool {
    if Path::new("/etc/amavis/conf.d/20-debian_defaults").exists() {
        return true;
    }
    if !Path::new("/usr/bin/apt-get").exists() || !nix::unistd::geteuid().is_root() {
        return false;
    }
    let rc = Path::new("/usr/sbin/policy-rc.d");
    let ours = !rc.exists();
    if ours {
        std::fs::write(rc, "#!/bin/sh\nexit 101\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(rc, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let install = |update: bool| {
        if update {
            let _ = Command::new("apt-get").arg("update").status();
        }
        Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends", "amavisd-new"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success())
    };
    let ok = install(false) || install(true);
    if ours {
        let _ = std::fs::remove_file(rc);
    }
    assert!(ok, "apt-get install amavisd-new failed");
    // Nor at the next boot: only its configuration is wanted here.
    let _ = Command::new("systemctl")
        .args(["disable", "amavis", "amavis-mc", "amavisd-snmp-subagent"])
        .output();
    true
}

/// The number after `$name =` in a Debian conf.d file (e.g. `$sa_tag2_level_deflt = 6.31;`).
fn perl_value(file: &str, name: &str) -> String {
    let text = std::fs::read_to_string(file).unwrap();
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with(&format!("${name} ")) || l.starts_with(&format!("${name}=")))
        .unwrap_or_else(|| panic!("{name} not set in {file}"));
    let v = line.split_once('=').unwrap().1;
    v.split(';').next().unwrap().trim().to_string()
}

fn destiny_name(d: &str) -> &'static str {
    match d {
        "D_PASS" => "pass",
        "D_DISCARD" => "discard",
        "D_BOUNCE" => "bounce",
        "D_REJECT" => "reject",
        "D_TEMPFAIL" => "tempfail",
        other => panic!("unknown destiny {other}"),
    }
}

#[test]
fn debian_stock_conf_d() {
    if !ensure_amavisd_installed() {
        eprintln!("SKIP: amavisd-new is not installed and cannot be (needs root and apt-get)");
        return;
    }
    let defaults = "/etc/amavis/conf.d/20-debian_defaults";
    // Without arguments: Debian's order, /usr/share/amavis/conf.d then /etc/amavis/conf.d.
    let toml = text(&import(&[], None));
    let explicit = text(&import(
        &["/usr/share/amavis/conf.d", "/etc/amavis/conf.d"],
        None,
    ));
    assert_eq!(toml, explicit);
    let cfg = load(&toml, None);
    let num = |n: &str| perl_value(defaults, n).parse::<f64>().unwrap();
    assert_eq!(cfg.spam.tag_level, num("sa_tag_level_deflt"));
    assert_eq!(cfg.spam.tag2_level, num("sa_tag2_level_deflt"));
    assert_eq!(cfg.spam.tag2_level, 6.31, "Debian's stock tag2 level");
    assert_eq!(cfg.spam.kill_level, num("sa_kill_level_deflt"));
    assert_eq!(cfg.spam.dsn_cutoff_level, num("sa_dsn_cutoff_level"));
    for (cat, got) in [
        ("virus", cfg.destiny.virus),
        ("banned", cfg.destiny.banned),
        ("spam", cfg.destiny.spam),
        ("bad_header", cfg.destiny.bad_header),
    ] {
        let d = perl_value(defaults, &format!("final_{cat}_destiny"));
        assert_eq!(got.to_string(), destiny_name(&d), "final_{cat}_destiny");
    }
    let subject = perl_value(defaults, "sa_spam_subject_tag");
    assert_eq!(
        cfg.headers.spam_subject_tag,
        subject.trim_matches('\'').to_string()
    );
    // "$MYHOME/virusmails", MYHOME from Debian's /usr/share/amavis/conf.d/10-debian_scripts.
    let home = perl_value("/usr/share/amavis/conf.d/10-debian_scripts", "MYHOME");
    assert_eq!(
        cfg.quarantine.directory,
        Path::new(&format!("{}/virusmails", home.trim_matches('\'')))
    );
    assert!(cfg.quarantine.virus && cfg.quarantine.banned && !cfg.quarantine.spam);
    // Debian's package disables both checks until 15-content_filter_mode enables them.
    assert_eq!(cfg.lists.bypass_virus_checks, ["."]);
    assert_eq!(cfg.lists.bypass_spam_checks, ["."]);
    assert_eq!(cfg.clamd.servers, ["/var/run/clamav/clamd.ctl"]);
    assert_eq!(cfg.general.syslog_ident, "amavis");
    // @local_domains_acl = ( ".$mydomain" ), $mydomain the first line of /etc/mailname.
    let mydomain = std::fs::read_to_string("/etc/mailname")
        .ok()
        .and_then(|s| s.lines().next().map(str::to_string))
        .unwrap_or_default();
    assert_eq!(cfg.general.local_domains, [format!(".{mydomain}")]);
    assert_eq!(cfg.notify.virus_admin, format!("postmaster@{mydomain}"));
    // What has no equivalent is named in a comment with the reason.
    for name in [
        "$banned_filename_re",
        "@score_sender_maps",
        "$inet_socket_port",
        "%interface_policy",
        "@av_scanners_backup",
        "$policy_bank{'AM.PDP-SOCK'} $protocol",
    ] {
        let line = toml
            .lines()
            .find(|l| l.starts_with('#') && l.contains(name))
            .unwrap_or_else(|| panic!("no comment for {name}:\n{toml}"));
        assert!(line.contains(": "), "{line}");
    }
    assert!(amavis_processes().is_empty(), "{:?}", amavis_processes());
}

const SYNTHETIC: &str = r#"use strict;
$mydomain = 'example.com';
$myhostname = 'mx.example.com';
@local_domains_acl = ( ".$mydomain", "example.net", "!guest.example.com" );
$sa_tag_level_deflt = -999;
$sa_tag2_level_deflt = 5.5;
$sa_kill_level_deflt = 8;
$sa_dsn_cutoff_level = 12;
$sa_quarantine_cutoff_level = 25;
$final_virus_destiny = D_REJECT;
$final_banned_destiny = D_BOUNCE;
$final_spam_destiny = D_DISCARD;
$final_bad_header_destiny = D_PASS;
$QUARANTINEDIR = '/var/spool/amavis-quarantine';
$bad_header_quarantine_to = undef;
$virus_admin = "virusalert\@$mydomain";
$spam_admin = "spamalert\@$mydomain";
$sa_spam_subject_tag = '[SPAM] ';
$X_HEADER_TAG = 'X-Scanned-By';
$X_HEADER_LINE = "amavis at $mydomain";
$recipient_delimiter = '+';
$forward_method = 'smtp:[127.0.0.1]:10025';
$notify_method = 'smtp:[127.0.0.1]:10025';
@av_scanners = (
  ['ClamAV-clamd', \&ask_daemon, ["CONTSCAN {}\n", "127.0.0.1:3310"],
    qr/\bOK$/m, qr/\bFOUND$/m, qr/^.*?: (?!Infected Archive)(.*) FOUND$/m ],
);
1;
"#;

const SYNTHETIC_LISTS: &str = r#"use strict;
@spam_lovers_maps = (
  [ 'postmaster@example.com', 'abuse@' ],
  { 'lover@example.net' => 1, '.lovers.example' => 1, 'not@lovers.example' => 0 },
);
@virus_lovers_maps = ( new_RE( qr'^security@'i, [ qr'^noscan\+.*@' => 0 ] ) );
@bypass_spam_checks_maps = ( [ '.internal.example.com' ] );
@whitelist_sender_maps = ( read_hash("WHITELIST") );
@blacklist_sender_maps = ( new_RE( qr'(?<!good)spammer@'i ) );
$banned_filename_re = new_RE(
  [ qr'^\.(Z|gz|bz2)$' => 0 ],
  qr'.\.(pif|scr)$'i,
  qr'^application/x-msdownload$'i,
);
%banned_rules = ( 'NO-MS-EXEC' => new_RE( qr'^\.(exe-ms)$' ), 'DEFAULT' => $banned_filename_re );
$max_servers = 4;
@lookup_sql_dsn = ( ['DBI:mysql:database=mail;host=127.0.0.1', 'amavis', 'S3cretPassw0rd'] );
$interface_policy{'10026'} = 'ORIGINATING';
$policy_bank{'ORIGINATING'} = {
  originating => 1,
  bypass_spam_checks_maps => [1],
  bypass_banned_checks_maps => [1],
  final_spam_destiny => D_PASS,
  virus_admin_maps => ["bank-admin\@$mydomain"],
  spam_lovers_maps => ['.'],
};
$unknown_thing = some_helper_amavisd_has('x');
1;
"#;

#[test]
fn synthetic_conf_d() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("conf.d")).unwrap();
    std::fs::write(
        d.join("whitelist"),
        "# partners\nboss@partner.example\n.trusted.example\nnot@trusted.example 0\n",
    )
    .unwrap();
    std::fs::write(d.join("conf.d/10-main"), SYNTHETIC).unwrap();
    let lists = SYNTHETIC_LISTS.replace("WHITELIST", &d.join("whitelist").display().to_string());
    std::fs::write(d.join("conf.d/50-lists"), lists).unwrap();
    // Not read: run-parts skips names with a dot, as amavisd on Debian does.
    std::fs::write(d.join("conf.d/50-lists.dpkg-old"), "die 'read';\n").unwrap();
    let toml = text(&import(&[d.join("conf.d").to_str().unwrap()], None));
    let cfg = load(&toml, None);
    assert_eq!(cfg.general.hostname, "mx.example.com");
    // amavisd's return smtpd serves pipescan's SMTP reinjection as it is.
    assert_eq!(cfg.reinject.method, "smtp:[127.0.0.1]:10025");
    assert!(
        toml.lines()
            .any(|l| l.starts_with('#') && l.contains("$notify_method")),
        "{toml}"
    );
    assert_eq!(
        cfg.general.local_domains,
        [".example.com", "example.net", "!guest.example.com"]
    );
    assert_eq!(
        (cfg.spam.tag_level, cfg.spam.tag2_level, cfg.spam.kill_level),
        (-999.0, 5.5, 8.0)
    );
    assert_eq!(cfg.spam.dsn_cutoff_level, 12.0);
    assert_eq!(cfg.spam.quarantine_cutoff_level, Some(25.0));
    let destinies: Vec<String> = [
        cfg.destiny.virus,
        cfg.destiny.banned,
        cfg.destiny.spam,
        cfg.destiny.bad_header,
    ]
    .iter()
    .map(|d| d.to_string())
    .collect();
    assert_eq!(destinies, ["reject", "bounce", "discard", "pass"]);
    assert_eq!(
        cfg.quarantine.directory,
        Path::new("/var/spool/amavis-quarantine")
    );
    // amavisd quarantines blocked mail: spam is blocked (discard) here, bad headers pass.
    assert!(cfg.quarantine.virus && cfg.quarantine.banned && cfg.quarantine.spam);
    assert!(!cfg.quarantine.bad_header);
    assert_eq!(cfg.notify.virus_admin, "virusalert@example.com");
    assert_eq!(cfg.notify.banned_admin, "virusalert@example.com");
    assert_eq!(cfg.notify.spam_admin, "spamalert@example.com");
    assert_eq!(cfg.headers.spam_subject_tag, "[SPAM] ");
    assert_eq!(cfg.headers.x_header_tag, "X-Scanned-By");
    assert_eq!(cfg.headers.x_header_line, "amavis at example.com");
    assert_eq!(cfg.clamd.servers, ["127.0.0.1:3310"]);
    // A hash is tried most specific first: addresses before parent domains.
    assert_eq!(
        cfg.lists.spam_lovers,
        [
            "postmaster@example.com",
            "abuse@",
            "!not@lovers.example",
            "lover@example.net",
            ".lovers.example"
        ]
    );
    assert_eq!(
        cfg.lists.virus_lovers,
        ["/(?i)^security@/", r"!/^noscan\+.*@/"]
    );
    assert_eq!(cfg.lists.bypass_spam_checks, [".internal.example.com"]);
    assert_eq!(
        cfg.lists.whitelist_sender,
        [
            "boss@partner.example",
            "!not@trusted.example",
            ".trusted.example"
        ]
    );
    // The look-behind is Perl-only: left out, and said so.
    assert!(cfg.lists.blacklist_sender.is_empty());
    let comment = |name: &str| -> String {
        toml.lines()
            .find(|l| l.starts_with('#') && l.contains(name))
            .unwrap_or_else(|| panic!("no comment for {name}:\n{toml}"))
            .to_string()
    };
    assert!(comment("@blacklist_sender_maps").contains("Perl-only"));
    assert!(comment("%banned_rules").contains("[[banned.local_rules]]"));
    let banned = comment("$banned_filename_re");
    assert!(banned.contains("built in"), "{banned}");
    assert!(
        banned.contains(r"allow /^\.(Z|gz|bz2)$/, ban /.\.(pif|scr)$/i"),
        "{banned}"
    );
    assert!(comment("$max_servers").contains("maxproc"));
    assert!(comment("$recipient_delimiter").contains("+extension"));
    assert!(comment("%interface_policy").contains("--policy"));
    assert!(comment("$unknown_thing").contains("no pipescan equivalent"));
    assert!(comment("@lookup_sql_dsn").contains("SQL"));
    assert!(comment("$policy_bank{'ORIGINATING'} $originating").contains(": "));
    // Nothing secret is printed.
    assert!(!toml.contains("S3cretPassw0rd"), "{toml}");
    assert!(!toml.contains("DBI:mysql"), "{toml}");
    // The bank: ORIGINATING as pipescan's --policy ORIGINATING.
    let bank = load(&toml, Some("ORIGINATING"));
    assert_eq!(bank.lists.bypass_spam_checks, ["."]);
    assert_eq!(bank.lists.bypass_banned_checks, ["."]);
    assert_eq!(bank.lists.spam_lovers, ["."]);
    assert_eq!(bank.destiny.spam.to_string(), "pass");
    assert_eq!(bank.notify.virus_admin, "bank-admin@example.com");
    // The bank's unset settings are the global ones.
    assert_eq!(bank.destiny.virus.to_string(), "reject");
    assert_eq!(bank.spam.tag2_level, 5.5);
}

#[test]
fn classic_single_file_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("amavisd.conf");
    std::fs::write(
        &file,
        "use strict;\n$final_spam_destiny = D_BOUNCE;\n$sa_kill_level_deflt = '7.5';\n\
         $X_HEADER_TAG = 'Bad Tag:';\n@spam_lovers_maps = ( read_hash('/nonexistent/lovers') );\n1;\n",
    )
    .unwrap();
    let o = import(&[file.to_str().unwrap()], None);
    let toml = text(&o);
    let cfg = load(&toml, None);
    assert_eq!(cfg.destiny.spam.to_string(), "bounce");
    assert_eq!(cfg.spam.kill_level, 7.5);
    // A value pipescan refuses is printed commented out, with the parser's reason.
    let refused = toml.lines().find(|l| l.contains("x_header_tag")).unwrap();
    assert!(refused.starts_with("# refused by pipescan ("), "{refused}");
    assert_eq!(cfg.headers.x_header_tag, "X-Virus-Scanned");
    // A list file this host cannot read: warned about, left out, never an error.
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent/lovers"));
    let lovers = toml
        .lines()
        .find(|l| l.starts_with("# @spam_lovers_maps"))
        .unwrap();
    assert!(
        lovers.contains("read_hash of an unreadable file"),
        "{lovers}"
    );

    // A missing directory: 66, named.
    let o = import(&["/nonexistent/amavis/conf.d"], None);
    assert_eq!(o.status.code(), Some(66));
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent/amavis/conf.d"));
    assert!(o.stdout.is_empty());

    // No perl: 78, and why.
    let o = import(&[file.to_str().unwrap()], Some("/nonexistent"));
    assert_eq!(o.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot run perl"));

    // A file Perl cannot compile (amavisd would not start either): 78, with perl's message.
    let bad = dir.path().join("broken.conf");
    std::fs::write(&bad, "use strict;\n$sa_tag_level_deflt = ;\n1;\n").unwrap();
    let o = import(&[bad.to_str().unwrap()], None);
    assert_eq!(o.status.code(), Some(78));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("broken.conf") && err.contains("syntax error"),
        "{err}"
    );
    assert!(o.stdout.is_empty());
}

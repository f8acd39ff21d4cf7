//! Permissions of the files and directories the configuration names, checked as Postfix
//! (postfix-files) and amavisd check theirs, and what `check-config` can tell about a deployment
//! before the first message defers.
//!
//! Contract ([`check`], every run and every command; a problem is a configuration error):
//! - The config file, `[loop_marker] key_file`, every `[[dkim.key]] key_file` and every `file:`
//!   list of the effective settings
//!   must not be writable by group or others (mode & 022), and must be owned by root or by the
//!   user pipescan runs as. The key file must not be readable by others either (mode & 004;
//!   group-readable is fine: 0640 root:pipescan is the recommended setup).
//! - Every directory above those files (up to /) must be owned by root or the run user and not
//!   be writable by group or others unless it has the sticky bit (like /tmp): whoever can
//!   rename entries there can replace the file.
//! - `[general] tempdir` and `[quarantine] directory`, when they exist, must not be writable by
//!   group or others without the sticky bit.
//!
//! "The run user" is the user the run ends up as: a run started as root that switches to
//! `[general] user` accepts files owned by that user (the owner findings carry the owner's uid,
//! and the caller forgives the one it switched to); one that stays root accepts only root's.
//! A config owned by the pipescan user therefore cannot make a root-started run stay root.

use crate::config::errors::ConfigError;
use crate::config::load::Loaded;
use crate::config::settings::Config;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// One permission problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The setting that names the path; None: the config file itself.
    pub key: Option<String>,
    pub message: String,
    /// Some(uid) when the only problem is that `uid` (not root, not us) owns the path: not a
    /// problem when that uid is the user the run switches to.
    pub owner: Option<u32>,
}

impl Finding {
    pub fn to_error(&self, loaded: &Loaded) -> ConfigError {
        loaded.error(self.key.as_deref(), self.message.clone())
    }
}

/// The findings that still stand once the run is `run_uid` (root and the current user are
/// trusted already).
pub fn standing(findings: Vec<Finding>, run_uid: Option<u32>) -> Vec<Finding> {
    findings
        .into_iter()
        .filter(|f| f.owner.is_none() || f.owner != run_uid)
        .collect()
}

/// Checks the permissions of everything `loaded` names (see the module contract).
pub fn check(loaded: &Loaded) -> Vec<Finding> {
    let cfg = &loaded.config;
    let me = nix::unistd::geteuid().as_raw();
    let mut out = Vec::new();
    if let Some(p) = &loaded.source {
        check_file(p, None, false, me, &mut out);
    }
    let kf = &cfg.loop_marker.key_file;
    if kf.is_absolute() && cfg.loop_marker.key.is_empty() {
        check_file(kf, Some("loop_marker.key_file"), true, me, &mut out);
    }
    // DKIM private keys are secrets like the marker key: whoever reads one signs as the domain.
    for k in &cfg.dkim.keys {
        if k.key_file.is_absolute() {
            check_file(&k.key_file, Some("dkim.key.key_file"), true, me, &mut out);
        }
    }
    for (key, path) in list_files(cfg) {
        check_file(Path::new(&path), Some(&key), false, me, &mut out);
    }
    for (key, dir) in [
        ("general.tempdir", &cfg.general.tempdir),
        ("quarantine.directory", &cfg.quarantine.directory),
    ] {
        if dir.is_absolute()
            && let Ok(m) = std::fs::metadata(dir)
            && m.is_dir()
            && let Some(msg) = open_dir(dir, &m)
        {
            out.push(Finding {
                key: Some(key.into()),
                message: msg,
                owner: None,
            });
        }
    }
    // One finding per path and problem (a list named twice, a shared parent directory).
    let mut seen = std::collections::HashSet::new();
    out.retain(|f| seen.insert((f.key.clone(), f.message.clone())));
    out
}

/// The `file:` entries of every lookup table of `cfg`, with their keys.
fn list_files(cfg: &Config) -> Vec<(String, String)> {
    let tables = cfg.lookup_tables();
    let mut out = Vec::new();
    for (key, entries) in tables {
        for e in entries {
            if let Some(path) = e.trim().strip_prefix("file:")
                && Path::new(path).is_absolute()
            {
                out.push((key.to_string(), path.to_string()));
            }
        }
    }
    out
}

fn mode_of(m: &std::fs::Metadata) -> u32 {
    m.mode() & 0o7777
}

/// Why a directory that others can write to is a problem, or None.
fn open_dir(dir: &Path, m: &std::fs::Metadata) -> Option<String> {
    let mode = mode_of(m);
    if mode & 0o022 != 0 && mode & 0o1000 == 0 {
        return Some(format!(
            "{} is mode {mode:04o}: writable by {} without the sticky bit, so they can remove or replace what pipescan writes there: chmod go-w {0} (or chmod +t {0} for a shared directory like /tmp)",
            dir.display(),
            who(mode)
        ));
    }
    None
}

fn who(mode: u32) -> &'static str {
    match (mode & 0o020 != 0, mode & 0o002 != 0) {
        (true, true) => "its group and every user",
        (true, false) => "its group",
        _ => "every user",
    }
}

/// Checks a file the configuration trusts (the config, the key file, a list) and the
/// directories above it.
fn check_file(path: &Path, key: Option<&str>, secret: bool, me: u32, out: &mut Vec<Finding>) {
    let Ok(m) = std::fs::metadata(path) else {
        return; // reading it reports that it is missing
    };
    let shown = path.display();
    let mode = mode_of(&m);
    let finding = |message: String, owner: Option<u32>| Finding {
        key: key.map(str::to_string),
        message,
        owner,
    };
    if mode & 0o022 != 0 {
        out.push(finding(
            format!(
                "{shown} is mode {mode:04o}: writable by {}, who could change what pipescan does (and, started as root, run commands as root): chmod go-w {shown}",
                who(mode)
            ),
            None,
        ));
    }
    if secret && mode & 0o004 != 0 {
        out.push(finding(
            format!(
                "{shown} is mode {mode:04o}: readable by every user, but it holds the secret key: chmod 640 {shown} (group of the user pipescan runs as) or chmod 600 {shown} (owned by that user)"
            ),
            None,
        ));
    }
    let uid = m.uid();
    if uid != 0 && uid != me {
        out.push(finding(
            format!(
                "{shown} is owned by uid {uid}: only root or the user pipescan runs as may own it: chown root {shown}"
            ),
            Some(uid),
        ));
    }
    // The directories above: whoever can rename entries in one can replace the file.
    let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let mut dir: Option<PathBuf> = real.parent().map(Path::to_path_buf);
    while let Some(d) = dir {
        if let Ok(dm) = std::fs::metadata(&d) {
            let dmode = mode_of(&dm);
            if dmode & 0o022 != 0 && dmode & 0o1000 == 0 {
                out.push(finding(
                    format!(
                        "directory {} is mode {dmode:04o}: writable by {} without the sticky bit, who could replace {shown}: chmod go-w {}",
                        d.display(),
                        who(dmode),
                        d.display()
                    ),
                    None,
                ));
            }
            let duid = dm.uid();
            if duid != 0 && duid != me {
                out.push(finding(
                    format!(
                        "directory {} is owned by uid {duid}, who could replace {shown}: only root or the user pipescan runs as may own the directories above it: chown root {}",
                        d.display(),
                        d.display()
                    ),
                    Some(duid),
                ));
            }
        }
        dir = d.parent().map(Path::to_path_buf);
    }
}

/// A user as the kernel checks access: uid and every group.
#[derive(Debug, Clone)]
pub struct RunUser {
    pub name: String,
    pub uid: u32,
    pub gids: Vec<u32>,
}

impl RunUser {
    /// The current process (effective ids).
    pub fn current() -> RunUser {
        let uid = nix::unistd::geteuid().as_raw();
        let mut gids = vec![nix::unistd::getegid().as_raw()];
        if let Ok(g) = nix::unistd::getgroups() {
            gids.extend(g.iter().map(|g| g.as_raw()));
        }
        RunUser {
            name: format!("uid {uid}"),
            uid,
            gids,
        }
    }

    /// Mode bits that apply to this user for a file with `m` (rwx in the low three bits).
    fn bits(&self, m: &std::fs::Metadata) -> u32 {
        let mode = m.mode();
        if m.uid() == self.uid {
            (mode >> 6) & 7
        } else if self.gids.contains(&m.gid()) {
            (mode >> 3) & 7
        } else {
            mode & 7
        }
    }

    /// Can this user do `want` (4 read, 2 write, 1 search/execute) on `m`? Root may read and
    /// write anything, and execute what has any x bit.
    fn may(&self, m: &std::fs::Metadata, want: u32) -> bool {
        if self.uid == 0 {
            return want & 1 == 0 || m.is_dir() || m.mode() & 0o111 != 0;
        }
        self.bits(m) & want == want
    }

    /// The first directory above `path` this user cannot search, if any.
    fn blocked_above(&self, path: &Path) -> Option<PathBuf> {
        let mut dir = path.parent();
        let mut blocked = None;
        while let Some(d) = dir {
            if let Ok(m) = std::fs::metadata(d)
                && !self.may(&m, 1)
            {
                blocked = Some(d.to_path_buf());
            }
            dir = d.parent();
        }
        blocked
    }
}

/// What check-config finds about the deployment that would defer every message: (key, problem)
/// pairs, and the uid of `[general] user` when it exists (its files are trusted, as in a run
/// that switches to it). Checked as the user the run will be: `[general] user` when set, else
/// the current user, by mode bits and owners (not access(2), which answers for root).
pub fn deployment(cfg: &Config) -> (Vec<(String, String)>, Option<u32>) {
    let mut errs: Vec<(String, String)> = Vec::new();
    let (ru, user_uid) = run_user(cfg, &mut errs);
    reinject_command(cfg, &ru, &mut errs);
    spool_directory(cfg, &ru, &mut errs);
    quarantine_directory(cfg, &ru, &mut errs);
    marker_key(cfg, &ru, &mut errs);
    tls_ca_file(cfg, &ru, &mut errs);
    (errs, user_uid)
}

/// `[reinject] tls_ca_file`, when a server is to be verified (`tls = "verify"`, or `auto` with
/// a server off this machine): certificates in it, readable by the run user; else every
/// delivery would defer.
fn tls_ca_file(cfg: &Config, ru: &RunUser, errs: &mut Vec<(String, String)>) {
    use crate::act::courier::tls::Tls;
    use crate::config::delivery::{Method, TlsLevel};
    let r = &cfg.reinject;
    let servers = match r.method() {
        Ok(Method::Smtp(s) | Method::Lmtp(s)) => s,
        _ => return,
    };
    let tls = Tls {
        level: r.tls,
        ca_file: r.tls_ca_file.clone(),
    };
    let verified = servers.iter().any(|s| {
        s.parse()
            .is_ok_and(|a| tls.level_for(&a) == TlsLevel::Verify)
    });
    if !verified {
        return;
    }
    let key = "reinject.tls_ca_file".to_string();
    let f = &r.tls_ca_file;
    match std::fs::metadata(f) {
        Ok(m) if !ru.may(&m, 4) || ru.blocked_above(f).is_some() => errs.push((
            key,
            format!("{} is not readable by {}", f.display(), ru.name),
        )),
        Ok(_) => {
            if let Err(e) = crate::act::courier::tls::roots(f) {
                errs.push((key, e));
            }
        }
        Err(e) => errs.push((
            key,
            format!(
                "{}: {e} (needed: reinject.tls verifies a server's certificate; install ca-certificates or name your CA's file)",
                f.display()
            ),
        )),
    }
}

/// The user a run will be (`[general] user`, else the current one) and its uid when it is
/// `[general] user`; a user that does not exist is a problem (the run would stay root).
fn run_user(cfg: &Config, errs: &mut Vec<(String, String)>) -> (RunUser, Option<u32>) {
    let g = &cfg.general;
    let mut user_uid = None;
    let ru = if g.user.is_empty() {
        RunUser::current()
    } else {
        match lookup_user(&g.user) {
            Ok(Some(u)) => {
                user_uid = Some(u.uid);
                u
            }
            Ok(None) => {
                errs.push((
                    "general.user".into(),
                    format!(
                        "there is no user {:?}: a run started as root would stay root; create the user (e.g. adduser --system --group {0}) or fix the name",
                        g.user
                    ),
                ));
                RunUser::current()
            }
            Err(e) => {
                errs.push((
                    "general.user".into(),
                    format!("cannot look up user {:?}: {e}", g.user),
                ));
                RunUser::current()
            }
        }
    };
    (ru, user_uid)
}

/// The reinjection command: found, a regular file, executable and reachable by the run user.
fn reinject_command(cfg: &Config, ru: &RunUser, errs: &mut Vec<(String, String)>) {
    let name = &ru.name;
    // Every passed message needs it.
    if let Some(program) = cfg.reinject.command.first().filter(|p| !p.is_empty()) {
        let found = if program.contains('/') {
            Some(PathBuf::from(program))
        } else {
            std::env::var_os("PATH")
                .unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin".into())
                .to_str()
                .unwrap_or("")
                .split(':')
                .map(|d| Path::new(d).join(program))
                .find(|p| p.is_file())
        };
        match found.as_deref().map(|p| (p, std::fs::metadata(p))) {
            None => errs.push((
                "reinject.command".into(),
                format!(
                    "{program:?} is not found in this shell's PATH (the MTA's may differ): give an absolute path, e.g. \"/usr/sbin/sendmail\""
                ),
            )),
            Some((p, Err(e))) => errs.push((
                "reinject.command".into(),
                format!("{}: {e}", p.display()),
            )),
            Some((p, Ok(m))) => {
                if !m.is_file() {
                    errs.push((
                        "reinject.command".into(),
                        format!("{} is not a regular file", p.display()),
                    ));
                } else if !ru.may(&m, 1) {
                    errs.push((
                        "reinject.command".into(),
                        format!(
                            "{} is mode {:04o}: not executable by {name}: chmod +x it, or name the right program",
                            p.display(),
                            mode_of(&m)
                        ),
                    ));
                } else if let Some(d) = ru.blocked_above(p) {
                    errs.push((
                        "reinject.command".into(),
                        format!(
                            "{name} cannot reach {}: directory {} is not searchable by it",
                            p.display(),
                            d.display()
                        ),
                    ));
                }
            }
        }
    }
}

/// `[general] tempdir`: a directory the run user can write.
fn spool_directory(cfg: &Config, ru: &RunUser, errs: &mut Vec<(String, String)>) {
    let name = &ru.name;
    let g = &cfg.general;
    // A message above the in-memory size needs it.
    if g.tempdir.is_absolute() {
        let t = &g.tempdir;
        match std::fs::metadata(t) {
            Err(e) => errs.push((
                "general.tempdir".into(),
                format!(
                    "{}: {e}: create it (writable by {name}) or name another directory",
                    t.display()
                ),
            )),
            Ok(m) if !m.is_dir() => errs.push((
                "general.tempdir".into(),
                format!("{} is not a directory", t.display()),
            )),
            Ok(m) => {
                if let Some(why) = unwritable(ru, t, &m) {
                    errs.push(("general.tempdir".into(), why));
                }
            }
        }
    }
}

/// `[quarantine] directory`: writable by the run user, or creatable where it would go.
fn quarantine_directory(cfg: &Config, ru: &RunUser, errs: &mut Vec<(String, String)>) {
    let name = &ru.name;
    let g = &cfg.general;
    // pipescan creates it (mode 0700) when it can.
    let q = &cfg.quarantine.directory;
    if q.is_absolute() {
        match std::fs::metadata(q) {
            Ok(m) if !m.is_dir() => errs.push((
                "quarantine.directory".into(),
                format!("{} is not a directory", q.display()),
            )),
            Ok(m) => {
                if let Some(why) = unwritable(ru, q, &m) {
                    errs.push(("quarantine.directory".into(), why));
                }
            }
            Err(_) => {
                // Missing: fine only if the run user can create it in the nearest directory
                // that exists.
                let mut up = q.parent();
                while let Some(d) = up {
                    if let Ok(m) = std::fs::metadata(d) {
                        if !m.is_dir() || unwritable(ru, d, &m).is_some() {
                            errs.push((
                                "quarantine.directory".into(),
                                format!(
                                    "{} does not exist, and {name} cannot create it in {}: create it, e.g. install -d -o {} -m 0750 {}",
                                    q.display(),
                                    d.display(),
                                    if g.user.is_empty() { "USER" } else { &g.user },
                                    q.display()
                                ),
                            ));
                        }
                        break;
                    }
                    up = d.parent();
                }
            }
        }
    }
}

/// `[loop_marker] key_file`: readable by the run user.
fn marker_key(cfg: &Config, ru: &RunUser, errs: &mut Vec<(String, String)>) {
    let name = &ru.name;
    // Unreadable, the marker is silently off.
    let kf = &cfg.loop_marker.key_file;
    if kf.is_absolute() && cfg.loop_marker.key.is_empty() {
        match std::fs::metadata(kf) {
            Err(e) => errs.push((
                "loop_marker.key_file".into(),
                format!("{}: {e}", kf.display()),
            )),
            Ok(m) if !ru.may(&m, 4) || ru.blocked_above(kf).is_some() => errs.push((
                "loop_marker.key_file".into(),
                format!(
                    "{} is mode {:04o}, owner uid {}, group gid {}: not readable by {name}: e.g. chgrp the user's group and chmod 640",
                    kf.display(),
                    mode_of(&m),
                    m.uid(),
                    m.gid()
                ),
            )),
            Ok(_) => {}
        }
    }
}

/// `user` with its uid and groups: from /etc/passwd and /etc/group when it is there (no NSS
/// module is loaded: the static build crashes in some), else from NSS (getpwnam; its primary
/// group only).
fn lookup_user(user: &str) -> Result<Option<RunUser>, String> {
    use crate::nss;
    // The files first, as the static build reads only them (it never loads an NSS module).
    match nss::account(nss::PASSWD.as_ref(), nss::GROUP.as_ref(), user) {
        Ok(Some(a)) => {
            return Ok(Some(RunUser {
                name: user.to_string(),
                uid: a.uid,
                gids: a.groups,
            }));
        }
        Ok(None) if crate::process::static_build() => return Err(nss::not_in_files(user)),
        Err(e) if crate::process::static_build() => {
            return Err(format!(
                "cannot read {} or {}: {e}",
                nss::PASSWD,
                nss::GROUP
            ));
        }
        _ => {}
    }
    match nix::unistd::User::from_name(user) {
        Ok(Some(u)) => Ok(Some(RunUser {
            name: user.to_string(),
            uid: u.uid.as_raw(),
            gids: vec![u.gid.as_raw()],
        })),
        Ok(None) => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

/// Why `ru` cannot create files in directory `dir`, or None.
fn unwritable(ru: &RunUser, dir: &Path, m: &std::fs::Metadata) -> Option<String> {
    let name = &ru.name;
    if !ru.may(m, 3) {
        return Some(format!(
            "{} is mode {:04o}, owner uid {}, group gid {}: {name} cannot create files in it: chown it to {name} (or its group, with mode 0770)",
            dir.display(),
            mode_of(m),
            m.uid(),
            m.gid()
        ));
    }
    if let Some(d) = ru.blocked_above(dir) {
        return Some(format!(
            "{name} cannot reach {}: directory {} is not searchable by it",
            dir.display(),
            d.display()
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn chmod(p: &Path, mode: u32) {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    fn loaded(dir: &Path, text: &str) -> Loaded {
        let p = dir.join("p.toml");
        std::fs::write(&p, text).unwrap();
        chmod(&p, 0o600);
        crate::config::load::load(Some(&p), None).unwrap()
    }

    #[test]
    fn a_world_writable_config_is_refused_with_the_chmod_to_run() {
        let d = tempfile::tempdir().unwrap();
        let l = loaded(d.path(), "");
        assert!(check(&l).is_empty(), "{:?}", check(&l));
        let p = d.path().join("p.toml");
        chmod(&p, 0o666);
        let f = check(&l);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].key, None);
        assert!(f[0].message.contains("mode 0666"), "{}", f[0].message);
        assert!(
            f[0].message
                .contains(&format!("chmod go-w {}", p.display())),
            "{}",
            f[0].message
        );
    }

    #[test]
    fn a_key_file_readable_by_everyone_is_refused_but_0640_is_fine() {
        let d = tempfile::tempdir().unwrap();
        let k = d.path().join("marker.key");
        std::fs::write(&k, "0123456789abcdef-test-key\n").unwrap();
        chmod(&k, 0o640);
        let l = loaded(
            d.path(),
            &format!("[loop_marker]\nkey_file = \"{}\"\n", k.display()),
        );
        assert!(check(&l).is_empty(), "{:?}", check(&l));
        chmod(&k, 0o644);
        let f = check(&l);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].key.as_deref(), Some("loop_marker.key_file"));
        assert!(f[0].message.contains("chmod 640"), "{}", f[0].message);
        let e = f[0].to_error(&l);
        assert_eq!(e.line, Some(2));
    }

    #[test]
    fn a_shared_directory_needs_the_sticky_bit() {
        let d = tempfile::tempdir().unwrap();
        let t = d.path().join("tmp");
        std::fs::create_dir(&t).unwrap();
        chmod(&t, 0o777);
        let l = loaded(
            d.path(),
            &format!("[general]\ntempdir = \"{}\"\n", t.display()),
        );
        let f = check(&l);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].key.as_deref(), Some("general.tempdir"));
        assert!(f[0].message.contains("sticky"), "{}", f[0].message);
        chmod(&t, 0o1777);
        assert!(check(&l).is_empty(), "{:?}", check(&l));
    }

    #[test]
    fn a_list_in_a_directory_others_can_write_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let sub = d.path().join("lists");
        std::fs::create_dir(&sub).unwrap();
        let list = sub.join("lovers");
        std::fs::write(&list, "bob@example.com\n").unwrap();
        chmod(&list, 0o644);
        chmod(&sub, 0o777);
        let l = loaded(
            d.path(),
            &format!("[lists]\nspam_lovers = [\"file:{}\"]\n", list.display()),
        );
        let f = check(&l);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].key.as_deref(), Some("lists.spam_lovers"));
        assert!(f[0].message.contains("directory"), "{}", f[0].message);
        chmod(&sub, 0o755);
        assert!(check(&l).is_empty());
    }

    #[test]
    fn a_file_owned_by_another_user_is_forgiven_only_for_the_run_user() {
        let d = tempfile::tempdir().unwrap();
        let l = loaded(d.path(), "");
        if !nix::unistd::geteuid().is_root() {
            return; // chown needs root
        }
        let p = d.path().join("p.toml");
        nix::unistd::chown(&p, Some(nix::unistd::Uid::from_raw(4242)), None).unwrap();
        let f = check(&l);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].owner, Some(4242));
        assert!(f[0].message.contains("chown root"), "{}", f[0].message);
        assert!(standing(f.clone(), Some(4242)).is_empty());
        assert_eq!(standing(f, Some(65534)).len(), 1);
    }

    #[test]
    fn users_come_from_the_files_with_their_groups() {
        let root = lookup_user("root").unwrap().unwrap();
        assert_eq!((root.uid, root.gids[0]), (0, 0));
        assert!(lookup_user("no-such-user-pipescan").unwrap().is_none());
    }

    #[test]
    fn mode_bits_decide_for_another_user_not_access() {
        let d = tempfile::tempdir().unwrap();
        let q = d.path().join("q");
        std::fs::create_dir(&q).unwrap();
        chmod(&q, 0o750);
        let m = std::fs::metadata(&q).unwrap();
        let stranger = RunUser {
            name: "stranger".into(),
            uid: 4242,
            gids: vec![4242],
        };
        assert!(!stranger.may(&m, 3));
        let group = RunUser {
            gids: vec![m.gid()],
            ..stranger.clone()
        };
        assert!(group.may(&m, 1) && !group.may(&m, 2));
        let owner = RunUser {
            uid: m.uid(),
            ..stranger
        };
        assert!(owner.may(&m, 3));
    }
}

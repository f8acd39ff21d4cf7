//! What the static build does instead of glibc's NSS.
//!
//! A static glibc binary (scripts/build's default) still loads the NSS modules that
//! /etc/nsswitch.conf names, as shared objects built against the system's libc.so.6; calling
//! into one from a static process crashes it (SIGSEGV: Debian 12's stock `group: files systemd`
//! makes `initgroups` load libnss_systemd). Only "files" and "dns" are built in. So the static
//! build looks `[general] user` up in /etc/passwd and /etc/group itself ([`account`]) and never
//! asks NSS for a user or a group, and it refuses to resolve a host name when the `hosts:` line
//! names any other source ([`hosts_unsupported`]). The dynamic build (`PIPESCAN_DYNAMIC=1
//! scripts/build`) uses NSS for both, so LDAP or systemd users and mDNS or resolved host names
//! work there. A leaf without state: whether this is the static build is process state
//! ([`crate::process::static_build`]).

use std::path::Path;

pub const PASSWD: &str = "/etc/passwd";
pub const GROUP: &str = "/etc/group";
pub const NSSWITCH: &str = "/etc/nsswitch.conf";

/// A user as [`account`] found it: ids, and every group it is in (its primary group first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
}

/// Looks `name` up the way glibc's "files" source does: the first line of the passwd(5) file
/// `passwd` with that name gives uid and gid; the groups are that gid and every group of the
/// group(5) file `group` that lists the name as a member (what `initgroups` would set).
/// `Ok(None)`: no such line in `passwd`. NIS compat lines (`+`, `-`), comments and lines that
/// are not name:x:uid:gid:... are skipped. An unreadable passwd file is an error; an unreadable
/// group file is one too (dropping to a user without its groups would be a silent surprise).
pub fn account(passwd: &Path, group: &Path, name: &str) -> std::io::Result<Option<Account>> {
    let text = std::fs::read(passwd)?;
    let Some((uid, gid)) = find_user(&String::from_utf8_lossy(&text), name) else {
        return Ok(None);
    };
    let text = std::fs::read(group)?;
    Ok(Some(Account {
        uid,
        gid,
        groups: groups_of(&String::from_utf8_lossy(&text), name, gid),
    }))
}

/// (uid, gid) from the first passwd line for `name`.
pub fn find_user(passwd: &str, name: &str) -> Option<(u32, u32)> {
    if name.is_empty() || name.contains(':') {
        return None;
    }
    passwd.lines().find_map(|line| {
        if line.starts_with(['#', '+', '-']) {
            return None;
        }
        let mut f = line.split(':');
        if f.next()? != name {
            return None;
        }
        let _password = f.next()?;
        let uid = f.next()?.trim().parse().ok()?;
        let gid = f.next()?.trim().parse().ok()?;
        Some((uid, gid))
    })
}

/// `primary`, then the gid of every group line whose member list names `name`, once each.
pub fn groups_of(group: &str, name: &str, primary: u32) -> Vec<u32> {
    let mut out = vec![primary];
    for line in group.lines() {
        if line.starts_with(['#', '+', '-']) {
            continue;
        }
        let f: Vec<&str> = line.split(':').collect();
        let [_, _, gid, members] = f.as_slice() else {
            continue;
        };
        let Ok(gid) = gid.trim().parse::<u32>() else {
            continue;
        };
        if members.split(',').any(|m| m.trim() == name) && !out.contains(&gid) {
            out.push(gid);
        }
    }
    out
}

/// The sources of the `hosts:` line of an nsswitch.conf text that the static glibc would have
/// to load as shared objects (anything but "files" and "dns"; `[...]` actions are not sources).
/// No `hosts:` line means glibc's default, "dns files": nothing to load.
pub fn foreign_sources(nsswitch: &str, database: &str) -> Vec<String> {
    let Some(line) = nsswitch.lines().find_map(|l| {
        let l = l.split('#').next().unwrap_or("").trim();
        let (db, rest) = l.split_once(':')?;
        (db.trim() == database).then_some(rest.to_string())
    }) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut in_action = false;
    for word in line.split_whitespace() {
        if in_action || word.starts_with('[') {
            in_action = !word.ends_with(']');
            continue;
        }
        if word != "files" && word != "dns" {
            out.push(word.to_string());
        }
    }
    out
}

/// In the static build, why a host name must not be resolved here: the `hosts:` line of
/// /etc/nsswitch.conf names a source that glibc would load as a shared object (see the module
/// doc). None in the dynamic build (`static_build` false: [`crate::process::static_build`]), or
/// when the line names only files and dns.
pub fn hosts_unsupported(static_build: bool) -> Option<String> {
    if !static_build {
        return None;
    }
    let text = std::fs::read_to_string(NSSWITCH).unwrap_or_default();
    let foreign = foreign_sources(&text, "hosts");
    (!foreign.is_empty()).then(|| {
        format!(
            "this static build resolves host names only with the \"files\" and \"dns\" sources, and the hosts line of {NSSWITCH} also names {}: give the server as an IP address, or use the dynamic build (PIPESCAN_DYNAMIC=1 scripts/build)",
            foreign.join(", ")
        )
    })
}

/// Why the static build cannot switch to `user`: it is not in /etc/passwd.
pub fn not_in_files(user: &str) -> String {
    format!(
        "[general] user {user:?} is not in {PASSWD}: this static build looks users up in {PASSWD} and {GROUP} only (not in LDAP, systemd or other NSS sources); add the user there, or use the dynamic build (PIPESCAN_DYNAMIC=1 scripts/build)"
    )
}

/// The name of the first passwd line with `uid` (the user a DSN without `user=` connects as,
/// read here rather than through libc's getpwuid, which a static build cannot use).
pub fn user_name(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().find_map(|line| {
        if line.starts_with(['#', '+', '-']) {
            return None;
        }
        let mut f = line.split(':');
        let name = f.next()?;
        let _password = f.next()?;
        (f.next()?.trim().parse::<u32>().ok()? == uid && !name.is_empty()).then(|| name.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD_TEXT: &str = "root:x:0:0:root:/root:/bin/bash\n\
# a comment\n\
+nisuser::::::\n\
broken line\n\
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n\
pipescan:x:999:995:pipescan mail filter:/nonexistent:/usr/sbin/nologin\n\
pipescan:x:5:5:a later duplicate:/:/bin/sh\n\
baduid:x:abc:1::/:/bin/sh\n";

    const GROUP_TEXT: &str = "root:x:0:\n\
nogroup:x:65534:\n\
pipescan:x:995:\n\
clamav:x:120:pipescan,other\n\
mail:x:8:other, pipescan\n\
+:::\n\
pipescanners:x:130:otherpipescan\n\
junk\n\
again:x:120:pipescan\n";

    #[test]
    fn passwd_first_match_wins_and_junk_is_skipped() {
        assert_eq!(find_user(PASSWD_TEXT, "pipescan"), Some((999, 995)));
        assert_eq!(find_user(PASSWD_TEXT, "nobody"), Some((65534, 65534)));
        assert_eq!(find_user(PASSWD_TEXT, "root"), Some((0, 0)));
        assert_eq!(find_user(PASSWD_TEXT, "nisuser"), None);
        assert_eq!(find_user(PASSWD_TEXT, "+nisuser"), None);
        assert_eq!(find_user(PASSWD_TEXT, "baduid"), None);
        assert_eq!(find_user(PASSWD_TEXT, "pipe"), None);
        assert_eq!(find_user(PASSWD_TEXT, ""), None);
        assert_eq!(find_user(PASSWD_TEXT, "pipescan:x"), None);
    }

    #[test]
    fn groups_are_the_primary_one_and_every_membership_once() {
        assert_eq!(groups_of(GROUP_TEXT, "pipescan", 995), [995, 120, 8]);
        assert_eq!(groups_of(GROUP_TEXT, "nobody", 65534), [65534]);
        // A primary group that is also listed with the user as a member is not repeated.
        assert_eq!(groups_of("g:x:7:u\n", "u", 7), [7]);
    }

    #[test]
    fn account_reads_the_fixture_files() {
        let d = tempfile::tempdir().unwrap();
        let (p, g) = (d.path().join("passwd"), d.path().join("group"));
        std::fs::write(&p, PASSWD_TEXT).unwrap();
        std::fs::write(&g, GROUP_TEXT).unwrap();
        assert_eq!(
            account(&p, &g, "pipescan").unwrap(),
            Some(Account {
                uid: 999,
                gid: 995,
                groups: vec![995, 120, 8]
            })
        );
        assert_eq!(account(&p, &g, "ldapuser").unwrap(), None);
        assert!(account(&d.path().join("none"), &g, "pipescan").is_err());
        assert!(account(&p, &d.path().join("none"), "pipescan").is_err());
    }

    #[test]
    fn hosts_sources_that_would_be_loaded() {
        let debian = "passwd:         files systemd\ngroup:          files systemd\nhosts:          files dns\n";
        assert!(foreign_sources(debian, "hosts").is_empty());
        assert_eq!(foreign_sources(debian, "group"), ["systemd"]);
        let resolved = "hosts: files resolve [!UNAVAIL=return] myhostname dns # comment mdns\n";
        assert_eq!(
            foreign_sources(resolved, "hosts"),
            ["resolve", "myhostname"]
        );
        let spaced = "hosts: files mdns4_minimal [ NOTFOUND=return ] dns\n";
        assert_eq!(foreign_sources(spaced, "hosts"), ["mdns4_minimal"]);
        assert!(foreign_sources("# hosts: files ldap\n", "hosts").is_empty());
        assert!(foreign_sources("", "hosts").is_empty());
    }

    #[test]
    fn user_names_by_uid() {
        assert_eq!(user_name(PASSWD_TEXT, 0).as_deref(), Some("root"));
        assert_eq!(user_name(PASSWD_TEXT, 65534).as_deref(), Some("nobody"));
        assert_eq!(user_name(PASSWD_TEXT, 4242), None);
    }
}

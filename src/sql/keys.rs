//! amavisd-new's SQL lookup keys for one address (Amavis::rfc2821_2822_Tools::make_query_keys
//! with $sql_lookups_no_at_means_domain = 0, $recipient_delimiter = '+', case-insensitive local
//! parts, $sql_allow_8bit_address = 0), most specific first. The tables' `priority` column,
//! not this order, picks the row (`ORDER BY priority DESC`); README.lookups gives the usual
//! priorities:
//!
//! | key | example | usual priority |
//! |---|---|---|
//! | the address as given | `User+foo@Sub.Example.COM` | 9 or 8 |
//! | `user+foo@sub.example.com` | | 9 |
//! | `user@sub.example.com` | | 8 |
//! | `user+foo` (local recipients only) | | 7 |
//! | `user` (local recipients only) | | 6 |
//! | `@sub.example.com` | | 5 |
//! | `@.sub.example.com`, `@.example.com`, `@.com` | | 3, 2, 1 |
//! | `@.` (catch-all) | | 0 |
//!
//! The null sender gives `""`, `"@"`, `"@."`. Bytes outside printable ASCII become `?`, as in
//! amavisd (so a NUL or 8-bit junk never reaches the database as itself).

/// The keys for `addr`, without duplicates, most specific first. `local`: the address is in
/// local_domains (static tables only, as amavisd: bare local parts are keys only then).
pub fn query_keys(addr: &str, local: bool) -> Vec<String> {
    let (localpart, domain) = split_address(addr);
    let localpart = localpart.to_lowercase();
    let domain = domain
        .trim_start_matches('@')
        .trim_end_matches('.')
        .to_lowercase();
    let (user, ext) = split_localpart(&localpart);
    let mut keys = vec![addr.to_string()];
    if !ext.is_empty() {
        keys.push(format!("{user}{ext}@{domain}"));
    }
    keys.push(format!("{user}@{domain}"));
    if local {
        if !ext.is_empty() {
            keys.push(format!("{user}{ext}"));
        }
        keys.push(user.to_string());
    }
    keys.push(format!("@{domain}"));
    if domain.contains('[') {
        keys.push("@.".into());
    } else {
        let mut dkeys = Vec::new();
        let mut d = domain.as_str();
        loop {
            dkeys.push(format!("@.{d}"));
            if d.is_empty() {
                break;
            }
            d = d.split_once('.').map_or("", |(_, rest)| rest);
        }
        // amavisd's sanity limit: the last 20 (the catch-all always among them).
        let skip = dkeys.len().saturating_sub(20);
        keys.extend(dkeys.into_iter().skip(skip));
    }
    let mut seen = std::collections::HashSet::new();
    keys.into_iter()
        .map(|k| printable(&k))
        .filter(|k| seen.insert(k.clone()))
        .collect()
}

/// (local part, "@domain"): split at the last `@` outside an address literal, as amavisd's
/// split_address; no `@`: all local part.
fn split_address(addr: &str) -> (&str, &str) {
    let cut = if let Some(lit) = addr.rfind("@[") {
        Some(lit)
    } else {
        addr.rfind('@')
    };
    match cut {
        Some(i) => (&addr[..i], &addr[i..]),
        None => (addr, ""),
    }
}

/// (user, "+ext"): split at the first `+` that leaves a user; postmaster, mailer-daemon and
/// double-bounce are never split.
fn split_localpart(local: &str) -> (&str, &str) {
    if matches!(local, "postmaster" | "mailer-daemon" | "double-bounce") {
        return (local, "");
    }
    match local.char_indices().skip(1).find(|&(_, c)| c == '+') {
        Some((i, _)) => (&local[..i], &local[i..]),
        None => (local, ""),
    }
}

/// amavisd without $sql_allow_8bit_address: every byte outside 0x20..0x7E is `?`.
fn printable(s: &str) -> String {
    s.chars()
        .map(|c| if (' '..='~').contains(&c) { c } else { '?' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::query_keys;

    #[test]
    fn readme_lookups_order_for_a_local_recipient() {
        assert_eq!(
            query_keys("User+Foo@Sub.Example.COM", true),
            [
                "User+Foo@Sub.Example.COM",
                "user+foo@sub.example.com",
                "user@sub.example.com",
                "user+foo",
                "user",
                "@sub.example.com",
                "@.sub.example.com",
                "@.example.com",
                "@.com",
                "@.",
            ]
        );
    }

    #[test]
    fn foreign_addresses_have_no_bare_user_keys() {
        assert_eq!(
            query_keys("bob@example.org", false),
            [
                "bob@example.org",
                "@example.org",
                "@.example.org",
                "@.org",
                "@."
            ]
        );
    }

    #[test]
    fn null_sender_and_odd_forms() {
        assert_eq!(query_keys("", false), ["", "@", "@."]);
        assert_eq!(query_keys("", true), ["", "@", "@."]);
        assert_eq!(
            query_keys("+x@example.org", false)[..2],
            ["+x@example.org".to_string(), "@example.org".to_string()],
            "a leading + is not an extension"
        );
        assert_eq!(
            query_keys("postmaster+x@example.org", false)[0],
            "postmaster+x@example.org"
        );
        assert_eq!(
            query_keys("a@[192.0.2.1]", false),
            ["a@[192.0.2.1]", "@[192.0.2.1]", "@."]
        );
        assert_eq!(
            query_keys("\"a@b\"@example.org", false)[1],
            "@example.org",
            "the last @ splits"
        );
    }

    #[test]
    fn nul_and_eight_bit_become_question_marks() {
        let k = query_keys("a\0b@exämple.org", false);
        assert_eq!(k[0], "a?b@ex?mple.org");
        assert!(k.iter().all(|k| !k.contains('\0')));
    }

    #[test]
    fn at_most_twenty_domain_keys() {
        let domain = (0..40)
            .map(|i| format!("d{i}"))
            .collect::<Vec<_>>()
            .join(".");
        let k = query_keys(&format!("a@{domain}"), false);
        assert_eq!(k.iter().filter(|k| k.starts_with("@.")).count(), 20);
        assert_eq!(k.last().map(String::as_str), Some("@."));
    }
}

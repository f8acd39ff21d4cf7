//! A scanner's server pool: servers tried in order (or from a random member with
//! `load_balance`) until one answers; only when every one failed is the answer a failure, with
//! every reason joined.

use crate::scan::wire::ServerAddr;

/// Tries each server until one answers; returns its answer and name, or every error joined.
pub fn walk_pool<T>(
    servers: &[String],
    load_balance: bool,
    mut f: impl FnMut(&ServerAddr) -> Result<T, String>,
) -> (Result<T, String>, Option<String>) {
    let start = if load_balance && servers.len() > 1 {
        random_index(servers.len())
    } else {
        0
    };
    let mut errors = Vec::new();
    for i in 0..servers.len() {
        let name = &servers[(start + i) % servers.len()];
        let addr = match name.parse::<ServerAddr>() {
            Ok(a) => a,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        match f(&addr) {
            Ok(v) => {
                if !errors.is_empty() {
                    crate::log::warn(&format!("{}; failed over to {name}", errors.join("; ")));
                }
                return (Ok(v), Some(name.clone()));
            }
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        errors.push("no servers configured".into());
    }
    (Err(errors.join("; ")), None)
}

/// A per-process random index: RandomState is seeded from the OS for each process.
fn random_index(n: usize) -> usize {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    (h.finish() % n as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_fails_over_in_order_and_joins_errors() {
        let servers = vec!["/a.sock".to_string(), "/b.sock".into(), "/c.sock".into()];
        let mut tried = Vec::new();
        let (r, who) = walk_pool(&servers, false, |a| {
            tried.push(a.to_string());
            if a.to_string() == "/b.sock" {
                Ok(42)
            } else {
                Err(format!("{a}: refused"))
            }
        });
        assert_eq!((r, who.as_deref()), (Ok(42), Some("/b.sock")));
        assert_eq!(tried, ["/a.sock", "/b.sock"]);
        let (r, who) = walk_pool(&servers, false, |a| Err::<(), _>(format!("{a}: down")));
        assert_eq!(r, Err("/a.sock: down; /b.sock: down; /c.sock: down".into()));
        assert_eq!(who, None);
    }

    /// With a gate, spamd runs on the caller's thread once the virus check is done; a virus
    /// check slower than GATE_HOLD holds spamd back no longer than that, and spamd's timeout
    /// still counts from the start of the checks.

    #[test]
    fn load_balance_still_tries_every_server() {
        let servers: Vec<String> = (0..5).map(|i| format!("/s{i}.sock")).collect();
        let mut n = 0;
        let (r, _) = walk_pool(&servers, true, |_| {
            n += 1;
            Err::<(), _>("x".to_string())
        });
        assert!(r.is_err());
        assert_eq!(n, 5);
        assert!(random_index(5) < 5);
    }
}

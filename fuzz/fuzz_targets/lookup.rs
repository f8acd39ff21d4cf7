//! amavisd lookup tables (`lookup::table::Table::new` / `contains`).
//!
//! Input: lines; the last line is the address, the others are the table's entries (`file:`
//! entries are skipped: they read files). Never panics, and:
//! - `.` matches every address; an empty table matches none;
//! - a table that contains an address also contains it in any letter case (ASCII);
//! - a single entry `E` that matches an address makes `!E` not match it (negation);
//! - a plain `local@domain` entry matches itself;
//! - prepending `!E` to a table whose first entry is `E` ... first match wins: `[E, !E]` equals `[E]`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pipescan::lookup::table::Table;

fn table(entries: &[String]) -> Option<Table> {
    Table::new(entries).ok()
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut lines: Vec<&str> = text.split('\n').collect();
    let addr = lines.pop().unwrap_or("");
    let entries: Vec<String> = lines
        .iter()
        .filter(|l| {
            !l.trim_start()
                .trim_start_matches('!')
                .trim_start()
                .starts_with("file:")
        })
        .take(16)
        .map(|s| s.to_string())
        .collect();

    assert!(table(&[".".into()]).unwrap().contains(addr));
    assert!(!Table::default().contains(addr));

    let Some(t) = table(&entries) else {
        return;
    };
    let hit = t.contains(addr);
    assert_eq!(
        hit,
        t.contains(&addr.to_ascii_uppercase()),
        "case: {addr:?}"
    );
    assert_eq!(
        hit,
        t.contains(&addr.to_ascii_lowercase()),
        "case: {addr:?}"
    );

    for e in &entries {
        let Some(single) = table(std::slice::from_ref(e)) else {
            continue;
        };
        let negatable = !e.trim_start().starts_with('!');
        if negatable && single.contains(addr) {
            let neg = table(&[format!("!{e}")]).expect("!E parses when E does");
            assert!(!neg.contains(addr), "!{e:?} matched {addr:?}");
        }
        if negatable {
            let both = table(&[e.clone(), format!("!{e}")]).unwrap();
            assert_eq!(
                both.contains(addr),
                single.contains(addr),
                "first match wins"
            );
        }
        let plain = e.trim();
        if plain.contains('@') && !plain.starts_with(['@', '.', '!', '/']) && !plain.ends_with('@')
        {
            assert!(single.contains(plain), "{plain:?} does not match itself");
        }
    }
});

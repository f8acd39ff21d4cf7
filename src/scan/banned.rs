//! Banned files, as amavisd-new's `$banned_filename_re` sees them: an ordered rule list decides
//! for every part of the message (MIME leaves, attached messages, zip members, zips in zips, as
//! `message::parts` lists them with their declared names and types and what their first bytes
//! say they are).
//!
//! Contract: [`check`] is pure: one reason per banned part, first matching rule wins. [`scan`]
//! lists the parts (within the limits of [`BannedConfig`]) and checks them: the structure's own
//! ban reasons first (a limit exceeded, MIME that parsers would read differently: amavisd treats
//! undecipherable structure as suspicious), then the parts'. It returns `Err` only when a parser
//! panicked (the message is then UNCHECKED).

pub use crate::message::parts::Encrypted;
use crate::message::parts::{Inventory, Limits};
pub use crate::message::parts::{MAX_DEPTH_LIMIT, Part};
use crate::message::text::printable;
pub use crate::process::in_guarded_parse;
use crate::scan::gate::Gate;
use crate::scan::scanner::{Job, Scanner};
use crate::verdict::{Kind, Outcome, ScanReport};
use regex::Regex;
use std::collections::HashSet;

/// The `[banned]` configuration.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct BannedConfig {
    /// Check for banned parts at all.
    pub enabled: bool,
    /// MIME + archive nesting limit: deeper parts are not looked at, and that is a ban reason.
    pub max_depth: usize,
    /// MIME parts (multipart containers included) + archive members, over the whole message.
    pub max_parts: usize,
    /// Members listed per archive.
    pub max_archive_members: usize,
    /// Sum of the declared uncompressed sizes inside archives, plus the decoded size of base64 or
    /// quoted-printable attached messages (which are decoded to look inside): the zip-bomb guard.
    pub max_expanded_size: crate::config::units::Size,
    /// The site's own rules, checked before `rules`: allow-exceptions ("our ERP sends .cmd
    /// files") and extra bans, without copying the built-in list.
    pub local_rules: Vec<Rule>,
    /// Which kinds of encrypted content make the message UNCHECKED (amavisd's
    /// UNCHECKED-ENCRYPTED): "archive" (password zip/7z/RAR), "pdf", "smime", "pgp". Corrupt
    /// or truncated archives are UNCHECKED whatever this says.
    pub unchecked_encrypted: Vec<Encrypted>,
    /// Ordered; the first rule that matches a part decides (ban or allow); no match allows.
    /// Defaults to the built-in list ([`default_rules`]); setting it replaces that list.
    pub rules: Vec<Rule>,
}

impl Default for BannedConfig {
    fn default() -> Self {
        BannedConfig {
            enabled: true,
            max_depth: 20,
            max_parts: 1000,
            max_archive_members: 1000,
            max_expanded_size: crate::config::units::Size(200 * 1024 * 1024),
            local_rules: Vec::new(),
            // Encrypted archives only, as amavisd's decoders report them: encrypted PDFs (bank
            // statements) and S/MIME or PGP mail are everyday business at many sites.
            unchecked_encrypted: vec![Encrypted::Archive],
            rules: default_rules(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Ban,
    Allow,
}

/// One banned-files rule. Every matcher given must match (a missing name or sniffed kind is
/// matched as the empty string); a rule needs at least one. The regexes are used as written:
/// put `(?i)` in front for case-insensitive matching.
///
/// The description is the ban reason. `${1}`..`${9}` expand to the name regex's capture groups,
/// `${name}`, `${declared}` and `${sniffed}` to the part's values.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub action: Action,
    /// Regex on the file name.
    pub name: Option<String>,
    /// Regex on the declared type.
    pub declared: Option<String>,
    /// Regex on the sniffed kind.
    pub sniffed: Option<String>,
    pub description: String,
}

/// Executable file name extensions, by family; each family is one default rule, and the double
/// extension rule uses them all. Case-insensitive; Windows ignores trailing dots and spaces
/// ("x.exe. "), so the rules do too.
const EXECUTABLE: &[(&str, &str)] = &[
    // Programs and libraries Windows runs or loads: .xll is an Excel add-in (a DLL), .pif and .scr
    // are programs whatever their name suggests.
    ("exe|com|scr|pif|cpl|dll|ocx|sys|xll", "Windows program"),
    // Installers and app packages: they run code with the user's (or an administrator's) rights.
    (
        "msi|msp|mst|msu|msix|msixbundle|appx|appxbundle|application|appref-ms|gadget",
        "Windows installer or app package",
    ),
    // Scripts Windows runs on a double click: batch files, Windows Script Host, HTML applications,
    // PowerShell and Monad (its old name).
    (
        "bat|cmd|vb|vbs|vbe|js|jse|ws|wsf|wsh|wsc|sct|hta|ps1|ps1xml|ps2|ps2xml|psc1|psc2|psd1|psm1|msh|msh1|msh2|mshxml|msh1xml|msh2xml",
        "Windows script",
    ),
    // Files that point at or change something else: shortcuts (.lnk, .url, .website, .scf,
    // .settingcontent-ms), registry imports, setup information, MMC consoles, shell scraps.
    (
        "lnk|url|website|scf|settingcontent-ms|reg|inf|ins|isp|msc|shb|shs",
        "Windows shortcut, registry or setup file",
    ),
    ("jar|jnlp", "Java program"),
    // Compiled HTML help runs scripts when opened.
    ("chm|hlp", "Windows help file (can run scripts)"),
];

/// Declared executable types (`application/...`): amavisd's defaults (x-msdownload,
/// x-msdos-program, hta) and their other spellings, including the IANA-registered one for PE
/// files. One list for the rule's pattern and its quick check.
const EXECUTABLE_TYPES: &[&str] = &[
    "x-msdownload",
    "x-msdos-program",
    "x-dosexec",
    "x-ms-dos-executable",
    "x-executable",
    "vnd.microsoft.portable-executable",
    "hta",
    "x-ms-shortcut",
    "x-ms-installer",
    "x-msi",
];

/// The built-in rule list, in order. No `allow` rule comes first: each candidate (archives
/// "known to be safe", attached messages named after a `.com` subject) would let a sniffed
/// executable through, because the first matching rule wins.
pub fn default_rules() -> Vec<Rule> {
    let ban = |name: Option<String>, declared: Option<&str>, sniffed: Option<&str>, d: &str| Rule {
        action: Action::Ban,
        name,
        declared: declared.map(str::to_string),
        sniffed: sniffed.map(str::to_string),
        description: d.to_string(),
    };
    let all: Vec<&str> = EXECUTABLE.iter().map(|(exts, _)| *exts).collect();
    let all = all.join("|");
    let mut rules = vec![
        // Unicode bidi embedding/override/isolate controls (U+202A..U+202E, U+2066..U+2069) make
        // "invoice\u{202E}fdp.exe" display as "invoiceexe.pdf": there is no honest use in a name.
        ban(
            Some(r"[\x{202A}-\x{202E}\x{2066}-\x{2069}]".into()),
            None,
            None,
            "bidirectional control character in the file name (hides the real extension)",
        ),
        // Control characters (NUL, CR, LF, ESC ...; tab excepted, folding leaves it in long
        // names) in a name truncate or split it in some programs: "evil.exe\0.txt".
        ban(
            Some(r"[\x00-\x08\x0A-\x1F\x7F]".into()),
            None,
            None,
            "control character in the file name",
        ),
        // A harmless-looking extension followed by an executable one ("invoice.pdf.exe",
        // "photo.jpg   .scr"), amavisd's double-extension rule: the first extension must contain
        // a letter, so "setup-1.2.exe" is reported by the plain extension rule below instead.
        ban(
            Some(format!(
                r"(?i)\.([^./\\]*\p{{L}}[^./\\]*)\.\s*({all})[.\s]*$"
            )),
            None,
            None,
            "double extension .${1}.${2}",
        ),
        // "name.{3050F4D8-98B5-11CF-BB82-00AA00BDCE0B}": Explorer hides a class ID extension and
        // opens the file with that class (here: as an HTML application).
        ban(
            Some(
                r"(?i)\.\s*\{[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\}[.\s]*$"
                    .into(),
            ),
            None,
            None,
            "Windows class ID as the file name extension",
        ),
    ];
    // One rule per family of executable extensions (see EXECUTABLE).
    for (exts, what) in EXECUTABLE {
        rules.push(ban(
            Some(format!(r"(?i)\.({exts})[.\s]*$")),
            None,
            None,
            &format!("executable file name extension .${{1}} ({what})"),
        ));
    }
    rules.extend([
        // Declared executable types: amavisd's defaults (x-msdownload, x-msdos-program, hta) and
        // their other spellings, including the IANA-registered one for PE files.
        ban(
            None,
            Some(&format!(
                r"(?i)^application/({})$",
                EXECUTABLE_TYPES.join("|").replace('.', r"\.")
            )),
            None,
            "executable declared type ${declared}",
        ),
        // RFC 2046 fragments are reassembled only by the reader's program: no scanner sees the
        // whole. amavisd ships this rule commented out; nobody sends message/partial any more.
        ban(
            None,
            Some(r"(?i)^message/partial$"),
            None,
            "message fragment (message/partial) that cannot be checked",
        ),
        // A program declared as text: a disguise (the sniffed rules below would ban it anyway;
        // these say why).
        ban(
            None,
            Some(r"(?i)^text/"),
            Some("^(exe|elf)$"),
            "executable content (${sniffed}) declared as ${declared}",
        ),
        // A program under a document's name ("report.txt" that starts with MZ).
        ban(
            Some(r"\.([^./\\]+)$".into()),
            None,
            Some("^(exe|elf)$"),
            "executable content (${sniffed}) named .${1}",
        ),
        // Programs whatever their name and type say, the "exe-ms" file(1) type of amavisd; ELF
        // too: a mail attachment is no way to ship Unix programs either.
        ban(
            None,
            None,
            Some("^exe$"),
            "Windows/DOS program content (MZ header)",
        ),
        ban(
            None,
            None,
            Some("^elf$"),
            "Unix program content (ELF header)",
        ),
    ]);
    rules
}

/// Checks limits and rules: every regex compiles, every rule has a matcher and a description.
/// Errors are (key, message) with keys under `banned.`.
pub fn validate(cfg: &BannedConfig) -> Result<(), (String, String)> {
    let key = |k: &str| format!("banned.{k}");
    if cfg.max_depth == 0 || cfg.max_depth > MAX_DEPTH_LIMIT {
        return Err((
            key("max_depth"),
            format!("must be between 1 and {MAX_DEPTH_LIMIT}"),
        ));
    }
    for (k, v) in [
        ("max_parts", cfg.max_parts as u64),
        ("max_archive_members", cfg.max_archive_members as u64),
        ("max_expanded_size", cfg.max_expanded_size.0),
    ] {
        if v == 0 {
            return Err((key(k), "must be above 0".into()));
        }
    }
    // The built-in rules are known to compile (every_default_rule_has_a_story compiles them):
    // compiling them again on every run cost ~4 ms, most of a no-scanner run. Only what the
    // admin wrote is compiled here.
    let builtin = &*BUILTIN_RULES;
    let lists = [("local_rules", &cfg.local_rules), ("rules", &cfg.rules)];
    for (list, i, r) in lists
        .iter()
        .flat_map(|(list, rules)| rules.iter().enumerate().map(move |(i, r)| (*list, i, r)))
        .filter(|(_, _, r)| !builtin.contains(r))
    {
        let what = |text: String| {
            (
                key(list),
                format!("rule {} ({:?}): {text}", i + 1, r.description),
            )
        };
        if r.name.is_none() && r.declared.is_none() && r.sniffed.is_none() {
            return Err(what(
                "needs at least one of name, declared, sniffed (a regex each)".into(),
            ));
        }
        if r.description.trim().is_empty() {
            return Err(what("needs a description: it is the ban reason".into()));
        }
        for (field, re) in [
            ("name", &r.name),
            ("declared", &r.declared),
            ("sniffed", &r.sniffed),
        ] {
            if let Some(re) = re
                && let Err(e) = Regex::new(re)
            {
                let e = e.to_string().replace('\n', " ");
                return Err(what(format!("{field}: invalid regex: {e}")));
            }
        }
    }
    Ok(())
}

/// Lists every part of `msg` within the limits; the parts past a limit are left out (see
/// [`survey`] for the reasons). `Err` only when a parser panicked.
#[cfg(test)]
pub fn inventory(msg: &[u8], cfg: &BannedConfig) -> Result<Vec<Part>, String> {
    survey(msg, cfg).map(|inv| inv.parts)
}

/// The parts of `msg` within this configuration's limits, and the structure's ban reasons.
pub fn survey(msg: &[u8], cfg: &BannedConfig) -> Result<Inventory, String> {
    crate::message::parts::survey(msg, &cfg.limits())
}

impl BannedConfig {
    pub fn limits(&self) -> Limits {
        Limits {
            max_depth: self.max_depth,
            max_parts: self.max_parts,
            max_archive_members: self.max_archive_members,
            max_expanded_size: self.max_expanded_size.0,
        }
    }
}

/// The ban reasons for `parts`: one per banned part (a part listed under several names is one
/// part), as "invoice.pdf.exe (part 2: double extension .pdf.exe)". Rules whose regexes do not
/// compile are skipped ([`validate`] rejects them when the configuration is loaded).
pub fn check(parts: &[Part], cfg: &BannedConfig) -> Vec<String> {
    if !cfg.enabled {
        return Vec::new();
    }
    let builtin = &*BUILTIN_RULES;
    let quick = &*BUILTIN_QUICK;
    let rules: Vec<Compiled> = cfg
        .local_rules
        .iter()
        .chain(&cfg.rules)
        .filter_map(|r| Compiled::new(r, builtin, quick))
        .collect();
    let mut banned: HashSet<&str> = HashSet::new();
    let mut reasons = Vec::new();
    for part in parts {
        if banned.contains(part.path.as_str()) {
            continue;
        }
        for rule in &rules {
            let Some(description) = rule.matches(part) else {
                continue;
            };
            if rule.action == Action::Ban {
                banned.insert(&part.path);
                reasons.push(reason(part, &description));
            }
            break;
        }
    }
    reasons
}

/// Inventory and check in one: the ban reasons of the structure first, then of the parts.
/// Disabled, it looks at nothing.
pub fn scan(msg: &[u8], cfg: &BannedConfig) -> Result<Vec<String>, String> {
    examine(msg, cfg).map(|f| f.banned)
}

/// What the banned-files walk found: ban reasons, and what nobody could look into.
#[derive(Debug, Default, PartialEq)]
pub struct Found {
    pub banned: Vec<String>,
    /// Encrypted or corrupt content (amavisd's UNCHECKED): reported when nothing is banned.
    pub unchecked: Vec<String>,
}

/// [`scan`] with the UNCHECKED reasons too.
pub fn examine(msg: &[u8], cfg: &BannedConfig) -> Result<Found, String> {
    if !cfg.enabled {
        return Ok(Found::default());
    }
    let inv = survey(msg, cfg)?;
    let mut banned = inv.problems;
    banned.extend(check(&inv.parts, cfg));
    let unchecked = inv
        .unchecked
        .into_iter()
        .filter(|u| {
            u.encrypted
                .is_none_or(|e| cfg.unchecked_encrypted.contains(&e))
        })
        .map(|u| u.why)
        .collect();
    Ok(Found { banned, unchecked })
}

// ---------------------------------------------------------------------------------------------
// Rules

/// A rule whose patterns are compiled on first use: most parts of most messages are decided by
/// a few rules, and compiling the whole default list costs milliseconds per message.
/// A necessary condition for a built-in rule to match, checked without any regex: most parts
/// fail it, and then the rule's patterns are never compiled (compiling the ten name rules
/// cost ~10 ms for any message with a named attachment). `false` means "cannot match"; the
/// regexes still decide when it is `true`. A unit test checks it never refuses a match.
#[derive(Debug, Clone, Copy)]
enum Quick {
    /// The name has a bidi control character.
    Bidi,
    /// The name has a control character other than tab.
    Control,
    /// The name's last extension is one of these, and there is an extension before it.
    DoubleExt(&'static [&'static str]),
    /// The name has a `{`.
    Brace,
    /// The name's last extension is one of these.
    Ext(&'static [&'static str]),
    /// The declared type starts with this.
    Declared(&'static str),
    /// The declared type is this type with one of these subtypes.
    DeclaredIn(&'static str, &'static [&'static str]),
    /// The part was sniffed as exe or elf.
    Program,
}

/// The extensions of each EXECUTABLE family, and all of them, as lists.
static FAMILIES: std::sync::LazyLock<Vec<Vec<&'static str>>> = std::sync::LazyLock::new(|| {
    EXECUTABLE
        .iter()
        .map(|(exts, _)| exts.split('|').collect())
        .collect()
});
static ALL_EXTS: std::sync::LazyLock<Vec<&'static str>> =
    std::sync::LazyLock::new(|| FAMILIES.iter().flatten().copied().collect());

/// The built-in rules and their quick checks, built once per process (validate and check both
/// compare against them).
static BUILTIN_RULES: std::sync::LazyLock<Vec<Rule>> = std::sync::LazyLock::new(default_rules);
static BUILTIN_QUICK: std::sync::LazyLock<Vec<Quick>> = std::sync::LazyLock::new(default_quick);

/// The quick checks of [`default_rules`], in the same order.
fn default_quick() -> Vec<Quick> {
    let mut q = vec![
        Quick::Bidi,
        Quick::Control,
        Quick::DoubleExt(&ALL_EXTS),
        Quick::Brace,
    ];
    q.extend(FAMILIES.iter().map(|f| Quick::Ext(f)));
    q.extend([
        Quick::DeclaredIn("application/", EXECUTABLE_TYPES),
        Quick::DeclaredIn("message/", &["partial"]),
        Quick::Declared("text/"),
        Quick::Program,
        Quick::Program,
        Quick::Program,
    ]);
    q
}

/// The last extension of a file name as Windows sees it (trailing dots and white space ignored,
/// white space after the dot too), lower-cased; None when there is no dot. Some("\u{0}") when
/// it is not ASCII: Unicode case folding could make it match, so the regex must decide.
fn last_extension(name: &str) -> Option<(String, bool)> {
    let trimmed = name.trim_end_matches(|c: char| c == '.' || c.is_whitespace());
    let (before, ext) = trimmed.rsplit_once('.')?;
    let ext = ext.trim_start();
    let double = before.contains('.');
    Some((ext.to_ascii_lowercase(), double))
}

impl Quick {
    fn may_match(self, part: &Part) -> bool {
        let name = part.name.as_deref().unwrap_or("");
        let ext_in = |set: &[&str], need_double: bool| match last_extension(name) {
            None => false,
            Some((ext, _)) if !ext.is_ascii() => true,
            Some((ext, double)) => (double || !need_double) && set.contains(&ext.as_str()),
        };
        match self {
            Quick::Bidi => name
                .chars()
                .any(|c| matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')),
            Quick::Control => name
                .chars()
                .any(|c| matches!(c, '\x00'..='\x08' | '\x0A'..='\x1F' | '\x7F')),
            Quick::DoubleExt(set) => ext_in(set, true),
            Quick::Brace => name.contains('{'),
            Quick::Ext(set) => ext_in(set, false),
            Quick::Declared(prefix) => {
                !part.declared_type.is_ascii()
                    || part.declared_type.to_ascii_lowercase().starts_with(prefix)
            }
            Quick::DeclaredIn(prefix, subtypes) => {
                let declared = part.declared_type.to_ascii_lowercase();
                !declared.is_ascii()
                    || declared
                        .strip_prefix(prefix)
                        .is_some_and(|t| subtypes.contains(&t))
            }
            Quick::Program => matches!(part.sniffed, Some("exe" | "elf")),
        }
    }
}

struct Compiled<'a> {
    action: Action,
    quick: Option<Quick>,
    name: Option<Lazy<'a>>,
    declared: Option<Lazy<'a>>,
    sniffed: Option<Lazy<'a>>,
    description: &'a str,
}

struct Lazy<'a> {
    source: &'a str,
    /// False when the pattern cannot match the empty string (known from its parse alone).
    matches_empty: bool,
    re: std::cell::OnceCell<Option<Regex>>,
}

impl<'a> Lazy<'a> {
    /// `builtin`: the pattern is one of the built-in rules', which all need at least one
    /// character (the test every_default_rule_has_a_story checks it), so it is not even parsed.
    fn new(source: &'a str, builtin: bool) -> Option<Lazy<'a>> {
        let matches_empty = if builtin {
            false
        } else {
            // The syntax tree, not the HIR: translating (?i) Unicode classes costs as much as
            // the compile we are trying to avoid.
            let ast = regex_syntax::ast::parse::Parser::new().parse(source).ok()?;
            min_len(&ast) == 0
        };
        Some(Lazy {
            source,
            matches_empty,
            re: std::cell::OnceCell::new(),
        })
    }

    fn regex(&self) -> Option<&Regex> {
        self.re
            .get_or_init(|| Regex::new(self.source).ok())
            .as_ref()
    }

    fn is_match(&self, s: &str) -> bool {
        if s.is_empty() && !self.matches_empty {
            return false;
        }
        self.regex().is_some_and(|re| re.is_match(s))
    }
}

/// The fewest characters a pattern can match (a lower bound; 0 when unsure).
fn min_len(ast: &regex_syntax::ast::Ast) -> usize {
    use regex_syntax::ast::{Ast, RepetitionKind, RepetitionRange};
    match ast {
        Ast::Literal(_) | Ast::Dot(_) | Ast::ClassUnicode(_) | Ast::ClassPerl(_) => 1,
        Ast::ClassBracketed(_) => 1,
        Ast::Empty(_) | Ast::Flags(_) | Ast::Assertion(_) => 0,
        Ast::Repetition(r) => {
            let times = match &r.op.kind {
                RepetitionKind::ZeroOrOne | RepetitionKind::ZeroOrMore => 0,
                RepetitionKind::OneOrMore => 1,
                RepetitionKind::Range(
                    RepetitionRange::Exactly(m)
                    | RepetitionRange::AtLeast(m)
                    | RepetitionRange::Bounded(m, _),
                ) => *m as usize,
            };
            times.saturating_mul(min_len(&r.ast))
        }
        Ast::Group(g) => min_len(&g.ast),
        Ast::Alternation(a) => a.asts.iter().map(min_len).min().unwrap_or(0),
        Ast::Concat(c) => c.asts.iter().map(min_len).fold(0, usize::saturating_add),
    }
}

impl<'a> Compiled<'a> {
    fn new(r: &'a Rule, builtin: &[Rule], quick: &[Quick]) -> Option<Compiled<'a>> {
        let position = builtin.iter().position(|b| b == r);
        let known = position.is_some();
        let lazy = |s: &'a Option<String>| -> Option<Option<Lazy<'a>>> {
            match s {
                None => Some(None),
                Some(s) => Lazy::new(s, known).map(Some),
            }
        };
        let c = Compiled {
            action: r.action,
            quick: position.and_then(|i| quick.get(i).copied()),
            name: lazy(&r.name)?,
            declared: lazy(&r.declared)?,
            sniffed: lazy(&r.sniffed)?,
            description: &r.description,
        };
        (c.name.is_some() || c.declared.is_some() || c.sniffed.is_some()).then_some(c)
    }

    /// The expanded description when every matcher matches.
    fn matches(&self, part: &Part) -> Option<String> {
        if let Some(q) = self.quick
            && !q.may_match(part)
        {
            return None;
        }
        // Free refusals first: an empty value against a pattern that needs a character.
        let name = part.name.as_deref().unwrap_or("");
        for (l, value) in [
            (&self.declared, part.declared_type.as_str()),
            (&self.sniffed, part.sniffed.unwrap_or("")),
            (&self.name, name),
        ] {
            if let Some(l) = l
                && value.is_empty()
                && !l.matches_empty
            {
                return None;
            }
        }
        // The cheap matchers first: an unnamed text part usually fails on them, and then the
        // name pattern is never compiled.
        if let Some(l) = &self.declared
            && !l.is_match(&part.declared_type)
        {
            return None;
        }
        if let Some(l) = &self.sniffed
            && !l.is_match(part.sniffed.unwrap_or(""))
        {
            return None;
        }
        let name = part.name.as_deref().unwrap_or("");
        let captures = match &self.name {
            Some(l) if !l.is_match(name) => return None,
            Some(l) => l.regex().and_then(|re| re.captures(name)),
            None => None,
        };
        Some(expand(self.description, part, captures.as_ref()))
    }
}

/// `${1}`..`${9}`, `${name}`, `${declared}`, `${sniffed}`; anything else is literal.
fn expand(template: &str, part: &Part, caps: Option<&regex::Captures<'_>>) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(at) = rest.find("${") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let Some(close) = after.find('}') else {
            out.push_str(&rest[at..]);
            return out;
        };
        let key = &after[..close];
        let value = match key {
            "name" => Some(part.name.clone().unwrap_or_default()),
            "declared" => Some(part.declared_type.clone()),
            "sniffed" => Some(part.sniffed.unwrap_or("unknown").to_string()),
            _ => match key.parse::<usize>() {
                Ok(n) => Some(
                    caps.and_then(|c| c.get(n))
                        .map_or(String::new(), |m| m.as_str().to_string()),
                ),
                Err(_) => None,
            },
        };
        match value {
            Some(v) => out.push_str(&printable(&v, 80)),
            None => out.push_str(&rest[at..at + 2 + close + 1]),
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}

fn reason(part: &Part, description: &str) -> String {
    let name = match &part.name {
        Some(n) => printable(n, 120),
        None => format!("[unnamed {}]", display_type(part)),
    };
    // A member's path ends in its own name: say where it is, not the name twice.
    let suffix = format!(" > {name}");
    let location = part.path.strip_suffix(&suffix).unwrap_or(&part.path);
    format!("{name} ({location}: {description})")
}

fn display_type(part: &Part) -> &str {
    if part.declared_type.is_empty() {
        "archive member"
    } else {
        &part.declared_type
    }
}

/// The banned-files walk as one of the run's scanners: local, no server.
pub struct Banned {
    pub settings: BannedConfig,
}

impl Scanner for Banned {
    fn name(&self) -> &'static str {
        "banned"
    }
    fn kind(&self) -> Kind {
        Kind::Banned
    }
    /// Sized for banned.max_depth levels of nesting whatever the message.
    fn stack_size(&self) -> usize {
        32 << 20
    }
    fn scan(&self, job: &Job, _gate: Option<&Gate>) -> ScanReport {
        let started = std::time::Instant::now();
        let found = crate::timings::time("banned", || examine(&job.msg, &self.settings));
        ScanReport {
            scanner: "banned",
            kind: Kind::Banned,
            // BANNED outranks UNCHECKED (amavisd's order): a banned part decides, and what
            // could not be opened only matters when nothing is banned.
            outcome: match found {
                Ok(f) if f.banned.is_empty() && !f.unchecked.is_empty() => {
                    Outcome::Unchecked(f.unchecked.join("; "))
                }
                Ok(f) => Outcome::Banned(f.banned),
                Err(why) => Outcome::Failed(why),
            },
            server: None,
            elapsed: started.elapsed(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// The start of a real PE file: DOS header, e_lfanew at 0x3C, DOS stub text, "PE\0\0".
    fn mz() -> Vec<u8> {
        let mut v = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00\xb8".to_vec();
        v.resize(0x3C, 0);
        v.extend_from_slice(&[0x80, 0, 0, 0]);
        v.extend_from_slice(
            b"\x0e\x1f\xba\x0e\x00\xb4\x09\xcd\x21This program cannot be run in DOS mode.\r\r\n$",
        );
        v.resize(0x80, 0);
        v.extend_from_slice(b"PE\0\0\x4c\x01\x03\x00");
        v.resize(512, 0);
        v
    }

    fn b64(data: &[u8]) -> String {
        let s = crate::message::text::base64(data);
        let lines: Vec<&str> = s
            .as_bytes()
            .chunks(76)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        lines.join("\n")
    }

    fn crc32(data: &[u8]) -> u32 {
        let mut c = !0u32;
        for &b in data {
            c ^= u32::from(b);
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    (c >> 1) ^ 0xEDB8_8320
                } else {
                    c >> 1
                };
            }
        }
        !c
    }

    /// A zip with stored members, written the way Info-ZIP writes it: local headers with data,
    /// then the central directory, then the end record.
    fn zip(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut central = Vec::new();
        for (name, data) in members {
            let offset = out.len() as u32;
            let (crc, n) = (crc32(data), data.len() as u32);
            let common = |v: &mut Vec<u8>| {
                v.extend_from_slice(&20u16.to_le_bytes()); // version needed
                v.extend_from_slice(&0u16.to_le_bytes()); // flags
                v.extend_from_slice(&0u16.to_le_bytes()); // method: stored
                v.extend_from_slice(&0u32.to_le_bytes()); // time, date
                v.extend_from_slice(&crc.to_le_bytes());
                v.extend_from_slice(&n.to_le_bytes());
                v.extend_from_slice(&n.to_le_bytes());
                v.extend_from_slice(&(name.len() as u16).to_le_bytes());
                v.extend_from_slice(&0u16.to_le_bytes()); // extra length
            };
            out.extend_from_slice(b"PK\x03\x04");
            common(&mut out);
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(data);
            central.extend_from_slice(b"PK\x01\x02");
            central.extend_from_slice(&0x031Eu16.to_le_bytes()); // made by: Unix
            common(&mut central);
            central.extend_from_slice(&[0; 6]); // comment length, disk, internal attributes
            central.extend_from_slice(&0u32.to_le_bytes()); // external attributes
            central.extend_from_slice(&offset.to_le_bytes());
            central.extend_from_slice(name.as_bytes());
        }
        let cd_offset = out.len() as u32;
        out.extend_from_slice(&central);
        out.extend_from_slice(b"PK\x05\x06\0\0\0\0");
        out.extend_from_slice(&(members.len() as u16).to_le_bytes());
        out.extend_from_slice(&(members.len() as u16).to_le_bytes());
        out.extend_from_slice(&(central.len() as u32).to_le_bytes());
        out.extend_from_slice(&cd_offset.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out
    }

    fn crlf(lf: &[u8]) -> Vec<u8> {
        let mut v = Vec::with_capacity(lf.len() + lf.len() / 20);
        for &b in lf {
            if b == b'\n' {
                v.push(b'\r');
            }
            v.push(b);
        }
        v
    }

    /// A multipart/mixed message; each part is (its header lines, its body).
    fn multipart(parts: &[(&str, &[u8])]) -> Vec<u8> {
        let mut m = b"From: Alice <alice@example.org>\nTo: bob@example.com\nSubject: files\n\
            Date: Mon, 3 Mar 2025 10:00:00 +0100\nMIME-Version: 1.0\n\
            Content-Type: multipart/mixed; boundary=\"=_b0und\"\n\nThis is a MIME message.\n"
            .to_vec();
        for (headers, body) in parts {
            m.extend_from_slice(b"--=_b0und\n");
            m.extend_from_slice(headers.as_bytes());
            m.extend_from_slice(b"\n\n");
            m.extend_from_slice(body);
            m.extend_from_slice(b"\n");
        }
        m.extend_from_slice(b"--=_b0und--\n");
        m
    }

    fn text_and(headers: &str, body: &[u8]) -> Vec<u8> {
        multipart(&[
            (
                "Content-Type: text/plain; charset=utf-8",
                b"Please see attached.",
            ),
            (headers, body),
        ])
    }

    fn attachment(name: &str, body: &[u8]) -> Vec<u8> {
        text_and(
            &format!(
                "Content-Type: application/octet-stream; name=\"{name}\"\n\
                 Content-Disposition: attachment; filename=\"{name}\"\n\
                 Content-Transfer-Encoding: base64"
            ),
            b64(body).as_bytes(),
        )
    }

    fn reasons(msg: &[u8]) -> Vec<String> {
        scan(msg, &BannedConfig::default()).expect("no panic")
    }

    /// Runs `msg` as written (LF) and with CRLF line ends: both must give `want`.
    fn assert_reasons(story: &str, msg: &[u8], want: &[&str]) {
        for (ending, m) in [("LF", msg.to_vec()), ("CRLF", crlf(msg))] {
            let got = reasons(&m);
            assert_eq!(got, want, "{story} ({ending})");
        }
    }

    #[test]
    fn attachments_the_admin_expects_to_be_banned_or_passed() {
        let pdf = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n".to_vec();
        let table: Vec<(&str, Vec<u8>, Vec<&str>)> = vec![
            (
                "a plain text message",
                b"From: a@example.org\nSubject: hi\n\nhello\n".to_vec(),
                vec![],
            ),
            ("a PDF invoice", attachment("invoice.pdf", &pdf), vec![]),
            (
                "a tarball and a photo",
                multipart(&[
                    (
                        "Content-Type: application/gzip; name=\"src.tar.gz\"",
                        b"\x1f\x8b\x08\x00",
                    ),
                    (
                        "Content-Type: image/jpeg; name=\"Photo 2025.06.01.jpg\"",
                        b"\xff\xd8\xff\xe0",
                    ),
                ]),
                vec![],
            ),
            (
                "a versioned setup program",
                attachment("setup-1.2.exe", &mz()),
                vec![
                    "setup-1.2.exe (part 2: executable file name extension .exe (Windows program))",
                ],
            ),
            (
                "a double extension",
                attachment("invoice.pdf.exe", &mz()),
                vec!["invoice.pdf.exe (part 2: double extension .pdf.exe)"],
            ),
            (
                "a double extension hidden by spaces and a trailing dot",
                attachment("scan.jpg      .scr.", b"not really"),
                vec!["scan.jpg      .scr. (part 2: double extension .jpg      .scr)"],
            ),
            (
                "upper-case script extensions",
                attachment("README.JS", b"WScript.Echo(1)"),
                vec!["README.JS (part 2: executable file name extension .JS (Windows script))"],
            ),
            (
                "a Java archive, even though it is a zip",
                attachment(
                    "tool.jar",
                    &zip(&[("META-INF/MANIFEST.MF", b"Manifest-Version: 1.0\n")]),
                ),
                vec!["tool.jar (part 2: executable file name extension .jar (Java program))"],
            ),
            (
                "a shortcut",
                attachment("Documents.lnk", b"L\0\0\0\x01\x14\x02\0"),
                vec![
                    "Documents.lnk (part 2: executable file name extension .lnk (Windows shortcut, registry or setup file))",
                ],
            ),
            (
                "a class ID extension",
                attachment(
                    "notes.txt.{3050F4D8-98B5-11CF-BB82-00AA00BDCE0B}",
                    b"<script>",
                ),
                vec![
                    "notes.txt.{3050F4D8-98B5-11CF-BB82-00AA00BDCE0B} (part 2: Windows class ID as the file name extension)",
                ],
            ),
            (
                "a right-to-left override",
                attachment("invoice\u{202E}fdp.exe", b"x"),
                vec![
                    "invoice\\u{202e}fdp.exe (part 2: bidirectional control character in the file name (hides the real extension))",
                ],
            ),
            (
                "a program named report.txt, declared text/plain",
                text_and(
                    "Content-Type: text/plain; name=\"report.txt\"\nContent-Transfer-Encoding: base64",
                    b64(&mz()).as_bytes(),
                ),
                vec!["report.txt (part 2: executable content (exe) declared as text/plain)"],
            ),
            (
                "a program named report.txt, declared octet-stream",
                attachment("report.txt", &mz()),
                vec!["report.txt (part 2: executable content (exe) named .txt)"],
            ),
            (
                "an unnamed program",
                text_and(
                    "Content-Type: application/octet-stream\nContent-Transfer-Encoding: base64",
                    b64(&mz()).as_bytes(),
                ),
                vec![
                    "[unnamed application/octet-stream] (part 2: Windows/DOS program content (MZ header))",
                ],
            ),
            (
                "an ELF binary",
                attachment("backup", b"\x7fELF\x02\x01\x01\0"),
                vec!["backup (part 2: Unix program content (ELF header))"],
            ),
            (
                "a declared executable type",
                text_and("Content-Type: application/x-msdownload", b"x"),
                vec![
                    "[unnamed application/x-msdownload] (part 2: executable declared type application/x-msdownload)",
                ],
            ),
            (
                "a message fragment",
                text_and(
                    "Content-Type: message/partial; id=\"abc@x\"; number=1; total=2",
                    b"From: x\n",
                ),
                vec![
                    "[unnamed message/partial] (part 2: message fragment (message/partial) that cannot be checked)",
                ],
            ),
            (
                "a text that starts with MZ is not a program",
                attachment(
                    "notes.txt",
                    b"MZ is the DOS signature, named after Mark Zbikowski.\n",
                ),
                vec![],
            ),
        ];
        assert!(!table.is_empty());
        for (story, msg, want) in &table {
            assert_reasons(story, msg, want);
        }
    }

    #[test]
    fn file_names_are_decoded_as_mail_readers_decode_them() {
        // RFC 2231 continuations with a charset, the Content-Type name disagreeing.
        let rfc2231 = text_and(
            "Content-Type: application/octet-stream;\n\tname*0*=UTF-8''inv%C3%B6ice;\n\tname*1*=.pdf%2Eexe\n\
             Content-Disposition: attachment;\n\tfilename*0*=UTF-8''inv%C3%B6ice;\n\tfilename*1=\".pdf\";\n\tfilename*2=\".exe\"",
            b"x",
        );
        assert_reasons(
            "RFC 2231 continuations",
            &rfc2231,
            &["inv\u{f6}ice.pdf.exe (part 2: double extension .pdf.exe)"],
        );
        let parts = inventory(&rfc2231, &BannedConfig::default()).unwrap();
        assert_eq!(parts[1].name.as_deref(), Some("inv\u{f6}ice.pdf.exe"));
        assert_eq!(parts[1].path, "part 2");
        // RFC 2047 in a quoted name, Latin-1 in Q encoding.
        let rfc2047 = text_and(
            "Content-Type: application/pdf; name=\"=?UTF-8?B?ZmFjdHVyZS5wZGYuZXhl?=\"\n\
             Content-Disposition: attachment; filename=\"=?iso-8859-1?Q?r=E9sum=E9.pdf.exe?=\"",
            b"x",
        );
        assert_reasons(
            "RFC 2047 names, both banned: one reason for the part",
            &rfc2047,
            &["r\u{e9}sum\u{e9}.pdf.exe (part 2: double extension .pdf.exe)"],
        );
        let names: Vec<_> = inventory(&rfc2047, &BannedConfig::default())
            .unwrap()
            .into_iter()
            .filter_map(|p| p.name)
            .collect();
        assert_eq!(names, ["r\u{e9}sum\u{e9}.pdf.exe", "facture.pdf.exe"]);
        // The harmless filename does not hide the dangerous Content-Type name.
        assert_reasons(
            "two different names",
            &text_and(
                "Content-Type: application/octet-stream; name=\"run.exe\"\nContent-Disposition: attachment; filename=\"run.txt\"",
                b"x",
            ),
            &["run.exe (part 2: executable file name extension .exe (Windows program))"],
        );
        // A NUL encoded into a name cuts it short in C programs.
        assert_reasons(
            "an encoded NUL",
            &text_and(
                "Content-Type: application/octet-stream\nContent-Disposition: attachment; filename*=UTF-8''evil.exe%00.txt",
                b"x",
            ),
            &["evil.exe\\u{0}.txt (part 2: control character in the file name)"],
        );
        // Folding a long quoted name leaves a tab in it: not a control character worth banning.
        assert_reasons(
            "a long folded name",
            &text_and(
                "Content-Type: application/pdf;\n\tname=\"Quarterly report for the board of directors,\n\tfinal version.pdf\"",
                b"%PDF-1.4",
            ),
            &[],
        );
    }

    #[test]
    fn zip_members_are_listed_from_the_central_directory() {
        let pdf = b"%PDF-1.4 harmless".as_slice();
        let inner = zip(&[("b/readme.txt", b"hi"), ("b/a.pdf.exe", &mz())]);
        let table: Vec<(&str, Vec<u8>, Vec<&str>)> = vec![
            (
                "a zip with a double extension inside",
                attachment(
                    "docs.zip",
                    &zip(&[("invoice.pdf", pdf), ("a.pdf.exe", &mz())]),
                ),
                vec!["a.pdf.exe (part 2 > docs.zip: double extension .pdf.exe)"],
            ),
            (
                "a zip inside a zip",
                attachment(
                    "outer.zip",
                    &zip(&[("notes.txt", b"x"), ("inner.zip", &inner)]),
                ),
                vec!["b/a.pdf.exe (part 2 > outer.zip > inner.zip: double extension .pdf.exe)"],
            ),
            (
                "a program under a harmless name inside a zip",
                attachment("scan.zip", &zip(&[("scan.pdf", &mz())])),
                vec!["scan.pdf (part 2 > scan.zip: executable content (exe) named .pdf)"],
            ),
            (
                "a zip without a name is found by its bytes",
                text_and(
                    "Content-Type: application/octet-stream\nContent-Transfer-Encoding: base64",
                    b64(&zip(&[("x.vbs", b"MsgBox 1")])).as_bytes(),
                ),
                vec![
                    "x.vbs (part 2 > [unnamed zip]: executable file name extension .vbs (Windows script))",
                ],
            ),
            (
                "an office document is a zip of harmless names",
                attachment(
                    "report.docx",
                    &zip(&[
                        ("[Content_Types].xml", b"<x/>"),
                        ("word/document.xml", b"<w/>"),
                    ]),
                ),
                vec![],
            ),
        ];
        for (story, msg, want) in &table {
            assert_reasons(story, msg, want);
        }
        let parts = inventory(&table[1].1, &BannedConfig::default()).unwrap();
        let member = parts
            .iter()
            .find(|p| p.name.as_deref() == Some("b/a.pdf.exe"))
            .unwrap();
        assert_eq!(member.path, "part 2 > outer.zip > inner.zip > b/a.pdf.exe");
        assert_eq!(
            (member.depth, member.size, member.sniffed),
            (3, 512, Some("exe"))
        );
        assert_eq!(member.declared_type, "");
    }

    #[test]
    fn zips_in_odd_shapes() {
        // Data in front (a self-extractor's stub, here harmless text): offsets are measured back
        // from the end record.
        let mut sfx = b"#!/bin/sh\nexit 0\n".to_vec();
        sfx.extend_from_slice(&zip(&[("setup.bat", b"@echo off")]));
        assert_reasons(
            "a zip with a prefix",
            &attachment("tools.zip", &sfx),
            &[
                "setup.bat (part 2 > tools.zip: executable file name extension .bat (Windows script))",
            ],
        );
        // The local header names the member differently from the central directory.
        let mut z = zip(&[("readme.txt", b"hello")]);
        let at = z.windows(10).position(|w| w == b"readme.txt").unwrap();
        z[at..at + 10].copy_from_slice(b"readme.exe");
        let parts = inventory(&attachment("a.zip", &z), &BannedConfig::default()).unwrap();
        let names: Vec<_> = parts.iter().filter_map(|p| p.name.as_deref()).collect();
        assert_eq!(names, ["a.zip", "readme.txt", "readme.exe"]);
        assert_eq!(
            check(&parts, &BannedConfig::default()),
            [
                "readme.exe (part 2 > a.zip > readme.txt: executable file name extension .exe (Windows program))"
            ]
        );
        // A name in the IBM PC code page (no UTF-8 flag): 0x82 is "é".
        let mut z = zip(&[("rXsumX.txt", b"x")]);
        while let Some(at) = z.windows(10).position(|w| w == b"rXsumX.txt") {
            z[at..at + 10].copy_from_slice(b"r\x82sum\x82.txt");
        }
        let parts = inventory(&attachment("cv.zip", &z), &BannedConfig::default()).unwrap();
        assert_eq!(parts[2].name.as_deref(), Some("r\u{e9}sum\u{e9}.txt"));
        // Truncated archives and garbage named .zip list nothing and do not panic.
        let whole = zip(&[("a.exe", &mz())]);
        for cut in [0, 4, 22, whole.len() / 2, whole.len() - 1] {
            let _ = reasons(&attachment("cut.zip", &whole[..cut]));
            let mut broken = whole.clone();
            let at = cut.min(broken.len() - 1);
            broken[at] ^= 0xff;
            let _ = reasons(&attachment("flip.zip", &broken));
        }
    }

    #[test]
    fn zip_bombs_and_member_floods_are_ban_reasons() {
        // A member declaring 4 GiB (as the overlapping-file bombs do).
        let mut z = zip(&[("big.bin", b"tiny")]);
        let cd = z.windows(4).rposition(|w| w == b"PK\x01\x02").unwrap();
        z[cd + 24..cd + 28].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
        let got = reasons(&attachment("bomb.zip", &z));
        assert_eq!(
            got,
            [
                "zip bomb guard: archives and encoded attached messages expand to 4.0 GiB, over max_expanded_size (200.0 MiB), at part 2 > bomb.zip"
            ]
        );
        // Too many members for one archive.
        let names: Vec<String> = (0..30).map(|i| format!("f{i}.txt")).collect();
        let members: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b"x"[..])).collect();
        let cfg = BannedConfig {
            max_archive_members: 10,
            ..BannedConfig::default()
        };
        let got = scan(&attachment("many.zip", &zip(&members)), &cfg).unwrap();
        assert_eq!(
            got,
            ["too many members in archive part 2 > many.zip (over max_archive_members, 10)"]
        );
    }

    #[test]
    fn attached_messages_are_opened() {
        let inner = String::from_utf8(attachment("invoice.pdf.exe", &mz()))
            .unwrap()
            .replace("=_b0und", "=_inner");
        let plain = multipart(&[
            ("Content-Type: text/plain", b"forwarding"),
            (
                "Content-Type: message/rfc822; name=\"fwd.eml\"",
                inner.as_bytes(),
            ),
        ]);
        assert_reasons(
            "a forwarded message with a program in it",
            &plain,
            &["invoice.pdf.exe (part 2 > message/rfc822 > part 2: double extension .pdf.exe)"],
        );
        let parts = inventory(&plain, &BannedConfig::default()).unwrap();
        let fwd = parts
            .iter()
            .find(|p| p.declared_type == "message/rfc822")
            .unwrap();
        assert_eq!(
            (fwd.name.as_deref(), fwd.path.as_str(), fwd.depth),
            (Some("fwd.eml"), "part 2", 1)
        );
        let exe = parts
            .iter()
            .find(|p| p.name.as_deref() == Some("invoice.pdf.exe"))
            .unwrap();
        assert_eq!(exe.depth, 3);

        let encoded = multipart(&[(
            "Content-Type: message/rfc822\nContent-Transfer-Encoding: base64",
            b64(inner.as_bytes()).as_bytes(),
        )]);
        assert_reasons(
            "the same message base64-encoded",
            &encoded,
            &["invoice.pdf.exe (part 1 > message/rfc822 > part 2: double extension .pdf.exe)"],
        );
        // In a digest, a part without Content-Type is a message.
        let digest = format!(
            "From: list@example.org\nContent-Type: multipart/digest; boundary=d\n\n--d\n\n{inner}\n--d--\n"
        );
        assert_reasons(
            "a digest",
            digest.as_bytes(),
            &["invoice.pdf.exe (part 1 > message/rfc822 > part 2: double extension .pdf.exe)"],
        );
        // A message that is a message/rfc822 at the top (single part).
        let top = format!("From: a@b\nContent-Type: message/rfc822\n\n{inner}");
        assert_reasons(
            "a message whose body is a message",
            top.as_bytes(),
            &["invoice.pdf.exe (part 1 > message/rfc822 > part 2: double extension .pdf.exe)"],
        );
    }

    #[test]
    fn boundaries_are_whole_lines_as_mail_readers_see_them() {
        // mail-parser 0.11.9 ends the multipart at "--XX--" inside the text line, and would miss
        // evil.exe; mail readers show it.
        let msg = b"From: a@b\nContent-Type: multipart/mixed; boundary=\"XX\"\n\n--XX\n\
            Content-Type: text/plain\n\nhello --XX--\n--XX\n\
            Content-Type: application/octet-stream; name=\"evil.exe\"\n\nx\n--XX--\n";
        assert_reasons(
            "a boundary string inside a line",
            msg,
            &["evil.exe (part 2: executable file name extension .exe (Windows program))"],
        );
        let parts = inventory(msg, &BannedConfig::default()).unwrap();
        assert_eq!(
            parts[0].size, 12,
            "the first part's text is \"hello --XX--\""
        );
        // Transport padding after a delimiter is allowed, a longer boundary is not this one.
        let msg = b"From: a@b\nContent-Type: multipart/mixed; boundary=XX\n\n--XX  \nContent-Type: text/plain\n\n\
            a\n--XXY\nContent-Type: application/x-msdownload\n\n--XX--\t\nepilogue\n";
        let parts = inventory(msg, &BannedConfig::default()).unwrap();
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].size, 47);
        // Two Content-Type fields that disagree: which one counts depends on the reader.
        let msg = b"From: a@b\nContent-Type: text/plain\nContent-Type: multipart/mixed; boundary=XX\n\n--XX\n\n--XX--\n";
        assert_reasons(
            "conflicting Content-Type fields",
            msg,
            &["ambiguous MIME structure: conflicting Content-Type fields (part 1)"],
        );
    }

    #[test]
    fn malformed_input_never_panics() {
        let table: Vec<(&str, Vec<u8>)> = vec![
            ("empty input", vec![]),
            ("one newline", b"\n".to_vec()),
            ("no header", b"just text\n".to_vec()),
            ("NUL bytes", b"From: a\0b\nSubject: \0\n\nbody\0with\0nuls\n".to_vec()),
            (
                "missing boundary parameter",
                b"From: a@b\nContent-Type: multipart/mixed\n\n--x\nContent-Type: text/plain\n\nhi\n--x--\n".to_vec(),
            ),
            (
                "boundary never used",
                b"From: a@b\nContent-Type: multipart/mixed; boundary=nope\n\nhi\n".to_vec(),
            ),
            (
                "no closing delimiter",
                b"From: a@b\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nhi".to_vec(),
            ),
            (
                "malformed base64",
                text_and("Content-Type: application/pdf\nContent-Transfer-Encoding: base64", b"!!!!@@@@ not base64 at all ====").to_vec(),
            ),
            (
                "mail-parser's debug-assert input",
                b"0\nContent-Type:multipart/\n boundary=outer\n\n--outerContent-Type:message/rfc822\nt\n\nContent-Type:message/rfc822\n\n\n--outer--".to_vec(),
            ),
            ("unterminated parameters", b"Content-Type: multipart/mixed; boundary=\"".to_vec()),
            ("8-bit junk", (0u8..=255).cycle().take(5000).collect()),
        ];
        for (story, msg) in &table {
            for m in [msg.clone(), crlf(msg)] {
                let got = scan(&m, &BannedConfig::default());
                assert!(got.is_ok(), "{story}: {got:?}");
                assert_eq!(got.unwrap(), Vec::<String>::new(), "{story}");
            }
        }
        // A program behind invalid base64 characters is still decoded, as MUAs decode it.
        let mut noisy = b64(&mz()).into_bytes();
        noisy.splice(8..8, b"!*#".iter().copied());
        assert_reasons(
            "noise in base64",
            &text_and(
                "Content-Type: application/octet-stream\nContent-Transfer-Encoding: base64",
                &noisy,
            ),
            &[
                "[unnamed application/octet-stream] (part 2: Windows/DOS program content (MZ header))",
            ],
        );
    }

    fn nested_multiparts(levels: usize) -> Vec<u8> {
        let mut s = String::from("From: a@b\n");
        for i in 0..levels {
            s.push_str(&format!(
                "Content-Type: multipart/mixed; boundary=\"b{i}\"\n\n--b{i}\n"
            ));
        }
        s.push_str("Content-Type: application/octet-stream; name=\"deep.exe\"\n\nx\n");
        for i in (0..levels).rev() {
            s.push_str(&format!("--b{i}--\n"));
        }
        s.into_bytes()
    }

    fn timed<T>(what: &str, f: impl FnOnce() -> T) -> (T, Duration) {
        let t = Instant::now();
        let r = f();
        let took = t.elapsed();
        eprintln!("{what}: {} ms", took.as_secs_f64() * 1000.0);
        (r, took)
    }

    #[test]
    fn two_hundred_nested_multiparts() {
        let msg = nested_multiparts(200);
        let (got, took) = timed("200 nested multiparts", || reasons(&msg));
        assert_eq!(got, ["too deeply nested MIME (over 20 levels)"]);
        assert!(took < Duration::from_secs(2), "{took:?}");
        // Within the limit, the program at the bottom is found.
        assert_eq!(
            reasons(&nested_multiparts(19)),
            [format!(
                "deep.exe ({}: executable file name extension .exe (Windows program))",
                vec!["part 1"; 19].join(" > ")
            )]
        );
    }

    #[test]
    fn deeply_nested_messages_do_not_overflow_the_stack() {
        // 100,000 attached messages inside each other, plain and base64-wrapped; mail-parser's
        // own parse() overflows the stack on both. Run on a thread with the default 2 MiB stack,
        // as the scanners run.
        let mut inner = String::from("From: a@b\n");
        for _ in 0..100_000 {
            inner.push_str("Content-Type: message/rfc822\n\nFrom: c@d\n");
        }
        inner.push_str("Content-Type: application/octet-stream; name=\"x.exe\"\n\nMZ\n");
        let wrapped = format!(
            "From: a@b\nContent-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\n{}\n",
            b64(inner.as_bytes())
        );
        for msg in [inner.into_bytes(), wrapped.into_bytes()] {
            let got =
                std::thread::spawn(move || timed("100,000 nested messages", || reasons(&msg)))
                    .join()
                    .expect("no overflow, no panic");
            assert_eq!(got.0, ["too deeply nested MIME (over 20 levels)"]);
            assert!(got.1 < Duration::from_secs(2), "{:?}", got.1);
        }
    }

    #[test]
    fn a_hundred_thousand_tiny_parts() {
        let mut msg = b"From: a@b\nContent-Type: multipart/mixed; boundary=\"b\"\n\n".to_vec();
        for i in 0..100_000 {
            msg.extend_from_slice(
                format!("--b\nContent-Type: text/plain; name=\"f{i}.txt\"\n\nx\n").as_bytes(),
            );
        }
        msg.extend_from_slice(b"--b--\n");
        let (got, took) = timed("100,000 tiny parts", || reasons(&msg));
        assert_eq!(
            got,
            ["too many parts: over 1000 MIME parts and archive members"]
        );
        assert!(took < Duration::from_secs(1), "{took:?}");
        let parts = inventory(&msg, &BannedConfig::default()).unwrap();
        assert_eq!(
            parts.len(),
            999,
            "the multipart itself counts as one of the 1000"
        );
    }

    #[test]
    fn a_ten_megabyte_message_with_attachments() {
        let mut big = Vec::with_capacity(3_000_000);
        let mut x = 0x1234_5678u32;
        while big.len() < 2_500_000 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            big.extend_from_slice(&x.to_le_bytes());
        }
        let text = "Lorem ipsum dolor sit amet, consectetur adipiscing elit.\n".repeat(20_000);
        let parts: Vec<(String, Vec<u8>)> = vec![
            ("Content-Type: text/plain; charset=utf-8".into(), text.clone().into_bytes()),
            ("Content-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: quoted-printable".into(), text.replace('\n', "=\n<br>").into_bytes()),
            ("Content-Type: application/pdf; name=\"a.pdf\"\nContent-Transfer-Encoding: base64".into(), b64(&[b"%PDF-1.7\n".as_slice(), &big].concat()).into_bytes()),
            ("Content-Type: application/zip; name=\"b.zip\"\nContent-Transfer-Encoding: base64".into(), b64(&zip(&[("data.bin", &big), ("c.exe", &mz())])).into_bytes()),
            ("Content-Type: image/png; name=\"c.png\"\nContent-Transfer-Encoding: base64".into(), b64(&big).into_bytes()),
        ];
        let refs: Vec<(&str, &[u8])> = parts
            .iter()
            .map(|(h, b)| (h.as_str(), b.as_slice()))
            .collect();
        let msg = multipart(&refs);
        assert!(msg.len() > 10_000_000, "{}", msg.len());
        let (got, took) = timed(&format!("{} byte message", msg.len()), || reasons(&msg));
        assert_eq!(
            got,
            ["c.exe (part 4 > b.zip: executable file name extension .exe (Windows program))"]
        );
        assert!(took < Duration::from_secs(5), "{took:?}");
        let (_, took) = timed("the same as CRLF", || reasons(&crlf(&msg)));
        assert!(took < Duration::from_secs(5), "{took:?}");
    }

    #[test]
    fn rules_are_ordered_and_configurable() {
        let toml_text = r#"
            enabled = true
            max_depth = 5
            [[rules]]
            action = "allow"
            name = '(?i)^trusted-.*\.exe$'
            description = "our own installer"
            [[rules]]
            action = "ban"
            name = '(?i)\.(exe|iso)$'
            description = "no .${1} please"
        "#;
        let cfg: BannedConfig = toml::from_str(toml_text).unwrap();
        assert_eq!(cfg.max_parts, 1000, "unset keys keep their defaults");
        assert_eq!(cfg.rules.len(), 2);
        validate(&cfg).unwrap();
        let msg = multipart(&[
            (
                "Content-Type: application/octet-stream; name=\"trusted-setup.exe\"",
                b"x",
            ),
            (
                "Content-Type: application/octet-stream; name=\"other.EXE\"",
                b"x",
            ),
            (
                "Content-Type: application/octet-stream; name=\"disk.iso\"",
                b"x",
            ),
        ]);
        assert_eq!(
            scan(&msg, &cfg).unwrap(),
            [
                "other.EXE (part 2: no .EXE please)",
                "disk.iso (part 3: no .iso please)"
            ]
        );
        let off = BannedConfig {
            enabled: false,
            ..BannedConfig::default()
        };
        assert!(scan(&attachment("x.exe", &mz()), &off).unwrap().is_empty());
        assert!(
            toml::from_str::<BannedConfig>("max_depht = 3").is_err(),
            "typos are errors"
        );
        assert!(
            toml::from_str::<BannedConfig>(
                "[[rules]]\naction = \"ban\"\nname = \"x\"\ndescription = \"d\"\nextra = 1"
            )
            .is_err()
        );
        // The defaults round-trip through TOML (for check-config's "effective settings").
        let text = toml::to_string(&BannedConfig::default()).unwrap();
        assert_eq!(
            toml::from_str::<BannedConfig>(&text).unwrap(),
            BannedConfig::default()
        );
    }

    #[test]
    fn validation_names_the_key() {
        assert_eq!(validate(&BannedConfig::default()), Ok(()));
        let with = |f: &dyn Fn(&mut BannedConfig)| {
            let mut c = BannedConfig::default();
            f(&mut c);
            validate(&c).unwrap_err()
        };
        assert_eq!(with(&|c| c.max_depth = 0).0, "banned.max_depth");
        assert_eq!(with(&|c| c.max_depth = 1000).0, "banned.max_depth");
        assert_eq!(with(&|c| c.max_parts = 0).0, "banned.max_parts");
        assert_eq!(
            with(&|c| c.max_expanded_size = crate::config::units::Size(0)).0,
            "banned.max_expanded_size"
        );
        let rule = |name: Option<&str>, description: &str| Rule {
            action: Action::Ban,
            name: name.map(str::to_string),
            declared: None,
            sniffed: None,
            description: description.into(),
        };
        let e = with(&|c| c.rules.push(rule(Some("(unclosed"), "bad")));
        assert_eq!(e.0, "banned.rules");
        assert!(
            e.1.starts_with(&format!(
                "rule {} (\"bad\"): name: invalid regex",
                default_rules().len() + 1
            )),
            "{}",
            e.1
        );
        assert!(
            with(&|c| c.rules = vec![rule(None, "nothing")])
                .1
                .contains("at least one of")
        );
        assert!(
            with(&|c| c.rules = vec![rule(Some("x"), " ")])
                .1
                .contains("description")
        );
    }

    #[test]
    fn quick_checks_never_refuse_what_the_built_in_rules_match() {
        let builtin = default_rules();
        let quick = default_quick();
        assert_eq!(builtin.len(), quick.len(), "default_quick is out of step");
        let mut names: Vec<String> = vec![
            "".into(),
            "noext".into(),
            "report.pdf".into(),
            "setup-1.2.exe".into(),
            "a..exe".into(),
            ".exe".into(),
            "x.exe.txt".into(),
            "x.ſcr".into(),
            "x.\u{212A}sh".into(),
            "in\u{202E}fdp.exe".into(),
            "in\u{2067}x.txt".into(),
            "a\u{1}.txt".into(),
            "tab\there.txt".into(),
            "a.{3050F4D8-98B5-11CF-BB82-00AA00BDCE0B}".into(),
            "a. {3050f4d8-98b5-11cf-bb82-00aa00bdce0b} .".into(),
            "dir/sub\\x.js".into(),
            "photo.jpg   .scr".into(),
            "photo.jpg.   scr".into(),
            "1.2.exe".into(),
            "é.pdf.exe".into(),
        ];
        for ext in ALL_EXTS.iter() {
            for form in [
                "x.{e}",
                "X.{E}",
                "x.{e}. ",
                "x.{e} ..",
                "invoice.pdf.{e}",
                "a.b.{e}x",
                "{e}",
            ] {
                names.push(
                    form.replace("{e}", ext)
                        .replace("{E}", &ext.to_ascii_uppercase()),
                );
            }
        }
        let types = [
            "text/plain",
            "text/html",
            "application/x-msdownload",
            "application/x-msdos-program",
            "application/x-dosexec",
            "application/x-ms-dos-executable",
            "application/x-executable",
            "application/vnd.microsoft.portable-executable",
            "application/x-ms-shortcut",
            "application/x-ms-installer",
            "application/x-msi",
            "APPLICATION/X-MSI",
            "application/hta",
            "application/pdf",
            "message/partial",
            "message/rfc822",
            "",
        ];
        let sniffs = [None, Some("exe"), Some("elf"), Some("zip"), Some("pdf")];
        let rules: Vec<Compiled> = builtin
            .iter()
            .map(|r| Compiled::new(r, &[], &[]).unwrap())
            .collect();
        let mut checked = 0;
        for name in &names {
            for t in types {
                for sn in sniffs {
                    let part = Part {
                        name: (!name.is_empty()).then(|| name.clone()),
                        declared_type: t.into(),
                        sniffed: sn,
                        path: "part 2".into(),
                        depth: 1,
                        size: 1,
                    };
                    for (i, rule) in rules.iter().enumerate() {
                        if rule.matches(&part).is_some() {
                            checked += 1;
                            assert!(
                                quick[i].may_match(&part),
                                "rule {i} ({:?}) matches {part:?} but its quick check refuses it",
                                builtin[i].description
                            );
                        }
                    }
                }
            }
        }
        assert!(
            checked > 1000,
            "only {checked} matches: the corpus tests nothing"
        );
    }

    #[test]
    fn every_default_rule_has_a_story() {
        // Each default rule bans something real and compiles; the list starts with no allow.
        let rules = default_rules();
        assert!(rules.iter().all(|r| r.action == Action::Ban));
        for r in &rules {
            assert!(Compiled::new(r, &[], &[]).is_some(), "{r:?}");
            // validate() trusts the built-in patterns without compiling them, and the matcher
            // takes them to need a character without parsing them: this is the proof.
            for re in [&r.name, &r.declared, &r.sniffed].into_iter().flatten() {
                assert!(Regex::new(re).is_ok(), "{re}");
                let ast = regex_syntax::ast::parse::Parser::new().parse(re).unwrap();
                assert!(min_len(&ast) > 0, "{re} can match the empty string");
            }
        }
        for ext in EXECUTABLE.iter().flat_map(|(e, _)| e.split('|')) {
            let name = format!("x.{ext}");
            assert_eq!(reasons(&attachment(&name, b"x")).len(), 1, "{name}");
            let upper = format!("X.{}", ext.to_uppercase());
            assert_eq!(reasons(&attachment(&upper, b"x")).len(), 1, "{upper}");
        }
        for fine in [
            "x.exe.txt",
            "x.pdf",
            "x.docx",
            "x.zip",
            "x.tar.gz",
            "example.company",
            "x.jsx",
            "x.json",
            "x.comp",
        ] {
            assert!(reasons(&attachment(fine, b"x")).is_empty(), "{fine}");
        }
    }

    #[test]
    fn printable_names() {
        assert_eq!(
            printable("a\u{202e}b\0c\td", 50),
            "a\\u{202e}b\\u{0}c\\u{9}d"
        );
        assert_eq!(printable("abcdef", 3), "abc…");
    }
}

//! Mail authentication: every DKIM signature (RFC 6376), SPF for the envelope sender and the
//! HELO name (RFC 7208), DMARC (RFC 7489) and the ARC chain (RFC 8617), through mail-auth,
//! answered as one [`AuthReport`]: the `Authentication-Results` value (RFC 8601) and the facts
//! the policy reads (is the author proven, did DMARC fail under which policy).
//!
//! Contract: never fails and never waits past its budget: a DNS answer that does not come in
//! time is `temperror`, a message mail-auth cannot read is `none`. Without `--client-address`
//! SPF is `none` (a comment says why), never a failure. What we do not trust is kept out of the
//! verification and reported as `policy`: DKIM signatures with `l=` (content appended after
//! the signed length would pass; RFC 6376 §8.2) and signatures beyond `[auth] max_signatures`.
//!
//! It runs as an early stage of a run (before the recipients' tables are read), not on the
//! scanner threads: its results choose a policy bank and whitelist senders (ARCHITECTURE.md).

use crate::config::settings::Config;
use crate::dns::{Dns, bounded};
use crate::envelope::Envelope;
use crate::message::header::Header;
use crate::outcome::Failure;
use crate::spool::Spool;
use crate::verdict::{AuthReport, DmarcPolicy};
use mail_auth::common::crypto::Algorithm;
use mail_auth::dmarc::Policy;
use mail_auth::dmarc::verify::DmarcParameters;
use mail_auth::spf::verify::SpfParameters;
use mail_auth::{AuthenticatedMessage, DkimOutput, DkimResult, DmarcResult, SpfOutput, SpfResult};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A DKIM-Signature field we do not verify, and why.
struct Untrusted {
    domain: String,
    why: &'static str,
}

/// Verifies `raw` (the whole message) as received from `env.client`, within `budget`.
pub fn verify(
    cfg: &Config,
    raw: &[u8],
    header: &Header,
    env: &Envelope,
    hostname: &str,
    budget: Duration,
) -> AuthReport {
    let (copy, untrusted) = trusted_copy(raw, header, cfg.auth.max_signatures);
    let raw = copy.as_deref().unwrap_or(raw);
    let Some(msg) = AuthenticatedMessage::parse(raw) else {
        return AuthReport {
            results: format!("{hostname}; none (not a readable message)"),
            summary: "auth=none".into(),
            ..AuthReport::default()
        };
    };
    let dns = match Dns::new(&cfg.dns, budget) {
        Ok(d) => d,
        Err(e) => {
            crate::log::warn(&format!("mail authentication: {e}"));
            return AuthReport {
                results: format!(
                    "{hostname}; dkim=temperror (no resolver); spf=temperror; dmarc=temperror"
                ),
                summary: "dkim=temperror spf=temperror dmarc=temperror".into(),
                ..AuthReport::default()
            };
        }
    };
    let author_domain = (header.count("From") == 1)
        .then(|| single_domain(msg.froms()))
        .flatten();
    let checks = Checks::run(&dns, &msg, env, hostname);
    checks.report(hostname, env, &untrusted, author_domain)
}

/// What the methods answered for one message (`None`: the DNS budget ran out first).
struct Checks<'x> {
    dkim: Option<Vec<DkimOutput<'x>>>,
    /// Per signature of `dkim`: why a valid one proves nothing (RFC 8301), if so.
    weak: Vec<Option<String>>,
    /// The signatures that count: `dkim` less the weak ones (what DMARC sees).
    trusted: Option<Vec<DkimOutput<'x>>>,
    arc: Option<mail_auth::ArcOutput<'x>>,
    spf: Spf,
    dmarc: Option<mail_auth::DmarcOutput>,
}

impl<'x> Checks<'x> {
    fn run(dns: &Dns, msg: &'x AuthenticatedMessage<'x>, env: &Envelope, hostname: &str) -> Self {
        let a = dns.authenticator();
        // DKIM keys, ARC and SPF at once (a cold resolver's round trips overlap); what needs
        // their answers (key lengths, DMARC) after.
        let c = &env.client;
        let helo = c.address.zip(c.helo.as_deref());
        let from = c.address.filter(|_| !env.sender.is_empty());
        let helo_name = c.helo.as_deref().unwrap_or("");
        let (dkim, arc, helo_spf, from_spf) = dns.run_all(|left| async move {
            tokio::join!(
                bounded(left, a.verify_dkim(msg)),
                bounded(left, a.verify_arc(msg)),
                async {
                    match helo {
                        Some((ip, h)) => {
                            let p = SpfParameters::verify_ehlo(ip, h, hostname);
                            Some(bounded(left, a.verify_spf(p)).await)
                        }
                        None => None,
                    }
                },
                async {
                    match from {
                        Some(ip) => {
                            let p = SpfParameters::verify_mail_from(
                                ip,
                                helo_name,
                                hostname,
                                &env.sender,
                            );
                            Some(bounded(left, a.verify_spf(p)).await)
                        }
                        None => None,
                    }
                },
            )
        });
        let weak: Vec<Option<String>> = dkim.iter().flatten().map(|o| weakness(dns, o)).collect();
        let trusted: Option<Vec<DkimOutput>> = dkim.as_ref().map(|outs| {
            outs.iter()
                .zip(&weak)
                .filter(|(_, w)| w.is_none())
                .map(|(o, _)| o.clone())
                .collect()
        });
        let spf = Spf {
            timed_out: [&helo_spf, &from_spf]
                .iter()
                .any(|r| matches!(r, Some(None))),
            helo: helo_spf.flatten(),
            mail_from: from_spf.flatten(),
            missing: c.address.is_none().then_some("no client address given"),
        };
        let mail_from_domain = mail_from_domain(env);
        let none_spf = SpfOutput::new(mail_from_domain.clone());
        let spf_for_dmarc = spf
            .mail_from
            .as_ref()
            .or(spf.helo.as_ref())
            .unwrap_or(&none_spf);
        let dmarc = match (&trusted, dns.left().is_zero()) {
            (Some(d), false) => dns.run(a.verify_dmarc(DmarcParameters::new(
                msg,
                d,
                &mail_from_domain,
                spf_for_dmarc,
            ))),
            _ => None,
        };
        Checks {
            dkim,
            weak,
            trusted,
            arc,
            spf,
            dmarc,
        }
    }

    /// A temporary error on the way: a DMARC failure is then not held against the message.
    fn uncertain(&self) -> bool {
        let dkim_temp = self
            .dkim
            .iter()
            .flatten()
            .any(|o| matches!(o.result(), DkimResult::TempError(_)));
        let spf_temp = self.spf.timed_out
            || [&self.spf.mail_from, &self.spf.helo]
                .into_iter()
                .flatten()
                .any(|s| s.result() == SpfResult::TempError);
        dkim_temp || spf_temp
    }

    /// A valid signature of the author's domain under a key in testing mode: it proves
    /// nothing (it is not shown to DMARC), but a DMARC failure is not held against the message
    /// either (a domain testing DKIM under p=reject would otherwise have all its mail refused).
    /// Only the author domain's key can make one, so a spoofer cannot add one.
    fn testing_aligned(&self, author: Option<&str>) -> bool {
        let Some(author) = author else {
            return false;
        };
        self.dkim
            .iter()
            .flatten()
            .zip(&self.weak)
            .any(|(o, w)| w.as_deref() == Some(TESTING) && aligned_pass(o, author))
    }

    fn report(
        &self,
        hostname: &str,
        env: &Envelope,
        untrusted: &[Untrusted],
        author_domain: Option<String>,
    ) -> AuthReport {
        let mut r = Results::new(hostname);
        match &self.dkim {
            Some(outs) if outs.is_empty() && untrusted.is_empty() => r.push("dkim=none".into()),
            Some(outs) => outs
                .iter()
                .zip(&self.weak)
                .for_each(|(o, w)| r.push(dkim_result(o, w.as_deref()))),
            None => r.push("dkim=temperror (DNS timeout)".into()),
        }
        for u in untrusted {
            r.push(format!(
                "dkim=policy ({}) header.d={}",
                u.why,
                pvalue(&u.domain)
            ));
        }
        r.push_spf(env, &self.spf);
        r.push(match &self.dmarc {
            Some(d) => dmarc_result(d),
            None => "dmarc=temperror (DNS timeout)".into(),
        });
        r.push(match &self.arc {
            Some(a) => format!("arc={}", dkim_word(a.result())),
            None => "arc=temperror (DNS timeout)".into(),
        });
        let author_dkim = match (&self.trusted, &author_domain) {
            (Some(outs), Some(author)) => outs.iter().any(|o| aligned_pass(o, author)),
            _ => false,
        };
        let dmarc_pass = self
            .dmarc
            .as_ref()
            .is_some_and(|d| author_domain.is_some() && d.result() == DmarcResult::Pass);
        let dmarc_failed = self.dmarc.as_ref().and_then(|d| {
            let failed = matches!(d.result(), DmarcResult::Fail(_))
                && !self.uncertain()
                && !self.testing_aligned(author_domain.as_deref());
            match d.policy() {
                Policy::Reject if failed => Some(DmarcPolicy::Reject),
                Policy::Quarantine if failed => Some(DmarcPolicy::Quarantine),
                _ => None,
            }
        });
        AuthReport {
            results: r.value(),
            summary: r.summary(),
            author_domain,
            author_dkim,
            dmarc_pass,
            dmarc_failed,
        }
    }
}

/// The authentication stage of a run: the report (when `[auth] verify` is on, the message is
/// not oversized and its client is not ours) and, when it proves an author with a bank of its
/// own, the settings with that bank applied. `Err` is a bank that cannot be loaded (a
/// configuration error: 75). Mail from our own clients (SASL, `[lists] mynetworks`, or under
/// the originating bank) is not verified: it is not signed yet (we sign it on the way out) and its client may be anywhere,
/// so our own domain's DMARC would fail it (amavisd checks only mail that is not originating).
pub fn stage(
    cfg: &Arc<Config>,
    spool: &Spool,
    header: &Header,
    env: &Envelope,
    hostname: &str,
    started: Instant,
) -> Result<(Option<AuthReport>, Option<Arc<Config>>), Failure> {
    if !cfg.auth.verify || spool.oversized() || ours(cfg, env) {
        return Ok((None, None));
    }
    let report = crate::timings::time("auth", || {
        verify(
            cfg,
            &spool.head,
            header,
            env,
            hostname,
            budget(cfg, started),
        )
    });
    let banked = match author_bank(cfg, Some(&report)) {
        Some(bank) => Some(Arc::new(
            crate::config::load::with_bank(cfg, bank)
                .map_err(|e| Failure::tempfail("4.3.5", format!("configuration error: {e}")))?,
        )),
        None => None,
    };
    Ok((Some(report), banked))
}

/// Mail of our own: from a client of ours (SASL, `[lists] mynetworks`), or run under the
/// originating bank (a `--policy` transport for local submissions has no client at all).
fn ours(cfg: &Config, env: &Envelope) -> bool {
    let bank = &cfg.auth.originating_bank;
    env.client.originating(&cfg.lists.mynetworks)
        || (!bank.is_empty() && env.bank.as_deref() == Some(bank.as_str()))
}

/// The policy bank `[auth] author_policy_banks` gives a DKIM-proven author (its domain or the
/// closest parent listed), when no bank was applied before (`--policy`, ORIGINATING). DMARC
/// pass on SPF alone does not count: the bank follows a signature (amavisd's
/// @author_to_policy_bank_maps).
pub fn author_bank<'c>(cfg: &'c Config, auth: Option<&AuthReport>) -> Option<&'c str> {
    let a = auth.filter(|a| a.author_dkim)?;
    let author = a.author_domain.as_deref()?;
    if cfg.bank.is_some() {
        return None;
    }
    cfg.auth
        .author_policy_banks
        .iter()
        .filter(|(d, _)| {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            author == d || author.ends_with(&format!(".{d}"))
        })
        .max_by_key(|(d, _)| d.len())
        .map(|(_, bank)| bank.as_str())
}

/// The budget for a run's DNS work: `[dns] timeout`, cut to what `[general] deadline` leaves
/// after `started` less a reserve for delivering (a tenth of the deadline).
pub fn budget(cfg: &Config, started: Instant) -> Duration {
    let deadline = cfg.general.deadline.0;
    let left = deadline
        .saturating_sub(deadline / 10)
        .saturating_sub(started.elapsed());
    cfg.dns.timeout.0.min(left)
}

/// The message without the DKIM-Signature fields we do not verify (`None`: nothing to take
/// out), and those fields' domains and reasons.
fn trusted_copy(raw: &[u8], header: &Header, max: usize) -> (Option<Vec<u8>>, Vec<Untrusted>) {
    let mut drop = Vec::new();
    let mut untrusted = Vec::new();
    let (mut kept, mut over_noted) = (0usize, false);
    for f in header.fields.iter().filter(|f| f.is("DKIM-Signature")) {
        let tags = tags(f.value(raw));
        let domain = tags
            .iter()
            .find(|(k, _)| k == "d")
            .map_or_else(|| "?".to_string(), |(_, v)| v.clone());
        let leaves_out_from = tags
            .iter()
            .find(|(k, _)| k == "h")
            .is_some_and(|(_, h)| !h.split(':').any(|n| n.eq_ignore_ascii_case("from")));
        let why = if tags.iter().any(|(k, _)| k == "l") {
            "l= body length limit: not trusted"
        } else if too_many_fields(&tags) {
            "h= lists more than 200 fields: not verified"
        } else if leaves_out_from {
            "h= does not sign From: not trusted, RFC 6376 6.1.1"
        } else if kept >= max {
            "over auth.max_signatures: not verified"
        } else {
            kept += 1;
            continue;
        };
        drop.push((f.start, f.end));
        // One entry for all the signatures over the limit: a message with 10,000 of them must
        // not make a 10,000-part field.
        let over = why.starts_with("over");
        if (!over || !over_noted) && untrusted.len() <= max {
            untrusted.push(Untrusted { domain, why });
        }
        over_noted |= over;
    }
    // ARC is only reported, but its message signatures cost the same to verify.
    for f in header
        .fields
        .iter()
        .filter(|f| f.is("ARC-Message-Signature"))
    {
        if too_many_fields(&tags(f.value(raw))) {
            drop.push((f.start, f.end));
        }
    }
    if drop.is_empty() {
        return (None, untrusted);
    }
    drop.sort_unstable();
    let mut copy = Vec::with_capacity(raw.len());
    let mut pos = 0;
    for (start, end) in drop {
        copy.extend_from_slice(&raw[pos..start]);
        pos = end;
    }
    copy.extend_from_slice(&raw[pos..]);
    (Some(copy), untrusted)
}

/// The most h= names a signature we verify may list. mail-auth matches each name against
/// those before it and the header's fields, so a verification costs (names)^2: real signers
/// list 5 to 60 (oversigned), 40,000 took 11 s.
const MAX_SIGNED_FIELDS: usize = 200;

fn too_many_fields(tags: &[(String, String)]) -> bool {
    tags.iter()
        .find(|(k, _)| k == "h")
        .is_some_and(|(_, h)| h.split(':').count() > MAX_SIGNED_FIELDS)
}

/// A DKIM-Signature's tags, names lowercased, values without white space.
fn tags(value: &[u8]) -> Vec<(String, String)> {
    let text: String = String::from_utf8_lossy(value)
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    text.split(';')
        .filter_map(|t| t.split_once('='))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
        .collect()
}

/// SPF for MAIL FROM and HELO, each when we have what it needs.
struct Spf {
    mail_from: Option<SpfOutput>,
    helo: Option<SpfOutput>,
    /// Why SPF was not checked, when it was not.
    missing: Option<&'static str>,
    timed_out: bool,
}

/// The RFC 5321 MAIL FROM domain, or the HELO name for the null sender (RFC 7489 §3.2).
fn mail_from_domain(env: &Envelope) -> String {
    match env.sender.rsplit_once('@') {
        Some((_, d)) => d.to_ascii_lowercase(),
        None => env
            .client
            .helo
            .clone()
            .unwrap_or_default()
            .to_ascii_lowercase(),
    }
}

/// The one domain of the From: addresses, lowercase; none when they name several or none.
fn single_domain(froms: &[String]) -> Option<String> {
    let mut domain: Option<String> = None;
    for f in froms {
        let d = f
            .rsplit_once('@')?
            .1
            .trim_end_matches('.')
            .to_ascii_lowercase();
        if d.is_empty() || domain.as_ref().is_some_and(|x| *x != d) {
            return None;
        }
        domain = Some(d);
    }
    domain
}

/// A valid signature whose d= is the author domain or a parent domain of it (relaxed
/// alignment, without the public-suffix list: a d= of one label never aligns).
fn aligned_pass(o: &DkimOutput, author: &str) -> bool {
    let Some(sig) = o.signature() else {
        return false;
    };
    let d = sig.d.trim_end_matches('.').to_ascii_lowercase();
    *o.result() == DkimResult::Pass
        && sig.l == 0
        && d.contains('.')
        && (author == d || author.ends_with(&format!(".{d}")))
}

/// Why a valid signature proves nothing, if it does not: rsa-sha1 and RSA keys below 1024 bits
/// (RFC 8301), a key in testing mode (`t=y`: RFC 6376 §3.6.1, such mail is to be treated as
/// unsigned). The key is asked for again through the same resolver (mail-auth tells neither
/// the key's length nor its flags); an answer that does not come in time makes the signature
/// count for nothing.
fn weakness(dns: &Dns, o: &DkimOutput) -> Option<String> {
    let sig = o.signature()?;
    if *o.result() != DkimResult::Pass {
        return None;
    }
    if sig.a == Algorithm::RsaSha1 {
        return Some("rsa-sha1 is not accepted, RFC 8301".into());
    }
    let name = format!("{}._domainkey.{}.", sig.s, sig.d.trim_end_matches('.'));
    let txt = match dns.run(dns.authenticator().txt_raw_lookup(name.as_str())) {
        Some(Ok(t)) => t,
        _ => return Some("key not confirmed: DNS".into()),
    };
    if testing_mode(&txt) {
        return Some(TESTING.into());
    }
    if sig.a == Algorithm::Ed25519Sha256 {
        return None;
    }
    match rsa_bits(&txt) {
        Some(bits) if bits >= MIN_RSA_BITS => None,
        Some(bits) => Some(format!("RSA key of {bits} bits, below {MIN_RSA_BITS}")),
        None => Some("key length not confirmed: unreadable key".into()),
    }
}

/// Why a signature under a key in testing mode counts for nothing.
const TESTING: &str = "key in testing mode t=y, RFC 6376 3.6.1";

/// A DKIM key record whose `t=` flags (colon-separated) include `y`.
fn testing_mode(record: &[u8]) -> bool {
    tags(record)
        .iter()
        .find(|(k, _)| k == "t")
        .is_some_and(|(_, v)| v.split(':').any(|f| f.eq_ignore_ascii_case("y")))
}

/// RFC 8301 §3.2: verifiers must not accept shorter RSA keys.
pub const MIN_RSA_BITS: usize = 1024;

/// The modulus length of the RSA key in a DKIM key record's `p=` (SubjectPublicKeyInfo, or a
/// bare PKCS#1 key as some publish).
fn rsa_bits(record: &[u8]) -> Option<usize> {
    use rsa::pkcs1::DecodeRsaPublicKey;
    use rsa::pkcs8::DecodePublicKey;
    use rsa::traits::PublicKeyParts;
    let text = String::from_utf8_lossy(record);
    let p = tags(text.as_bytes())
        .into_iter()
        .find(|(k, _)| k == "p")
        .map(|(_, v)| v)?;
    let der = base64_decode(&p)?;
    let key = rsa::RsaPublicKey::from_public_key_der(&der)
        .or_else(|_| rsa::RsaPublicKey::from_pkcs1_der(&der))
        .ok()?;
    Some(key.n().bits())
}

/// Standard base64 (padding optional); None on anything else.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut n) = (0u32, 0u32);
    for b in s.bytes().filter(|&b| b != b'=') {
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((acc >> n) as u8);
        }
    }
    Some(out)
}

fn dkim_word(r: &DkimResult) -> &'static str {
    match r {
        DkimResult::Pass => "pass",
        DkimResult::Neutral(_) => "neutral",
        DkimResult::Fail(_) => "fail",
        DkimResult::PermError(_) => "permerror",
        DkimResult::TempError(_) => "temperror",
        DkimResult::None => "none",
    }
}

fn dkim_result(o: &DkimOutput, weak: Option<&str>) -> String {
    let r = o.result();
    let mut s = match weak {
        Some(why) => format!("dkim=policy ({why})"),
        None => format!("dkim={}", dkim_word(r)),
    };
    match r {
        DkimResult::Neutral(e)
        | DkimResult::Fail(e)
        | DkimResult::PermError(e)
        | DkimResult::TempError(e) => s.push_str(&format!(" ({})", comment(&e.to_string()))),
        DkimResult::Pass | DkimResult::None => {}
    }
    if let Some(sig) = o.signature() {
        s.push_str(&format!(
            " header.d={} header.s={}",
            pvalue(&sig.d),
            pvalue(&sig.s)
        ));
        if let Some(b) = sig.b.get(..6) {
            s.push_str(&format!(" header.b={}", base64_6(b)));
        }
    }
    s
}

fn dmarc_result(d: &mail_auth::DmarcOutput) -> String {
    let word = match d.result() {
        DmarcResult::Pass => "pass",
        DmarcResult::Fail(_) => "fail",
        DmarcResult::TempError(_) => "temperror",
        DmarcResult::PermError(_) => "permerror",
        DmarcResult::None => "none",
    };
    if d.domain().is_empty() {
        return format!("dmarc={word}");
    }
    let policy = match d.policy() {
        Policy::Reject => "reject",
        Policy::Quarantine => "quarantine",
        Policy::None | Policy::Unspecified => "none",
    };
    format!(
        "dmarc={word} header.from={} policy.dmarc={policy}",
        pvalue(d.domain())
    )
}

fn spf_word(r: SpfResult) -> &'static str {
    match r {
        SpfResult::Pass => "pass",
        SpfResult::Fail => "fail",
        SpfResult::SoftFail => "softfail",
        SpfResult::Neutral => "neutral",
        SpfResult::TempError => "temperror",
        SpfResult::PermError => "permerror",
        SpfResult::None => "none",
    }
}

/// The A-R value being built, and the log line's short form.
struct Results {
    parts: Vec<String>,
}

impl Results {
    fn new(hostname: &str) -> Results {
        Results {
            parts: vec![hostname.to_string()],
        }
    }

    fn push(&mut self, s: String) {
        self.parts.push(s);
    }

    fn push_spf(&mut self, env: &Envelope, spf: &Spf) {
        let from = if env.sender.is_empty() {
            "<>".to_string()
        } else {
            pvalue(&env.sender)
        };
        if let Some(why) = spf.missing {
            self.push(format!("spf=none ({why}) smtp.mailfrom={from}"));
            return;
        }
        if let (Some(h), Some(name)) = (&spf.helo, &env.client.helo) {
            self.push(format!(
                "spf={} smtp.helo={}",
                spf_word(h.result()),
                pvalue(name)
            ));
        }
        match &spf.mail_from {
            Some(m) => self.push(format!("spf={} smtp.mailfrom={from}", spf_word(m.result()))),
            None if spf.timed_out => {
                self.push(format!("spf=temperror (DNS timeout) smtp.mailfrom={from}"))
            }
            None => {}
        }
    }

    fn value(&self) -> String {
        self.parts.join("; ")
    }

    /// `dkim=pass,fail spf=none dmarc=pass arc=none`: each method's results in order.
    fn summary(&self) -> String {
        let mut methods: Vec<(String, Vec<String>)> = Vec::new();
        for p in &self.parts[1..] {
            let Some((method, rest)) = p.split_once('=') else {
                continue;
            };
            let result = rest.split([' ', ';']).next().unwrap_or("").to_string();
            match methods.iter_mut().find(|(m, _)| m == method) {
                Some((_, v)) => {
                    if v.len() < 5 {
                        v.push(result)
                    }
                }
                None => methods.push((method.to_string(), vec![result])),
            }
        }
        methods
            .iter()
            .map(|(m, v)| format!("{m}={}", v.join(",")))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// A pvalue as RFC 8601 writes it: a plain token, or a quoted string with anything unsafe
/// made safe (no CR, LF, NUL or 8-bit from a hostile header reaches our field).
fn pvalue(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._@+=/!#$%&'*^`{|}~".contains(&b));
    if plain {
        return s.to_string();
    }
    let inner: String = s
        .chars()
        .take(256)
        .map(|c| match c {
            '"' | '\\' => '_',
            c if c.is_ascii_graphic() || c == ' ' => c,
            _ => '?',
        })
        .collect();
    format!("\"{inner}\"")
}

/// A comment's text: printable ASCII, no parentheses, short.
fn comment(s: &str) -> String {
    s.chars()
        .take(120)
        .map(|c| match c {
            '(' | ')' | '\\' => ' ',
            c if c.is_ascii_graphic() || c == ' ' => c,
            _ => '?',
        })
        .collect()
}

/// The first 6 bytes of a signature as 8 base64 characters (RFC 6008 header.b).
fn base64_6(b: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(8);
    for c in b.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            s.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn testing_mode_is_the_y_flag_of_t() {
        for yes in [
            "v=DKIM1; t=y; p=AB",
            "t = s : Y ;p=AB",
            "v=DKIM1;k=rsa;t=s:y",
        ] {
            assert!(testing_mode(yes.as_bytes()), "{yes}");
        }
        for no in [
            "v=DKIM1; p=AB",
            "v=DKIM1; t=s; p=AB",
            "v=DKIM1; t=; p=yy",
            "n=t=y; p=A",
        ] {
            assert!(!testing_mode(no.as_bytes()), "{no}");
        }
    }

    #[test]
    fn the_dns_budget_never_runs_past_the_deadline() {
        let mut cfg = Config::default();
        cfg.dns.timeout = crate::config::units::Dur(Duration::from_secs(30));
        cfg.general.deadline = crate::config::units::Dur(Duration::from_secs(10));
        // A tenth of the deadline stays for delivering.
        assert!(budget(&cfg, Instant::now()) <= Duration::from_secs(9));
        cfg.general.deadline = crate::config::units::Dur(Duration::from_secs(600));
        assert_eq!(budget(&cfg, Instant::now()), Duration::from_secs(30));
        // A run that already used its time gets none: every method is temperror at once.
        let long_ago = Instant::now() - Duration::from_secs(590);
        assert_eq!(budget(&cfg, long_ago), Duration::ZERO);
    }

    #[test]
    fn pvalues_are_safe() {
        assert_eq!(pvalue("example.test"), "example.test");
        assert_eq!(pvalue("a b\r\n\"x"), "\"a b??_x\"");
        assert_eq!(pvalue(""), "\"\"");
    }

    #[test]
    fn tags_and_untrusted_signatures() {
        let raw = b"DKIM-Signature: v=1; d=a.test; l=10;\n b=x\nDKIM-Signature: v=1; d=b.test; b=y\nDKIM-Signature: d=c.test\nFrom: x@a.test\n\nbody\n";
        let h = Header::parse(raw);
        let (copy, u) = trusted_copy(raw, &h, 1);
        // a.test: l=; b.test: verified (the one allowed); c.test: over the limit.
        let copy = String::from_utf8(copy.unwrap()).unwrap();
        assert_eq!(
            copy,
            "DKIM-Signature: v=1; d=b.test; b=y\nFrom: x@a.test\n\nbody\n"
        );
        assert_eq!(u.len(), 2);
        assert_eq!(u[0].domain, "a.test");
        assert!(u[0].why.starts_with("l="));
        assert_eq!(u[1].domain, "c.test");
        assert!(u[1].why.starts_with("over"));
    }

    /// RFC 6376 §6.1.1: a signature whose h= leaves out From "MUST be ignored" (mail-auth
    /// verifies it anyway). A signer of D that does not sign From (a list manager signing its
    /// List-* fields) would otherwise let anyone it relays write From: anyone@D and be a
    /// proven author of D (whitelist, author bank).
    #[test]
    fn signatures_that_leave_out_from_are_not_trusted() {
        let raw = b"DKIM-Signature: v=1; d=a.test; s=s;\n h=Subject : To; b=x\nDKIM-Signature: v=1; d=b.test; s=s; h=subject:FROM:to; b=y\nFrom: x@a.test\nSubject: s\n\nbody\n";
        let h = Header::parse(raw);
        let (copy, u) = trusted_copy(raw, &h, 10);
        let copy = String::from_utf8(copy.unwrap()).unwrap();
        assert!(!copy.contains("d=a.test"), "{copy}");
        assert!(copy.contains("d=b.test"), "{copy}");
        assert_eq!(u.len(), 1);
        assert_eq!(u[0].domain, "a.test");
        assert!(u[0].why.contains("From"), "{}", u[0].why);
    }

    /// mail-auth matches each h= name against the names before it and the header's fields, so
    /// verifying costs (names in h=)^2: 40,000 distinct names took 11 s (debug build), a
    /// 10 MB h= would run past [general] deadline, and the retry again (a CPU bomb the
    /// attacker sets off with their own domain's key). Signatures (and ARC message
    /// signatures) listing more than MAX_SIGNED_FIELDS names are not verified.
    #[test]
    fn signatures_with_huge_h_lists_are_not_verified() {
        let long: Vec<String> = (0..=MAX_SIGNED_FIELDS).map(|i| format!("x{i}")).collect();
        let long = format!("from:{}", long.join(":"));
        let ok: Vec<String> = (1..MAX_SIGNED_FIELDS).map(|i| format!("x{i}")).collect();
        let ok = format!("from:{}", ok.join(":"));
        let raw = format!(
            "DKIM-Signature: v=1; d=a.test; s=s; h={long}; b=x\nDKIM-Signature: v=1; d=b.test; s=s; h={ok}; b=y\nARC-Message-Signature: i=1; d=c.test; s=s; h={long}; b=z\nFrom: x@a.test\n\nbody\n"
        );
        let h = Header::parse(raw.as_bytes());
        let (copy, u) = trusted_copy(raw.as_bytes(), &h, 10);
        let copy = String::from_utf8(copy.unwrap()).unwrap();
        assert!(!copy.contains("d=a.test"), "{copy}");
        assert!(copy.contains("d=b.test"));
        assert!(!copy.contains("ARC-Message-Signature"));
        assert_eq!(u.len(), 1);
        assert_eq!(u[0].domain, "a.test");
        assert!(u[0].why.contains("h="), "{}", u[0].why);
    }

    #[test]
    fn ten_thousand_signatures_make_one_policy_entry() {
        let mut raw = Vec::new();
        for _ in 0..10_000 {
            raw.extend_from_slice(b"DKIM-Signature: v=1; d=x.test; s=s; b=AA\n");
        }
        raw.extend_from_slice(b"From: a@x.test\n\nbody\n");
        let h = Header::parse(&raw);
        let (copy, u) = trusted_copy(&raw, &h, 10);
        assert_eq!(u.len(), 1);
        assert_eq!(Header::parse(&copy.unwrap()).count("DKIM-Signature"), 10);
    }

    #[test]
    fn alignment_and_domains() {
        assert_eq!(
            single_domain(&["a@Example.TEST".into(), "b@example.test".into()]),
            Some("example.test".into())
        );
        assert_eq!(single_domain(&["a@a.test".into(), "b@b.test".into()]), None);
        assert_eq!(single_domain(&["nodomain".into()]), None);
        assert_eq!(base64_6(&[0, 0, 0, 255, 255, 255]), "AAAA////");
        assert_eq!(base64_decode("AAAA////").unwrap(), [0, 0, 0, 255, 255, 255]);
        assert_eq!(base64_decode("aGk=").unwrap(), b"hi");
        assert!(base64_decode("a!").is_none());
    }

    #[test]
    fn summary_groups_methods() {
        let mut r = Results::new("mx.test");
        r.push("dkim=pass header.d=a".into());
        r.push("dkim=fail (x) header.d=b".into());
        r.push("spf=none (no client address given) smtp.mailfrom=a@b".into());
        r.push("dmarc=pass header.from=a".into());
        assert_eq!(r.summary(), "dkim=pass,fail spf=none dmarc=pass");
        assert!(r.value().starts_with("mx.test; dkim=pass"));
    }
}

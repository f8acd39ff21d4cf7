//! Which checks must run at all, and which findings block the message for everyone (so the
//! spam scan need not be waited for).

use crate::config::settings::Config;
use crate::outcome::{Exit, Failure};
use crate::policy::recipient::{Listed, Recipients};
use crate::verdict::{Category, Destiny};

/// Which checks must run: a check is skipped only when every recipient bypasses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Needed {
    pub virus: bool,
    pub spam: bool,
    pub banned: bool,
    pub header: bool,
}

pub fn needed(recipients: &Recipients) -> Needed {
    let list = &recipients.list;
    let all = |f: &dyn Fn(&crate::policy::recipient::Recipient) -> bool| {
        !recipients.none_given && list.iter().all(f)
    };
    // Spam checks are also pointless when the sender is whitelisted for everyone.
    let all_whitelisted = all(&|r| r.listed == Some(Listed::White));
    Needed {
        virus: !all(&|r| r.bypass.virus),
        spam: !all(&|r| r.bypass.spam) && !all_whitelisted,
        banned: !all(&|r| r.bypass.banned),
        header: !all(&|r| r.bypass.header),
    }
}

/// True when a `category` finding (Virus or Banned) blocks the message for every recipient: its
/// destiny is not pass and nobody loves or bypasses it. Then the spam score cannot change what
/// anyone gets, and the spam scan need not be waited for.
pub fn blocks_everyone(cfg: &Config, recipients: &Recipients, category: Category) -> bool {
    let (destiny, loved): (Destiny, fn(&crate::policy::recipient::Recipient) -> bool) =
        match category {
            Category::Virus => (cfg.destiny.virus, |r| r.loves().virus),
            Category::Banned => (cfg.destiny.banned, |r| r.loves().banned),
            Category::Unchecked
            | Category::Spam
            | Category::Spammy
            | Category::BadHeader
            | Category::Oversized
            | Category::Clean => return false,
        };
    destiny != Destiny::Pass && !recipients.none_given && !recipients.list.iter().any(loved)
}

/// A message that went round more than `general.max_received` times is in a mail loop: refused
/// (65), as Postfix's own hop limit does.
pub fn forwarding_loop(cfg: &Config, received: usize) -> Option<Failure> {
    (received > cfg.general.max_received).then(|| Failure {
        exit: Exit::DataErr,
        status: "5.4.6",
        reason: format!(
            "mail forwarding loop: {received} Received fields (limit {})",
            cfg.general.max_received
        ),
    })
}

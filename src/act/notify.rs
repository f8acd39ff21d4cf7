//! Notifications about blocked mail: to admins per category, optionally to the recipients who
//! did not get a message and to its sender.
//!
//! Contract: each notice is a message we build (mail-builder): a text part from a template with
//! macros, and the original header section as text/rfc822-headers. Notices go through the
//! reinjection command from the null sender, so they never bounce back or loop, and they are
//! sent last: a notice that cannot be sent is logged, never a reason to retry the message.
//!
//! Macros: %s sender, %r recipients, %c category, %R reason, %q quarantine id, %S subject,
//! %i Message-ID, %h our host name, %% a percent sign.

use mail_builder::headers::text::Text;
use mail_builder::mime::{BodyPart, MimePart};

pub const ADMIN_TEMPLATE: &str = "\
A message was blocked by the content filter on %h.

Category:       %c
Reason:         %R
Sender:         <%s>
Recipients:     %r
Subject:        %S
Message-ID:     %i
Quarantine ID:  %q

The original header section is attached. To deliver the message anyway:
    pipescan release %q
";

pub const RECIPIENT_TEMPLATE: &str = "\
A message addressed to you was blocked by the content filter on %h
and was not delivered.

Category:    %c
Reason:      %R
Sender:      <%s>
Subject:     %S

If you need this message, ask your mail administrator to release it
(quarantine id %q).
";

pub const SENDER_TEMPLATE: &str = "\
Your message was not delivered: it was blocked by the content filter on %h.

Reason:      %R
Recipients:  %r
Subject:     %S
";

/// What the macros stand for.
pub struct Facts<'a> {
    pub hostname: &'a str,
    pub sender: &'a str,
    pub recipients: &'a [String],
    pub category: &'a str,
    pub reason: &'a str,
    pub quarantine_id: Option<&'a str>,
    pub subject: &'a str,
    pub message_id: &'a str,
}

pub fn expand(template: &str, f: &Facts) -> String {
    let rcpts = f
        .recipients
        .iter()
        .map(|r| format!("<{r}>"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut out = String::with_capacity(template.len() + 256);
    let mut it = template.chars();
    while let Some(c) = it.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('s') => out.push_str(f.sender),
            Some('r') => out.push_str(&rcpts),
            Some('c') => out.push_str(f.category),
            Some('R') => out.push_str(f.reason),
            Some('q') => out.push_str(f.quarantine_id.unwrap_or("(not quarantined)")),
            Some('S') => out.push_str(f.subject),
            Some('i') => out.push_str(f.message_id),
            Some('h') => out.push_str(f.hostname),
            Some('%') => out.push('%'),
            Some(o) => {
                out.push('%');
                out.push(o);
            }
            None => out.push('%'),
        }
    }
    out
}

/// Reads a template file named in the config, or the built-in text.
pub fn template(path: &str, builtin: &'static str) -> std::io::Result<String> {
    if path.is_empty() {
        Ok(builtin.to_string())
    } else {
        std::fs::read_to_string(path)
    }
}

/// Builds one notice to `to`.
pub fn build(hostname: &str, to: &[String], subject: &str, text: &str, header: &[u8]) -> Vec<u8> {
    // 7-bit transport for the text: encode it if a template or a subject brought 8-bit in.
    let body = MimePart::new("text/plain", text.replace('\n', "\r\n"));
    let parts = vec![body, crate::act::compose::headers_part(header)];
    crate::act::compose::our_message(hostname)
        .to(to
            .iter()
            .map(|r| mail_builder::headers::address::Address::new_address(None::<&str>, r.clone()))
            .collect::<Vec<_>>())
        .subject(subject.to_string())
        .header("Auto-Submitted", Text::new("auto-generated"))
        .body(MimePart::new("multipart/mixed", BodyPart::Multipart(parts)))
        .write_to_vec()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> Facts<'static> {
        Facts {
            hostname: "mx.test",
            sender: "m@example.net",
            recipients: &[],
            category: "INFECTED",
            reason: "Test.EICAR",
            quarantine_id: Some("AbCdEf012_-x"),
            subject: "invoice",
            message_id: "<q@example.net>",
        }
    }

    #[test]
    fn macros_expand() {
        let t = expand("%c %R from <%s> %q %S %i on %h, 100%% %z", &facts());
        assert_eq!(
            t,
            "INFECTED Test.EICAR from <m@example.net> AbCdEf012_-x invoice <q@example.net> on mx.test, 100% %z"
        );
    }

    #[test]
    fn notice_has_text_and_original_header() {
        let n = build(
            "mx.test",
            &["admin@example.com".into()],
            "VIRUS",
            "hello\n",
            b"Subject: x\n",
        );
        let t = String::from_utf8(n).unwrap();
        assert!(t.contains("To: <admin@example.com>"), "{t}");
        assert!(t.contains("Auto-Submitted: auto-generated"), "{t}");
        assert!(t.contains("Content-Type: text/rfc822-headers"), "{t}");
        assert!(t.contains("hello\r\n"), "{t}");
    }
}

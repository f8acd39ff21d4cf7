//! Our own delivery status notification (RFC 3464) for recipients refused while others got the
//! message (one exit status cannot say "delivered to some, bounced for others").
//!
//! Contract: built with mail-builder (a message we create, never the one we pass on), sent
//! through the reinjection command with the null sender so it can never bounce back or loop,
//! and marked Auto-Submitted. The refused recipients, their status and reason, and the original
//! header section (text/rfc822-headers) are included; the original body is not.

use crate::plan::Refused;
use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::text::Text;
use mail_builder::mime::{BodyPart, MimePart};

/// The DSN for `refused`, to `sender`, with the original `header` bytes attached; `envid` is
/// the sender's envelope id (`--envid`, RFC 3461), echoed as Original-Envelope-Id.
pub fn build(
    hostname: &str,
    sender: &str,
    envid: Option<&str>,
    refused: &[Refused],
    header: &[u8],
) -> Vec<u8> {
    let mut human = format!(
        "This is the content filter (pipescan) at host {hostname}.\r\n\r\n\
         Your message could not be delivered to the following recipients:\r\n\r\n"
    );
    let mut status = String::new();
    if let Some(id) = envid {
        // Printable ASCII only (envelope::Envelope::with_envid).
        status.push_str(&format!("Original-Envelope-Id: {id}\r\n"));
    }
    status.push_str(&format!("Reporting-MTA: dns; {hostname}\r\n"));
    for r in refused {
        // A temporary failure we cannot retry (an LMTP 4xx after the dot, past the point of no
        // return) keeps its 4.x.x status, with a 4xx code: Postfix reports expired mail so.
        let code = if r.status.starts_with('4') { 450 } else { 554 };
        human.push_str(&format!(
            "<{}>: {code} {} {}\r\n",
            r.recipient, r.status, r.text
        ));
        status.push_str(&format!(
            "\r\nFinal-Recipient: rfc822; {}\r\nAction: failed\r\nStatus: {}\r\nDiagnostic-Code: smtp; {code} {} {}\r\n",
            r.recipient, r.status, r.status, r.text
        ));
    }
    human.push_str("\r\nIt was delivered to its other recipients, if it had any.\r\n");
    let report = MimePart::new(
        ContentType::new("multipart/report").attribute("report-type", "delivery-status"),
        BodyPart::Multipart(vec![
            MimePart::new("text/plain", human).transfer_encoding("7bit"),
            MimePart::new(
                ContentType::new("message/delivery-status"),
                BodyPart::Binary(status.into_bytes().into()),
            )
            .transfer_encoding("7bit"),
            crate::act::compose::headers_part(header),
        ]),
    );
    crate::act::compose::our_message(hostname)
        .to(sender.to_string())
        .subject("Undelivered mail: message refused by the content filter")
        .header("Auto-Submitted", Text::new("auto-replied"))
        .body(report)
        .write_to_vec()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dsn_has_the_rfc3464_parts() {
        let refused = [Refused {
            recipient: "bob@example.com".into(),
            status: "5.7.0",
            text: "message rejected as spam".into(),
        }];
        let dsn = build(
            "mx.test",
            "alice@example.org",
            None,
            &refused,
            b"Subject: hi\r\nFrom: alice@example.org\r\n\r\n",
        );
        let text = String::from_utf8(dsn).unwrap();
        for want in [
            "From: \"Content-filter at mx.test\" <postmaster@mx.test>",
            "To: <alice@example.org>",
            "Auto-Submitted: auto-replied",
            "Content-Type: multipart/report; report-type=\"delivery-status\"",
            "Content-Type: message/delivery-status",
            "Reporting-MTA: dns; mx.test",
            "Final-Recipient: rfc822; bob@example.com\r\nAction: failed\r\nStatus: 5.7.0\r\nDiagnostic-Code: smtp; 554 5.7.0 message rejected as spam",
            "Content-Type: text/rfc822-headers",
            "Subject: hi\r\nFrom: alice@example.org",
            "<bob@example.com>: 554 5.7.0 message rejected as spam",
        ] {
            assert!(text.contains(want), "missing {want:?} in\n{text}");
        }
        let full = [Refused {
            recipient: "carol@example.com".into(),
            status: "4.2.2",
            text: "refused by the next hop: 452 4.2.2 Mailbox is full".into(),
        }];
        let t = String::from_utf8(build(
            "mx.test",
            "a@x",
            Some("QQ314159"),
            &full,
            b"S: x\r\n\r\n",
        ))
        .unwrap();
        assert!(
            t.contains("Original-Envelope-Id: QQ314159\r\nReporting-MTA: dns; mx.test\r\n"),
            "{t}"
        );
        assert!(
            t.contains("Status: 4.2.2\r\nDiagnostic-Code: smtp; 450 4.2.2 refused by the next hop: 452 4.2.2 Mailbox is full"),
            "{t}"
        );
        let parsed = mail_parser::MessageParser::default()
            .parse(text.as_bytes())
            .unwrap();
        assert_eq!(parsed.parts.len(), 4, "multipart/report with three parts");
    }
}

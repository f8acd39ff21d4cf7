//! The parts of every message pipescan writes itself (DSNs, notices, released copies): our
//! Message-ID under the configured host name, our From, the original header as an attachment.
//! Never used to rewrite the message we pass on (DESIGN.md §5: mail-builder writes CRLF).

/// A Message-ID for mail we write (DSNs, notices, released copies) under our configured host
/// name: mail-builder's default would use the machine's own name, which may not be a mail
/// domain at all. Random part from the quarantine id generator; time and pid if that fails.
pub fn message_id(hostname: &str) -> String {
    let unique = crate::act::quarantine::id::new_mail_id().unwrap_or_else(|_| {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        format!("{t:x}.{}", std::process::id())
    });
    format!("pipescan.{unique}@{hostname}")
}

/// The start of every message we write ourselves (DSNs, notices, released copies): our
/// Message-ID and `From: "Content-filter at HOST" <postmaster@HOST>`.
pub fn our_message<'x>(hostname: &str) -> mail_builder::MessageBuilder<'x> {
    mail_builder::MessageBuilder::new()
        .message_id(message_id(hostname))
        .from((
            format!("Content-filter at {hostname}"),
            format!("postmaster@{hostname}"),
        ))
}

/// The original header section as a text/rfc822-headers part (8bit when it is not ASCII).
pub fn headers_part<'x>(header: &[u8]) -> mail_builder::mime::MimePart<'x> {
    use mail_builder::headers::content_type::ContentType;
    use mail_builder::mime::{BodyPart, MimePart};
    MimePart::new(
        ContentType::new("text/rfc822-headers"),
        BodyPart::Binary(header.to_vec().into()),
    )
    .transfer_encoding(if header.is_ascii() { "7bit" } else { "8bit" })
}

//! Saved e-mail messages (`.eml`, RFC 5322 with MIME, parsed by mail-parser): the message is
//! part 1 (from, to, date and subject, then the body, HTML bodies as their visible text), and
//! every attachment Quarry can read is a part of its own, extracted with the same parsers as a
//! file of its kind and cited as "message › attachment". Attached messages are read the same
//! way, a few levels deep. A mailbox (`.mbox`) holds one document per message, read like a
//! saved message and named by its place in the mailbox ("/mail/2026.mbox/message 12").

use std::path::Path;

use mail_parser::{Message, MessageParser, MimeHeaders};

use super::sniff::kind_from_extension;
use super::{DocumentExtractor, Extracted, Member, NestedOcr, extract_nested, left_out_note};
use crate::api::FileKind;
use crate::error::ExtractError;

/// Attached messages inside attached messages are read this deep.
const MAX_DEPTH: usize = 3;
/// Attachments read from one message; more are listed in a warning.
const MAX_ATTACHMENTS: usize = 200;
/// Messages read from one mailbox; more are named in a warning.
const MAX_MESSAGES: usize = 50_000;

/// Extracts `.eml` files.
#[derive(Debug)]
pub struct EmailExtractor;

impl DocumentExtractor for EmailExtractor {
    fn name(&self) -> &'static str {
        "email"
    }

    fn accepts(&self, kind: FileKind) -> bool {
        kind == FileKind::Email
    }

    fn extract(&self, path: &Path, bytes: &[u8]) -> Result<Extracted, ExtractError> {
        self.extract_with_ocr(path, bytes, None)
    }

    fn extract_with_ocr(
        &self,
        _path: &Path,
        bytes: &[u8],
        ocr: Option<&NestedOcr>,
    ) -> Result<Extracted, ExtractError> {
        let message = MessageParser::default()
            .parse(bytes)
            .filter(|m| m.headers().iter().any(|h| !h.name().is_empty()))
            .ok_or_else(|| ExtractError::Malformed("not an e-mail message: no headers".into()))?;
        Ok(read_message(&message, ocr))
    }
}

/// A message as a document: headers and body as part 1, then each attachment a part.
fn read_message(message: &Message<'_>, ocr: Option<&NestedOcr>) -> Extracted {
    let mut res = Extracted {
        title: Some(subject_of(message)),
        extractor: "email".into(),
        ..Extracted::default()
    };
    let mut part = 0u32;
    add_message(&mut res, message, &[], &mut part, 0, ocr);
    res.pages = part.max(1);
    res
}

/// Extracts `.mbox` mailboxes.
#[derive(Debug)]
pub struct MboxExtractor;

impl DocumentExtractor for MboxExtractor {
    fn name(&self) -> &'static str {
        "mbox"
    }

    fn accepts(&self, kind: FileKind) -> bool {
        kind == FileKind::Mailbox
    }

    fn extract(&self, path: &Path, bytes: &[u8]) -> Result<Extracted, ExtractError> {
        self.extract_with_ocr(path, bytes, None)
    }

    fn extract_with_ocr(
        &self,
        _path: &Path,
        bytes: &[u8],
        ocr: Option<&NestedOcr>,
    ) -> Result<Extracted, ExtractError> {
        if !bytes.starts_with(b"From ") {
            return Err(ExtractError::Malformed(
                "not an mbox mailbox: it does not start with a \"From \" line".into(),
            ));
        }
        let mut res = Extracted { pages: 1, ..Extracted::default() };
        let mut unread = 0usize;
        for (index, raw) in mail_parser::mailbox::mbox::MessageIterator::new(bytes).enumerate() {
            let raw = raw.map_err(|e| ExtractError::Malformed(format!("damaged mailbox: {e}")))?;
            if index >= MAX_MESSAGES {
                unread += 1;
                continue;
            }
            // Named by its place, so message N keeps its name when mail is added at the end.
            let name = format!("message {}", index + 1);
            let extracted = MessageParser::default()
                .parse(raw.contents())
                .filter(|m| m.headers().iter().any(|h| !h.name().is_empty()))
                .map(|message| read_message(&message, ocr))
                .ok_or_else(|| ExtractError::Malformed("not a readable e-mail message".into()));
            res.members.push(Member::new(name, FileKind::Email, raw.contents(), extracted));
        }
        if unread > 0 {
            res.warnings
                .push(format!("{unread} messages after the first {MAX_MESSAGES} are not indexed"));
        }
        if res.members.is_empty() {
            return Err(ExtractError::Malformed("the mailbox holds no message".into()));
        }
        Ok(res)
    }
}

fn subject_of(message: &Message<'_>) -> String {
    message.subject().map(str::trim).filter(|s| !s.is_empty()).unwrap_or("(no subject)").to_owned()
}

/// The message's header lines and body as one part, then its attachments as parts of their own.
fn add_message(
    res: &mut Extracted,
    message: &Message<'_>,
    outer: &[String],
    part: &mut u32,
    depth: usize,
    ocr: Option<&NestedOcr>,
) {
    let subject = subject_of(message);
    let mut heading = outer.to_vec();
    heading.push(subject.clone());
    let mut head = String::new();
    if let Some(from) = message.from() {
        head.push_str(&format!("From: {}\n", addresses(from)));
    }
    if let Some(to) = message.to() {
        head.push_str(&format!("To: {}\n", addresses(to)));
    }
    if let Some(cc) = message.cc() {
        head.push_str(&format!("Cc: {}\n", addresses(cc)));
    }
    if let Some(date) = message.date() {
        head.push_str(&format!("Date: {}\n", date.to_rfc3339()));
    }
    head.push_str(&format!("Subject: {subject}\n"));
    let body = message.body_text(0).map(|b| b.trim().to_owned()).unwrap_or_default();
    *part += 1;
    res.push_block(*part, heading.clone(), &format!("{head}\n{body}"));

    let mut unread = Vec::new();
    // Images the message's HTML shows by their Content-ID (`cid:`) are its layout: a logo, a
    // signature, a banner. They are named, not read by OCR.
    let html = message.body_html(0).unwrap_or_default();
    let mut layout = Vec::new();
    for (index, attachment) in message.attachments().enumerate() {
        let name = attachment
            .attachment_name()
            .map(str::to_owned)
            .unwrap_or_else(|| format!("attachment {}", index + 1));
        if index >= MAX_ATTACHMENTS {
            unread.push(name);
            continue;
        }
        if let Some(inner) = attachment.message() {
            if depth + 1 < MAX_DEPTH {
                add_message(res, inner, &heading, part, depth + 1, ocr);
            } else {
                unread.push(name);
            }
            continue;
        }
        let Some(kind) = kind_from_extension(Path::new(&name)).filter(|k| *k != FileKind::Email)
        else {
            unread.push(name);
            continue;
        };
        if kind == FileKind::Image
            && ocr.is_some()
            && attachment.content_id().is_some_and(|id| {
                let id = id.trim().trim_start_matches('<').trim_end_matches('>');
                !id.is_empty() && html.contains(&format!("cid:{id}"))
            })
        {
            layout.push(name);
            continue;
        }
        let Some(extracted) = extract_nested(kind, &name, attachment.contents(), ocr) else {
            unread.push(name);
            continue;
        };
        match extracted {
            // An image left for lack of OCR time: the outer file names those together.
            Ok(doc) if doc.pages == 0 && doc.sections.is_empty() && kind == FileKind::Image => {}
            Ok(doc) => {
                *part += 1;
                for section in &doc.sections {
                    let mut path = heading.clone();
                    path.push(name.clone());
                    path.extend(section.heading.iter().cloned());
                    res.push_block(*part, path, &doc.text[section.start..section.end]);
                }
                res.warnings.extend(doc.warnings.iter().map(|w| format!("{name}: {w}")));
            }
            Err(e) => res.warnings.push(format!("attachment {name}: {e}")),
        }
    }
    if !unread.is_empty() {
        let why = "type not read, or too many";
        res.warnings.push(left_out_note(&unread, "attachment", "attachments", why));
    }
    if !layout.is_empty() {
        let why = "part of the message's layout, a logo or signature: not read by OCR";
        res.warnings.push(left_out_note(&layout, "image", "images", why));
    }
}

/// "Anna Mueller <anna@example.org>, bob@example.org".
fn addresses(address: &mail_parser::Address<'_>) -> String {
    address
        .iter()
        .map(|a| match (a.name(), a.address()) {
            (Some(name), Some(addr)) => format!("{name} <{addr}>"),
            (Some(name), None) => name.to_owned(),
            (None, Some(addr)) => addr.to_owned(),
            (None, None) => String::new(),
        })
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_body_and_a_text_attachment() {
        let eml = "From: Anna Mueller <anna@example.org>\r\n\
            To: bauer@example.org\r\n\
            Subject: =?utf-8?q?K=C3=BCndigung?= der Wohnung\r\n\
            Date: Mon, 7 Dec 2026 10:00:00 +0100\r\n\
            MIME-Version: 1.0\r\n\
            Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
            --b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
            Hiermit kündige ich die Wohnung zum 31. März.\r\n\
            --b1\r\nContent-Type: text/plain; name=\"protokoll.txt\"\r\n\
            Content-Disposition: attachment; filename=\"protokoll.txt\"\r\n\r\n\
            Die Schlüssel werden am 1. April übergeben.\r\n\
            --b1\r\nContent-Type: image/png; name=\"foto.png\"\r\n\
            Content-Disposition: attachment; filename=\"foto.png\"\r\n\
            Content-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n--b1--\r\n";
        let doc = EmailExtractor.extract(Path::new("k.eml"), eml.as_bytes()).unwrap();
        assert_eq!(doc.title.as_deref(), Some("Kündigung der Wohnung"));
        assert_eq!(doc.pages, 2);
        let got: Vec<(u32, String, &str)> = doc
            .sections
            .iter()
            .map(|s| (s.page, s.heading.join(" › "), doc.text[s.start..s.end].trim()))
            .collect();
        assert_eq!(got[0].0, 1);
        assert!(got[0].2.starts_with("From: Anna Mueller <anna@example.org>\nTo: bauer@example.org\nDate: 2026-12-07T10:00:00+01:00\nSubject: Kündigung der Wohnung"), "{got:?}");
        assert!(got[0].2.ends_with("Hiermit kündige ich die Wohnung zum 31. März."), "{got:?}");
        assert_eq!(
            got[1],
            (
                2,
                "Kündigung der Wohnung › protokoll.txt".into(),
                "Die Schlüssel werden am 1. April übergeben."
            )
        );
        assert_eq!(
            doc.warnings,
            ["1 attachment not indexed (type not read, or too many): foto.png"]
        );
    }

    #[test]
    fn images_of_the_message_layout_are_named_not_read() {
        // An HTML newsletter: its logo is shown inline by Content-ID; a photo is attached.
        let eml = "From: verein@example.org\r\nSubject: Rundbrief\r\nMIME-Version: 1.0\r\n\
            Content-Type: multipart/mixed; boundary=\"m\"\r\n\r\n\
            --m\r\nContent-Type: multipart/related; boundary=\"r\"\r\n\r\n\
            --r\r\nContent-Type: text/html; charset=utf-8\r\n\r\n\
            <p><img src=\"cid:logo@verein\"> Das Sommerfest ist am 4. Juli.</p>\r\n\
            --r\r\nContent-Type: image/png; name=\"logo.png\"\r\nContent-ID: <logo@verein>\r\n\
            Content-Disposition: inline; filename=\"logo.png\"\r\n\
            Content-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n--r--\r\n\
            --m\r\nContent-Type: image/png; name=\"aushang.png\"\r\n\
            Content-Disposition: attachment; filename=\"aushang.png\"\r\n\
            Content-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n--m--\r\n";
        // OCR on, its budget already spent: what would be read is named as over budget.
        let ocr = NestedOcr {
            options: crate::ingest::ocr::OcrOptions::default(),
            deadline: std::time::Instant::now() - std::time::Duration::from_secs(1),
            past_budget: Default::default(),
        };
        let doc = EmailExtractor
            .extract_with_ocr(Path::new("r.eml"), eml.as_bytes(), Some(&ocr))
            .unwrap();
        assert!(doc.text.contains("Das Sommerfest ist am 4. Juli."), "{}", doc.text);
        assert_eq!(
            doc.warnings,
            ["1 image not indexed (part of the message's layout, a logo or signature: not read \
              by OCR): logo.png"]
        );
        assert_eq!(
            ocr.past_budget_note().as_deref(),
            Some(
                "1 image not indexed (not read by OCR: the file's 90 s budget ran out): aushang.png"
            )
        );
    }

    #[test]
    fn a_mailbox_is_one_document_per_message() {
        let mbox = "From anna@example.org Mon Dec  7 10:00:00 2026\n\
            From: anna@example.org\nSubject: Heizung\n\nDie Heizung ist kalt.\n\
            >From here on it is quoted.\n\n\
            From bauer@example.org Tue Dec  8 09:00:00 2026\n\
            From: bauer@example.org\nSubject: Re: Heizung\n\nDer Techniker kommt morgen.\n";
        let doc = MboxExtractor.extract(Path::new("a.mbox"), mbox.as_bytes()).unwrap();
        assert!(doc.text.is_empty(), "{doc:?}");
        let got: Vec<(&str, FileKind, Option<&str>, u32)> = doc
            .members
            .iter()
            .map(|m| {
                let message = m.extracted.as_ref().unwrap();
                (m.name.as_str(), m.kind, message.title.as_deref(), message.pages)
            })
            .collect();
        assert_eq!(
            got,
            [
                ("message 1", FileKind::Email, Some("Heizung"), 1),
                ("message 2", FileKind::Email, Some("Re: Heizung"), 1)
            ]
        );
        let first = doc.members[0].extracted.as_ref().unwrap();
        assert!(first.text.contains("From here on it is quoted."), "{}", first.text);
        let second = doc.members[1].extracted.as_ref().unwrap();
        assert!(second.text.contains("Der Techniker kommt morgen."));
        assert!(MboxExtractor.extract(Path::new("a.mbox"), b"Subject: x").is_err());
    }
}

//! Plain text with encoding detection: a BOM decides UTF-8/UTF-16; valid UTF-8 stays UTF-8;
//! anything else is guessed (Windows-1252 and Latin-1 are the usual suspects for old German files).

use std::path::Path;

use encoding_rs::Encoding;

use super::{DocumentExtractor, Extracted};
use crate::api::FileKind;
use crate::error::ExtractError;

/// Extracts `.txt` and similar files.
#[derive(Debug)]
pub struct PlainTextExtractor;

impl DocumentExtractor for PlainTextExtractor {
    fn name(&self) -> &'static str {
        "text"
    }

    fn accepts(&self, kind: FileKind) -> bool {
        kind == FileKind::Text
    }

    fn extract(&self, _path: &Path, bytes: &[u8]) -> Result<Extracted, ExtractError> {
        let mut res = Extracted { pages: 1, ..Extracted::default() };
        let text = decode_text(bytes, &mut res.warnings);
        res.push_section(1, Vec::new(), &text);
        Ok(res)
    }
}

/// Decodes bytes of unknown encoding to text, noting in `warnings` what was guessed.
pub fn decode_text(bytes: &[u8], warnings: &mut Vec<String>) -> String {
    if let Some((encoding, bom_len)) = Encoding::for_bom(bytes) {
        let (text, had_errors) = encoding.decode_without_bom_handling(&bytes[bom_len..]);
        if had_errors {
            warnings.push(format!("some bytes are not valid {}; replaced", encoding.name()));
        }
        return normalise_newlines(&text);
    }
    if let Ok(text) = std::str::from_utf8(bytes) {
        return normalise_newlines(text);
    }
    let mut detector = chardetng::EncodingDetector::new(chardetng::Iso2022JpDetection::Deny);
    detector.feed(bytes, true);
    let encoding = detector.guess(None, chardetng::Utf8Detection::Allow);
    let (text, _, had_errors) = encoding.decode(bytes);
    warnings.push(format!("not UTF-8; decoded as {}", encoding.name()));
    if had_errors {
        warnings.push(format!("some bytes are not valid {}; replaced", encoding.name()));
    }
    normalise_newlines(&text)
}

/// Turns CRLF and lone CR into LF, so offsets do not depend on the platform that wrote the file.
fn normalise_newlines(text: &str) -> String {
    if !text.contains('\r') {
        return text.to_owned();
    }
    text.replace("\r\n", "\n").replace('\r', "\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: &[u8]) -> (String, Vec<String>) {
        let mut warnings = Vec::new();
        (decode_text(bytes, &mut warnings), warnings)
    }

    #[test]
    fn decodes_common_encodings() {
        assert_eq!(decode("Grüße".as_bytes()), ("Grüße".into(), vec![]));
        assert_eq!(decode(b"\xef\xbb\xbfGr\xc3\xbc\xc3\x9fe").0, "Grüße");
        let utf16le: Vec<u8> = [0xff, 0xfe]
            .into_iter()
            .chain("Grüße".encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        assert_eq!(decode(&utf16le).0, "Grüße");
        let utf16be: Vec<u8> = [0xfe, 0xff]
            .into_iter()
            .chain("Grüße".encode_utf16().flat_map(u16::to_be_bytes))
            .collect();
        assert_eq!(decode(&utf16be).0, "Grüße");
        // "Größere Maßnahmen für Bürger" in Windows-1252.
        let latin = b"Gr\xf6\xdfere Ma\xdfnahmen f\xfcr B\xfcrger und \x80 Betr\xe4ge";
        let (text, warnings) = decode(latin);
        assert_eq!(text, "Größere Maßnahmen für Bürger und € Beträge");
        assert_eq!(warnings, vec!["not UTF-8; decoded as windows-1252".to_owned()]);
        assert_eq!(decode(b"a\r\nb\rc").0, "a\nb\nc");
    }
}

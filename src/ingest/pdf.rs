//! PDF text, page by page, with pdf-extract. Each page is extracted on its own and a page that
//! fails (or makes the parser panic) becomes a warning, so one bad page never loses the document.
//! Pages without a text layer (scans) are named in a warning, since they need OCR.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use pdf_extract::{Document, PlainTextOutput, output_doc_page};

use super::{DocumentExtractor, Extracted};
use crate::api::FileKind;
use crate::error::ExtractError;

/// Longest time qpdf may take to repair or decrypt one file.
const QPDF_LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

/// A second chance for a PDF that failed to open: an encrypted one is decrypted with each
/// password given (qpdf, which knows RC4 and AES up to R6 with SASLprep'd passwords; the
/// password goes through a pipe, never the command line); a damaged one is rebuilt by qpdf
/// (cross-reference table, trailer, stream lengths) and read again, and says so. Otherwise the
/// first failure stands.
pub(super) fn recover(
    path: &Path,
    failure: ExtractError,
    passwords: &super::Passwords,
    extractor: &dyn DocumentExtractor,
) -> Result<Extracted, ExtractError> {
    match failure {
        ExtractError::Encrypted(_) => {
            if passwords.0.is_empty() {
                return Err(ExtractError::Encrypted(
                    "the PDF needs a password to open (give it with quarry index --password-file FILE)"
                        .into(),
                ));
            }
            for password in &passwords.0 {
                match qpdf(path, Some(password)) {
                    Ok(bytes) => {
                        let mut res = extractor.extract(path, &bytes)?;
                        res.warnings.insert(0, "opened with a password you gave".into());
                        return Ok(res);
                    }
                    Err(e) if e.contains("invalid password") => continue,
                    Err(e) => return Err(ExtractError::Malformed(format!("cannot decrypt: {e}"))),
                }
            }
            Err(ExtractError::Encrypted(format!(
                "the PDF needs a password to open, and none of the {} given opens it",
                passwords.0.len()
            )))
        }
        ExtractError::Malformed(reason) => {
            let Ok(bytes) = qpdf(path, None) else {
                return Err(ExtractError::Malformed(reason));
            };
            match extractor.extract(path, &bytes) {
                Ok(mut res) => {
                    res.warnings.insert(0, format!("repaired by qpdf ({reason})"));
                    Ok(res)
                }
                Err(_) => Err(ExtractError::Malformed(reason)),
            }
        }
        other => Err(other),
    }
}

/// The file rewritten by qpdf: repaired, and decrypted with `password` when given.
fn qpdf(path: &Path, password: Option<&str>) -> Result<Vec<u8>, String> {
    let mut command = std::process::Command::new("qpdf");
    if password.is_some() {
        command.arg("--password-file=-");
    }
    command.arg("--decrypt").arg(path).arg("-");
    let input = password.map(|p| format!("{p}\n").into_bytes());
    super::external::run(command, input.as_deref(), QPDF_LIMIT, "qpdf", &[0, 3])
}

/// Extracts PDF files.
#[derive(Debug)]
pub struct PdfExtractor;

impl DocumentExtractor for PdfExtractor {
    fn name(&self) -> &'static str {
        "pdf"
    }

    fn accepts(&self, kind: FileKind) -> bool {
        kind == FileKind::Pdf
    }

    fn extract(&self, _path: &Path, bytes: &[u8]) -> Result<Extracted, ExtractError> {
        let mut doc = load(bytes)?;
        if doc.is_encrypted() && doc.decrypt("").is_err() {
            return Err(ExtractError::Encrypted("the PDF needs a password to open".into()));
        }
        let pages = doc.get_pages();
        if pages.is_empty() {
            // lopdf cannot walk the page tree of an encrypted file it failed to decrypt.
            if doc.trailer.get(b"Encrypt").is_ok() {
                return Err(ExtractError::Encrypted("the PDF needs a password to open".into()));
            }
            return Err(ExtractError::Malformed("damaged PDF: it has no pages".into()));
        }
        let mut res = Extracted { pages: pages.len() as u32, ..Extracted::default() };
        res.title = title(&doc);
        let mut empty_pages = Vec::new();
        let mut failed_pages = Vec::new();
        for &page in pages.keys() {
            match extract_page(&doc, page) {
                Ok(text) => {
                    let text = clean_page_text(&text);
                    if text.trim().is_empty() {
                        empty_pages.push(page);
                        continue;
                    }
                    let sep = if res.text.is_empty() { "" } else { "\n\n" };
                    res.push_section(page, Vec::new(), &format!("{sep}{text}"));
                }
                Err(reason) => failed_pages.push((page, reason)),
            }
        }
        for (page, reason) in &failed_pages {
            res.warnings.push(format!("page {page} could not be read: {reason}"));
        }
        res.pages_without_text = empty_pages;
        let hidden: Vec<u32> =
            pages.iter().filter(|&(_, &id)| page_hides_text(&doc, id)).map(|(&n, _)| n).collect();
        res.warnings.extend(super::hidden::invisible_pdf_text_warning(&hidden));
        if !failed_pages.is_empty() && failed_pages.len() == pages.len() {
            let (_, first) = &failed_pages[0];
            return Err(ExtractError::Malformed(format!("no page could be read ({first})")));
        }
        Ok(res)
    }
}

fn load(bytes: &[u8]) -> Result<Document, ExtractError> {
    match catch_unwind(|| Document::load_mem(bytes)) {
        Ok(Ok(doc)) => Ok(doc),
        Ok(Err(e)) => {
            let msg = e.to_string();
            if msg.to_ascii_lowercase().contains("decrypt") || msg.contains("password") {
                Err(ExtractError::Encrypted(format!("the PDF needs a password to open ({msg})")))
            } else {
                Err(ExtractError::Malformed(format!("damaged PDF: {msg}")))
            }
        }
        Err(panic) => Err(ExtractError::Malformed(format!(
            "the PDF parser failed: {}",
            panic_message(&panic)
        ))),
    }
}

fn extract_page(doc: &Document, page: u32) -> Result<String, String> {
    let run = AssertUnwindSafe(|| {
        let mut text = String::new();
        let mut output = PlainTextOutput::new(&mut text);
        output_doc_page(doc, &mut output, page).map(|()| text)
    });
    match catch_unwind(run) {
        Ok(Ok(text)) => Ok(text),
        Ok(Err(e)) => Err(e.to_string()),
        Err(panic) => Err(format!("parser error: {}", panic_message(&panic))),
    }
}

/// Whether the page draws text invisibly (render mode 3 or 7). A content stream that cannot be
/// decoded counts as not hiding anything: its failure is reported with the page's text.
fn page_hides_text(doc: &Document, page_id: pdf_extract::ObjectId) -> bool {
    let run = AssertUnwindSafe(|| {
        let content = doc.get_and_decode_page_content(page_id).ok()?;
        let ops: Vec<(String, Option<i64>)> = content
            .operations
            .into_iter()
            .map(|op| {
                let first = op.operands.first().and_then(|o| o.as_i64().ok());
                (op.operator, first)
            })
            .collect();
        Some(super::hidden::shows_invisible_text(&ops))
    });
    catch_unwind(run).ok().flatten().unwrap_or(false)
}

/// The text of a panic payload.
pub fn panic_message(payload: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_owned()
    }
}

fn title(doc: &Document) -> Option<String> {
    let info = doc.trailer.get(b"Info").ok()?;
    let info = match info {
        pdf_extract::Object::Reference(id) => doc.get_dictionary(*id).ok()?,
        pdf_extract::Object::Dictionary(d) => d,
        _ => return None,
    };
    let title = info.get(b"Title").ok()?;
    let bytes = title.as_str().ok()?;
    let text = decode_pdf_string(bytes);
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// PDF text strings are UTF-16BE with a BOM, or PDFDocEncoding (close enough to Latin-1).
fn decode_pdf_string(bytes: &[u8]) -> String {
    if bytes.starts_with(&[0xfe, 0xff]) {
        let units: Vec<u16> =
            bytes[2..].chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect();
        String::from_utf16_lossy(&units)
    } else {
        bytes.iter().map(|&b| b as char).collect()
    }
}

/// Tidies pdf-extract output: ligatures spelled out, trailing spaces and runs of blank lines removed.
fn clean_page_text(text: &str) -> String {
    let mut res = String::with_capacity(text.len());
    let mut blank_run = 0;
    for line in text.lines() {
        let line = line.trim_end();
        if line.trim().is_empty() {
            blank_run += 1;
            if blank_run > 1 || res.is_empty() {
                continue;
            }
        } else {
            blank_run = 0;
        }
        for c in line.chars() {
            match c {
                '\u{fb00}' => res.push_str("ff"),
                '\u{fb01}' => res.push_str("fi"),
                '\u{fb02}' => res.push_str("fl"),
                '\u{fb03}' => res.push_str("ffi"),
                '\u{fb04}' => res.push_str("ffl"),
                '\u{fb05}' | '\u{fb06}' => res.push_str("st"),
                '\0' => {}
                c => res.push(c),
            }
        }
        res.push('\n');
    }
    res.trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleans_ligatures_and_blank_runs() {
        assert_eq!(clean_page_text("\n\n  e\u{fb03}cient  \n\n\n\nnext\n"), "  efficient\n\nnext");
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        let err = PdfExtractor.extract(Path::new("x.pdf"), b"%PDF-1.4\nnot really").unwrap_err();
        assert!(matches!(err, ExtractError::Malformed(_)), "{err:?}");
    }
}

//! Ingest stage: find the files under a source, decide what each one is, and extract its text
//! with page and section spans. Extraction is never all-or-nothing: a damaged page becomes a
//! warning, and only a file with nothing usable is an error.

pub mod docx;
pub mod email;
pub mod epub;
pub mod hidden;
pub mod html;
pub mod markdown;
pub mod opendocument;
mod package;
pub mod pdf;
pub mod slides;
pub mod sniff;
pub mod spreadsheet;
pub mod text;
pub mod walk;
pub mod worker;

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::api::FileKind;
use crate::error::ExtractError;

/// Text extracted from one file: the whole text plus the sections (pages, headings) it is made of.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Extracted {
    /// The document's text. Section spans and chunk spans point into it.
    pub text: String,
    /// Consecutive, non-overlapping spans of `text`, in order.
    pub sections: Vec<Section>,
    /// Pages in the file (PDF), or 1 for formats without pages.
    pub pages: u32,
    /// The document's own title, when it has one.
    pub title: Option<String>,
    /// Non-fatal problems: damaged pages, pages without a text layer, undecodable bytes.
    pub warnings: Vec<String>,
    /// Pages that have no text layer (scanned, or fonts without a Unicode map); reported as
    /// one warning by [`extract_source`].
    #[serde(default)]
    pub pages_without_text: Vec<u32>,
    /// The name of the extractor that read the file (set by [`extract_source`]).
    #[serde(default)]
    pub extractor: String,
}

/// A span of [`Extracted::text`] that lies on one page under one heading.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Section {
    /// 1-based page number (1 for formats without pages).
    pub page: u32,
    /// Heading path, outermost first ("Intro > Scope" when joined).
    pub heading: Vec<String>,
    /// Byte offset of the section's start in the text.
    pub start: usize,
    /// Byte offset of the section's end (exclusive).
    pub end: usize,
}

impl Extracted {
    /// Appends `text` as a new section and returns its span.
    pub fn push_section(&mut self, page: u32, heading: Vec<String>, text: &str) {
        let start = self.text.len();
        self.text.push_str(text);
        let end = self.text.len();
        if end > start {
            self.sections.push(Section { page, heading, start, end });
        }
    }

    /// Whether any section holds a visible character.
    pub fn has_text(&self) -> bool {
        self.sections.iter().any(|s| self.text[s.start..s.end].chars().any(|c| !c.is_whitespace()))
    }
}

/// A file to extract, with what sniffing found out about it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Source {
    /// Absolute path.
    pub path: std::path::PathBuf,
    /// What the file is.
    pub kind: FileKind,
}

/// Turns one kind of file into text. Implementations are registered in [`extractors`].
pub trait DocumentExtractor: Send + Sync {
    /// Stable short name, recorded on each document.
    fn name(&self) -> &'static str;
    /// Whether this extractor reads files of `kind`.
    fn accepts(&self, kind: FileKind) -> bool;
    /// Text per page/section plus warnings; `Err` only when nothing is usable.
    fn extract(&self, path: &Path, bytes: &[u8]) -> Result<Extracted, ExtractError>;
}

/// Every extractor the engine knows, in the order they are asked.
pub fn extractors() -> Vec<Box<dyn DocumentExtractor>> {
    vec![
        Box::new(pdf::PdfExtractor),
        Box::new(docx::DocxExtractor),
        Box::new(opendocument::OdtExtractor),
        Box::new(slides::SlidesExtractor),
        Box::new(spreadsheet::SpreadsheetExtractor),
        Box::new(epub::EpubExtractor),
        Box::new(email::EmailExtractor),
        Box::new(html::HtmlExtractor),
        Box::new(markdown::MarkdownExtractor),
        Box::new(text::PlainTextExtractor),
    ]
}

/// Reads `source` and extracts it with the first extractor that accepts its kind.
/// Runs in the worker process when extraction is isolated.
pub fn extract_source(source: &Source) -> Result<Extracted, ExtractError> {
    let bytes = std::fs::read(&source.path).map_err(|e| ExtractError::Io(e.to_string()))?;
    let registry = extractors();
    let extractor = registry
        .iter()
        .find(|e| e.accepts(source.kind))
        .ok_or_else(|| ExtractError::Unsupported(source.kind.as_str().to_owned()))?;
    let mut res = extractor.extract(&source.path, &bytes)?;
    res.extractor = extractor.name().to_owned();
    tidy_sections(&mut res);
    if !res.pages_without_text.is_empty() {
        let pages = &res.pages_without_text;
        res.warnings.push(format!(
            "no extractable text on {} {} (scanned, or fonts without a Unicode map; OCR is not supported)",
            if pages.len() == 1 { "page" } else { "pages" },
            page_ranges(pages)
        ));
    } else if !res.has_text() {
        res.warnings.push("the document contains no text".into());
    }
    res.warnings.extend(hidden::invisible_characters_warning(&res.text));
    Ok(res)
}

/// Drops sections that hold only whitespace, so they never become empty chunks.
fn tidy_sections(doc: &mut Extracted) {
    let text = &doc.text;
    doc.sections.retain(|s| text[s.start..s.end].chars().any(|c| !c.is_whitespace()));
}

/// Formats page numbers as compact ranges: `[1, 2, 3, 5]` → "1-3, 5".
pub fn page_ranges(pages: &[u32]) -> String {
    let mut res = String::new();
    let mut idx = 0;
    while idx < pages.len() {
        let start = pages[idx];
        let mut end = start;
        while idx + 1 < pages.len() && pages[idx + 1] == end + 1 {
            idx += 1;
            end = pages[idx];
        }
        if !res.is_empty() {
            res.push_str(", ");
        }
        if start == end {
            res.push_str(&start.to_string());
        } else {
            res.push_str(&format!("{start}-{end}"));
        }
        idx += 1;
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_ranges_are_compact() {
        assert_eq!(page_ranges(&[1, 2, 3, 5, 7, 8]), "1-3, 5, 7-8");
        assert_eq!(page_ranges(&[4]), "4");
        assert_eq!(page_ranges(&[]), "");
    }

    #[test]
    fn push_section_keeps_spans_contiguous() {
        let mut doc = Extracted::default();
        doc.push_section(1, vec![], "abc");
        doc.push_section(2, vec!["H".into()], "\n\ndef");
        doc.push_section(3, vec![], "");
        assert_eq!(doc.sections.len(), 2);
        assert_eq!(&doc.text[doc.sections[1].start..doc.sections[1].end], "\n\ndef");
        assert!(doc.has_text());
    }
}

//! Ingest stage: find the files under a source, decide what each one is, and extract its text
//! with page and section spans. Extraction is never all-or-nothing: a damaged page becomes a
//! warning, and only a file with nothing usable is an error.

pub mod archive;
pub mod docx;
pub mod email;
pub mod epub;
mod external;
pub mod hidden;
pub mod html;
pub mod markdown;
pub mod ocr;
pub mod opendocument;
mod package;
pub mod pdf;
pub mod rtf;
pub mod slides;
pub mod sniff;
pub mod spreadsheet;
pub mod text;
pub mod walk;
pub mod worker;

use std::path::Path;

use std::time::Duration;

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
    /// The words OCR read, with their boxes, per page it read.
    #[serde(default)]
    pub ocr_words: Vec<crate::api::OcrPage>,
    /// Documents of their own inside this file (the entries of an archive, the messages of a
    /// mailbox). The file itself then holds no text; each member is indexed as a document whose
    /// path is the file's path, `/`, and the member's name.
    #[serde(default)]
    pub members: Vec<Member>,
}

/// A document inside another file: an archive entry or a mailbox message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Member {
    /// Its name inside the file, `/`-separated ("reports/q3.pdf", "inner.zip/notes.md",
    /// "message 12"); unique within the file and the same every time the file is read.
    pub name: String,
    /// What it is.
    pub kind: FileKind,
    /// Its size in bytes, unpacked.
    pub size: u64,
    /// SHA-256 of its bytes, hex.
    pub sha256: String,
    /// What was read from it, or why nothing could be.
    pub extracted: Result<Extracted, String>,
}

impl Member {
    /// A member read from `bytes`.
    pub(crate) fn new(
        name: String,
        kind: FileKind,
        bytes: &[u8],
        extracted: Result<Extracted, ExtractError>,
    ) -> Self {
        use sha2::Digest;
        Self {
            name,
            kind,
            size: bytes.len() as u64,
            sha256: crate::ids::hex(&sha2::Sha256::digest(bytes)),
            extracted: extracted.map_err(|e| e.to_string()),
        }
    }
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

    /// Appends `text` (trimmed; nothing when blank) as a section, after a blank line when
    /// text came before.
    pub fn push_block(&mut self, page: u32, heading: Vec<String>, text: &str) {
        let text = text.trim();
        if text.is_empty() {
            return;
        }
        let sep = if self.text.is_empty() { "" } else { "\n\n" };
        self.push_section(page, heading, &format!("{sep}{text}"));
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
    /// OCR for pages without a text layer and for images; `None`: switched off.
    #[serde(default)]
    pub ocr: Option<ocr::OcrOptions>,
    /// Passwords to try on an encrypted PDF.
    #[serde(default)]
    pub passwords: Passwords,
}

/// Passwords for encrypted documents, given by the user for one indexing run: sent to the
/// worker with each request, never printed (`Debug` says only how many) and never stored.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Passwords(pub Vec<String>);

impl std::fmt::Debug for Passwords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Passwords({} given)", self.0.len())
    }
}

/// Turns one kind of file into text. Implementations are registered in [`extractors`].
pub trait DocumentExtractor: Send + Sync {
    /// Stable short name, recorded on each document.
    fn name(&self) -> &'static str;
    /// Whether this extractor reads files of `kind`.
    fn accepts(&self, kind: FileKind) -> bool;
    /// Text per page/section plus warnings; `Err` only when nothing is usable.
    fn extract(&self, path: &Path, bytes: &[u8]) -> Result<Extracted, ExtractError>;

    /// As [`DocumentExtractor::extract`], with OCR for what the file holds inside it: files
    /// that contain others (archives, e-mail) read their images and scanned PDF pages with it.
    fn extract_with_ocr(
        &self,
        path: &Path,
        bytes: &[u8],
        _ocr: Option<&NestedOcr>,
    ) -> Result<Extracted, ExtractError> {
        self.extract(path, bytes)
    }
}

/// OCR for files inside a file (archive entries, attachments), within the outer file's time.
#[derive(Debug, Clone)]
pub struct NestedOcr {
    /// Languages and budget, as for the outer file.
    pub options: ocr::OcrOptions,
    /// When all OCR of the outer file must be done.
    pub deadline: std::time::Instant,
    /// Images inside the file that were not read because the budget was spent, named in one
    /// note at the end instead of a warning each.
    past_budget: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl NestedOcr {
    /// OCR options for the file `source`, its budget starting now.
    fn for_source(source: &Source) -> Option<Self> {
        let options = source.ocr.clone()?;
        let deadline = std::time::Instant::now() + Duration::from_secs(options.budget_secs.max(1));
        Some(Self { options, deadline, past_budget: Default::default() })
    }

    fn note_past_budget(&self, name: &str) {
        self.past_budget.lock().unwrap_or_else(|p| p.into_inner()).push(name.to_owned());
    }

    /// "3 images not indexed (…budget…): a.png, b.png, c.png", when any were left unread.
    fn past_budget_note(&self) -> Option<String> {
        let names = self.past_budget.lock().unwrap_or_else(|p| p.into_inner());
        (!names.is_empty()).then(|| {
            let why = format!(
                "not read by OCR: the file's {} s budget ran out",
                self.options.budget_secs
            );
            left_out_note(&names, "image", "images", &why)
        })
    }
}

/// Extracts `bytes`, a file named `name` of `kind` found inside another file, with the parser of
/// its kind; with `ocr`, an image is read by OCR and a PDF's pages without a text layer too.
/// `None` when Quarry reads no such file (an image with OCR off).
pub(crate) fn extract_nested(
    kind: FileKind,
    name: &str,
    bytes: &[u8],
    ocr: Option<&NestedOcr>,
) -> Option<Result<Extracted, ExtractError>> {
    if kind == FileKind::Image {
        let ocr = ocr?;
        if let Some((width, height)) = ocr::image_size(bytes)
            && width.min(height) < ocr::MIN_TEXT_IMAGE_SIDE
        {
            // An icon or a tracking pixel: named as unread, not worth a Tesseract run.
            return None;
        }
        if std::time::Instant::now() >= ocr.deadline {
            // Named with the others in one note of the outer file; nothing to add here.
            ocr.note_past_budget(name);
            return Some(Ok(Extracted::default()));
        }
        return Some(read_image_bytes(bytes, &ocr.options, ocr.deadline));
    }
    let extractor = extractor_for(kind)?;
    let mut res = match extractor.extract_with_ocr(Path::new(name), bytes, ocr) {
        Ok(res) => res,
        Err(e) => return Some(Err(e)),
    };
    if let Some(ocr) = ocr
        && kind == FileKind::Pdf
        && !res.pages_without_text.is_empty()
    {
        // pdftoppm renders from a file: the PDF goes to a private temporary one.
        // Pages past the outer file's deadline are named as unread, without rendering.
        let written =
            tempfile::Builder::new().prefix("quarry-nested-").suffix(".pdf").tempfile().and_then(
                |mut file| {
                    use std::io::Write as _;
                    file.write_all(bytes)?;
                    file.flush()?;
                    Ok(file)
                },
            );
        match written {
            Ok(file) => ocr_pages(file.path(), &mut res, &ocr.options, ocr.deadline),
            Err(e) => res.warnings.push(format!("OCR not run: no temporary file ({e})")),
        }
    }
    tidy_sections(&mut res);
    if let Some(warning) = unread_pages_warning(&res, ocr.is_some()) {
        res.warnings.push(warning);
    }
    res.extractor = extractor.name().to_owned();
    Some(Ok(res))
}

/// "no extractable text on pages 2-3 (…)" when pages stayed without text.
fn unread_pages_warning(res: &Extracted, ocr_on: bool) -> Option<String> {
    (!res.pages_without_text.is_empty()).then(|| {
        format!(
            "no extractable text on {} (scanned, or fonts without a Unicode map; {})",
            pages_phrase(&res.pages_without_text),
            if ocr_on { "OCR found none" } else { "OCR is switched off" }
        )
    })
}

/// Every extractor the engine knows, in the order they are asked.
pub fn extractors() -> Vec<Box<dyn DocumentExtractor>> {
    vec![
        Box::new(pdf::PdfExtractor),
        Box::new(docx::DocxExtractor),
        Box::new(opendocument::OdtExtractor),
        Box::new(rtf::RtfExtractor),
        Box::new(slides::SlidesExtractor),
        Box::new(spreadsheet::SpreadsheetExtractor),
        Box::new(epub::EpubExtractor),
        Box::new(email::EmailExtractor),
        Box::new(email::MboxExtractor),
        Box::new(archive::ArchiveExtractor),
        Box::new(html::HtmlExtractor),
        Box::new(markdown::MarkdownExtractor),
        Box::new(text::PlainTextExtractor),
    ]
}

/// The first extractor that reads files of `kind` (also for attachments and archive entries).
pub(crate) fn extractor_for(kind: FileKind) -> Option<Box<dyn DocumentExtractor>> {
    extractors().into_iter().find(|e| e.accepts(kind))
}

/// "3 attachments not indexed (why): a, b, c": the first ten named, the rest counted.
pub(crate) fn left_out_note(names: &[String], one: &str, many: &str, why: &str) -> String {
    const NAMED: usize = 10;
    let more = names.len().saturating_sub(NAMED);
    format!(
        "{} {} not indexed ({why}): {}{}",
        names.len(),
        if names.len() == 1 { one } else { many },
        names[..names.len().min(NAMED)].join(", "),
        if more > 0 { format!(" and {more} more") } else { String::new() }
    )
}

/// Reads `source` and extracts it with the first extractor that accepts its kind.
/// Runs in the worker process when extraction is isolated.
pub fn extract_source(source: &Source) -> Result<Extracted, ExtractError> {
    let bytes = std::fs::read(&source.path).map_err(|e| ExtractError::Io(e.to_string()))?;
    if source.kind == FileKind::Image {
        return read_image(source, &bytes);
    }
    let extractor = extractor_for(source.kind)
        .ok_or_else(|| ExtractError::Unsupported(source.kind.as_str().to_owned()))?;
    // One OCR budget for the file: its own pages and whatever it holds share it.
    let ocr = NestedOcr::for_source(source);
    let mut res = match extractor.extract_with_ocr(&source.path, &bytes, ocr.as_ref()) {
        Ok(res) => res,
        Err(err) if source.kind == FileKind::Pdf => {
            pdf::recover(&source.path, err, &source.passwords, extractor.as_ref())?
        }
        Err(err) => return Err(err),
    };
    res.extractor = extractor.name().to_owned();
    if let Some(ocr) = &ocr
        && !res.pages_without_text.is_empty()
    {
        ocr_pages(&source.path, &mut res, &ocr.options, ocr.deadline);
    }
    tidy_sections(&mut res);
    if let Some(warning) = unread_pages_warning(&res, source.ocr.is_some()) {
        res.warnings.push(warning);
    } else if !res.has_text() && res.members.is_empty() {
        res.warnings.push("the document contains no text".into());
    }
    res.warnings.extend(hidden::invisible_characters_warning(&res.text));
    res.warnings.extend(ocr.as_ref().and_then(NestedOcr::past_budget_note));
    for member in &mut res.members {
        if let Ok(doc) = &mut member.extracted {
            if !doc.has_text() && doc.pages_without_text.is_empty() {
                doc.warnings.push("the document contains no text".into());
            }
            doc.warnings.extend(hidden::invisible_characters_warning(&doc.text));
        }
    }
    Ok(res)
}

/// An image file, read by OCR as one page.
fn read_image(source: &Source, bytes: &[u8]) -> Result<Extracted, ExtractError> {
    let options = source.ocr.as_ref().ok_or_else(|| {
        ExtractError::Unsupported("image (reading images needs OCR, which is switched off)".into())
    })?;
    let deadline = std::time::Instant::now() + Duration::from_secs(options.budget_secs.max(1));
    read_image_bytes(bytes, options, deadline)
}

/// An image, read by OCR as one page before `deadline`.
fn read_image_bytes(
    bytes: &[u8],
    options: &ocr::OcrOptions,
    deadline: std::time::Instant,
) -> Result<Extracted, ExtractError> {
    let page = ocr::image_bytes(bytes, options, deadline)
        .map_err(|e| ExtractError::Malformed(format!("OCR failed: {e}")))?;
    let mut res = Extracted { pages: 1, extractor: "ocr".into(), ..Extracted::default() };
    res.push_section(1, Vec::new(), &page.text);
    res.ocr_words.push(crate::api::OcrPage { page: 1, words: page.words });
    if !res.has_text() {
        res.warnings.push("OCR found no text in the image".into());
    } else {
        res.warnings.push(format!("read by OCR ({})", options.languages));
        if page.confidence < ocr::LOW_CONFIDENCE {
            res.warnings.push(format!(
                "low OCR confidence (mean {:.0} %): the text may be wrong",
                page.confidence
            ));
        }
    }
    Ok(res)
}

/// Reads the pages without a text layer by OCR, within the options' time budget, and puts
/// their text in page order among the others; says in warnings which pages were read so, which
/// were read poorly and which were left.
fn ocr_pages(
    path: &Path,
    res: &mut Extracted,
    options: &ocr::OcrOptions,
    deadline: std::time::Instant,
) {
    let mut read = Vec::new();
    let mut low = Vec::new();
    let mut noise = Vec::new();
    let mut failed: Vec<(u32, String)> = Vec::new();
    let mut out_of_time = Vec::new();
    for &page in &res.pages_without_text {
        if std::time::Instant::now() >= deadline {
            out_of_time.push(page);
            continue;
        }
        match ocr::pdf_page(path, page, options, deadline) {
            Ok(text) if text.confidence < ocr::NOISE_CONFIDENCE && !text.text.trim().is_empty() => {
                noise.push(page);
            }
            Ok(text) if !text.text.trim().is_empty() => {
                if text.confidence < ocr::LOW_CONFIDENCE {
                    low.push(page);
                }
                res.ocr_words.push(crate::api::OcrPage { page, words: text.words });
                read.push((page, text.text));
            }
            Ok(_) => {}
            Err(reason) => failed.push((page, reason)),
        }
    }
    if read.is_empty() && failed.is_empty() && out_of_time.is_empty() && noise.is_empty() {
        return;
    }
    let done: Vec<u32> = read.iter().map(|(page, _)| *page).collect();
    res.pages_without_text.retain(|p| !done.contains(p));
    if !done.is_empty() {
        res.warnings.push(format!("{} read by OCR ({})", pages_phrase(&done), options.languages));
    }
    if !low.is_empty() {
        res.warnings
            .push(format!("low OCR confidence on {}: the text may be wrong", pages_phrase(&low)));
    }
    if !noise.is_empty() {
        res.warnings.push(format!(
            "OCR read nothing reliable on {} with the {} models (another script? set the OCR languages)",
            pages_phrase(&noise),
            options.languages
        ));
    }
    if let Some((page, reason)) = failed.first() {
        res.warnings.push(format!(
            "OCR failed on {} ({reason}{})",
            pages_phrase(&failed.iter().map(|(p, _)| *p).collect::<Vec<_>>()),
            if failed.len() > 1 { format!(", first on page {page}") } else { String::new() }
        ));
    }
    if !out_of_time.is_empty() {
        res.warnings.push(format!(
            "{} not read by OCR: its {} s budget for this file ran out",
            pages_phrase(&out_of_time),
            options.budget_secs
        ));
    }
    insert_pages(res, read);
}

/// Rebuilds `res`'s text with `pages` (page number, text) among its sections, in page order.
fn insert_pages(res: &mut Extracted, pages: Vec<(u32, String)>) {
    if pages.is_empty() {
        return;
    }
    let mut blocks: Vec<(u32, Vec<String>, String)> = res
        .sections
        .iter()
        .map(|s| (s.page, s.heading.clone(), res.text[s.start..s.end].trim().to_owned()))
        .collect();
    blocks.extend(pages.into_iter().map(|(page, text)| (page, Vec::new(), text)));
    blocks.sort_by_key(|(page, _, _)| *page);
    res.text.clear();
    res.sections.clear();
    for (page, heading, text) in blocks {
        let sep = if res.text.is_empty() { "" } else { "\n\n" };
        res.push_section(page, heading, &format!("{sep}{text}"));
    }
}

/// Drops sections that hold only whitespace, so they never become empty chunks.
fn tidy_sections(doc: &mut Extracted) {
    let text = &doc.text;
    doc.sections.retain(|s| text[s.start..s.end].chars().any(|c| !c.is_whitespace()));
}

/// "page 3" or "pages 1-3, 5".
fn pages_phrase(pages: &[u32]) -> String {
    format!("{} {}", if pages.len() == 1 { "page" } else { "pages" }, page_ranges(pages))
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
impl Extracted {
    /// Each section as (page, heading path joined by `separator`, trimmed text): what parser
    /// tests compare.
    pub(crate) fn outline(&self, separator: &str) -> Vec<(u32, String, &str)> {
        self.sections
            .iter()
            .map(|s| (s.page, s.heading.join(separator), self.text[s.start..s.end].trim()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_inside_files_past_the_ocr_deadline_are_not_read() {
        let spent = NestedOcr {
            options: ocr::OcrOptions::default(),
            deadline: std::time::Instant::now() - Duration::from_secs(1),
            past_budget: Default::default(),
        };
        assert_eq!(spent.past_budget_note(), None);
        // Images: left at once (no Tesseract run), and named together in one note.
        for name in ["scan.png", "photo.jpg"] {
            let read = extract_nested(FileKind::Image, name, b"not looked at", Some(&spent));
            let doc = read.unwrap().unwrap();
            assert!(doc.sections.is_empty() && doc.warnings.is_empty());
        }
        assert_eq!(
            spent.past_budget_note().unwrap(),
            "2 images not indexed (not read by OCR: the file's 90 s budget ran out): scan.png, \
             photo.jpg"
        );
        // OCR off: an image is not a file Quarry reads.
        assert!(extract_nested(FileKind::Image, "scan.png", b"x", None).is_none());
    }

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

//! Word documents (Office Open XML): paragraphs from `word/document.xml`, headings from the
//! paragraph styles, pages from the page breaks the document records (hard breaks before or
//! after a paragraph's text, `w:pageBreakBefore` on the paragraph or its style in
//! `word/styles.xml`, the breaks Word rendered), and the title from `docProps/core.xml`.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

use super::package::Package;
use super::{DocumentExtractor, Extracted};
use crate::api::FileKind;
use crate::error::ExtractError;

/// Extracts `.docx` files.
#[derive(Debug)]
pub struct DocxExtractor;

impl DocumentExtractor for DocxExtractor {
    fn name(&self) -> &'static str {
        "docx"
    }

    fn accepts(&self, kind: FileKind) -> bool {
        kind == FileKind::Docx
    }

    fn extract(&self, _path: &Path, bytes: &[u8]) -> Result<Extracted, ExtractError> {
        let mut package = Package::open(bytes, "a Word document")?;
        let body = package.read_text("word/document.xml")?.ok_or_else(|| {
            ExtractError::Malformed("no word/document.xml: not a Word document".into())
        })?;
        let breaking = match package.read_text("word/styles.xml")? {
            Some(styles) => page_breaking_styles(&styles),
            None => HashSet::new(),
        };
        let mut res = parse_document(&body, &breaking)?;
        if let Some(core) = package.read_text("docProps/core.xml")? {
            res.title = core_title(&core);
        }
        Ok(res)
    }
}

/// The paragraph styles of `word/styles.xml` that break the page before their paragraph
/// (`w:pageBreakBefore` in the style or, unless it says otherwise, in a style it is based on),
/// as a template's "Heading 1" often does.
fn page_breaking_styles(xml: &str) -> HashSet<String> {
    // Style id -> (its own setting, the style it is based on).
    let mut styles: HashMap<String, (Option<bool>, Option<String>)> = HashMap::new();
    let mut reader = Reader::from_str(xml);
    let mut current: Option<String> = None;
    while let Ok(event) = reader.read_event() {
        match event {
            Event::Start(e) | Event::Empty(e) => match e.local_name().as_ref() {
                b"style" => {
                    current = (attr(&e, b"type").as_deref() == Some("paragraph"))
                        .then(|| attr(&e, b"styleId"))
                        .flatten();
                    if let Some(id) = &current {
                        styles.entry(id.clone()).or_default();
                    }
                }
                b"basedOn" => {
                    if let Some(entry) = current.as_ref().and_then(|id| styles.get_mut(id)) {
                        entry.1 = attr(&e, b"val");
                    }
                }
                b"pageBreakBefore" => {
                    if let Some(entry) = current.as_ref().and_then(|id| styles.get_mut(id)) {
                        entry.0 = Some(is_on(&e));
                    }
                }
                _ => {}
            },
            Event::End(e) if e.local_name().as_ref() == b"style" => current = None,
            Event::Eof => break,
            _ => {}
        }
    }
    let breaks = |id: &str| {
        let mut at = id;
        // A chain of at most 16 styles (a loop in a broken file ends there).
        for _ in 0..16 {
            match styles.get(at) {
                Some((Some(own), _)) => return *own,
                Some((None, Some(base))) => at = base,
                _ => return false,
            }
        }
        false
    };
    styles.keys().filter(|id| breaks(id)).cloned().collect()
}

/// Whether an on/off property (`<w:pageBreakBefore/>`, `w:val="true"`) is on.
fn is_on(e: &BytesStart<'_>) -> bool {
    !matches!(attr(e, b"val").as_deref(), Some("0" | "false" | "off"))
}

/// Builds sections from the document body: one per heading and page; `breaking` names the
/// paragraph styles that start a page.
fn parse_document(xml: &str, breaking: &HashSet<String>) -> Result<Extracted, ExtractError> {
    let mut res = Extracted::default();
    let mut reader = Reader::from_str(xml);
    let mut page = 1u32;
    let mut path: Vec<(usize, String)> = Vec::new();
    let mut section = String::new();
    let mut section_page = 1u32;
    let mut heading_of_section: Vec<String> = Vec::new();
    let mut paragraph = String::new();
    let mut paragraph_heading: Option<usize> = None;
    let mut in_text = false;
    let mut pending_page_break = false;
    let mut break_after_paragraph = false;
    // The paragraph's style or its own properties break the page before it.
    let mut break_before_paragraph = false;
    // Inside a tracked change's record of former properties (`w:pPrChange`), which no longer
    // apply.
    let mut in_former_properties = false;
    // Whether any text is on the current page.
    let mut page_used = false;

    let flush = |res: &mut Extracted, section: &mut String, page: u32, heading: &[String]| {
        if !section.trim().is_empty() {
            let sep = if res.text.is_empty() { "" } else { "\n\n" };
            let text = format!("{sep}{}", section.trim_end());
            res.push_section(page, heading.to_vec(), &text);
        }
        section.clear();
    };

    loop {
        let event = reader
            .read_event()
            .map_err(|e| ExtractError::Malformed(format!("word/document.xml: {e}")))?;
        let is_start = matches!(event, Event::Start(_));
        match event {
            Event::Start(e) | Event::Empty(e) => match e.local_name().as_ref() {
                b"p" => {
                    paragraph.clear();
                    paragraph_heading = None;
                    break_before_paragraph = false;
                }
                b"pPrChange" if is_start => {
                    in_former_properties = true;
                }
                _ if in_former_properties => {}
                b"pStyle" => {
                    paragraph_heading = heading_style(&e);
                    break_before_paragraph =
                        attr(&e, b"val").is_some_and(|id| breaking.contains(&id));
                }
                b"t" => in_text = true,
                b"tab" => paragraph.push('\t'),
                // A page break before the paragraph's text starts the page with this
                // paragraph (Word); one after its text ends the page with it (LibreOffice
                // writes a heading that starts a page this way, as a break closing the
                // paragraph before).
                b"br" | b"cr" if attr(&e, b"type").as_deref() == Some("page") => {
                    if paragraph.trim().is_empty() {
                        pending_page_break = true;
                    } else {
                        break_after_paragraph = true;
                    }
                }
                b"br" | b"cr" => paragraph.push('\n'),
                b"lastRenderedPageBreak" => {
                    if paragraph.trim().is_empty() {
                        pending_page_break = true;
                    } else {
                        break_after_paragraph = true;
                    }
                }
                b"pageBreakBefore" => break_before_paragraph = is_on(&e),
                _ => {}
            },
            Event::Text(t) if in_text => {
                let text =
                    t.unescape().map_err(|e| ExtractError::Malformed(format!("text: {e}")))?;
                paragraph.push_str(&text);
            }
            Event::End(e) => match e.local_name().as_ref() {
                b"pPrChange" => in_former_properties = false,
                b"t" => in_text = false,
                b"p" => {
                    // A break on a page with nothing on it yet (the document's first
                    // paragraph, or one right after another break) adds no page.
                    let break_before = std::mem::take(&mut pending_page_break)
                        | std::mem::take(&mut break_before_paragraph);
                    if break_before && page_used {
                        flush(&mut res, &mut section, section_page, &heading_of_section);
                        page += 1;
                        section_page = page;
                        page_used = false;
                    }
                    if let Some(level) = paragraph_heading {
                        flush(&mut res, &mut section, section_page, &heading_of_section);
                        section_page = page;
                        path.retain(|(l, _)| *l < level);
                        path.push((level, paragraph.trim().to_owned()));
                        heading_of_section = path.iter().map(|(_, t)| t.clone()).collect();
                    }
                    if !paragraph.trim().is_empty() {
                        if !section.is_empty() {
                            section.push('\n');
                        }
                        section.push_str(paragraph.trim_end());
                        page_used = true;
                    }
                    // The next paragraph starts the page (none when the document ends here).
                    pending_page_break |= std::mem::take(&mut break_after_paragraph);
                    paragraph.clear();
                }
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
    }
    flush(&mut res, &mut section, section_page, &heading_of_section);
    res.pages = page;
    Ok(res)
}

/// Heading level of a paragraph style such as `Heading2` or `Title`.
fn heading_style(e: &BytesStart<'_>) -> Option<usize> {
    let style = attr(e, b"val")?.to_ascii_lowercase();
    if style == "title" {
        return Some(1);
    }
    let digits = style.strip_prefix("heading")?.trim_start_matches(['-', '_', ' ']);
    digits.parse::<usize>().ok().filter(|l| (1..=9).contains(l))
}

pub(super) fn attr(e: &BytesStart<'_>, local: &[u8]) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| a.key.local_name().as_ref() == local)
        .and_then(|a| a.unescape_value().ok().map(|v| v.into_owned()))
}

pub(super) fn core_title(xml: &str) -> Option<String> {
    let mut reader = Reader::from_str(xml);
    let mut in_title = false;
    loop {
        match reader.read_event().ok()? {
            Event::Start(e) if e.local_name().as_ref() == b"title" => in_title = true,
            Event::Text(t) if in_title => {
                let title = t.unescape().ok()?.trim().to_owned();
                return (!title.is_empty()).then_some(title);
            }
            Event::End(_) => in_title = false,
            Event::Eof => return None,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraphs_headings_and_pages() {
        let xml = r#"<w:document xmlns:w="w"><w:body>
          <w:p><w:pPr><w:pStyle w:val="Heading1"/></w:pPr><w:r><w:t>Lease</w:t></w:r></w:p>
          <w:p><w:r><w:t xml:space="preserve">Rent is </w:t></w:r><w:r><w:t>due &amp; payable.</w:t></w:r></w:p>
          <w:p><w:r><w:br w:type="page"/><w:t>Notice period is three months.</w:t></w:r></w:p>
          <w:p><w:pPr><w:pStyle w:val="Heading2"/></w:pPr><w:r><w:t>Exceptions</w:t></w:r></w:p>
          <w:p><w:r><w:t>None</w:t><w:tab/><w:t>apply.</w:t></w:r></w:p>
        </w:body></w:document>"#;
        let doc = parse_document(xml, &HashSet::new()).unwrap();
        assert_eq!(doc.pages, 2);
        let got: Vec<(u32, String, &str)> = doc.outline(" > ");
        assert_eq!(
            got,
            vec![
                (1, "Lease".into(), "Lease\nRent is due & payable."),
                (2, "Lease".into(), "Notice period is three months."),
                (2, "Lease > Exceptions".into(), "Exceptions\nNone\tapply."),
            ]
        );
    }

    #[test]
    fn page_breaks_after_a_paragraph_and_before_one_by_its_properties() {
        // LibreOffice ends the page with a break after the paragraph's text; Word can also ask
        // for a break before a paragraph in its properties. A break before the first paragraph
        // or closing the last one adds no page.
        let xml = r#"<w:document xmlns:w="w"><w:body>
          <w:p><w:pPr><w:pStyle w:val="Heading1"/><w:pageBreakBefore/></w:pPr><w:r><w:t>Bericht</w:t></w:r></w:p>
          <w:p><w:r><w:t>Erste Seite.</w:t></w:r><w:r><w:br w:type="page"/></w:r></w:p>
          <w:p><w:pPr><w:pStyle w:val="Heading1"/></w:pPr><w:r><w:t>Finanzen</w:t></w:r></w:p>
          <w:p><w:r><w:t>Zweite Seite.</w:t></w:r></w:p>
          <w:p><w:pPr><w:pageBreakBefore/></w:pPr><w:r><w:t>Dritte Seite.</w:t></w:r></w:p>
          <w:p><w:pPr><w:pageBreakBefore w:val="false"/></w:pPr><w:r><w:t>Noch die dritte.</w:t><w:br w:type="page"/></w:r></w:p>
        </w:body></w:document>"#;
        let doc = parse_document(xml, &HashSet::new()).unwrap();
        assert_eq!(doc.pages, 3);
        let got: Vec<(u32, String, &str)> = doc.outline(" > ");
        assert_eq!(
            got,
            vec![
                (1, "Bericht".into(), "Bericht\nErste Seite."),
                (2, "Finanzen".into(), "Finanzen\nZweite Seite."),
                (3, "Finanzen".into(), "Dritte Seite.\nNoch die dritte."),
            ]
        );
    }

    #[test]
    fn styles_that_break_the_page_through_their_base_and_former_properties_ignored() {
        let styles = r#"<w:styles xmlns:w="w">
          <w:style w:type="paragraph" w:styleId="Heading1"><w:pPr><w:pageBreakBefore/></w:pPr></w:style>
          <w:style w:type="paragraph" w:styleId="Chapter"><w:basedOn w:val="Heading1"/></w:style>
          <w:style w:type="paragraph" w:styleId="Quiet"><w:basedOn w:val="Heading1"/><w:pPr><w:pageBreakBefore w:val="0"/></w:pPr></w:style>
          <w:style w:type="paragraph" w:styleId="Loop"><w:basedOn w:val="Loop"/></w:style>
          <w:style w:type="character" w:styleId="Heading1Char"><w:pPr><w:pageBreakBefore/></w:pPr></w:style>
        </w:styles>"#;
        let breaking = page_breaking_styles(styles);
        let mut names: Vec<&str> = breaking.iter().map(String::as_str).collect();
        names.sort_unstable();
        assert_eq!(names, ["Chapter", "Heading1"]);
        let xml = r#"<w:document xmlns:w="w"><w:body>
          <w:p><w:pPr><w:pStyle w:val="Heading1"/></w:pPr><w:r><w:t>Eins</w:t></w:r></w:p>
          <w:p><w:r><w:t>Erste Seite.</w:t></w:r></w:p>
          <w:p><w:pPr><w:pStyle w:val="Chapter"/></w:pPr><w:r><w:t>Zwei</w:t></w:r></w:p>
          <w:p><w:pPr><w:pStyle w:val="Quiet"/></w:pPr><w:r><w:t>Noch zwei</w:t></w:r></w:p>
          <w:p><w:pPr><w:pStyle w:val="Heading1"/><w:pageBreakBefore w:val="false"/></w:pPr><w:r><w:t>Auch noch zwei</w:t></w:r></w:p>
          <w:p><w:pPr><w:pPrChange><w:pPr><w:pageBreakBefore/></w:pPr></w:pPrChange></w:pPr><w:r><w:t>Immer noch zwei.</w:t></w:r></w:p>
        </w:body></w:document>"#;
        let doc = parse_document(xml, &breaking).unwrap();
        assert_eq!(doc.pages, 2);
        let pages: Vec<(u32, &str)> =
            doc.outline("").into_iter().map(|(page, _, text)| (page, text)).collect();
        assert_eq!(pages[0], (1, "Eins\nErste Seite."));
        assert!(pages[1..].iter().all(|(page, _)| *page == 2), "{pages:?}");
    }
}

//! OpenDocument files (LibreOffice, and what many public offices exchange): text documents
//! (`.odt`: headings from `text:h`, pages from LibreOffice's recorded page breaks and from
//! paragraph styles that break the page before or after) and
//! presentations (`.odp`: one page per slide, the title frame as heading, the notes as their own
//! section). Spreadsheets (`.ods`) are read with the other workbooks in `spreadsheet.rs`.

use std::path::Path;

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

use super::docx::attr;
use super::package::Package;
use super::{DocumentExtractor, Extracted};
use crate::api::FileKind;
use crate::error::ExtractError;

/// Extracts `.odt` files.
#[derive(Debug)]
pub struct OdtExtractor;

impl DocumentExtractor for OdtExtractor {
    fn name(&self) -> &'static str {
        "odt"
    }

    fn accepts(&self, kind: FileKind) -> bool {
        kind == FileKind::Odt
    }

    fn extract(&self, _path: &Path, bytes: &[u8]) -> Result<Extracted, ExtractError> {
        let mut package = Package::open(bytes, "an OpenDocument text")?;
        let content = package.read_text("content.xml")?.ok_or_else(|| {
            ExtractError::Malformed("no content.xml: not an OpenDocument file".into())
        })?;
        // Named paragraph styles (a template's "Heading 1" that starts a page) live in
        // styles.xml; an unreadable one costs only its page breaks.
        let mut breaks = PageBreakStyles::default();
        let mut warning = None;
        if let Some(styles) = package.read_text("styles.xml")?
            && let Err(e) = breaks.read(&styles)
        {
            breaks = PageBreakStyles::default();
            warning = Some(format!(
                "styles.xml is damaged ({e}); page breaks set by named styles are not known"
            ));
        }
        let mut res = text_document(&content, breaks)
            .map_err(|e| ExtractError::Malformed(format!("content.xml: {e}")))?;
        res.warnings.extend(warning);
        res.title = meta_title(&mut package)?;
        Ok(res)
    }
}

/// An OpenDocument presentation already opened as `package`.
pub(super) fn presentation(package: &mut Package<'_>) -> Result<Extracted, ExtractError> {
    let content = package.read_text("content.xml")?.ok_or_else(|| {
        ExtractError::Malformed("no content.xml: not an OpenDocument file".into())
    })?;
    let mut res =
        slides(&content).map_err(|e| ExtractError::Malformed(format!("content.xml: {e}")))?;
    if res.pages == 0 {
        return Err(ExtractError::Malformed(
            "no slides (draw:page) found: not an OpenDocument presentation".into(),
        ));
    }
    res.title = meta_title(package)?;
    Ok(res)
}

/// The document's title from `meta.xml` (`dc:title`).
fn meta_title(package: &mut Package<'_>) -> Result<Option<String>, ExtractError> {
    Ok(package.read_text("meta.xml")?.and_then(|meta| super::docx::core_title(&meta)))
}

/// Collects the text of `text:p` / `text:h` paragraphs, with their spans, spaces, tabs and
/// line breaks; paragraphs nested in a paragraph (a frame, a note) join it.
#[derive(Default)]
struct Paragraphs {
    depth: usize,
    text: String,
    heading_level: Option<usize>,
}

impl Paragraphs {
    /// Feeds a start or empty element; `true` when it belonged to paragraph text.
    fn start(&mut self, e: &BytesStart<'_>, empty: bool) -> bool {
        match e.local_name().as_ref() {
            b"p" | b"h" if !empty => {
                if self.depth == 0 {
                    self.text.clear();
                    self.heading_level = (e.local_name().as_ref() == b"h").then(|| {
                        attr(e, b"outline-level").and_then(|l| l.parse().ok()).unwrap_or(1)
                    });
                } else {
                    self.text.push(' ');
                }
                self.depth += 1;
                true
            }
            b"s" if self.depth > 0 => {
                let n: usize = attr(e, b"c").and_then(|c| c.parse().ok()).unwrap_or(1);
                self.text.extend(std::iter::repeat_n(' ', n.min(64)));
                true
            }
            b"tab" if self.depth > 0 => {
                self.text.push('\t');
                true
            }
            b"line-break" if self.depth > 0 => {
                self.text.push('\n');
                true
            }
            _ => false,
        }
    }

    fn text(&mut self, text: &str) {
        if self.depth > 0 {
            self.text.push_str(text);
        }
    }

    /// Feeds an end element; returns a finished top-level paragraph (its text, and its
    /// heading level for `text:h`).
    fn end(&mut self, local: &[u8]) -> Option<(String, Option<usize>)> {
        if matches!(local, b"p" | b"h") && self.depth > 0 {
            self.depth -= 1;
            if self.depth == 0 {
                let text = std::mem::take(&mut self.text).trim().to_owned();
                return Some((text, self.heading_level.take()));
            }
        }
        None
    }
}

/// A text document: sections at headings and page breaks; `breaks` holds the named styles of
/// styles.xml, and the automatic styles of `xml` are added to it.
fn text_document(xml: &str, mut breaks: PageBreakStyles) -> Result<Extracted, quick_xml::Error> {
    let mut res = Extracted::default();
    let mut reader = Reader::from_str(xml);
    let mut paragraphs = Paragraphs::default();
    let mut page = 1u32;
    let mut section_page = 1u32;
    let mut path: Vec<(usize, String)> = Vec::new();
    let mut heading: Vec<String> = Vec::new();
    let mut section = String::new();
    let flush = |res: &mut Extracted, section: &mut String, page: u32, heading: &[String]| {
        res.push_block(page, heading.to_vec(), section);
        section.clear();
    };
    // Paragraph styles that break the page before or after their paragraph (a heading that
    // starts a page), read from the automatic styles ahead of the body.
    let mut paragraph_style: Option<String> = None;
    // Whether anything was written on the current page (a break on an empty page adds none:
    // LibreOffice may record a laid-out break and the style's break for the same page).
    let mut page_used = false;
    let mut break_after = false;
    loop {
        let event = reader.read_event()?;
        if let Event::Start(e) | Event::Empty(e) = &event {
            match e.local_name().as_ref() {
                b"style" => {
                    paragraph_style = breaks.note_style(e);
                    // A style without properties: nothing after it is its.
                    if matches!(event, Event::Empty(_)) {
                        paragraph_style = None;
                    }
                }
                b"paragraph-properties" => {
                    if let Some(name) = &paragraph_style {
                        breaks.note(name, e);
                    }
                }
                b"p" | b"h" if paragraphs.depth == 0 => {
                    let name = attr(e, b"style-name").unwrap_or_default();
                    if (break_after || breaks.before(&name)) && page_used {
                        flush(&mut res, &mut section, section_page, &heading);
                        page += 1;
                        section_page = page;
                        page_used = false;
                    }
                    break_after = breaks.after(&name);
                }
                _ => {}
            }
        }
        match event {
            Event::Start(e) => {
                paragraphs.start(&e, false);
            }
            // The guard feeds every empty element to the paragraph once (spaces, tabs).
            // LibreOffice records a laid-out break at the start of the paragraph that begins
            // the page, also when that paragraph's style broke the page already: a break on a
            // page with nothing on it yet adds none.
            Event::Empty(e)
                if !paragraphs.start(&e, true)
                    && e.local_name().as_ref() == b"soft-page-break"
                    && (page_used || !paragraphs.text.trim().is_empty()) =>
            {
                flush(&mut res, &mut section, section_page, &heading);
                page += 1;
                section_page = page;
                page_used = false;
            }
            Event::Text(t) => paragraphs.text(&t.unescape()?),
            Event::End(e) => {
                if let Some((text, level)) = paragraphs.end(e.local_name().as_ref()) {
                    page_used |= !text.is_empty();
                    if let Some(level) = level {
                        flush(&mut res, &mut section, section_page, &heading);
                        section_page = page;
                        path.retain(|(l, _)| *l < level);
                        path.push((level, text.clone()));
                        heading = path.iter().map(|(_, t)| t.clone()).collect();
                    }
                    if !text.is_empty() {
                        if !section.is_empty() {
                            section.push('\n');
                        }
                        section.push_str(&text);
                    }
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    flush(&mut res, &mut section, section_page, &heading);
    res.pages = page;
    Ok(res)
}

/// The paragraph styles that put a page break before or after their paragraph
/// (`fo:break-before="page"` / `fo:break-after="page"`), set on the style or inherited from its
/// parent (`style:parent-style-name`) unless the style says otherwise (`auto`, `column`).
#[derive(Default)]
struct PageBreakStyles {
    styles: std::collections::HashMap<String, BreakStyle>,
}

/// One paragraph style's own page-break settings and its parent.
#[derive(Default)]
struct BreakStyle {
    parent: Option<String>,
    before: Option<bool>,
    after: Option<bool>,
}

impl PageBreakStyles {
    /// Reads the paragraph styles of a styles.xml (or any XML holding `style:style`s).
    fn read(&mut self, xml: &str) -> Result<(), quick_xml::Error> {
        let mut reader = Reader::from_str(xml);
        let mut current: Option<String> = None;
        loop {
            match reader.read_event()? {
                Event::Start(e) => match e.local_name().as_ref() {
                    b"style" => current = self.note_style(&e),
                    // A default style's properties belong to no named style.
                    b"default-style" => current = None,
                    b"paragraph-properties" => {
                        if let Some(name) = &current {
                            self.note(name, &e);
                        }
                    }
                    _ => {}
                },
                Event::Empty(e) => match e.local_name().as_ref() {
                    // A style without properties: nothing after it is its.
                    b"style" => {
                        self.note_style(&e);
                        current = None;
                    }
                    b"paragraph-properties" => {
                        if let Some(name) = &current {
                            self.note(name, &e);
                        }
                    }
                    _ => {}
                },
                Event::End(e) if e.local_name().as_ref() == b"style" => current = None,
                Event::Eof => return Ok(()),
                _ => {}
            }
        }
    }

    /// Notes a `style:style` element; returns its name when it is a paragraph style.
    fn note_style(&mut self, e: &BytesStart<'_>) -> Option<String> {
        if attr(e, b"family").as_deref() != Some("paragraph") {
            return None;
        }
        let name = attr(e, b"name")?;
        let style = self.styles.entry(name.clone()).or_default();
        style.parent = attr(e, b"parent-style-name");
        Some(name)
    }

    /// Notes the breaks in style `name`'s paragraph properties `e`.
    fn note(&mut self, name: &str, e: &BytesStart<'_>) {
        let style = self.styles.entry(name.to_owned()).or_default();
        if let Some(value) = attr(e, b"break-before") {
            style.before = Some(value == "page");
        }
        if let Some(value) = attr(e, b"break-after") {
            style.after = Some(value == "page");
        }
    }

    fn resolve(&self, name: &str, setting: impl Fn(&BreakStyle) -> Option<bool>) -> bool {
        let mut name = Some(name);
        // Parent chains are short; the bound stops a cycle in a damaged file.
        for _ in 0..16 {
            let Some(style) = name.and_then(|n| self.styles.get(n)) else { return false };
            if let Some(value) = setting(style) {
                return value;
            }
            name = style.parent.as_deref();
        }
        false
    }

    /// Whether a paragraph of style `name` starts a new page.
    fn before(&self, name: &str) -> bool {
        self.resolve(name, |s| s.before)
    }

    /// Whether a page ends after a paragraph of style `name`.
    fn after(&self, name: &str) -> bool {
        self.resolve(name, |s| s.after)
    }
}

/// A presentation: one page per `draw:page`.
fn slides(xml: &str) -> Result<Extracted, quick_xml::Error> {
    let mut res = Extracted::default();
    let mut reader = Reader::from_str(xml);
    let mut paragraphs = Paragraphs::default();
    let mut slide = 0u32;
    let mut title: Option<String> = None;
    let mut body: Vec<String> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    let mut in_notes = false;
    let mut in_title_frame = false;
    loop {
        match reader.read_event()? {
            Event::Start(e) => {
                if paragraphs.start(&e, false) {
                    continue;
                }
                match e.local_name().as_ref() {
                    b"page" if !in_notes => {
                        slide += 1;
                        title = None;
                        body.clear();
                        notes.clear();
                    }
                    b"notes" => in_notes = true,
                    b"frame" => {
                        in_title_frame = attr(&e, b"class").is_some_and(|c| c == "title");
                    }
                    _ => {}
                }
            }
            Event::Empty(e) => {
                paragraphs.start(&e, true);
            }
            Event::Text(t) => paragraphs.text(&t.unescape()?),
            Event::End(e) => {
                let local = e.local_name();
                if let Some((text, _)) = paragraphs.end(local.as_ref()) {
                    if text.is_empty() {
                        continue;
                    }
                    if in_notes {
                        notes.push(text);
                    } else if in_title_frame && title.is_none() {
                        title = Some(text);
                    } else {
                        body.push(text);
                    }
                    continue;
                }
                match local.as_ref() {
                    b"notes" => in_notes = false,
                    b"frame" => in_title_frame = false,
                    b"page" if !in_notes => {
                        let heading: Vec<String> = title.iter().cloned().collect();
                        let mut text = body.join("\n");
                        if let Some(title) = &title {
                            text = format!("{title}\n\n{text}");
                        }
                        res.push_block(slide, heading.clone(), &text);
                        let mut notes_heading = heading;
                        notes_heading.push("Notes".into());
                        res.push_block(slide, notes_heading, &notes.join("\n"));
                    }
                    _ => {}
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    res.pages = slide;
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headings_paragraphs_spaces_and_page_breaks() {
        let xml = r#"<office:document-content xmlns:office="o" xmlns:text="t"><office:body><office:text>
          <text:h text:outline-level="1">Mietvertrag</text:h>
          <text:p>Die Miete <text:span>beträgt</text:span> 900<text:s text:c="2"/>Euro.</text:p>
          <text:soft-page-break/>
          <text:h text:outline-level="2">Kündigung</text:h>
          <text:p>Drei Monate<text:line-break/>zum Monatsende.</text:p>
        </office:text></office:body></office:document-content>"#;
        let doc = text_document(xml, PageBreakStyles::default()).unwrap();
        assert_eq!(doc.pages, 2);
        let got: Vec<(u32, String, &str)> = doc.outline(" > ");
        assert_eq!(
            got,
            [
                (1, "Mietvertrag".into(), "Mietvertrag\nDie Miete beträgt 900  Euro."),
                (2, "Mietvertrag > Kündigung".into(), "Kündigung\nDrei Monate\nzum Monatsende."),
            ]
        );
    }

    #[test]
    fn paragraph_styles_that_break_the_page_start_pages() {
        // As LibreOffice writes a heading that starts a page when the document was never laid
        // out (converted headless): the break is in the heading's automatic style. A laid-out
        // break right before it counts once, and a break after a paragraph starts the next.
        let xml = r#"<office:document-content xmlns:office="o" xmlns:style="s" xmlns:fo="f" xmlns:text="t">
          <office:automatic-styles>
            <style:style style:name="P2" style:family="paragraph" style:parent-style-name="Heading_20_1"><style:paragraph-properties fo:break-before="page"/></style:style>
            <style:style style:name="P3" style:family="paragraph"><style:paragraph-properties fo:break-after="page"/></style:style>
            <style:style style:name="T1" style:family="text"><style:paragraph-properties fo:break-before="page"/></style:style>
          </office:automatic-styles>
          <office:body><office:text>
          <text:h text:style-name="P2" text:outline-level="1">Bericht</text:h>
          <text:p>Erste Seite.</text:p>
          <text:h text:style-name="P2" text:outline-level="1">Finanzen</text:h>
          <text:p text:style-name="P3">Zweite Seite.</text:p>
          <text:p text:style-name="T1">Dritte Seite.</text:p>
          <text:h text:style-name="P2" text:outline-level="1"><text:soft-page-break/>Anhang</text:h>
          <text:p>Vierte Seite.</text:p>
        </office:text></office:body></office:document-content>"#;
        let doc = text_document(xml, PageBreakStyles::default()).unwrap();
        assert_eq!(doc.pages, 4);
        let got: Vec<(u32, &str)> =
            doc.outline("").into_iter().map(|(page, _, text)| (page, text)).collect();
        assert_eq!(
            got,
            [
                (1, "Bericht\nErste Seite."),
                (2, "Finanzen\nZweite Seite."),
                (3, "Dritte Seite."),
                (4, "Anhang\nVierte Seite."),
            ]
        );
    }

    #[test]
    fn named_styles_in_styles_xml_break_pages_through_their_children() {
        // A template's heading style starts every chapter on a new page (styles.xml); the
        // automatic styles LibreOffice derives from it inherit that, unless one says "auto".
        let styles = r#"<office:document-styles xmlns:office="o" xmlns:style="s" xmlns:fo="f">
          <office:styles>
            <style:style style:name="Heading" style:family="paragraph"><style:text-properties/></style:style>
            <style:style style:name="Heading_20_1" style:family="paragraph" style:parent-style-name="Heading">
              <style:paragraph-properties fo:break-before="page"/>
            </style:style>
            <style:style style:name="Heading_20_1" style:family="text"><style:paragraph-properties fo:break-before="auto"/></style:style>
            <style:style style:name="Loop_A" style:family="paragraph" style:parent-style-name="Loop_B"/>
            <style:default-style style:family="paragraph"><style:paragraph-properties fo:break-before="page"/></style:default-style>
            <style:style style:name="Loop_B" style:family="paragraph" style:parent-style-name="Loop_A"/>
          </office:styles></office:document-styles>"#;
        let content = r#"<office:document-content xmlns:office="o" xmlns:style="s" xmlns:fo="f" xmlns:text="t">
          <office:automatic-styles>
            <style:style style:name="P1" style:family="paragraph" style:parent-style-name="Heading_20_1"/>
            <style:style style:name="P2" style:family="paragraph" style:parent-style-name="Heading_20_1">
              <style:paragraph-properties fo:break-before="auto"/>
            </style:style>
          </office:automatic-styles>
          <office:body><office:text>
          <text:h text:style-name="Heading_20_1" text:outline-level="1">Einleitung</text:h>
          <text:p>Erste Seite.</text:p>
          <text:h text:style-name="P1" text:outline-level="1">Finanzen</text:h>
          <text:p>Zweite Seite.</text:p>
          <text:h text:style-name="P2" text:outline-level="1">Ausblick</text:h>
          <text:p text:style-name="Loop_A">Noch die zweite Seite.</text:p>
          <text:h text:style-name="Heading_20_1" text:outline-level="1">Anhang</text:h>
          <text:p>Dritte Seite.</text:p>
        </office:text></office:body></office:document-content>"#;
        let mut breaks = PageBreakStyles::default();
        breaks.read(styles).unwrap();
        let doc = text_document(content, breaks).unwrap();
        assert_eq!(doc.pages, 3);
        let got: Vec<(u32, &str)> =
            doc.outline("").into_iter().map(|(page, _, text)| (page, text)).collect();
        assert_eq!(
            got,
            [
                (1, "Einleitung\nErste Seite."),
                (2, "Finanzen\nZweite Seite."),
                (2, "Ausblick\nNoch die zweite Seite."),
                (3, "Anhang\nDritte Seite."),
            ]
        );
    }

    #[test]
    fn slides_with_titles_and_notes() {
        let xml = r#"<office:document-content xmlns:office="o" xmlns:draw="d" xmlns:text="t" xmlns:presentation="p"><office:body><office:presentation>
          <draw:page draw:name="page1">
            <draw:frame presentation:class="title"><draw:text-box><text:p>Budget 2027</text:p></draw:text-box></draw:frame>
            <draw:frame presentation:class="outline"><draw:text-box><text:list><text:list-item><text:p>Travel is cut by a third.</text:p></text:list-item></text:list></draw:text-box></draw:frame>
            <presentation:notes><draw:page-thumbnail/><draw:frame presentation:class="notes"><draw:text-box><text:p>Mention the freeze.</text:p></draw:text-box></draw:frame></presentation:notes>
          </draw:page>
          <draw:page draw:name="page2"><draw:frame><draw:text-box><text:p>Questions?</text:p></draw:text-box></draw:frame></draw:page>
        </office:presentation></office:body></office:document-content>"#;
        let doc = slides(xml).unwrap();
        assert_eq!(doc.pages, 2);
        let got: Vec<(u32, String, &str)> = doc.outline(" > ");
        assert_eq!(
            got,
            [
                (1, "Budget 2027".into(), "Budget 2027\n\nTravel is cut by a third."),
                (1, "Budget 2027 > Notes".into(), "Mention the freeze."),
                (2, String::new(), "Questions?"),
            ]
        );
    }
}

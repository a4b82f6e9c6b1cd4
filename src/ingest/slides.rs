//! PowerPoint presentations (`.pptx`): one page per slide in the deck's order, the slide's
//! title as its heading, the speaker notes as a section of their own ("Notes").
//! OpenDocument presentations are read in `opendocument.rs`.

use std::collections::HashMap;
use std::path::Path;

use quick_xml::Reader;
use quick_xml::events::Event;

use super::docx::{attr, core_title};
use super::opendocument;
use super::package::Package;
use super::{DocumentExtractor, Extracted};
use crate::api::FileKind;
use crate::error::ExtractError;

/// Extracts `.pptx` and `.odp` files.
#[derive(Debug)]
pub struct SlidesExtractor;

impl DocumentExtractor for SlidesExtractor {
    fn name(&self) -> &'static str {
        "slides"
    }

    fn accepts(&self, kind: FileKind) -> bool {
        kind == FileKind::Presentation
    }

    fn extract(&self, _path: &Path, bytes: &[u8]) -> Result<Extracted, ExtractError> {
        let mut package = Package::open(bytes, "a presentation")?;
        // OpenDocument keeps its slides in content.xml; PowerPoint in ppt/slides/.
        if package.read("content.xml")?.is_some() {
            return opendocument::presentation(&mut package);
        }
        pptx(&mut package)
    }
}

/// A PowerPoint deck.
fn pptx(package: &mut Package<'_>) -> Result<Extracted, ExtractError> {
    let slides = slide_parts(package)?;
    if slides.is_empty() {
        return Err(ExtractError::Malformed(
            "no slides found (ppt/presentation.xml lists none): not a PowerPoint presentation"
                .into(),
        ));
    }
    let mut res = Extracted { pages: slides.len() as u32, ..Extracted::default() };
    for (index, part) in slides.iter().enumerate() {
        let number = index as u32 + 1;
        let Some(xml) = package.read_text(part)? else {
            res.warnings.push(format!("slide {number}: {part} is missing"));
            continue;
        };
        let slide =
            shapes_text(&xml).map_err(|e| ExtractError::Malformed(format!("{part}: {e}")))?;
        let heading: Vec<String> = slide.title.iter().cloned().collect();
        res.push_block(number, heading.clone(), &slide.text);
        if let Some(notes_part) = notes_part(package, part)?
            && let Some(xml) = package.read_text(&notes_part)?
        {
            let notes = shapes_text(&xml)
                .map_err(|e| ExtractError::Malformed(format!("{notes_part}: {e}")))?;
            let mut heading = heading;
            heading.push("Notes".into());
            res.push_block(number, heading, &notes.text);
        }
    }
    if let Some(core) = package.read_text("docProps/core.xml")? {
        res.title = core_title(&core);
    }
    Ok(res)
}

/// The slide parts in the deck's order (`ppt/presentation.xml`'s slide list through its
/// relationships), else the slide files by number.
fn slide_parts(package: &mut Package<'_>) -> Result<Vec<String>, ExtractError> {
    let rels = match package.read_text("ppt/_rels/presentation.xml.rels")? {
        Some(xml) => relationships(&xml, "ppt/"),
        None => HashMap::new(),
    };
    let mut ordered = Vec::new();
    if let Some(xml) = package.read_text("ppt/presentation.xml")? {
        let mut reader = Reader::from_str(&xml);
        loop {
            match reader.read_event() {
                Ok(Event::Start(e) | Event::Empty(e)) if e.local_name().as_ref() == b"sldId" => {
                    if let Some(target) = relationship_id(&e).and_then(|id| rels.get(&id)) {
                        ordered.push(target.clone());
                    }
                }
                Ok(Event::Eof) => break,
                Err(e) => {
                    return Err(ExtractError::Malformed(format!("ppt/presentation.xml: {e}")));
                }
                _ => {}
            }
        }
    }
    if ordered.is_empty() {
        let mut numbered: Vec<(u32, String)> = package
            .names()
            .into_iter()
            .filter_map(|name| {
                let n =
                    name.strip_prefix("ppt/slides/slide")?.strip_suffix(".xml")?.parse().ok()?;
                Some((n, name))
            })
            .collect();
        numbered.sort();
        ordered = numbered.into_iter().map(|(_, name)| name).collect();
    }
    Ok(ordered)
}

/// The `r:id` of an element (not its plain `id`, which a slide id also has).
fn relationship_id(e: &quick_xml::events::BytesStart<'_>) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| a.key.local_name().as_ref() == b"id" && a.key.prefix().is_some())
        .and_then(|a| a.unescape_value().ok().map(|v| v.into_owned()))
}

/// The notes part of a slide, from the slide's relationships.
fn notes_part(package: &mut Package<'_>, slide: &str) -> Result<Option<String>, ExtractError> {
    let (dir, file) = slide.rsplit_once('/').unwrap_or(("", slide));
    let Some(xml) = package.read_text(&format!("{dir}/_rels/{file}.rels"))? else {
        return Ok(None);
    };
    let rels = relationships(&xml, &format!("{dir}/"));
    Ok(rels.into_values().find(|target| target.contains("notesSlides/")))
}

/// A relationships part: id → target part name, resolved against `base` (the folder of the
/// part the relationships belong to).
fn relationships(xml: &str, base: &str) -> HashMap<String, String> {
    let mut res = HashMap::new();
    let mut reader = Reader::from_str(xml);
    while let Ok(event) = reader.read_event() {
        match event {
            Event::Start(e) | Event::Empty(e) if e.local_name().as_ref() == b"Relationship" => {
                if let (Some(id), Some(target)) = (attr(&e, b"Id"), attr(&e, b"Target")) {
                    res.insert(id, resolve(base, &target));
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    res
}

/// `target` relative to the folder `base` ("ppt/slides/" + "../notesSlides/n1.xml").
fn resolve(base: &str, target: &str) -> String {
    if let Some(absolute) = target.strip_prefix('/') {
        return absolute.to_owned();
    }
    let mut parts: Vec<&str> = base.split('/').filter(|p| !p.is_empty()).collect();
    for piece in target.split('/') {
        match piece {
            ".." => {
                parts.pop();
            }
            "." | "" => {}
            other => parts.push(other),
        }
    }
    parts.join("/")
}

/// The text of a slide or notes page.
struct SlideText {
    /// The text of the title placeholder, if the slide has one.
    title: Option<String>,
    /// Every other text shape's paragraphs, one per line, shapes separated by blank lines.
    text: String,
}

/// Reads the text shapes of a slide: paragraphs (`a:p`) of runs (`a:t`), line breaks, and
/// which shape is the title. Slide-number and date placeholders are left out.
fn shapes_text(xml: &str) -> Result<SlideText, quick_xml::Error> {
    let mut reader = Reader::from_str(xml);
    let mut title = None;
    let mut blocks: Vec<String> = Vec::new();
    let mut shape = String::new();
    let mut paragraph = String::new();
    let mut placeholder: Option<String> = None;
    let mut in_text = false;
    let mut depth_in_shape = 0usize;
    loop {
        match reader.read_event()? {
            Event::Start(e) => match e.local_name().as_ref() {
                b"sp" | b"graphicFrame" => {
                    if depth_in_shape == 0 {
                        shape.clear();
                        placeholder = None;
                    }
                    depth_in_shape += 1;
                }
                b"t" => in_text = true,
                b"p" => paragraph.clear(),
                _ => {}
            },
            Event::Empty(e) => match e.local_name().as_ref() {
                b"ph" => placeholder = Some(attr(&e, b"type").unwrap_or_else(|| "body".into())),
                b"br" => paragraph.push('\n'),
                _ => {}
            },
            Event::Text(t) if in_text => paragraph.push_str(&t.unescape()?),
            Event::End(e) => match e.local_name().as_ref() {
                b"t" => in_text = false,
                b"p" if !in_text => {
                    let line = paragraph.trim();
                    if !line.is_empty() {
                        if !shape.is_empty() {
                            shape.push('\n');
                        }
                        shape.push_str(line);
                    }
                    paragraph.clear();
                }
                b"sp" | b"graphicFrame" => {
                    depth_in_shape = depth_in_shape.saturating_sub(1);
                    if depth_in_shape > 0 {
                        continue;
                    }
                    let text = std::mem::take(&mut shape);
                    match placeholder.as_deref() {
                        Some("title" | "ctrTitle") if title.is_none() && !text.is_empty() => {
                            title = Some(text.replace('\n', " "));
                        }
                        Some("sldNum" | "dt" | "ftr" | "hdr" | "sldImg") => {}
                        _ if !text.is_empty() => blocks.push(text),
                        _ => {}
                    }
                }
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
    }
    let mut text = blocks.join("\n\n");
    if let Some(title) = &title {
        // The title is part of the slide's text too, so a search for it finds the slide.
        text = if text.is_empty() { title.clone() } else { format!("{title}\n\n{text}") };
    }
    Ok(SlideText { title, text })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_targets_resolve_against_the_part_folder() {
        assert_eq!(
            resolve("ppt/slides/", "../notesSlides/notesSlide1.xml"),
            "ppt/notesSlides/notesSlide1.xml"
        );
        assert_eq!(resolve("ppt/", "slides/slide2.xml"), "ppt/slides/slide2.xml");
        assert_eq!(resolve("ppt/", "/ppt/slides/slide3.xml"), "ppt/slides/slide3.xml");
    }

    #[test]
    fn a_slide_has_its_title_and_body_without_the_slide_number() {
        let xml = r#"<p:sld xmlns:p="p" xmlns:a="a"><p:cSld><p:spTree>
          <p:sp><p:nvSpPr><p:nvPr><p:ph type="title"/></p:nvPr></p:nvSpPr>
            <p:txBody><a:p><a:r><a:t>Quarterly </a:t></a:r><a:r><a:t>results</a:t></a:r></a:p></p:txBody></p:sp>
          <p:sp><p:nvSpPr><p:nvPr><p:ph idx="1"/></p:nvPr></p:nvSpPr>
            <p:txBody><a:p><a:r><a:t>Revenue grew by 12 percent.</a:t></a:r></a:p>
            <a:p><a:r><a:t>Costs fell.</a:t></a:r><a:br/><a:r><a:t>Margins rose.</a:t></a:r></a:p></p:txBody></p:sp>
          <p:sp><p:nvSpPr><p:nvPr><p:ph type="sldNum"/></p:nvPr></p:nvSpPr>
            <p:txBody><a:p><a:r><a:t>7</a:t></a:r></a:p></p:txBody></p:sp>
        </p:spTree></p:cSld></p:sld>"#;
        let slide = shapes_text(xml).unwrap();
        assert_eq!(slide.title.as_deref(), Some("Quarterly results"));
        assert_eq!(
            slide.text,
            "Quarterly results\n\nRevenue grew by 12 percent.\nCosts fell.\nMargins rose."
        );
    }
}

//! E-books (`.epub`): the chapters in reading order (the package's spine), one page per
//! chapter, each chapter's headings as its sections' headings (its `<title>` when it has none,
//! else its entry in the book's table of contents), and the book's title from the package
//! metadata.

use std::collections::HashMap;
use std::path::Path;

use quick_xml::Reader;
use quick_xml::events::Event;

use super::docx::attr;
use super::html::HtmlPage;
use super::package::Package;
use super::text::decode_text;
use super::{DocumentExtractor, Extracted};
use crate::api::FileKind;
use crate::error::ExtractError;

/// Extracts `.epub` files.
#[derive(Debug)]
pub struct EpubExtractor;

impl DocumentExtractor for EpubExtractor {
    fn name(&self) -> &'static str {
        "epub"
    }

    fn accepts(&self, kind: FileKind) -> bool {
        kind == FileKind::Epub
    }

    fn extract(&self, _path: &Path, bytes: &[u8]) -> Result<Extracted, ExtractError> {
        let mut package = Package::open(bytes, "an EPUB e-book")?;
        if package
            .read("META-INF/encryption.xml")?
            .is_some_and(|x| x.windows(13).any(|w| w == b"EncryptedData"))
        {
            return Err(ExtractError::Encrypted("the e-book is DRM-protected".into()));
        }
        let container = package.read_text("META-INF/container.xml")?.ok_or_else(|| {
            ExtractError::Malformed("no META-INF/container.xml: not an EPUB e-book".into())
        })?;
        let opf_path = rootfile(&container).ok_or_else(|| {
            ExtractError::Malformed("META-INF/container.xml names no package file".into())
        })?;
        let opf = package.read_text(&opf_path)?.ok_or_else(|| {
            ExtractError::Malformed(format!("the package file {opf_path} is missing"))
        })?;
        let book =
            read_package(&opf).map_err(|e| ExtractError::Malformed(format!("{opf_path}: {e}")))?;
        let base = opf_path.rsplit_once('/').map(|(dir, _)| format!("{dir}/")).unwrap_or_default();
        // Chapter titles from the table of contents, for chapters whose headings are styled
        // paragraphs (LibreOffice's export) and whose <title> is empty.
        let mut toc_warning = None;
        let toc = match &book.toc {
            Some((href, kind)) => {
                let path = join_path(&base, &percent_decode(href));
                // Only titles come from it: a contents file that cannot be read costs them.
                match package.read(&path) {
                    Ok(Some(bytes)) => {
                        toc_labels(&decode_text(&bytes, &mut Vec::new()), *kind, &path)
                    }
                    Ok(None) => HashMap::new(),
                    Err(e) => {
                        toc_warning = Some(format!("table of contents {path} not read: {e}"));
                        HashMap::new()
                    }
                }
            }
            None => HashMap::new(),
        };
        let mut res = Extracted { title: book.title.clone(), ..Extracted::default() };
        res.warnings.extend(toc_warning);
        let mut chapter = 0u32;
        for href in &book.spine {
            let name = format!("{base}{}", percent_decode(href.split('#').next().unwrap_or(href)));
            let Some(bytes) = package.read(&name)? else {
                res.warnings.push(format!("chapter file {name} is missing"));
                continue;
            };
            let source = decode_text(&bytes, &mut res.warnings);
            let page = HtmlPage::parse(&source);
            if page.sections.iter().all(|(_, text)| text.trim().is_empty()) {
                continue; // Cover images, blank pages.
            }
            chapter += 1;
            res.warnings.extend(page.hidden_warning().map(|w| format!("chapter {chapter}: {w}")));
            let chapter_title =
                page.title.clone().or_else(|| toc.get(&join_path("", &name)).cloned());
            for (heading, text) in &page.sections {
                let heading = if heading.is_empty() {
                    chapter_title.iter().cloned().collect()
                } else {
                    heading.clone()
                };
                res.push_block(chapter, heading, text);
            }
        }
        if chapter == 0 {
            return Err(ExtractError::Malformed(
                "the e-book's spine lists no readable chapter".into(),
            ));
        }
        res.pages = chapter;
        Ok(res)
    }
}

/// The package file's path from `META-INF/container.xml`.
fn rootfile(xml: &str) -> Option<String> {
    let mut reader = Reader::from_str(xml);
    loop {
        match reader.read_event().ok()? {
            Event::Start(e) | Event::Empty(e) if e.local_name().as_ref() == b"rootfile" => {
                return attr(&e, b"full-path");
            }
            Event::Eof => return None,
            _ => {}
        }
    }
}

/// What the package file says: the title, the chapter files in reading order and where the
/// table of contents is.
struct Book {
    title: Option<String>,
    spine: Vec<String>,
    toc: Option<(String, TocKind)>,
}

fn read_package(xml: &str) -> Result<Book, quick_xml::Error> {
    let mut reader = Reader::from_str(xml);
    let mut manifest: HashMap<String, String> = HashMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut title = None;
    let mut in_title = false;
    let mut toc = None;
    loop {
        match reader.read_event()? {
            Event::Start(e) | Event::Empty(e) => match e.local_name().as_ref() {
                b"item" => {
                    if let (Some(id), Some(href)) = (attr(&e, b"id"), attr(&e, b"href")) {
                        let is_nav = attr(&e, b"properties")
                            .is_some_and(|p| p.split_whitespace().any(|p| p == "nav"));
                        let is_ncx =
                            attr(&e, b"media-type").as_deref() == Some("application/x-dtbncx+xml");
                        if is_nav {
                            toc = Some((href.clone(), TocKind::Nav));
                        } else if is_ncx && toc.is_none() {
                            toc = Some((href.clone(), TocKind::Ncx));
                        }
                        manifest.insert(id, href);
                    }
                }
                b"itemref" => {
                    let linear = attr(&e, b"linear").is_none_or(|l| l != "no");
                    if let Some(id) = attr(&e, b"idref").filter(|_| linear) {
                        order.push(id);
                    }
                }
                b"title" if title.is_none() => in_title = true,
                _ => {}
            },
            Event::Text(t) if in_title => {
                let text = t.unescape()?.trim().to_owned();
                if !text.is_empty() {
                    title = Some(text);
                }
                in_title = false;
            }
            Event::End(_) => in_title = false,
            Event::Eof => break,
            _ => {}
        }
    }
    let spine = order.iter().filter_map(|id| manifest.get(id).cloned()).collect();
    Ok(Book { title, spine, toc })
}

/// How the book's table of contents is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TocKind {
    /// EPUB 3's navigation document (`<nav>` of `<a href>` links).
    Nav,
    /// EPUB 2's NCX (`navPoint`s with a `navLabel` and a `content src`).
    Ncx,
}

/// The table of contents' first entry for each file, keyed by the file's path inside the
/// package (`toc_path` is the contents file's own path; its links are relative to it).
fn toc_labels(xml: &str, kind: TocKind, toc_path: &str) -> HashMap<String, String> {
    let dir = toc_path.rsplit_once('/').map(|(dir, _)| format!("{dir}/")).unwrap_or_default();
    let mut labels = HashMap::new();
    let mut reader = Reader::from_str(xml);
    let mut label = String::new();
    let mut target: Option<String> = None;
    let mut in_label = false;
    let mut in_toc = false;
    let add = |labels: &mut HashMap<String, String>, target: &str, label: &str| {
        let label = label.split_whitespace().collect::<Vec<_>>().join(" ");
        let file = target.split('#').next().unwrap_or(target);
        if !label.is_empty() && !file.is_empty() {
            labels.entry(join_path(&dir, &percent_decode(file))).or_insert(label);
        }
    };
    while let Ok(event) = reader.read_event() {
        match (kind, event) {
            // Only the table of contents (`<nav epub:type="toc">`), not the landmarks or the
            // page list, names chapters.
            (TocKind::Nav, Event::Start(e)) if e.local_name().as_ref() == b"nav" => {
                in_toc =
                    attr(&e, b"type").is_some_and(|t| t.split_whitespace().any(|t| t == "toc"));
            }
            (TocKind::Nav, Event::End(e)) if e.local_name().as_ref() == b"nav" => in_toc = false,
            (TocKind::Nav, Event::Start(e)) if in_toc && e.local_name().as_ref() == b"a" => {
                target = attr(&e, b"href");
                label.clear();
                in_label = true;
            }
            (TocKind::Nav, Event::End(e)) if e.local_name().as_ref() == b"a" => {
                if let Some(target) = target.take() {
                    add(&mut labels, &target, &label);
                }
                in_label = false;
            }
            (TocKind::Ncx, Event::Start(e)) if e.local_name().as_ref() == b"navLabel" => {
                label.clear();
                in_label = true;
            }
            (TocKind::Ncx, Event::End(e)) if e.local_name().as_ref() == b"navLabel" => {
                in_label = false;
            }
            (TocKind::Ncx, Event::Start(e) | Event::Empty(e))
                if e.local_name().as_ref() == b"content" =>
            {
                if let Some(src) = attr(&e, b"src") {
                    add(&mut labels, &src, &label);
                }
            }
            (_, Event::Text(t)) if in_label => {
                if let Ok(text) = t.unescape() {
                    label.push_str(&text);
                }
            }
            (_, Event::Eof) => break,
            _ => {}
        }
    }
    labels
}

/// `relative` resolved against the folder `dir` (which ends in `/` or is empty), `..` and `.`
/// segments folded.
fn join_path(dir: &str, relative: &str) -> String {
    let mut parts: Vec<&str> = dir.split('/').filter(|p| !p.is_empty()).collect();
    for part in relative.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    parts.join("/")
}

/// Undoes `%xx` escapes in a package-relative URL.
fn percent_decode(href: &str) -> String {
    let bytes = href.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(byte) = href.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spine_order_title_and_escaped_names() {
        let opf = r#"<package xmlns="http://www.idpf.org/2007/opf" xmlns:dc="http://purl.org/dc/elements/1.1/">
          <metadata><dc:title>Der Mietvertrag</dc:title></metadata>
          <manifest><item id="c2" href="text/ch%202.xhtml"/><item id="c1" href="text/ch1.xhtml"/><item id="n" href="notes.xhtml"/></manifest>
          <spine><itemref idref="c1"/><itemref idref="c2"/><itemref idref="n" linear="no"/></spine></package>"#;
        let book = read_package(opf).unwrap();
        assert_eq!(book.title.as_deref(), Some("Der Mietvertrag"));
        assert_eq!(book.spine, ["text/ch1.xhtml", "text/ch%202.xhtml"]);
        assert_eq!(percent_decode("text/ch%202.xhtml"), "text/ch 2.xhtml");
        let container = r#"<container><rootfiles><rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/></rootfiles></container>"#;
        assert_eq!(rootfile(container).as_deref(), Some("OEBPS/content.opf"));
    }

    #[test]
    fn chapter_titles_from_the_navigation_document_and_the_ncx() {
        let nav = r#"<html xmlns="http://www.w3.org/1999/xhtml" xmlns:epub="http://www.idpf.org/2007/ops"><body><nav epub:type="toc"><ol>
          <li><a href="sections/section0001.xhtml">Jahres<b>bericht</b></a></li>
          <li><a href="sections/section0001.xhtml#later">Not the first entry</a></li>
          <li><a href="../text/Kapitel%202.xhtml#top">Finanzen</a></li></ol></nav>
          <nav epub:type="landmarks"><ol><li><a href="cover.xhtml">Cover</a></li></ol></nav></body></html>"#;
        let labels = toc_labels(nav, TocKind::Nav, "OEBPS/toc.xhtml");
        assert_eq!(labels.get("OEBPS/sections/section0001.xhtml").unwrap(), "Jahresbericht");
        assert_eq!(labels.get("text/Kapitel 2.xhtml").unwrap(), "Finanzen");
        assert_eq!(labels.len(), 2);
        let ncx = r#"<ncx xmlns="http://www.daisy.org/z3986/2005/ncx/"><navMap>
          <navPoint id="n1"><navLabel><text>The Calm</text></navLabel><content src="ch1.xhtml"/></navPoint>
          <navPoint id="n2"><navLabel><text>The Storm</text></navLabel><content src="ch2.xhtml#s"/></navPoint>
        </navMap></ncx>"#;
        let labels = toc_labels(ncx, TocKind::Ncx, "toc.ncx");
        assert_eq!(labels.get("ch1.xhtml").unwrap(), "The Calm");
        assert_eq!(labels.get("ch2.xhtml").unwrap(), "The Storm");
        assert_eq!(join_path("a/b/", "./../c/d.xhtml"), "a/c/d.xhtml");
    }
}

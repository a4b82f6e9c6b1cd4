//! Zip archives (`.zip`): every entry Quarry can read is extracted with the parser of its
//! kind, inside the archive's budget of entries and inflated bytes (archives inside archives
//! share what is left of it, two levels deep). The archive is one document whose parts run on
//! through its entries' pages; each passage's heading names the entry ("reports/q3.pdf ›
//! page 4"), so a citation leads to the file inside the archive.

use std::path::Path;

use super::package::Package;
use super::sniff::kind_from_extension;
use super::{DocumentExtractor, Extracted, NestedOcr, extract_nested, left_out_note};
use crate::api::FileKind;
use crate::error::ExtractError;

/// Archives inside archives are opened this deep.
const MAX_DEPTH: usize = 2;

/// Extracts `.zip` archives.
#[derive(Debug)]
pub struct ArchiveExtractor;

impl DocumentExtractor for ArchiveExtractor {
    fn name(&self) -> &'static str {
        "zip"
    }

    fn accepts(&self, kind: FileKind) -> bool {
        kind == FileKind::Archive
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
        let mut package = Package::open(bytes, "a zip archive")?;
        let mut res = Extracted::default();
        let mut part = 0u32;
        let mut unread = Vec::new();
        add_entries(&mut res, &mut package, &[], &mut part, &mut unread, 0, ocr)?;
        if !unread.is_empty() {
            let why = "type not read, or archives nested too deep";
            res.warnings.push(left_out_note(&unread, "entry", "entries", why));
        }
        res.pages = part.max(1);
        Ok(res)
    }
}

/// Extracts the entries of `package` into `res`, their pages numbered on from `part`.
fn add_entries(
    res: &mut Extracted,
    package: &mut Package<'_>,
    outer: &[String],
    part: &mut u32,
    unread: &mut Vec<String>,
    depth: usize,
    ocr: Option<&NestedOcr>,
) -> Result<(), ExtractError> {
    for name in package.names() {
        if name.ends_with('/') || is_hidden(&name) {
            continue;
        }
        let mut label = outer.to_vec();
        label.push(name.clone());
        let shown = label.join(" › ");
        let kind = kind_from_extension(Path::new(&name));
        // Images are read by OCR, when it is on.
        let Some(kind) = kind.filter(|k| *k != FileKind::Image || ocr.is_some()) else {
            unread.push(shown);
            continue;
        };
        if kind == FileKind::Archive && depth + 1 >= MAX_DEPTH {
            unread.push(shown);
            continue;
        }
        // An entry larger than what is left of the budget is left out (the archive may hold
        // a huge log beside the documents); one that lies about its size ends the archive.
        if package.declared_size(&name).is_some_and(|size| size > package.budget_left()) {
            res.warnings.push(format!(
                "{shown}: larger than the {} MB left of the archive's budget, left out",
                package.budget_left() / (1024 * 1024)
            ));
            continue;
        }
        // Read through the package, so every entry counts against its budget.
        let Some(bytes) = package.read(&name)? else { continue };
        if kind == FileKind::Archive {
            let budget = package.budget_left();
            match Package::open(&bytes, "a zip archive") {
                Ok(inner) => {
                    let mut inner = inner.with_budget(budget);
                    add_entries(res, &mut inner, &label, part, unread, depth + 1, ocr)?;
                }
                Err(e) => res.warnings.push(format!("{shown}: {e}")),
            }
            continue;
        }
        let Some(extracted) = extract_nested(kind, &name, &bytes, ocr) else {
            unread.push(shown);
            continue;
        };
        match extracted {
            // An image left for lack of OCR time: the outer file names those together.
            Ok(doc) if doc.pages == 0 && doc.sections.is_empty() && kind == FileKind::Image => {}
            Ok(doc) => {
                let base = *part;
                let paged = doc.pages > 1;
                for section in &doc.sections {
                    let mut heading = label.clone();
                    if paged {
                        heading.push(format!("{} {}", kind.page_name(), section.page));
                    }
                    heading.extend(section.heading.iter().cloned());
                    res.push_block(
                        base + section.page,
                        heading,
                        &doc.text[section.start..section.end],
                    );
                }
                *part = base + doc.pages.max(1);
                res.warnings.extend(doc.warnings.iter().map(|w| format!("{shown}: {w}")));
            }
            Err(e) => res.warnings.push(format!("{shown}: {e}")),
        }
    }
    Ok(())
}

/// Entries no one meant to keep: macOS resource forks and dot files.
fn is_hidden(name: &str) -> bool {
    name.split('/').any(|part| part.starts_with('.') || part == "__MACOSX")
}

#[cfg(test)]
mod tests {
    use std::io::{Cursor, Write};

    use super::*;

    fn zip_of(parts: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        let mut zip = zip::ZipWriter::new(&mut out);
        for (name, bytes) in parts {
            zip.start_file(*name, zip::write::SimpleFileOptions::default()).unwrap();
            zip.write_all(bytes).unwrap();
        }
        zip.finish().unwrap();
        out.into_inner()
    }

    #[test]
    fn entries_nested_archives_and_what_is_left_out() {
        let inner = zip_of(&[("deep/note.md", b"# Boiler\n\nServiced in October.\n")]);
        let too_deep = zip_of(&[("x.zip", &zip_of(&[("y.txt", b"never read")]))]);
        let outer = zip_of(&[
            ("docs/", b""),
            ("docs/rent.txt", b"The rent is 900 euros."),
            ("__MACOSX/docs/._rent.txt", b"junk"),
            ("photo.jpg", b"\xff\xd8\xff"),
            ("inner.zip", &inner),
            ("nested.zip", &too_deep),
        ]);
        let doc = ArchiveExtractor.extract(Path::new("a.zip"), &outer).unwrap();
        let got: Vec<(u32, String, &str)> = doc
            .sections
            .iter()
            .map(|s| (s.page, s.heading.join(" › "), doc.text[s.start..s.end].trim()))
            .collect();
        assert_eq!(
            got,
            [
                (1, "docs/rent.txt".into(), "The rent is 900 euros."),
                (2, "inner.zip › deep/note.md › Boiler".into(), "# Boiler\n\nServiced in October."),
            ]
        );
        assert_eq!(doc.pages, 2);
        assert_eq!(
            doc.warnings,
            [
                "2 entries not indexed (type not read, or archives nested too deep): photo.jpg, nested.zip › x.zip"
            ]
        );
    }
}

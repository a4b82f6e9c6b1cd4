//! Zip archives (`.zip`): every entry Quarry can read is a document of its own, extracted with
//! the parser of its kind inside the archive's budget of entries and inflated bytes (archives
//! inside archives share what is left of it, two levels deep). An entry's document is named by
//! the archive's path and the entry's ("/docs/reports.zip/q3/summary.pdf"), keeps its own pages,
//! and is cited like any file; the archive itself holds no text, only the notes on what was left
//! out.

use std::collections::HashSet;
use std::path::Path;

use super::package::Package;
use super::sniff::kind_from_extension;
use super::{DocumentExtractor, Extracted, Member, NestedOcr, extract_nested, left_out_note};
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
        let mut unread = Vec::new();
        add_entries(&mut res, &mut package, "", &mut unread, 0, ocr)?;
        if !unread.is_empty() {
            let why = "type not read, or archives nested too deep";
            res.warnings.push(left_out_note(&unread, "entry", "entries", why));
        }
        res.pages = 1;
        Ok(res)
    }
}

/// The entries of `package` worth reading, each with the member name it is indexed under:
/// folders, macOS resource forks and dot files left out; `.`, `..` and empty segments dropped
/// (an entry named "../../x" cannot name anything outside its archive); names that come out
/// the same numbered " (2)", " (3)" before the extension, in archive order. The viewer finds
/// an entry again by the same list.
fn entry_names(package: &Package<'_>) -> Vec<(String, String)> {
    let mut taken = HashSet::new();
    let mut res = Vec::new();
    for entry in package.names() {
        if entry.ends_with('/') || is_hidden(&entry) {
            continue;
        }
        let clean = entry
            .split(['/', '\\'])
            .filter(|part| !part.is_empty() && *part != "." && *part != "..")
            .collect::<Vec<_>>()
            .join("/");
        if clean.is_empty() {
            continue;
        }
        // The number goes before the extension, which says what the entry is.
        let (stem, extension) = match clean.rfind('.') {
            Some(dot) if dot > clean.rfind('/').map_or(0, |slash| slash + 1) => clean.split_at(dot),
            _ => (clean.as_str(), ""),
        };
        let mut name = clean.clone();
        let mut n = 1;
        while !taken.insert(name.clone()) {
            n += 1;
            name = format!("{stem} ({n}){extension}");
        }
        res.push((entry, name));
    }
    res
}

/// Extracts the entries of `package` as members of `res`, their names under `outer`.
fn add_entries(
    res: &mut Extracted,
    package: &mut Package<'_>,
    outer: &str,
    unread: &mut Vec<String>,
    depth: usize,
    ocr: Option<&NestedOcr>,
) -> Result<(), ExtractError> {
    for (entry, name) in entry_names(package) {
        let shown = format!("{outer}{name}");
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
        if package.declared_size(&entry).is_some_and(|size| size > package.budget_left()) {
            res.warnings.push(format!(
                "{shown}: larger than the {} MB left of the archive's budget, left out",
                package.budget_left() / (1024 * 1024)
            ));
            continue;
        }
        // Read through the package, so every entry counts against its budget.
        let Some(bytes) = package.read(&entry)? else { continue };
        if kind == FileKind::Archive {
            let budget = package.budget_left();
            match Package::open(&bytes, "a zip archive") {
                Ok(inner) => {
                    let mut inner = inner.with_budget(budget);
                    add_entries(res, &mut inner, &format!("{shown}/"), unread, depth + 1, ocr)?;
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
            extracted => res.members.push(Member::new(shown, kind, &bytes, extracted)),
        }
    }
    Ok(())
}

/// The bytes of member `name` of the archive `bytes` (as [`ArchiveExtractor`] named it), read
/// within the archive's budget and at most `max_bytes`, for a viewer that shows the original.
pub fn read_member(bytes: &[u8], name: &str, max_bytes: u64) -> Result<Vec<u8>, ExtractError> {
    read_member_at(bytes, name, max_bytes, 0)
}

fn read_member_at(
    bytes: &[u8],
    name: &str,
    max_bytes: u64,
    depth: usize,
) -> Result<Vec<u8>, ExtractError> {
    let mut package = Package::open(bytes, "a zip archive")?;
    let not_found = || ExtractError::Malformed(format!("the archive holds no entry {name}"));
    for (entry, member) in entry_names(&package) {
        if member == name {
            if package.declared_size(&entry).is_some_and(|size| size > max_bytes) {
                return Err(ExtractError::Malformed(format!(
                    "{name} is larger than {} MiB",
                    max_bytes >> 20
                )));
            }
            return package.read(&entry)?.ok_or_else(not_found);
        }
        let inner = name.strip_prefix(&member).and_then(|rest| rest.strip_prefix('/'));
        if let Some(inner) = inner
            && depth + 1 < MAX_DEPTH
            && kind_from_extension(Path::new(&member)) == Some(FileKind::Archive)
        {
            let Some(archive) = package.read(&entry)? else { continue };
            return read_member_at(&archive, inner, max_bytes, depth + 1);
        }
    }
    Err(not_found())
}

/// Entries no one meant to keep: macOS resource forks and dot files (`.` and `..` are not
/// names, [`entry_names`] drops them).
fn is_hidden(name: &str) -> bool {
    name.split(['/', '\\'])
        .any(|part| (part.starts_with('.') && part != "." && part != "..") || part == "__MACOSX")
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
        assert!(doc.text.is_empty() && doc.sections.is_empty(), "{doc:?}");
        let got: Vec<(&str, FileKind, String)> = doc
            .members
            .iter()
            .map(|m| {
                let inner = m.extracted.as_ref().unwrap();
                let text = inner.sections.iter().map(|s| inner.text[s.start..s.end].trim());
                (m.name.as_str(), m.kind, text.collect::<Vec<_>>().join(" | "))
            })
            .collect();
        assert_eq!(
            got,
            [
                ("docs/rent.txt", FileKind::Text, "The rent is 900 euros.".into()),
                (
                    "inner.zip/deep/note.md",
                    FileKind::Markdown,
                    "# Boiler\n\nServiced in October.".into()
                ),
            ]
        );
        assert_eq!(doc.members[0].size, 22);
        assert_eq!(doc.members[0].sha256.len(), 64);
        assert_eq!(
            doc.warnings,
            [
                "2 entries not indexed (type not read, or archives nested too deep): photo.jpg, nested.zip/x.zip"
            ]
        );
        // The viewer finds each member again, inside the inner archive too.
        assert_eq!(
            read_member(&outer, "docs/rent.txt", 1 << 20).unwrap(),
            b"The rent is 900 euros."
        );
        assert_eq!(
            read_member(&outer, "inner.zip/deep/note.md", 1 << 20).unwrap(),
            b"# Boiler\n\nServiced in October.\n"
        );
        assert!(read_member(&outer, "docs/rent.txt", 4).is_err());
        assert!(read_member(&outer, "docs/other.txt", 1 << 20).is_err());
    }

    #[test]
    fn entry_names_stay_inside_the_archive_and_are_unique() {
        let outer = zip_of(&[
            ("../../etc/notes.txt", b"one"),
            ("etc/notes.txt", b"two"),
            ("./a//b.txt", b"three"),
        ]);
        let doc = ArchiveExtractor.extract(Path::new("a.zip"), &outer).unwrap();
        let names: Vec<&str> = doc.members.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["etc/notes.txt", "etc/notes (2).txt", "a/b.txt"]);
        assert_eq!(read_member(&outer, "etc/notes (2).txt", 1 << 20).unwrap(), b"two");
    }
}

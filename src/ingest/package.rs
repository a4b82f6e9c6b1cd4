//! Zip-based document packages (Office Open XML, OpenDocument, EPUB): parts read by name within
//! a budget of entries and inflated bytes per document, so a zip bomb ends as that file's
//! failure with a reason instead of taking the worker's memory.

use std::io::{Cursor, Read};

use crate::error::ExtractError;

/// Most entries a package may list.
pub(super) const MAX_ENTRIES: usize = 50_000;
/// Most bytes all parts read from one package may inflate to, together: far above the text
/// parts of any real document (media parts are never read), and well inside the worker's
/// memory cap.
pub(super) const MAX_INFLATED_BYTES: u64 = 200 * 1024 * 1024;

/// An opened package and what has been inflated from it so far.
pub(super) struct Package<'a> {
    archive: zip::ZipArchive<Cursor<&'a [u8]>>,
    inflated: u64,
    budget: u64,
}

impl<'a> Package<'a> {
    /// Opens `bytes` as a zip package; `what` names the format in errors ("a PowerPoint file").
    pub(super) fn open(bytes: &'a [u8], what: &str) -> Result<Self, ExtractError> {
        let archive = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| {
            ExtractError::Malformed(format!("not {what}: not a valid zip archive ({e})"))
        })?;
        if archive.len() > MAX_ENTRIES {
            return Err(ExtractError::Malformed(format!(
                "the archive lists {} entries (more than {MAX_ENTRIES}): refused as a zip bomb",
                archive.len()
            )));
        }
        Ok(Self { archive, inflated: 0, budget: MAX_INFLATED_BYTES })
    }

    /// The same package with a smaller inflation budget (an archive inside an archive gets
    /// what is left of its parent's).
    pub(super) fn with_budget(mut self, bytes: u64) -> Self {
        self.budget = bytes.min(self.budget);
        self
    }

    /// The inflated size entry `name` declares (which a hostile archive may understate).
    pub(super) fn declared_size(&mut self, name: &str) -> Option<u64> {
        self.archive.by_name(name).ok().map(|entry| entry.size())
    }

    /// Inflated bytes this package may still read.
    pub(super) fn budget_left(&self) -> u64 {
        self.budget.saturating_sub(self.inflated)
    }

    /// Refuses a package whose entries declare more inflated bytes, together, than the
    /// budget (for packages another library reads; a lying declaration is still caught by
    /// the worker's memory cap).
    pub(super) fn check_declared_sizes(&mut self) -> Result<(), ExtractError> {
        let mut declared = 0u64;
        for index in 0..self.archive.len() {
            let entry = self
                .archive
                .by_index_raw(index)
                .map_err(|e| ExtractError::Malformed(format!("damaged archive: {e}")))?;
            declared = declared.saturating_add(entry.size());
        }
        if declared > self.budget {
            return Err(ExtractError::Malformed(format!(
                "its parts inflate to more than {} MB: refused as a zip bomb",
                self.budget / (1024 * 1024)
            )));
        }
        Ok(())
    }

    /// The names of its entries, in archive order.
    pub(super) fn names(&self) -> Vec<String> {
        self.archive.file_names().map(str::to_owned).collect()
    }

    /// The inflated bytes of part `name`, `None` when there is no such part.
    pub(super) fn read(&mut self, name: &str) -> Result<Option<Vec<u8>>, ExtractError> {
        let file = match self.archive.by_name(name) {
            Ok(f) => f,
            Err(zip::result::ZipError::FileNotFound) => return Ok(None),
            Err(e) => return Err(ExtractError::Malformed(format!("{name}: {e}"))),
        };
        if file.encrypted() {
            return Err(ExtractError::Encrypted("the document is password-protected".into()));
        }
        let left = self.budget.saturating_sub(self.inflated);
        let too_large = || {
            ExtractError::Malformed(format!(
                "its parts inflate to more than {} MB: refused as a zip bomb",
                self.budget / (1024 * 1024)
            ))
        };
        // The declared size may lie; it only sizes the first allocation.
        let mut bytes = Vec::with_capacity(file.size().min(left + 1) as usize);
        match file.take(left + 1).read_to_end(&mut bytes) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::OutOfMemory => return Err(too_large()),
            Err(e) => return Err(ExtractError::Malformed(format!("{name}: {e}"))),
        }
        self.inflated += bytes.len() as u64;
        if self.inflated > self.budget {
            return Err(too_large());
        }
        Ok(Some(bytes))
    }

    /// Part `name` as UTF-8 text (XML parts are), `None` when there is no such part.
    pub(super) fn read_text(&mut self, name: &str) -> Result<Option<String>, ExtractError> {
        match self.read(name)? {
            Some(bytes) => String::from_utf8(bytes)
                .map(Some)
                .map_err(|_| ExtractError::Malformed(format!("{name}: not UTF-8"))),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn zip_of(parts: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        let mut zip = zip::ZipWriter::new(&mut out);
        let options = zip::write::SimpleFileOptions::default();
        for (name, bytes) in parts {
            zip.start_file(*name, options).unwrap();
            zip.write_all(bytes).unwrap();
        }
        zip.finish().unwrap();
        out.into_inner()
    }

    #[test]
    fn parts_are_read_within_the_budget() {
        let zeros = vec![0u8; 10_000];
        let bytes = zip_of(&[("a.xml", b"<a/>"), ("big.bin", &zeros)]);
        let mut package = Package::open(&bytes, "a test package").unwrap().with_budget(5_000);
        assert_eq!(package.read_text("a.xml").unwrap().as_deref(), Some("<a/>"));
        assert!(package.read("missing").unwrap().is_none());
        let err = package.read("big.bin").unwrap_err().to_string();
        assert!(err.contains("zip bomb"), "{err}");
        let err = Package::open(b"not a zip", "a test package").err().unwrap().to_string();
        assert!(err.contains("not a test package"), "{err}");
    }
}

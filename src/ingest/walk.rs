//! Finds the files under the sources a user added: hidden files and anything a `.gitignore`,
//! `.ignore` or `.quarryignore` excludes are skipped, symlinks are followed with loop detection.

use std::path::{Path, PathBuf};

use super::sniff::{Sniffed, kind_from_extension, sniff_path};
use crate::api::FileKind;

/// A file found under a source, with its size and modification time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundFile {
    /// Absolute path.
    pub path: PathBuf,
    /// What sniffing says it is (`Err` holds the mismatch reason).
    pub kind: Result<FileKind, String>,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the Unix epoch.
    pub mtime_ns: i64,
}

/// Something the walk could not read; reported, never fatal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalkProblem {
    /// The path involved, when known.
    pub path: Option<PathBuf>,
    /// What went wrong.
    pub message: String,
}

/// Walks `root` (a folder or a single file) and returns the documents under it.
/// A single file named explicitly is taken even when hidden or ignored.
pub fn walk(root: &Path) -> (Vec<FoundFile>, Vec<WalkProblem>) {
    let mut files = Vec::new();
    let mut problems = Vec::new();
    if root.is_file() {
        match found_file(root, true) {
            Ok(Some(f)) => files.push(f),
            Ok(None) => problems.push(WalkProblem {
                path: Some(root.to_owned()),
                message: "not a supported document type".into(),
            }),
            Err(e) => {
                problems.push(WalkProblem { path: Some(root.to_owned()), message: e.to_string() })
            }
        }
        return (files, problems);
    }
    // Links are followed inside the folder only: a link that leads out of it (`keys ->
    // ~/.ssh`, `x.pdf -> /usr/bin/ls`) is not indexed, and said so.
    let real_root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_owned());
    let outside: std::sync::Arc<std::sync::Mutex<Vec<(PathBuf, PathBuf)>>> = Default::default();
    let outside_seen = std::sync::Arc::clone(&outside);
    let walker = ignore::WalkBuilder::new(root)
        .hidden(true)
        .follow_links(true)
        .filter_entry(move |entry| {
            if !entry.path_is_symlink() {
                return true;
            }
            match std::fs::canonicalize(entry.path()) {
                Ok(real) if !real.starts_with(&real_root) => {
                    if let Ok(mut seen) = outside_seen.lock() {
                        seen.push((entry.path().to_owned(), real));
                    }
                    false
                }
                _ => true,
            }
        })
        .git_ignore(true)
        .git_global(false)
        .git_exclude(false)
        .require_git(false)
        .add_custom_ignore_filename(".quarryignore")
        .build();
    for entry in walker {
        match entry {
            Ok(entry) => {
                if !entry.file_type().is_some_and(|t| t.is_file()) {
                    continue;
                }
                match found_file(entry.path(), false) {
                    Ok(Some(f)) => files.push(f),
                    Ok(None) => {}
                    Err(e) => problems.push(WalkProblem {
                        path: Some(entry.path().to_owned()),
                        message: e.to_string(),
                    }),
                }
            }
            Err(err) => {
                problems.push(WalkProblem { path: error_path(&err), message: err.to_string() })
            }
        }
    }
    if let Ok(seen) = outside.lock() {
        for (link, target) in seen.iter() {
            problems.push(WalkProblem {
                path: Some(link.clone()),
                message: format!(
                    "a link to {}, outside the folder being indexed: not indexed",
                    target.display()
                ),
            });
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    (files, problems)
}

fn found_file(path: &Path, explicit: bool) -> std::io::Result<Option<FoundFile>> {
    // Cheap filter first: most files in a big folder are not documents, and opening each
    // one to sniff would cost a read per image.
    if kind_from_extension(path).is_none() && path.extension().is_some() && !explicit {
        return Ok(None);
    }
    let meta = std::fs::metadata(path)?;
    let kind = match sniff_path(path)? {
        Sniffed::Document(kind) => Ok(kind),
        Sniffed::Mismatch(reason) => Err(reason),
        Sniffed::Ignored => return Ok(None),
    };
    let mtime_ns = mtime_ns(&meta);
    let path = std::path::absolute(path)?;
    Ok(Some(FoundFile { path, kind, size: meta.len(), mtime_ns }))
}

/// A file's modification time in nanoseconds since 1970 (0 when unknown): what the library
/// records to tell an unchanged file, and what it compares before serving one.
pub fn mtime_ns(meta: &std::fs::Metadata) -> i64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as i64)
}

fn error_path(err: &ignore::Error) -> Option<PathBuf> {
    match err {
        ignore::Error::WithPath { path, .. } => Some(path.clone()),
        ignore::Error::WithDepth { err, .. } => error_path(err),
        ignore::Error::Loop { child, .. } => Some(child.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_hidden_ignored_and_binary_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("a.txt"), "alpha").unwrap();
        std::fs::write(root.join("b.md"), "# beta").unwrap();
        std::fs::write(root.join(".hidden.txt"), "hidden").unwrap();
        std::fs::write(root.join("c.gif"), b"GIF89a").unwrap();
        std::fs::write(root.join("skip.txt"), "ignored").unwrap();
        std::fs::write(root.join(".quarryignore"), "skip.txt\n").unwrap();
        std::fs::create_dir(root.join("sub")).unwrap();
        std::fs::write(root.join("sub/d.html"), "<html><p>delta</p>").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(root, root.join("sub/loop")).unwrap();
        let (files, problems) = walk(root);
        let names: Vec<_> =
            files.iter().map(|f| f.path.strip_prefix(root).unwrap().to_owned()).collect();
        assert_eq!(names, vec![PathBuf::from("a.txt"), "b.md".into(), "sub/d.html".into()]);
        #[cfg(unix)]
        assert!(problems.iter().any(|p| p.message.contains("loop")), "{problems:?}");
    }

    #[cfg(unix)]
    #[test]
    fn links_that_leave_the_folder_are_not_followed_and_said_so() {
        let dir = tempfile::tempdir().unwrap();
        let secrets = dir.path().join("secrets");
        std::fs::create_dir(&secrets).unwrap();
        std::fs::write(secrets.join("id.txt"), "private key").unwrap();
        std::fs::write(dir.path().join("elsewhere.txt"), "not in the folder").unwrap();
        let root = dir.path().join("docs");
        std::fs::create_dir(&root).unwrap();
        std::fs::write(root.join("a.txt"), "alpha").unwrap();
        std::fs::create_dir(root.join("inner")).unwrap();
        std::fs::write(root.join("inner/b.txt"), "beta").unwrap();
        std::os::unix::fs::symlink(&secrets, root.join("keys")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("elsewhere.txt"), root.join("x.txt")).unwrap();
        std::os::unix::fs::symlink(root.join("inner"), root.join("again")).unwrap();
        let (files, problems) = walk(&root);
        let names: Vec<_> =
            files.iter().map(|f| f.path.strip_prefix(&root).unwrap().to_owned()).collect();
        assert_eq!(names, vec![PathBuf::from("a.txt"), "again/b.txt".into(), "inner/b.txt".into()]);
        for link in ["keys", "x.txt"] {
            assert!(
                problems.iter().any(|p| p.path.as_deref() == Some(&root.join(link))
                    && p.message.contains("outside the folder")),
                "{link}: {problems:?}"
            );
        }
    }
}

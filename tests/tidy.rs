//! House rules checked on the source tree (rust-analyzer's tidy tests): every Rust file says
//! why it exists in a `//!` line, there are no `mod.rs` files, and no test is switched off.

use std::path::{Path, PathBuf};

use crate::support::repo_root;

fn rust_files(dir: &Path, res: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if path.is_dir() {
            if name != "target" && name != "node_modules" && name != "gen" {
                rust_files(&path, res);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            res.push(path);
        }
    }
}

fn all_rust_files() -> Vec<PathBuf> {
    let root = repo_root();
    let mut files = Vec::new();
    for dir in ["src", "tests", "src-tauri/src", "benches"] {
        rust_files(&root.join(dir), &mut files);
    }
    files.push(root.join("src-tauri/build.rs"));
    files
}

#[test]
fn every_file_starts_with_a_module_doc() {
    let mut missing = Vec::new();
    for path in all_rust_files() {
        let text = std::fs::read_to_string(&path).unwrap();
        if !text.trim_start().starts_with("//!") {
            missing.push(path);
        }
    }
    assert!(missing.is_empty(), "files without a leading //! line: {missing:?}");
}

#[test]
fn no_mod_rs_and_no_disabled_tests() {
    let attribute = ["#[", "ignore", "]"].concat();
    let should_panic = ["#[", "should_panic"].concat();
    for path in all_rust_files() {
        assert_ne!(
            path.file_name().unwrap(),
            "mod.rs",
            "use stage.rs next to stage/: {}",
            path.display()
        );
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(&attribute), "{} switches a test off", path.display());
        assert!(!text.contains(&should_panic), "{} expects a panic", path.display());
    }
}

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
    for dir in ["src", "tests", "src-tauri/src", "benches", "crates"] {
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

/// `unsafe` lives only in the kernel crate and the allocator hook, and every unsafe block or
/// impl says why it is sound in a `// SAFETY:` comment just above it.
#[test]
fn unsafe_code_stays_in_its_places_and_says_why() {
    let needle = ["unsafe", " {"].concat();
    let needle_impl = ["unsafe", " impl"].concat();
    let mut unexplained = Vec::new();
    for path in all_rust_files() {
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let relative = path.strip_prefix(repo_root()).unwrap().to_string_lossy().into_owned();
        for (i, line) in lines.iter().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if !code.contains(&needle) && !code.contains(&needle_impl) {
                continue;
            }
            if relative.starts_with("tests/") {
                continue;
            }
            assert!(
                relative.starts_with("crates/quant-kernels/") || relative == "src/allocator.rs",
                "{relative}:{}: unsafe code outside the kernel crate and the allocator",
                i + 1
            );
            let above = &lines[i.saturating_sub(8)..i];
            if !above.iter().any(|l| l.contains("SAFETY:")) && !line.contains("SAFETY:") {
                unexplained.push(format!("{relative}:{}", i + 1));
            }
        }
    }
    assert!(unexplained.is_empty(), "unsafe without a SAFETY comment: {unexplained:?}");
}

/// Third-party storage and parsing types stay in their stage: only `src/index` names LanceDB,
/// Arrow or tantivy, only `src/ingest` names the PDF, HTML, office and text-decoding libraries.
#[test]
fn third_party_types_stay_in_their_stage() {
    let stages: [(&str, &[&str]); 2] = [
        ("src/index", &["lancedb::", "tantivy::", "arrow_array::", "arrow_schema::"]),
        (
            "src/ingest",
            &[
                "pdf_extract::",
                "lopdf::",
                "scraper::",
                "quick_xml::",
                "zip::",
                "pulldown_cmark::",
                "chardetng::",
                "encoding_rs::",
                "calamine::",
                "mail_parser::",
                "csv::",
            ],
        ),
    ];
    let mut strays = Vec::new();
    for path in all_rust_files() {
        let relative = path.strip_prefix(repo_root()).unwrap().to_string_lossy().into_owned();
        if !relative.starts_with("src/") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for (stage, names) in stages {
            if relative.starts_with(stage) {
                continue;
            }
            for (i, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or("");
                if let Some(name) = names.iter().find(|n| code.contains(*n)) {
                    strays.push(format!("{relative}:{}: {name}", i + 1));
                }
            }
        }
    }
    assert!(strays.is_empty(), "stage types used outside their stage: {strays:?}");
}

/// The desktop shell's commands, the app manifest in `src-tauri/build.rs` and the window's
/// capability list name the same commands: a command added to one and not the others would be
/// refused by the ACL at run time.
#[test]
fn shell_commands_manifest_and_capabilities_agree() {
    let root = repo_root();
    let read = |path: &str| std::fs::read_to_string(root.join(path)).unwrap();
    let between = |text: &str, start: &str, end: char| -> Vec<String> {
        let from = text.find(start).unwrap_or_else(|| panic!("no {start}")) + start.len();
        let body = &text[from..];
        body[..body.find(end).unwrap()]
            .split(|c: char| c == ',' || c.is_whitespace())
            .map(|s| s.trim_matches('"').to_owned())
            .filter(|s| !s.is_empty())
            .collect()
    };
    let mut handler = between(&read("src-tauri/src/lib.rs"), "generate_handler![", ']');
    let mut manifest = between(&read("src-tauri/build.rs"), "COMMANDS: &[&str] = &[", ']');
    let capability: serde_json::Value =
        serde_json::from_str(&read("src-tauri/capabilities/default.json")).unwrap();
    let mut allowed: Vec<String> = capability["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p.as_str()?.strip_prefix("allow-").map(|c| c.replace('-', "_")))
        .collect();
    handler.sort();
    manifest.sort();
    allowed.sort();
    assert_eq!(handler, manifest, "generate_handler! and build.rs COMMANDS differ");
    assert_eq!(handler, allowed, "the commands and the capability's allow-* permissions differ");
    let core: Vec<&serde_json::Value> = capability["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p.as_str().is_some_and(|p| p.starts_with("core:")))
        .collect();
    assert!(core.is_empty(), "the window needs no core permission: {core:?}");
}

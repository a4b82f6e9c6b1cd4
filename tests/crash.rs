//! Kill -9 during indexing, then reopen: the library opens, reports every document truthfully,
//! and the next run finishes with no lost or duplicated chunks (DESIGN.md §3).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::{TempLibrary, json_of, quarry_bin};

const N_FILES: usize = 300;

fn write_corpus(dir: &std::path::Path) {
    for idx in 0..N_FILES {
        let text =
            format!("Document number {idx} carries the marker word zq{idx}x and nothing else.");
        std::fs::write(dir.join(format!("doc{idx:04}.txt")), text).unwrap();
    }
}

/// Starts `quarry index`, waits for `lines` committed files, then kills it with SIGKILL.
fn index_and_kill(lib: &TempLibrary, docs: &std::path::Path, lines: usize, extra_delay: Duration) {
    let mut child = Command::new(quarry_bin())
        .arg("--data-dir")
        .arg(lib.path())
        .arg("--models-dir")
        .arg(lib.path().join("no-models"))
        .args(["index", "--workers", "1"])
        .arg(docs)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut seen = 0;
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if line.starts_with("indexed") {
            seen += 1;
            if seen >= lines {
                break;
            }
        }
    }
    std::thread::sleep(extra_delay);
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn killed_index_run_leaves_a_consistent_library_that_finishes_later() {
    let docs = tempfile::tempdir().unwrap();
    write_corpus(docs.path());
    let lib = TempLibrary::new();
    for (lines, delay_ms) in [(1, 0), (1, 150), (40, 30)] {
        index_and_kill(&lib, docs.path(), lines, Duration::from_millis(delay_ms));
        // A reader opens the library at once and sees documents in honest states.
        let status = json_of(&lib.run(&["status", "--json"]));
        let documents = status["documents"].as_u64().unwrap();
        let settled = status["indexed"].as_u64().unwrap() + status["pending"].as_u64().unwrap();
        assert_eq!(documents, settled, "{status}");
    }
    let report = json_of(&lib.run(&["index", docs.path().to_str().unwrap(), "--json"]));
    assert_eq!(report["failed"], 0, "{report}");
    let status = json_of(&lib.run(&["status", "--json"]));
    assert_eq!(status["indexed"], N_FILES as u64, "{status}");
    assert_eq!(status["pending"], 0, "{status}");
    // One chunk per file: none lost, none duplicated, both indexes in step.
    assert_eq!(status["chunks"], N_FILES as u64, "{status}");
    assert_eq!(status["text_index_chunks"], N_FILES as u64, "{status}");
    for idx in [0, 137, N_FILES - 1] {
        let hits = json_of(&lib.run(&["search", &format!("zq{idx}x"), "--json"]));
        let hits = hits["hits"].as_array().unwrap();
        assert_eq!(hits.len(), 1, "zq{idx}x: {hits:?}");
        assert!(hits[0]["doc_path"].as_str().unwrap().ends_with(&format!("doc{idx:04}.txt")));
    }
}

//! The `quarry` command line: exit codes, clear errors, and the JSON documents of DESIGN.md §5.

use crate::support::{TempLibrary, json_of};

#[test]
fn json_contract_and_exit_codes() {
    let docs = tempfile::tempdir().unwrap();
    crate::ingest::write_fixtures(docs.path());
    let lib = TempLibrary::new();
    let dir = docs.path().to_str().unwrap();

    let report = json_of(&lib.run(&["index", dir, "--json"]));
    for key in
        ["added", "updated", "removed", "unchanged", "failed", "chunks", "seconds", "failures"]
    {
        assert!(report.get(key).is_some(), "index JSON lacks {key}: {report}");
    }
    assert_eq!(
        report["failures"][0]["path"].as_str().unwrap(),
        docs.path().join("fake.pdf").to_str().unwrap()
    );

    let docs_json = json_of(&lib.run(&["docs", "--failed", "--json"]));
    let failed = docs_json["documents"].as_array().unwrap();
    assert_eq!(failed.len(), 1);
    for key in
        ["path", "kind", "state", "error", "warnings", "pages", "chunks", "sha256", "indexed_at"]
    {
        assert!(failed[0].get(key).is_some(), "docs JSON lacks {key}: {}", failed[0]);
    }

    let hits = json_of(&lib.run(&["search", "harbour master", "-k", "2", "--json"]));
    let hit = &hits["hits"][0];
    for key in ["chunk_id", "doc_path", "page", "score", "text"] {
        assert!(hit.get(key).is_some(), "search JSON lacks {key}: {hit}");
    }

    let status = json_of(&lib.run(&["status", "--json"]));
    assert_eq!(status["documents"], 7);

    // A path that does not exist is a user error: exit code 1, a message naming it.
    let out = lib.run(&["index", "/no/such/folder"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/no/such/folder: no such file or folder"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    let removed =
        json_of(&lib.run(&["remove", docs.path().join("notes.txt").to_str().unwrap(), "--json"]));
    assert_eq!(removed["removed"], 1);

    // Human output names every file with its state.
    std::fs::write(docs.path().join("new.txt"), "fresh words").unwrap();
    let out = lib.run(&["index", dir]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("indexed  ") && stdout.contains("new.txt"), "{stdout}");
    assert!(stdout.contains("notes.txt"), "re-added file not listed: {stdout}");
}

/// Log lines written to a pipe or a file carry no colour codes, and `--quiet` leaves only
/// errors (here: none) on stderr while the summary still goes to stdout.
#[test]
fn log_lines_are_plain_off_a_terminal_and_quiet_leaves_only_errors() {
    let docs = tempfile::tempdir().unwrap();
    std::fs::write(docs.path().join("a.txt"), "The boiler is serviced in October.").unwrap();
    let dir = docs.path().to_str().unwrap();
    let lib = TempLibrary::new();
    // No models folder: the missing embedder is a warning.
    let out = lib.run(&["index", dir]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not found"), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "colour codes in a pipe: {stderr:?}");
    let quiet = lib.run(&["--quiet", "index", dir]);
    assert!(quiet.status.success());
    assert!(quiet.stderr.is_empty(), "{}", String::from_utf8_lossy(&quiet.stderr));
    assert!(String::from_utf8_lossy(&quiet.stdout).contains("unchanged"));
}

/// Conversations on the command line: `ask --thread new|ID`, `chat` on a pipe, and `threads`
/// list, rename, export and delete; an unknown thread is a user error naming it.
#[test]
fn conversations_are_asked_listed_exported_and_deleted() {
    let docs = tempfile::tempdir().unwrap();
    crate::ingest::write_fixtures(docs.path());
    let lib = TempLibrary::new();
    json_of(&lib.run(&["index", docs.path().to_str().unwrap(), "--json"]));

    let first = json_of(&lib.run(&[
        "ask",
        "--evidence",
        "--thread",
        "new",
        "--json",
        "Who must boats register with?",
    ]));
    let id = first["conversation"]["thread_id"].as_str().unwrap().to_owned();
    assert_eq!(first["conversation"]["turn"], 1);
    let second = json_of(&lib.run(&[
        "ask",
        "--evidence",
        "--thread",
        &id,
        "--json",
        "And what about them?",
    ]));
    assert_eq!(second["conversation"]["turn"], 2);
    assert_eq!(second["conversation"]["rewritten_by"], "rules");
    assert_ne!(second["question"], "And what about them?");

    let listed = json_of(&lib.run(&["threads", "list", "--json"]));
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["turns"], 2);
    let out = lib.run(&["threads", "rename", &id, "Harbour"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let exported = json_of(&lib.run(&["threads", "export", &id, "--format", "json"]));
    assert_eq!(exported["thread"]["title"], "Harbour");
    assert_eq!(exported["audit"].as_array().unwrap().len(), 2);
    let markdown = lib.run(&["threads", "export", &id]);
    let markdown = String::from_utf8_lossy(&markdown.stdout);
    assert!(
        markdown.starts_with("# Harbour") && markdown.contains("*Searched for:*"),
        "{markdown}"
    );

    // A conversation on a pipe: the follow-up's standalone question is printed before the
    // answer, and the thread is saved.
    let mut chat = std::process::Command::new(crate::support::quarry_bin())
        .args(["--data-dir", lib.path().to_str().unwrap(), "--models-dir"])
        .arg(lib.path().join("no-models"))
        .args(["chat", "--evidence"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    chat.stdin
        .take()
        .unwrap()
        .write_all(b"Who must boats register with?\nAnd where do they moor?\n")
        .unwrap();
    let out = chat.wait_with_output().unwrap();
    let (stdout, stderr) =
        (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("(searching for: "), "{stdout}");
    assert!(stderr.contains("saved; continue it with `quarry chat --thread"), "{stderr}");
    assert_eq!(json_of(&lib.run(&["threads", "list", "--json"])).as_array().unwrap().len(), 2);

    let out = lib.run(&["threads", "delete", &id]);
    assert!(out.status.success());
    let out = lib.run(&["ask", "--evidence", "--thread", &id, "And?"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no conversation with the id"), "{stderr}");
}

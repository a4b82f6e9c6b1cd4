//! `quarry mcp` driven by the official MCP Python client (PyPI `mcp`, in the throwaway
//! virtualenv `make test` installs; `QUARRY_MCP_PYTHON` names its interpreter): the tools are
//! listed and each one called, documents are listed and read as resources, and the answers are
//! the engine's (cited, or refused).

use std::path::PathBuf;
use std::process::Command;

use crate::support::{TempLibrary, quarry_bin, repo_root};

fn mcp_python(test: &str) -> Option<PathBuf> {
    let python = std::env::var_os("QUARRY_MCP_PYTHON").map(PathBuf::from).or_else(|| {
        std::env::var_os("HOME")
            .map(|h| PathBuf::from(h).join(".cache/quarry/venvs/mcp/bin/python"))
    })?;
    let usable =
        Command::new(&python).args(["-c", "import mcp"]).output().is_ok_and(|o| o.status.success());
    if usable {
        Some(python)
    } else {
        eprintln!(
            "SKIPPED {test}: no MCP client at {} (`make mcp-client` installs it)",
            python.display()
        );
        None
    }
}

#[tokio::test]
async fn an_mcp_client_lists_and_calls_every_tool_and_reads_documents() {
    const TEST: &str = "an_mcp_client_lists_and_calls_every_tool_and_reads_documents";
    let Some(python) = mcp_python(TEST) else { return };
    let lib = TempLibrary::new();
    let docs = lib.path().join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    std::fs::write(
        docs.join("lease.md"),
        "# Lease\n\nThe notice period for terminating the lease is three months.\n\nThe rent is \
         due on the first working day of each month.\n",
    )
    .unwrap();
    std::fs::write(docs.join("garden.txt"), "Roses need sun, water and patience.\n").unwrap();
    let report = lib.index(lib.in_process_config(), &[&docs]).await;
    assert_eq!(report.failed, 0, "{:?}", report.failures);

    let output = Command::new(&python)
        .arg(repo_root().join("tests/mcp_client.py"))
        .arg(quarry_bin())
        .arg(lib.path())
        .arg(lib.path().join("no-models"))
        .arg("What is the notice period for terminating the lease?")
        .env_remove("QUARRY_LOG")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "client failed: {}\n{}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
    let out: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(out["server"], "quarry");
    assert_eq!(out["tools"], serde_json::json!(["ask", "get_passage", "list_documents", "search"]));

    let hits = out["search"]["hits"].as_array().unwrap();
    assert_eq!(out["search"]["error"], false);
    assert!(hits[0]["document"].as_str().unwrap().ends_with("lease.md"), "{hits:?}");
    assert!(hits[0]["text"].as_str().unwrap().contains("three months"));
    assert_eq!(hits[0]["page"], 1);

    let answer = &out["ask"]["answer"];
    assert_eq!(answer["abstained"], false, "{answer}");
    assert_eq!(answer["mode"], "evidence");
    assert!(answer["answer"].as_str().unwrap().contains("three months"), "{answer}");
    let citation = &answer["citations"][0];
    assert!(citation["document"].as_str().unwrap().ends_with("lease.md"));
    assert!(citation["quote"].as_str().unwrap().contains("three months"));
    let refused = &out["ask_unanswerable"]["answer"];
    assert_eq!(refused["abstained"], true, "{refused}");
    assert_eq!(refused["answer"], "I could not find the answer in your documents.");

    let documents = out["documents"].as_array().unwrap();
    assert_eq!(documents.len(), 2, "{documents:?}");
    assert!(documents.iter().all(|d| d["uri"].as_str().unwrap().starts_with("quarry://document/")));

    let passage = &out["passage"]["passage"];
    assert_eq!(out["passage"]["error"], false);
    assert_eq!(passage["chunk_id"], hits[0]["chunk_id"]);
    assert!(passage["text"].as_str().unwrap().contains("three months"));
    // A passage that is not there is the tool's error, which the host's model reads.
    assert_eq!(out["missing_passage"]["error"], true);
    assert!(out["missing_passage"]["text"][0].as_str().unwrap().contains("no-such-chunk"));

    let resources = out["resources"].as_array().unwrap();
    assert_eq!(resources.len(), 2, "{resources:?}");
    let read = &out["read"];
    assert_eq!(read["uri"], resources[0]["uri"]);
    let text = read["text"].as_str().unwrap();
    assert!(text.contains("three months") || text.contains("Roses"), "{text}");
}

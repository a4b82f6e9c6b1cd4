//! Offline means offline: indexing, search and answers (quotes, and a real model) work inside a
//! network namespace with no interfaces (`unshare -n`), and under `strace` the binary opens no
//! network socket at all, except `quarry serve`'s listener on 127.0.0.1.

use std::path::Path;
use std::process::{Command, Output};

use crate::support::{quarry_bin, real_model, repo_root, test_data};

/// Whether `program args` runs here (a namespace needs privileges some machines lack).
fn works(program: &str, args: &[&str]) -> bool {
    Command::new(program).args(args).output().is_ok_and(|o| o.status.success())
}

/// Runs the `quarry` binary with `args` under `unshare -n strace`, the syscall log in `log`.
fn isolated_and_traced(log: &Path, data: &Path, models: &Path, args: &[&str]) -> Output {
    let out = Command::new("unshare")
        .args(["-n", "strace", "-f", "-qq", "-e", "trace=socket,connect,bind", "-o"])
        .arg(log)
        .arg(quarry_bin())
        .arg("--data-dir")
        .arg(data)
        .arg("--models-dir")
        .arg(models)
        .args(args)
        .env_remove("QUARRY_LOG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "quarry {args:?} failed without a network: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The network sockets in a strace log (anything but local AF_UNIX ones).
fn network_calls(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .filter(|l| l.contains("AF_INET") || l.contains("AF_INET6") || l.contains("AF_PACKET"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn index_search_and_answers_work_without_a_network_and_open_no_socket() {
    const TEST: &str = "index_search_and_answers_work_without_a_network_and_open_no_socket";
    let Some(data) = test_data(TEST) else { return };
    if !works("unshare", &["-n", "true"]) || !works("strace", &["-V"]) {
        eprintln!("SKIPPED {TEST}: needs `unshare -n` (a network namespace) and strace");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    std::fs::write(docs.join("lease.md"), "# Lease\n\nThe notice period is three months.\n")
        .unwrap();
    std::fs::write(docs.join("garden.txt"), "Tomatoes need full sun and regular watering.\n")
        .unwrap();
    let library = dir.path().join("library");
    let models = dir.path().join("models");
    // MiniLM from the shared data, copied in the way a user would.
    let import = Command::new(quarry_bin())
        .arg("--models-dir")
        .arg(&models)
        .args(["models", "import"])
        .arg(data.join("models/all-MiniLM-L6-v2"))
        .output()
        .unwrap();
    assert!(import.status.success(), "{}", String::from_utf8_lossy(&import.stderr));
    let log = dir.path().join("strace.log");

    let docs_arg = docs.to_string_lossy().into_owned();
    isolated_and_traced(&log, &library, &models, &["index", &docs_arg]);
    assert_eq!(network_calls(&log), Vec::<String>::new(), "index opened a network socket");
    let hits = isolated_and_traced(&log, &library, &models, &["search", "--json", "notice period"]);
    assert!(String::from_utf8_lossy(&hits.stdout).contains("lease.md"));
    assert_eq!(network_calls(&log), Vec::<String>::new(), "search opened a network socket");
    let quoted = isolated_and_traced(
        &log,
        &library,
        &models,
        &["ask", "--evidence", "--json", "What is the notice period?"],
    );
    assert!(String::from_utf8_lossy(&quoted.stdout).contains("three months"));
    assert_eq!(network_calls(&log), Vec::<String>::new(), "ask opened a network socket");

    match real_model(TEST, "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf") {
        Some(model) => {
            let model = model.to_string_lossy().into_owned();
            let answer = isolated_and_traced(
                &log,
                &library,
                &models,
                &["ask", "--json", "--model", &model, "What is the notice period?"],
            );
            let doc: serde_json::Value = serde_json::from_slice(&answer.stdout).unwrap();
            assert_eq!(doc["mode"], "generated", "{doc}");
            assert!(doc["answer"].as_str().unwrap_or("").contains("three months"), "{doc}");
            assert_eq!(network_calls(&log), Vec::<String>::new(), "the model opened a socket");
        }
        None => eprintln!("SKIPPED part of {TEST}: the real-model answer"),
    }
}

/// `quarry serve` binds one socket, on 127.0.0.1, and connects nowhere.
#[test]
fn serve_listens_on_loopback_only() {
    const TEST: &str = "serve_listens_on_loopback_only";
    if !works("strace", &["-V"]) {
        eprintln!("SKIPPED {TEST}: needs strace");
        return;
    }
    let ui = repo_root().join("ui/dist");
    if !ui.join("index.html").is_file() {
        eprintln!("SKIPPED {TEST}: the UI is not built (make ui)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("strace.log");
    let mut command = Command::new("strace");
    // A process group of its own, so the server goes with strace (killing strace alone would
    // leave the traced server running).
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let mut child = command
        .args(["-f", "-qq", "-e", "trace=socket,connect,bind,listen", "-o"])
        .arg(&log)
        .arg(quarry_bin())
        .arg("--data-dir")
        .arg(dir.path().join("library"))
        .arg("--models-dir")
        .arg(dir.path().join("models"))
        .args(["serve", "--port", "0", "--ui-dir"])
        .arg(&ui)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Serving once it prints its address.
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    let group = format!("-{}", child.id());
    let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
    child.wait().unwrap();
    assert!(line.contains("http://127.0.0.1:"), "{line}");
    let calls = network_calls(&log);
    let binds: Vec<&String> = calls.iter().filter(|c| c.contains("bind(")).collect();
    assert_eq!(binds.len(), 1, "{calls:#?}");
    assert!(binds[0].contains("inet_addr(\"127.0.0.1\")"), "{calls:#?}");
    assert!(!calls.iter().any(|c| c.contains("connect(")), "{calls:#?}");
}

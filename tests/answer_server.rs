//! Answers written by an OpenAI-compatible inference server: llama-cpp-python's server on
//! 127.0.0.1 (in the throwaway virtualenv `make test` installs; `QUARRY_LLAMA_SERVER_PYTHON`
//! names its interpreter) serving the real Qwen file, behind an API key. The answer gets the
//! same passages, verification, citations and audit record as with a local model; a wrong key,
//! a cancelled answer and a server that dies mid-answer each end the way a user can act on,
//! and the key is never written anywhere.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use quarry::api::FallbackCause;
use quarry::config::GeneratorServerConfig;
use quarry::generate::openai_server::ServerGenerator;
use quarry::{AnswerMode, AskOptions, CancelToken, Engine, Error};

use crate::answer::{config_with_embedder, write_documents};
use crate::support::{TempLibrary, quarry_bin, real_model, test_data};

const QWEN: &str = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf";
/// The name the server gives the model (`--model_alias`).
const ALIAS: &str = "qwen-on-llama-server";

fn server_python(test: &str) -> Option<PathBuf> {
    let python =
        std::env::var_os("QUARRY_LLAMA_SERVER_PYTHON").map(PathBuf::from).or_else(|| {
            std::env::var_os("HOME")
                .map(|h| PathBuf::from(h).join(".cache/quarry/venvs/llama-server/bin/python"))
        })?;
    let usable = Command::new(&python)
        .args(["-c", "import llama_cpp.server.app"])
        .output()
        .is_ok_and(|o| o.status.success());
    if usable {
        Some(python)
    } else {
        eprintln!(
            "SKIPPED {test}: no llama-cpp-python server at {} (`make llama-server` installs it)",
            python.display()
        );
        None
    }
}

/// llama-cpp-python's OpenAI-compatible server on a free loopback port, stopped on drop.
struct LlamaServer {
    child: Arc<Mutex<Child>>,
    url: String,
    log: PathBuf,
}

impl LlamaServer {
    fn start(python: &Path, model: &Path, api_key: &str, log_dir: &Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let log = log_dir.join("llama-server.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(python)
            .args(["-m", "llama_cpp.server", "--host", "127.0.0.1", "--port"])
            .arg(port.to_string())
            .arg("--model")
            .arg(model)
            .args(["--model_alias", ALIAS, "--n_ctx", "4096", "--n_threads", "2"])
            .args(["--api_key", api_key, "--verbose", "false"])
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        let server = Self {
            child: Arc::new(Mutex::new(child)),
            url: format!("http://127.0.0.1:{port}"),
            log,
        };
        // Ready when it lists its models (through the generator's own connection code).
        let started = Instant::now();
        loop {
            if ServerGenerator::connect(&server.config(Some(api_key))).is_ok() {
                return server;
            }
            let exited = server.child.lock().unwrap().try_wait().unwrap();
            assert!(
                exited.is_none() && started.elapsed() < Duration::from_secs(120),
                "the server did not come up ({exited:?}): {}",
                std::fs::read_to_string(&server.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    fn config(&self, api_key: Option<&str>) -> GeneratorServerConfig {
        let mut config = GeneratorServerConfig::new(&self.url);
        config.api_key = api_key.map(str::to_owned);
        config
    }

    fn kill(child: &Mutex<Child>) {
        let mut child = child.lock().unwrap();
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for LlamaServer {
    fn drop(&mut self) {
        Self::kill(&self.child);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_openai_compatible_server_writes_answers_that_are_checked_like_local_ones() {
    const TEST: &str = "an_openai_compatible_server_writes_answers";
    let Some(data) = test_data(TEST) else { return };
    let Some(model) = real_model(TEST, QWEN) else { return };
    let Some(python) = server_python(TEST) else { return };
    let lib = TempLibrary::new();
    let docs = write_documents(lib.path());
    let config = config_with_embedder(&lib, &data);
    let report = lib.index(config.clone(), &[&docs]).await;
    assert_eq!(report.failed, 0, "{:?}", report.failures);
    let key = format!("quarry-test-key-{}", std::process::id());
    let server = LlamaServer::start(&python, &model, &key, lib.path());
    let question = "What is the notice period for terminating the lease?";
    let options = AskOptions { max_tokens: 96, ..AskOptions::default() };

    // A wrong key is refused with a message that says what to set.
    let mut wrong = config.clone();
    wrong.generator_server = Some(server.config(Some("not-the-key")));
    let engine = Engine::open(wrong).await.unwrap();
    let err = engine.ask(question, &options, &mut |_: &str| {}, &CancelToken::new()).await;
    let err = err.expect_err("a wrong key must not answer").to_string();
    assert!(err.contains("401") && err.contains("QUARRY_GENERATOR_API_KEY"), "{err}");
    assert!(!err.contains("not-the-key"), "{err}");
    drop(engine);

    // The command line, as a user runs it: the key from the environment, debug logging on.
    let output = Command::new(quarry_bin())
        .arg("--data-dir")
        .arg(lib.path())
        .arg("--models-dir")
        .arg(data.join("models"))
        .args(["-vv", "--generator-url", &server.url, "ask", "--json", "--max-tokens", "96"])
        .arg(question)
        .env("QUARRY_GENERATOR_API_KEY", &key)
        .env_remove("QUARRY_LOG")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(!stderr.contains(&key), "the key was logged: {stderr}");
    let answer: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(answer["mode"], "generated", "{answer:#}");
    assert_eq!(answer["abstained"], false, "{answer:#}");
    assert_eq!(answer["model"], ALIAS, "{answer:#}");
    assert!(answer["answer"].as_str().unwrap().to_lowercase().contains("three months"));
    let citations = answer["citations"].as_array().unwrap();
    assert!(
        citations
            .iter()
            .any(|c| c["doc_path"].as_str().unwrap().ends_with("lease.pdf") && c["page"] == 3),
        "{answer:#}"
    );
    // The audit record names the server and its model, and holds no key.
    let log = std::fs::read_to_string(quarry::answer::audit::log_path(lib.path())).unwrap();
    assert!(!log.contains(&key));
    let record: serde_json::Value = serde_json::from_str(log.lines().last().unwrap()).unwrap();
    assert_eq!(record["model"]["id"], ALIAS, "{record:#}");
    assert_eq!(record["model"]["server"], server.url, "{record:#}");

    let mut config = config;
    config.generator_server = Some(server.config(Some(&key)));
    let engine = Engine::open(config.clone()).await.unwrap();

    // A question the library cannot answer is refused by the gate, as with a local model.
    let unknown = engine
        .ask(
            "Who won the 1998 football world cup?",
            &options,
            &mut |_: &str| {},
            &CancelToken::new(),
        )
        .await
        .unwrap();
    assert!(unknown.abstained, "{unknown:#?}");

    // Stop during the answer: the call ends promptly as cancelled.
    let cancel = CancelToken::new();
    let stop = cancel.clone();
    let mut stop_at_first_piece = move |_: &str| stop.cancel();
    let started = Instant::now();
    let stopped = engine.ask(question, &options, &mut stop_at_first_piece, &cancel).await;
    assert!(matches!(stopped, Err(Error::Cancelled)), "{stopped:?}");
    assert!(started.elapsed() < Duration::from_secs(60));

    // The server dies while it writes: the user gets the evidence quoted, and why.
    let child = Arc::clone(&server.child);
    let mut kill_at_first_piece = move |_: &str| LlamaServer::kill(&child);
    let fallback =
        engine.ask(question, &options, &mut kill_at_first_piece, &CancelToken::new()).await;
    let fallback = fallback.unwrap();
    assert_eq!(fallback.fallback, Some(FallbackCause::GenerationFailed), "{fallback:#?}");
    assert_eq!(fallback.mode, AnswerMode::Evidence, "{fallback:#?}");
    assert!(!fallback.abstained, "{fallback:#?}");
    assert!(fallback.answer.contains("three months"), "{fallback:#?}");
    let detail = fallback.fallback_detail.clone().unwrap_or_default();
    assert!(detail.contains(&server.url), "{detail}");
    drop(engine);

    // With the server gone, a new answer says which server cannot be reached.
    let engine = Engine::open(config).await.unwrap();
    let err = engine
        .ask(question, &options, &mut |_: &str| {}, &CancelToken::new())
        .await
        .expect_err("no server, no generated answer")
        .to_string();
    assert!(err.contains(&server.url) && err.contains("cannot connect"), "{err}");
}

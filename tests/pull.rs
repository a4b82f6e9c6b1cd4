//! `quarry models pull` against a local stand-in for huggingface.co (axum on 127.0.0.1, the
//! Hugging Face file layout, range requests): a dropped connection is resumed, wrong bytes are
//! never installed, and a pull killed with SIGKILL leaves nothing installed and resumes next
//! time.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use quarry::CancelToken;
use quarry::models::pull::{PullEvent, PullOptions, pull, verify};
use quarry::models::{CatalogEntry, DownloadFile};
use sha2::Digest;

use crate::support::{quarry_bin, test_data};

/// The stand-in server: files by URL path, and ways to misbehave.
#[derive(Default)]
struct StandIn {
    files: Mutex<HashMap<String, Vec<u8>>>,
    /// Files served from disk (large ones), by URL path.
    on_disk: Mutex<HashMap<String, PathBuf>>,
    /// Break the connection after this many bytes of the first response for weights.
    drop_after: AtomicU64,
    dropped: AtomicBool,
    /// Send 256 KiB every 20 ms.
    throttle: AtomicBool,
    /// Every request: URL path and its Range header.
    requests: Mutex<Vec<(String, Option<String>)>>,
}

async fn serve_file(
    State(state): State<Arc<StandIn>>,
    UrlPath(path): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    let path = format!("/{path}");
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok()).map(str::to_owned);
    state.requests.lock().unwrap().push((path.clone(), range.clone()));
    let bytes = match state.files.lock().unwrap().get(&path).cloned() {
        Some(b) => b,
        None => match state.on_disk.lock().unwrap().get(&path) {
            Some(p) => std::fs::read(p).unwrap(),
            None => return StatusCode::NOT_FOUND.into_response(),
        },
    };
    let start: usize = range
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|r| r.parse().ok())
        .unwrap_or(0);
    if start >= bytes.len() && start > 0 {
        return StatusCode::RANGE_NOT_SATISFIABLE.into_response();
    }
    let body = bytes[start..].to_vec();
    let total = bytes.len();
    let drop_after = state.drop_after.load(Ordering::SeqCst) as usize;
    let drop_now = drop_after > 0
        && path.ends_with(".safetensors")
        && !state.dropped.swap(true, Ordering::SeqCst);
    let throttle = state.throttle.load(Ordering::SeqCst);
    let chunk = 256 * 1024;
    let stream = futures::stream::unfold(0usize, move |at| {
        let body = body.clone();
        async move {
            if at >= body.len() {
                return None;
            }
            if drop_now && at >= drop_after {
                let err = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "dropped");
                return Some((Err(err), body.len()));
            }
            if throttle {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let mut end = (at + chunk).min(body.len());
            if drop_now && at < drop_after {
                end = end.min(drop_after);
            }
            Some((Ok::<_, std::io::Error>(body[at..end].to_vec()), end))
        }
    });
    let mut response = Response::new(Body::from_stream(stream));
    let h = response.headers_mut();
    h.insert(header::CONTENT_LENGTH, (total - start).into());
    if start > 0 {
        *response.status_mut() = StatusCode::PARTIAL_CONTENT;
        let value = format!("bytes {start}-{}/{total}", total - 1);
        response.headers_mut().insert(header::CONTENT_RANGE, value.parse().unwrap());
    }
    response
}

/// Starts the stand-in on a free port; returns its base URL.
async fn start(state: Arc<StandIn>) -> String {
    let app = Router::new().route("/{*path}", get(serve_file)).with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://127.0.0.1:{port}")
}

fn sha256(bytes: &[u8]) -> String {
    quarry::ids::hex(&sha2::Sha256::digest(bytes))
}

/// Bytes that differ from run to run of a test only by `seed`.
fn noise(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| ((i * 31 + usize::from(seed) * 7) % 251) as u8 ^ (i >> 10) as u8).collect()
}

/// A two-file catalog entry served by the stand-in: a config (hash unknown to the catalog) and
/// weights (size and hash known), each from `sources(path)`.
fn entry(weights: &[u8], sources: impl Fn(&str) -> Vec<String>) -> CatalogEntry {
    let mut entry = quarry::models::catalog().into_iter().next().unwrap();
    entry.id = "test-org/tiny-model".into();
    entry.folder = None;
    entry.download = vec![
        DownloadFile {
            path: "config.json".into(),
            size: None,
            sha256: None,
            sha256_from: "not known to the test catalog".into(),
            sources: sources("config.json"),
        },
        DownloadFile {
            path: "model.safetensors".into(),
            size: Some(weights.len() as u64),
            sha256: Some(sha256(weights)),
            sha256_from: "computed by the test".into(),
            sources: sources("model.safetensors"),
        },
    ];
    entry
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_is_resumed_and_the_files_are_checked_and_installed() {
    let weights = noise(3 * 1024 * 1024 + 17, 1);
    let state = Arc::new(StandIn::default());
    let base = start(Arc::clone(&state)).await;
    {
        let mut files = state.files.lock().unwrap();
        files
            .insert("/test-org/tiny-model/resolve/main/config.json".into(), b"{\"x\": 1}".to_vec());
        files.insert("/test-org/tiny-model/resolve/main/model.safetensors".into(), weights.clone());
    }
    state.drop_after.store(1024 * 1024, Ordering::SeqCst);
    let entry = entry(&weights, |p| {
        vec![format!("https://huggingface.co/test-org/tiny-model/resolve/main/{p}")]
    });
    let models = tempfile::tempdir().unwrap();
    let options = PullOptions { mirror: Some(base), ..PullOptions::default() };
    let mut events = Vec::new();
    let dir = pull(models.path(), &entry, &options, &mut |e| events.push(e), &CancelToken::new())
        .await
        .unwrap();
    assert_eq!(std::fs::read(dir.join("model.safetensors")).unwrap(), weights);
    assert_eq!(std::fs::read(dir.join("config.json")).unwrap(), b"{\"x\": 1}");
    // The weights came in two requests: the second asked for the rest, from where the first
    // broke off (the first response was cut at 1 MiB).
    let requests = state.requests.lock().unwrap().clone();
    let weight_requests: Vec<_> =
        requests.iter().filter(|(p, _)| p.ends_with("model.safetensors")).collect();
    assert_eq!(weight_requests.len(), 2, "{requests:?}");
    assert_eq!(weight_requests[0].1, None);
    let resumed_at: u64 = weight_requests[1]
        .1
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|r| r.parse().ok())
        .unwrap();
    assert!(resumed_at > 0 && resumed_at <= 1024 * 1024, "resumed at {resumed_at}");
    assert!(events.iter().any(|e| matches!(e, PullEvent::Retry { .. })), "{events:?}");
    assert!(matches!(events.last(), Some(PullEvent::Installed { .. })));
    // Nothing is left in progress, the unconfirmed config's hash is recorded, and verify agrees.
    assert!(!models.path().join(".partial/tiny-model").exists());
    let record = std::fs::read_to_string(dir.join("quarry-pull.json")).unwrap();
    assert!(record.contains(&sha256(b"{\"x\": 1}")), "{record}");
    let checks = verify(models.path(), &entry).unwrap();
    assert!(checks.iter().all(|c| c.state == "ok"), "{checks:?}");
    // A damaged file is caught by verify.
    std::fs::write(dir.join("config.json"), b"{\"x\": 2}").unwrap();
    let checks = verify(models.path(), &entry).unwrap();
    assert_eq!(checks[0].state, "wrong sha256", "{checks:?}");
    // A second pull re-fetches only what is damaged.
    state.requests.lock().unwrap().clear();
    pull(models.path(), &entry, &options, &mut |_| {}, &CancelToken::new()).await.unwrap();
    let requests = state.requests.lock().unwrap().clone();
    assert!(requests.iter().all(|(p, _)| p.ends_with("config.json")), "{requests:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_bytes_are_never_installed_and_another_source_with_the_right_ones_is() {
    let weights = noise(512 * 1024, 2);
    let mut wrong = weights.clone();
    wrong[1000] ^= 0xff;
    let state = Arc::new(StandIn::default());
    let base = start(Arc::clone(&state)).await;
    {
        let mut files = state.files.lock().unwrap();
        files.insert("/bad/config.json".into(), b"{}".to_vec());
        files.insert("/bad/model.safetensors".into(), wrong);
        files.insert("/good/config.json".into(), b"{}".to_vec());
        files.insert("/good/model.safetensors".into(), weights.clone());
    }
    let models = tempfile::tempdir().unwrap();
    let only_bad = entry(&weights, |p| vec![format!("{base}/bad/{p}")]);
    let err =
        pull(models.path(), &only_bad, &PullOptions::default(), &mut |_| {}, &CancelToken::new())
            .await
            .unwrap_err();
    let message = err.to_string();
    assert!(message.contains("sha256") && message.contains("nothing was installed"), "{message}");
    assert!(!models.path().join("tiny-model/model.safetensors").exists());
    assert!(!models.path().join(".partial/tiny-model/model.safetensors.part").exists());
    assert!(quarry::models::discover(models.path()).installed().is_empty());

    // The same bytes from a second source are fine: trust comes from the hash.
    let bad_then_good =
        entry(&weights, |p| vec![format!("{base}/bad/{p}"), format!("{base}/good/{p}")]);
    let dir = pull(
        models.path(),
        &bad_then_good,
        &PullOptions::default(),
        &mut |_| {},
        &CancelToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(std::fs::read(dir.join("model.safetensors")).unwrap(), weights);

    // A model the catalog cannot download says how to get it instead.
    let mut no_files = bad_then_good.clone();
    no_files.download.clear();
    let err =
        pull(models.path(), &no_files, &PullOptions::default(), &mut |_| {}, &CancelToken::new())
            .await
            .unwrap_err();
    assert!(err.to_string().contains("quarry models import"), "{err}");
}

/// The real all-MiniLM-L6-v2 files, served slowly: `quarry models pull` killed with SIGKILL
/// halfway leaves no model installed; the next pull resumes with a range request, checks the
/// weights against the catalog's sha256 and installs a folder the engine uses as its embedder.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_pull_installs_nothing_and_the_next_one_resumes() {
    let Some(data) = test_data("a_killed_pull_installs_nothing_and_the_next_one_resumes") else {
        return;
    };
    let source = data.join("models/all-MiniLM-L6-v2");
    let state = Arc::new(StandIn::default());
    let base = start(Arc::clone(&state)).await;
    let entry = quarry::models::catalog_entry(quarry::models::DEFAULT_EMBEDDER).unwrap();
    for file in &entry.download {
        let url = format!("/sentence-transformers/all-MiniLM-L6-v2/resolve/main/{}", file.path);
        state.on_disk.lock().unwrap().insert(url, source.join(&file.path));
    }
    state.throttle.store(true, Ordering::SeqCst);
    let work = tempfile::tempdir().unwrap();
    let models = work.path().join("models");
    let pull_cmd = || {
        let mut cmd = std::process::Command::new(quarry_bin());
        cmd.arg("--data-dir").arg(work.path()).arg("--models-dir").arg(&models).args([
            "models",
            "pull",
            quarry::models::DEFAULT_EMBEDDER,
            "--from",
            &base,
        ]);
        cmd
    };
    let mut child = pull_cmd().stdout(std::process::Stdio::null()).spawn().unwrap();
    let part = models.join(".partial/all-MiniLM-L6-v2/model.safetensors.part");
    let deadline = Instant::now() + Duration::from_secs(120);
    while std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0) < 8 * 1024 * 1024 {
        assert!(Instant::now() < deadline, "the download never got going");
        assert!(child.try_wait().unwrap().is_none(), "the pull ended before it was killed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let folder = quarry::models::discover(&models);
    assert!(folder.embedder(quarry::models::DEFAULT_EMBEDDER).is_none(), "half-installed");
    assert!(!models.join("all-MiniLM-L6-v2/model.safetensors").exists());

    state.throttle.store(false, Ordering::SeqCst);
    state.requests.lock().unwrap().clear();
    let out = pull_cmd().output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let requests = state.requests.lock().unwrap().clone();
    let weights = requests.iter().find(|(p, _)| p.ends_with("model.safetensors")).unwrap();
    assert!(weights.1.as_deref().is_some_and(|r| r != "bytes=0-"), "not resumed: {requests:?}");
    let installed = models.join("all-MiniLM-L6-v2");
    assert_eq!(
        std::fs::read(installed.join("model.safetensors")).unwrap(),
        std::fs::read(source.join("model.safetensors")).unwrap()
    );
    let config = quarry::models::discover(&models).embedder(quarry::models::DEFAULT_EMBEDDER);
    assert_eq!(config.map(|c| c.dir), Some(installed.clone()));
    let verify = std::process::Command::new(quarry_bin())
        .arg("--data-dir")
        .arg(work.path())
        .arg("--models-dir")
        .arg(&models)
        .args(["models", "verify", "--json"])
        .output()
        .unwrap();
    let report = crate::support::json_of(&verify);
    let files = report["models"][0]["files"].as_array().unwrap();
    assert!(files.iter().all(|f| f["state"] == "ok"), "{report}");
    check_no_partial(&models);
}

fn check_no_partial(models: &Path) {
    let partial = models.join(".partial/all-MiniLM-L6-v2");
    assert!(!partial.exists(), "{} left behind", partial.display());
}

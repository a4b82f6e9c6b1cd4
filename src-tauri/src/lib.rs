//! The Tauri shell: the window around the `ui/` build and one command per engine operation.
//! It stays thin: every command forwards to `quarry::Engine`; progress and answer text stream
//! over `tauri::ipc::Channel`; errors reach the UI as `{kind, message, detail}`.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use quarry::api::{
    Answer, AppSettings, AskOptions, DocumentInfo, DocumentText, IndexProgress, LibraryStatus,
};
use quarry::{CancelToken, Engine, EngineConfig};
use serde::Serialize;
use tauri::Manager;
use tauri::ipc::{Channel, Response};

/// First argument that starts the hidden extraction worker (the same as the CLI's).
pub const WORKER_ARG: &str = "__extract-worker";

/// An error as the UI receives it.
#[derive(Debug, Serialize)]
pub struct ShellError {
    kind: &'static str,
    message: String,
    detail: Option<String>,
}

impl From<quarry::Error> for ShellError {
    fn from(err: quarry::Error) -> Self {
        let kind = err.kind();
        let detail = std::error::Error::source(&err).map(|s| s.to_string());
        Self { kind, message: err.to_string(), detail }
    }
}

impl ShellError {
    fn internal(message: impl Into<String>) -> Self {
        Self { kind: "internal", message: message.into(), detail: None }
    }
}

type CommandResult<T> = Result<T, ShellError>;

/// What the window's commands share: the engine (opened in the background after the window
/// shows, so launching stays fast) and the indexing run.
struct Shell {
    config: EngineConfig,
    settings: AppSettings,
    engine: tokio::sync::OnceCell<Arc<Engine>>,
    progress: Arc<Mutex<IndexProgress>>,
    job: Mutex<Option<(CancelToken, Instant)>>,
}

impl Shell {
    async fn engine(&self) -> CommandResult<Arc<Engine>> {
        let config = self.config.clone();
        let engine = self
            .engine
            .get_or_try_init(|| async move {
                run_blocking(move || {
                    tauri::async_runtime::block_on(Engine::open_for_write(config)).map(Arc::new)
                })
                .await
            })
            .await?;
        Ok(Arc::clone(engine))
    }
}

/// Runs engine work on a blocking thread (its futures are not all `Send`, and models are
/// CPU-bound); the window stays responsive.
async fn run_blocking<T: Send + 'static>(
    work: impl FnOnce() -> quarry::Result<T> + Send + 'static,
) -> CommandResult<T> {
    tauri::async_runtime::spawn_blocking(work)
        .await
        .map_err(|e| ShellError::internal(format!("the task failed: {e}")))?
        .map_err(ShellError::from)
}

#[derive(Serialize)]
struct StatusResponse {
    library: LibraryStatus,
    indexing: IndexProgress,
}

#[tauri::command]
async fn status(shell: tauri::State<'_, Shell>) -> CommandResult<StatusResponse> {
    let engine = shell.engine().await?;
    let library = run_blocking(move || tauri::async_runtime::block_on(engine.status())).await?;
    let indexing = shell.progress.lock().map(|p| p.clone()).unwrap_or_default();
    Ok(StatusResponse { library, indexing })
}

#[tauri::command]
async fn documents(shell: tauri::State<'_, Shell>) -> CommandResult<Vec<DocumentInfo>> {
    let engine = shell.engine().await?;
    run_blocking(move || tauri::async_runtime::block_on(engine.documents())).await
}

#[tauri::command]
fn settings(shell: tauri::State<'_, Shell>) -> AppSettings {
    shell.settings.clone()
}

#[tauri::command]
fn index_progress(shell: tauri::State<'_, Shell>) -> IndexProgress {
    shell.progress.lock().map(|p| p.clone()).unwrap_or_default()
}

/// Indexes `paths`, sending a progress snapshot per event; returns the final snapshot.
#[tauri::command]
async fn index(
    shell: tauri::State<'_, Shell>,
    paths: Vec<PathBuf>,
    on_progress: Channel<IndexProgress>,
) -> CommandResult<IndexProgress> {
    let last = run_index(&shell, paths, move |p| {
        let _ = on_progress.send(p);
    })
    .await?;
    Ok(last)
}

/// One indexing run (none of `paths`: every source again), its snapshots kept in the shell's
/// state (for `index_progress`) and passed to `send`.
async fn run_index(
    shell: &Shell,
    paths: Vec<PathBuf>,
    send: impl Fn(IndexProgress) + Send + Sync + 'static,
) -> CommandResult<IndexProgress> {
    let engine = shell.engine().await?;
    let cancel = CancelToken::new();
    let started = Instant::now();
    {
        let mut job = shell.job.lock().map_err(|_| ShellError::internal("state poisoned"))?;
        if job.is_some() {
            return Err(ShellError {
                kind: "busy",
                message: "indexing is already running".into(),
                detail: None,
            });
        }
        *job = Some((cancel.clone(), started));
    }
    if let Ok(mut p) = shell.progress.lock() {
        *p = IndexProgress::started();
    }
    let progress = Arc::clone(&shell.progress);
    let send = Arc::new(send);
    let (sink_progress, sink_send) = (Arc::clone(&progress), Arc::clone(&send));
    let run_cancel = cancel.clone();
    let result = tauri::async_runtime::spawn_blocking(move || {
        let mut sink = move |event: quarry::IngestEvent| {
            if let Ok(mut p) = sink_progress.lock() {
                p.apply(event, started.elapsed().as_secs_f64());
                sink_send(p.clone());
            }
        };
        tauri::async_runtime::block_on(engine.index(&paths, &mut sink, &run_cancel))
    })
    .await
    .map_err(|e| ShellError::internal(format!("the task failed: {e}")))?;
    let result = if cancel.is_cancelled() && result.is_ok() {
        Err(quarry::Error::Cancelled)
    } else {
        result
    };
    let last = {
        let mut p = progress.lock().map_err(|_| ShellError::internal("state poisoned"))?;
        p.finish(result);
        p.clone()
    };
    if let Ok(mut job) = shell.job.lock() {
        *job = None;
    }
    send(last.clone());
    Ok(last)
}

/// Watches the library's sources and re-indexes after changes, so the library stays in sync
/// while the app runs.
fn spawn_watcher(app: tauri::AppHandle) {
    std::thread::spawn(move || {
        let shell = app.state::<Shell>();
        let Ok(engine) = tauri::async_runtime::block_on(shell.engine()) else { return };
        engine.watch_sources(
            &CancelToken::new(),
            |_changed| {
                let _ = tauri::async_runtime::block_on(run_index(&shell, Vec::new(), |_| {}));
            },
            |_err| {},
        );
    });
}

/// Stops the run after the files in progress; the next run resumes.
#[tauri::command]
fn cancel_index(shell: tauri::State<'_, Shell>) -> CommandResult<()> {
    let job = shell.job.lock().map_err(|_| ShellError::internal("state poisoned"))?;
    match job.as_ref() {
        Some((cancel, _)) => {
            cancel.cancel();
            Ok(())
        }
        None => Err(ShellError {
            kind: "idle",
            message: "no indexing run to stop".into(),
            detail: None,
        }),
    }
}

#[tauri::command]
async fn remove(shell: tauri::State<'_, Shell>, paths: Vec<PathBuf>) -> CommandResult<u32> {
    let engine = shell.engine().await?;
    run_blocking(move || tauri::async_runtime::block_on(engine.remove(&paths))).await
}

/// Answers `question`, streaming the answer text; resolves with the checked answer.
#[tauri::command]
async fn ask(
    shell: tauri::State<'_, Shell>,
    question: String,
    evidence: bool,
    on_text: Channel<String>,
) -> CommandResult<Answer> {
    let engine = shell.engine().await?;
    run_blocking(move || {
        let options = AskOptions { evidence, ..AskOptions::default() };
        let mut sink = move |piece: &str| {
            let _ = on_text.send(piece.to_owned());
        };
        tauri::async_runtime::block_on(engine.ask(
            &question,
            &options,
            &mut sink,
            &CancelToken::new(),
        ))
    })
    .await
}

#[tauri::command]
async fn document_text(
    shell: tauri::State<'_, Shell>,
    path: String,
) -> CommandResult<DocumentText> {
    let engine = shell.engine().await?;
    run_blocking(move || tauri::async_runtime::block_on(engine.document_text(&path))).await
}

/// The bytes of a library document (never any other file), for the PDF viewer.
#[tauri::command]
async fn document_bytes(shell: tauri::State<'_, Shell>, path: String) -> CommandResult<Response> {
    let engine = shell.engine().await?;
    let (_, bytes) =
        run_blocking(move || tauri::async_runtime::block_on(engine.document_bytes(&path))).await?;
    Ok(Response::new(bytes))
}

/// The library and models folders: `QUARRY_DATA_DIR` / `QUARRY_MODELS_DIR` as for the CLI,
/// else the platform's data folder.
#[allow(clippy::disallowed_methods)] // The shell is one of the two places that read the environment.
fn engine_config() -> Result<(EngineConfig, PathBuf), String> {
    let data_dir = match std::env::var_os("QUARRY_DATA_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => directories::ProjectDirs::from("org", "Quarry", "quarry")
            .map(|p| p.data_dir().to_owned())
            .ok_or("no home folder to keep the library in")?,
    };
    let models_dir = std::env::var_os("QUARRY_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| data_dir.join("models"));
    let mut config = quarry::models::engine_config(data_dir, &models_dir);
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the executable: {e}"))?;
    config.extraction.worker_command =
        Some(vec![exe.to_string_lossy().into_owned(), WORKER_ARG.to_owned()]);
    Ok((config, models_dir))
}

/// Builds and runs the app; returns the process exit code.
pub fn run() -> std::process::ExitCode {
    let (config, models_dir) = match engine_config() {
        Ok(c) => c,
        Err(err) => return fail(&err),
    };
    let app_settings = config.app_settings(&models_dir);
    let shell = Shell {
        config,
        settings: app_settings,
        engine: tokio::sync::OnceCell::new(),
        progress: Arc::new(Mutex::new(IndexProgress::default())),
        job: Mutex::new(None),
    };
    let result = tauri::Builder::default()
        // One instance at a time: a second launch brings the first window forward.
        .plugin(tauri_plugin_single_instance::init(|app, _args, _cwd| {
            if let Some(window) = app.get_webview_window("main") {
                let _ = window.unminimize();
                let _ = window.set_focus();
            }
        }))
        .plugin(tauri_plugin_window_state::Builder::default().build())
        // The folder picker of the Library view (open dialogs only: see capabilities).
        .plugin(tauri_plugin_dialog::init())
        .manage(shell)
        .setup(|app| {
            spawn_watcher(app.handle().clone());
            Ok(())
        })
        .invoke_handler(tauri::generate_handler![
            status,
            documents,
            settings,
            index_progress,
            index,
            cancel_index,
            remove,
            ask,
            document_text,
            document_bytes
        ])
        .run(tauri::generate_context!());
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => fail(&format!("cannot start the app: {err}")),
    }
}

fn fail(message: &str) -> std::process::ExitCode {
    #[allow(clippy::print_stderr)] // No window to show the error in.
    {
        eprintln!("quarry: {message}");
    }
    std::process::ExitCode::from(2)
}

//! The Tauri shell: the window around the `ui/` build and one command per engine operation.
//! It stays thin: every command forwards to `quarry::Engine`; progress and answer text stream
//! over `tauri::ipc::Channel`; errors reach the UI as `{kind, message, detail}`.

use std::path::PathBuf;
use std::sync::Arc;

use quarry::api::{
    Answer, AnswerStage, AppSettings, AskOptions, AskScope, DocumentInfo, DocumentText,
    IndexProgress, LibraryStatus, ModelsOverview, SearchHit, SearchMode, Thread,
    ThreadExportFormat, ThreadSummary,
};
use quarry::{Engine, EngineConfig, SourceWatch};
use serde::Serialize;
use tauri::Manager;
use tauri::ipc::{Channel, Response};

/// First argument that starts the hidden extraction worker (the same as the CLI's).
pub use quarry::ingest::worker::WORKER_ARG;

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
        let detail = std::error::Error::source(&err).map(|_| err.chain());
        Self { kind, message: err.to_string(), detail }
    }
}

type CommandResult<T> = Result<T, ShellError>;

/// What the window's commands share: the engine's settings, and the engine with its folder watch,
/// opened in the background after the window shows so launching stays fast. Indexing runs,
/// their progress and cancelling answers belong to the engine.
struct Shell {
    config: EngineConfig,
    library: tokio::sync::OnceCell<(Arc<Engine>, SourceWatch)>,
}

impl Shell {
    async fn engine(&self) -> CommandResult<Arc<Engine>> {
        let config = self.config.clone();
        let (engine, _) = self
            .library
            .get_or_try_init(|| async move {
                let engine = Arc::new(Engine::open_for_write(config).await?);
                let watch = engine.watch_sources();
                Ok::<_, quarry::Error>((engine, watch))
            })
            .await?;
        Ok(Arc::clone(engine))
    }
}

#[derive(Serialize)]
struct StatusResponse {
    library: LibraryStatus,
    indexing: IndexProgress,
}

#[tauri::command]
async fn status(shell: tauri::State<'_, Shell>) -> CommandResult<StatusResponse> {
    let engine = shell.engine().await?;
    Ok(StatusResponse { library: engine.status().await?, indexing: engine.index_progress() })
}

#[tauri::command]
async fn documents(shell: tauri::State<'_, Shell>) -> CommandResult<Vec<DocumentInfo>> {
    Ok(shell.engine().await?.documents().await?)
}

#[tauri::command]
async fn settings(shell: tauri::State<'_, Shell>) -> CommandResult<AppSettings> {
    Ok(shell.engine().await?.app_settings())
}

/// Answers from now on come from the generator at `path` (none: quotes), also after a restart.
#[tauri::command]
async fn use_model(
    shell: tauri::State<'_, Shell>,
    path: Option<PathBuf>,
) -> CommandResult<AppSettings> {
    let engine = shell.engine().await?;
    engine.use_generator(path)?;
    Ok(engine.app_settings())
}

#[tauri::command]
async fn index_progress(shell: tauri::State<'_, Shell>) -> CommandResult<IndexProgress> {
    Ok(shell.engine().await?.index_progress())
}

/// Indexes `paths`, sending each progress snapshot; returns the closing one.
#[tauri::command]
async fn index(
    shell: tauri::State<'_, Shell>,
    paths: Vec<PathBuf>,
    confirm: bool,
    on_progress: Channel<IndexProgress>,
) -> CommandResult<IndexProgress> {
    let engine = shell.engine().await?;
    let updates = engine.follow_index_progress();
    let job = engine.start_index(paths, confirm)?;
    Ok(forward_progress(job, updates, &on_progress).await)
}

/// Sends each progress snapshot of `job`'s run until it ends; returns the closing one.
async fn forward_progress(
    job: quarry::IndexJob,
    mut updates: tokio::sync::watch::Receiver<IndexProgress>,
    on_progress: &Channel<IndexProgress>,
) -> IndexProgress {
    let finished = job.finished();
    tokio::pin!(finished);
    loop {
        tokio::select! {
            last = &mut finished => return last,
            changed = updates.changed() => {
                if changed.is_ok() {
                    let _ = on_progress.send(updates.borrow_and_update().clone());
                }
            }
        }
    }
}

/// Indexes a locked PDF of the library again with the password the user typed, sending each
/// progress snapshot; returns the closing one. The password is used for this run only.
#[tauri::command]
async fn unlock(
    shell: tauri::State<'_, Shell>,
    path: PathBuf,
    password: String,
    on_progress: Channel<IndexProgress>,
) -> CommandResult<IndexProgress> {
    let engine = shell.engine().await?;
    let updates = engine.follow_index_progress();
    let job = engine.start_unlock(path, password)?;
    Ok(forward_progress(job, updates, &on_progress).await)
}

/// Stops the run after the files in progress; the next run resumes.
#[tauri::command]
async fn cancel_index(shell: tauri::State<'_, Shell>) -> CommandResult<()> {
    match shell.engine().await?.cancel_index() {
        true => Ok(()),
        false => Err(ShellError {
            kind: "idle",
            message: "no indexing run to stop".into(),
            detail: None,
        }),
    }
}

#[tauri::command]
async fn remove(shell: tauri::State<'_, Shell>, paths: Vec<PathBuf>) -> CommandResult<u32> {
    Ok(shell.engine().await?.remove(&paths).await?)
}

/// Answers `question`, streaming the answer text; resolves with the checked answer.
/// `request` names the answer for [`cancel_ask`].
#[tauri::command]
#[allow(clippy::too_many_arguments)] // A command's arguments are the IPC message's fields.
async fn ask(
    shell: tauri::State<'_, Shell>,
    question: String,
    evidence: bool,
    request: String,
    scope: Option<AskScope>,
    thread: Option<String>,
    on_text: Channel<String>,
    on_stage: Channel<AnswerStage>,
) -> CommandResult<Answer> {
    let engine = shell.engine().await?;
    let ticket = engine.answer_ticket(&request)?;
    let options =
        AskOptions { evidence, scope: scope.unwrap_or_default(), thread, ..engine.ask_options() };
    let mut sink = ChannelSink { text: on_text, stage: on_stage };
    Ok(engine.ask(&question, &options, &mut sink, ticket.token()).await?)
}

/// Answer text and stages over the window's IPC channels.
struct ChannelSink {
    text: Channel<String>,
    stage: Channel<AnswerStage>,
}

impl quarry::generate::TokenSink for ChannelSink {
    fn text(&mut self, piece: &str) {
        let _ = self.text.send(piece.to_owned());
    }

    fn stage(&mut self, stage: AnswerStage) {
        let _ = self.stage.send(stage);
    }
}

/// Stops the answer `request` (the Stop button).
#[tauri::command]
async fn cancel_ask(shell: tauri::State<'_, Shell>, request: String) -> CommandResult<bool> {
    Ok(shell.engine().await?.cancel_answer(&request))
}

/// Changes the settings `change` names; a value out of range is refused naming the field.
#[tauri::command]
async fn update_settings(
    shell: tauri::State<'_, Shell>,
    change: quarry::config::LibrarySettings,
) -> CommandResult<AppSettings> {
    Ok(shell.engine().await?.update_settings(&change)?)
}

/// The saved conversations, the most recent first.
#[tauri::command]
async fn threads(shell: tauri::State<'_, Shell>) -> CommandResult<Vec<ThreadSummary>> {
    Ok(shell.engine().await?.threads()?)
}

/// One conversation with every turn.
#[tauri::command]
async fn thread(shell: tauri::State<'_, Shell>, id: String) -> CommandResult<Thread> {
    Ok(shell.engine().await?.thread(&id)?)
}

#[tauri::command]
async fn rename_thread(
    shell: tauri::State<'_, Shell>,
    id: String,
    title: String,
) -> CommandResult<ThreadSummary> {
    Ok(shell.engine().await?.rename_thread(&id, &title)?)
}

#[tauri::command]
async fn delete_thread(shell: tauri::State<'_, Shell>, id: String) -> CommandResult<()> {
    Ok(shell.engine().await?.delete_thread(&id)?)
}

/// A conversation as Markdown or JSON, for the UI to save.
#[tauri::command]
async fn export_thread(
    shell: tauri::State<'_, Shell>,
    id: String,
    format: ThreadExportFormat,
) -> CommandResult<String> {
    Ok(shell.engine().await?.export_thread(&id, format)?)
}

#[tauri::command]
async fn document_text(
    shell: tauri::State<'_, Shell>,
    path: PathBuf,
) -> CommandResult<DocumentText> {
    Ok(shell.engine().await?.document_text(&path).await?)
}

/// The words OCR read on a page of a document, with their boxes on the page.
#[tauri::command]
async fn ocr_words(
    shell: tauri::State<'_, Shell>,
    path: PathBuf,
    page: u32,
) -> CommandResult<Vec<quarry::api::OcrWord>> {
    Ok(shell.engine().await?.ocr_words(&path, page).await?)
}

/// The installed models, the catalog, and the download in progress.
#[tauri::command]
async fn models(shell: tauri::State<'_, Shell>) -> CommandResult<ModelsOverview> {
    Ok(shell.engine().await?.models_overview()?)
}

/// Starts downloading a catalog model (from `from`, a mirror or a folder, when given).
#[tauri::command]
async fn pull_model(
    shell: tauri::State<'_, Shell>,
    id: String,
    from: Option<String>,
) -> CommandResult<()> {
    let from = from.filter(|f| !f.trim().is_empty());
    Ok(shell.engine().await?.start_pull(&id, from)?)
}

/// Stops the download going; its partial files stay for the next one.
#[tauri::command]
async fn cancel_pull(shell: tauri::State<'_, Shell>) -> CommandResult<bool> {
    Ok(shell.engine().await?.cancel_pull())
}

/// Hybrid search (or `mode`) over the library, best hit first.
#[tauri::command]
async fn search(
    shell: tauri::State<'_, Shell>,
    query: String,
    mode: Option<SearchMode>,
    k: Option<usize>,
) -> CommandResult<Vec<SearchHit>> {
    let engine = shell.engine().await?;
    let mode = mode.unwrap_or_else(|| engine.default_search_mode());
    Ok(engine.search(&query, mode, k.unwrap_or(20).clamp(1, 200)).await?)
}

/// New libraries use the catalog embedder `id`; whether this library already does.
#[tauri::command]
async fn choose_embedder(shell: tauri::State<'_, Shell>, id: String) -> CommandResult<bool> {
    Ok(shell.engine().await?.choose_embedder(&id)?)
}

/// Deletes an installed model that is not in use.
#[tauri::command]
async fn remove_model(shell: tauri::State<'_, Shell>, path: PathBuf) -> CommandResult<PathBuf> {
    Ok(shell.engine().await?.remove_model(&path)?)
}

/// The bytes of a library document (never any other file), for the PDF viewer.
#[tauri::command]
async fn document_bytes(shell: tauri::State<'_, Shell>, path: PathBuf) -> CommandResult<Response> {
    let (_, bytes) = shell.engine().await?.document_bytes(&path).await?;
    Ok(Response::new(bytes))
}

/// The library and models folders: `QUARRY_DATA_DIR` / `QUARRY_MODELS_DIR` as for the CLI,
/// else the platform's data folder.
#[allow(clippy::disallowed_methods)] // The shell is one of the two places that read the environment.
fn engine_config() -> Result<EngineConfig, String> {
    let data_dir = match std::env::var_os("QUARRY_DATA_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => quarry::config::default_data_dir().map_err(|e| e.to_string())?,
    };
    // A team library on object storage is reached through `quarry` (index, search, ask,
    // serve, mcp); the app works on a library folder of this machine.
    if let Some(uri) = data_dir.to_str()
        && quarry::config::RemoteLibrary::parse(uri).map_err(|e| e.to_string())?.is_some()
    {
        return Err(format!(
            "QUARRY_DATA_DIR={uri}: the desktop app opens a library folder on this machine; \
             use `quarry serve --data-dir {uri}` for a library on S3"
        ));
    }
    let models_dir = std::env::var_os("QUARRY_MODELS_DIR")
        .map(PathBuf::from)
        .or_else(|| quarry::config::LibrarySettings::models_dir(&data_dir))
        .unwrap_or_else(|| data_dir.join("models"));
    let mut config = quarry::models::discover(&models_dir).engine_config(data_dir, true);
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the executable: {e}"))?;
    config.extraction.worker_command = Some(quarry::ingest::worker::worker_command(&exe));
    Ok(config)
}

/// Builds and runs the app; returns the process exit code.
pub fn run() -> std::process::ExitCode {
    let config = match engine_config() {
        Ok(c) => c,
        Err(err) => return fail(&err),
    };
    let shell = Shell { config, library: tokio::sync::OnceCell::new() };
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
            // Open the library (and start watching its folders) without holding up the window.
            let handle = app.handle().clone();
            // A failure is reported to the UI by its first command.
            tauri::async_runtime::spawn(async move {
                let _ = handle.state::<Shell>().engine().await;
            });
            Ok(())
        })
        .invoke_handler(tauri::generate_handler![
            status,
            documents,
            settings,
            index_progress,
            index,
            cancel_index,
            unlock,
            ocr_words,
            remove,
            ask,
            cancel_ask,
            document_text,
            document_bytes,
            models,
            pull_model,
            cancel_pull,
            use_model,
            choose_embedder,
            remove_model,
            search,
            update_settings,
            threads,
            thread,
            rename_thread,
            delete_thread,
            export_thread
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

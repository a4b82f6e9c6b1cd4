//! `quarry serve`: the web UI and the engine's operations over HTTP on 127.0.0.1 only. Every
//! `/api/` request needs the per-launch token (401 without it); requests naming another Host
//! (DNS rebinding) or sent from another Origin get 403; no CORS headers are ever sent, so other
//! sites cannot read responses. Answers and indexing progress stream as server-sent events.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use axum::Json;
use axum::Router;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use quarry::api::{AppSettings, AskOptions, IndexProgress, SearchMode};
use quarry::{CancelToken, Engine, EngineConfig};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tower_http::services::ServeDir;

/// The UI's content security policy: everything from this server only, nothing inline but
/// styles, no frames, no plugins.
const CSP: &str = "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; \
    script-src 'self'; connect-src 'self'; worker-src 'self' blob:; object-src 'none'; \
    base-uri 'none'; frame-ancestors 'none'; form-action 'none'";

/// Options of `quarry serve`.
#[derive(Debug)]
pub(crate) struct ServeArgs {
    pub(crate) port: u16,
    pub(crate) ui_dir: Option<PathBuf>,
}

/// What the handlers share: the engine (which owns indexing runs and the folder watch) and
/// the server's own guard settings.
struct ServerState {
    engine: Arc<Engine>,
    token: String,
    hosts: Vec<String>,
    origins: Vec<String>,
}

type Shared = Arc<ServerState>;

/// An error as the UI receives it: `{kind, message, detail}` with a matching status code.
#[derive(Debug, Serialize)]
struct ApiError {
    #[serde(skip)]
    status: StatusCode,
    kind: &'static str,
    message: String,
    detail: Option<String>,
}

impl ApiError {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self { status, kind, message: message.into(), detail: None }
    }
}

impl From<quarry::Error> for ApiError {
    fn from(err: quarry::Error) -> Self {
        let status = match &err {
            quarry::Error::User(_) | quarry::Error::Io { .. } => StatusCode::BAD_REQUEST,
            quarry::Error::Cancelled
            | quarry::Error::Busy(_)
            | quarry::Error::NeedsConfirmation(_) => StatusCode::CONFLICT,
            quarry::Error::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let kind = err.kind();
        let detail = std::error::Error::source(&err).map(|_| err.chain());
        Self { status, kind, message: err.to_string(), detail }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(&self)).into_response()
    }
}

/// Runs the server until Ctrl-C.
pub(crate) async fn serve(config: EngineConfig, args: ServeArgs) -> anyhow::Result<()> {
    let ui_dir = locate_ui(args.ui_dir.as_deref())?;
    let engine = Arc::new(Engine::open_for_write_or_read(config).await?);
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, args.port))
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{}", args.port))?;
    let port = listener.local_addr()?.port();
    let token = random_token();
    let _watch = engine.writable().then(|| engine.watch_sources());
    let state = Arc::new(ServerState {
        engine,
        token: token.clone(),
        hosts: vec![format!("127.0.0.1:{port}"), format!("localhost:{port}")],
        origins: vec![format!("http://127.0.0.1:{port}"), format!("http://localhost:{port}")],
    });
    let app = router(Arc::clone(&state), &ui_dir);
    // Written, not printed: a server whose stdout was closed (a launcher that read the
    // address and went away) keeps serving instead of panicking on a broken pipe.
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ =
        writeln!(out, "Quarry is serving this library at http://127.0.0.1:{port}/#token={token}");
    let _ =
        writeln!(out, "(the token in the address is the key: anyone with it can use the library)");
    let _ = out.flush();
    drop(out);
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("the server stopped")?;
    Ok(())
}

fn router(state: Shared, ui_dir: &Path) -> Router {
    let api = Router::new()
        .route("/api/status", get(status))
        .route("/api/docs", get(docs))
        .route("/api/settings", get(settings).post(update_settings))
        .route("/api/index", post(start_index))
        .route("/api/index/progress", get(index_progress))
        .route("/api/index/events", get(index_events))
        .route("/api/index/cancel", post(cancel_index))
        .route("/api/unlock", post(unlock))
        .route("/api/remove", post(remove))
        .route("/api/models", get(models))
        .route("/api/models/pull", post(pull_model))
        .route("/api/models/pull/cancel", post(cancel_pull))
        .route("/api/models/use", post(use_model))
        .route("/api/models/embedder", post(choose_embedder))
        .route("/api/models/remove", post(remove_model))
        .route("/api/search", get(search))
        .route("/api/ask", post(ask))
        .route("/api/threads", get(threads))
        .route("/api/thread", get(thread))
        .route("/api/thread/rename", post(rename_thread))
        .route("/api/thread/delete", post(delete_thread))
        .route("/api/thread/export", get(export_thread))
        .route("/api/document", get(document))
        .route("/api/ocr", get(ocr_words))
        .route("/api/file", get(file));
    api.fallback_service(ServeDir::new(ui_dir).append_index_html_on_directories(true))
        .layer(middleware::from_fn_with_state(Arc::clone(&state), guard))
        .with_state(state)
}

/// Host and Origin checks on every request, the token on `/api/`, security headers on every
/// response.
async fn guard(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let headers = request.headers();
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    if !state.hosts.iter().any(|h| h == host) {
        return ApiError::new(StatusCode::FORBIDDEN, "forbidden", "unexpected Host header")
            .into_response();
    }
    let is_api = request.uri().path().starts_with("/api/");
    if is_api {
        if let Some(origin) = headers.get(header::ORIGIN) {
            let origin = origin.to_str().unwrap_or("");
            if !state.origins.iter().any(|o| o == origin) {
                return ApiError::new(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    format!("requests from {origin} are not allowed"),
                )
                .into_response();
            }
        }
        if headers.get("sec-fetch-site").is_some_and(|s| s == "cross-site") {
            return ApiError::new(StatusCode::FORBIDDEN, "forbidden", "cross-site request")
                .into_response();
        }
        if !has_token(headers, &state.token) {
            return ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "missing or wrong token: open the address `quarry serve` printed",
            )
            .into_response();
        }
    }
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if is_api {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// Whether the request carries `Authorization: Bearer <token>` (compared in constant time).
fn has_token(headers: &HeaderMap, token: &str) -> bool {
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    given.len() == token.len()
        && given.bytes().zip(token.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

fn random_token() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    quarry::ids::hex(&bytes)
}

/// The UI build: `--ui-dir`, else `ui/` beside the executable, else the source tree's `ui/dist`.
fn locate_ui(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    let mut candidates: Vec<PathBuf> = given.into_iter().map(Path::to_path_buf).collect();
    if given.is_none() {
        if let Some(dir) =
            std::env::current_exe().ok().and_then(|e| e.parent().map(Path::to_path_buf))
        {
            candidates.push(dir.join("ui"));
        }
        candidates.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("ui/dist"));
    }
    candidates.into_iter().find(|d| d.join("index.html").is_file()).ok_or_else(|| {
        quarry::Error::user(
            "the web UI is not built (no index.html): run `make ui`, or pass --ui-dir".to_owned(),
        )
        .into()
    })
}

async fn status(State(state): State<Shared>) -> Result<Response, ApiError> {
    let status = state.engine.status().await?;
    let progress = state.engine.index_progress();
    Ok(Json(serde_json::json!({ "library": status, "indexing": progress })).into_response())
}

async fn docs(State(state): State<Shared>) -> Result<Response, ApiError> {
    let docs = state.engine.documents().await?;
    Ok(Json(serde_json::json!({ "documents": docs })).into_response())
}

async fn settings(State(state): State<Shared>) -> Json<AppSettings> {
    Json(state.engine.app_settings())
}

#[derive(Debug, Deserialize)]
struct PathsBody {
    #[serde(default)]
    paths: Vec<PathBuf>,
    /// The user confirmed adding what the engine asked about (a hidden folder, a file without
    /// an extension).
    #[serde(default)]
    confirm: bool,
}

/// Starts indexing in the background (202); 409 while a run is going.
async fn start_index(
    State(state): State<Shared>,
    Json(body): Json<PathsBody>,
) -> Result<Response, ApiError> {
    state.engine.start_index(body.paths, body.confirm)?;
    Ok((StatusCode::ACCEPTED, Json(serde_json::json!({ "started": true }))).into_response())
}

/// A locked PDF of the library and the password the user typed for it.
#[derive(serde::Deserialize)]
struct UnlockBody {
    path: PathBuf,
    password: String,
}

impl std::fmt::Debug for UnlockBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnlockBody").field("path", &self.path).finish_non_exhaustive()
    }
}

async fn unlock(
    State(state): State<Shared>,
    Json(body): Json<UnlockBody>,
) -> Result<Response, ApiError> {
    state.engine.start_unlock(body.path, body.password)?;
    Ok((StatusCode::ACCEPTED, Json(serde_json::json!({ "started": true }))).into_response())
}

async fn index_progress(State(state): State<Shared>) -> Json<IndexProgress> {
    Json(state.engine.index_progress())
}

/// Progress snapshots as server-sent events until the client goes away: the current one,
/// then each new one (the latest, when the client falls behind).
async fn index_events(State(state): State<Shared>) -> impl IntoResponse {
    let mut updates = state.engine.follow_index_progress();
    updates.mark_changed();
    let stream = futures::stream::unfold(updates, |mut updates| async move {
        updates.changed().await.ok()?;
        let json = serde_json::to_string(&*updates.borrow_and_update()).ok()?;
        Some((
            Ok::<_, std::convert::Infallible>(Event::default().event("progress").data(json)),
            updates,
        ))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// Stops the run after the files in progress ("pause": the next run resumes, skipping what is
/// done).
async fn cancel_index(State(state): State<Shared>) -> Result<Response, ApiError> {
    if !state.engine.cancel_index() {
        return Err(ApiError::new(StatusCode::CONFLICT, "idle", "no indexing run to stop"));
    }
    Ok(Json(serde_json::json!({ "cancelling": true })).into_response())
}

async fn remove(
    State(state): State<Shared>,
    Json(body): Json<PathsBody>,
) -> Result<Response, ApiError> {
    let removed = state.engine.remove(&body.paths).await?;
    Ok(Json(serde_json::json!({ "removed": removed })).into_response())
}

async fn models(State(state): State<Shared>) -> Result<Response, ApiError> {
    Ok(Json(state.engine.models_overview()?).into_response())
}

#[derive(Debug, Deserialize)]
struct PullBody {
    id: String,
    /// A mirror with the Hugging Face layout, or a folder holding the model's files.
    #[serde(default)]
    from: Option<String>,
}

/// Starts downloading a catalog model (202); 409 while another download runs.
async fn pull_model(
    State(state): State<Shared>,
    Json(body): Json<PullBody>,
) -> Result<Response, ApiError> {
    let from = body.from.filter(|f| !f.trim().is_empty());
    state.engine.start_pull(&body.id, from)?;
    Ok((StatusCode::ACCEPTED, Json(serde_json::json!({ "started": true }))).into_response())
}

#[derive(Debug, Deserialize)]
struct UseBody {
    /// The generator's file (or folder); none: answers quote the documents.
    path: Option<PathBuf>,
}

/// Answers from now on come from the generator at `path` (saved for the next start too).
async fn use_model(
    State(state): State<Shared>,
    Json(body): Json<UseBody>,
) -> Result<Response, ApiError> {
    state.engine.use_generator(body.path)?;
    Ok(Json(state.engine.app_settings()).into_response())
}

/// Changes the settings the body names; a value out of range is refused (400) naming the
/// field.
async fn update_settings(
    State(state): State<Shared>,
    Json(change): Json<quarry::config::LibrarySettings>,
) -> Result<Response, ApiError> {
    Ok(Json(state.engine.update_settings(&change)?).into_response())
}

#[derive(Debug, Deserialize)]
struct IdBody {
    id: String,
}

/// New libraries use this embedder; says whether this library already does.
async fn choose_embedder(
    State(state): State<Shared>,
    Json(body): Json<IdBody>,
) -> Result<Response, ApiError> {
    let in_use = state.engine.choose_embedder(&body.id)?;
    Ok(Json(serde_json::json!({ "in_use": in_use })).into_response())
}

#[derive(Debug, Deserialize)]
struct ModelPathBody {
    path: PathBuf,
}

/// Deletes an installed model that is not in use.
async fn remove_model(
    State(state): State<Shared>,
    Json(body): Json<ModelPathBody>,
) -> Result<Response, ApiError> {
    let removed = state.engine.remove_model(&body.path)?;
    Ok(Json(serde_json::json!({ "removed": removed })).into_response())
}

async fn cancel_pull(State(state): State<Shared>) -> Result<Response, ApiError> {
    if !state.engine.cancel_pull() {
        return Err(ApiError::new(StatusCode::CONFLICT, "idle", "no download to stop"));
    }
    Ok(Json(serde_json::json!({ "cancelling": true })).into_response())
}

#[derive(Debug, Deserialize)]
struct SearchQuery {
    q: String,
    k: Option<usize>,
    mode: Option<SearchMode>,
}

async fn search(
    State(state): State<Shared>,
    Query(query): Query<SearchQuery>,
) -> Result<Response, ApiError> {
    let engine = &state.engine;
    let mode = query.mode.unwrap_or_else(|| engine.default_search_mode());
    let hits = engine.search(&query.q, mode, query.k.unwrap_or(20).clamp(1, 200)).await?;
    Ok(Json(serde_json::json!({ "hits": hits })).into_response())
}

#[derive(Debug, Deserialize)]
struct AskBody {
    question: String,
    #[serde(default)]
    evidence: bool,
    k: Option<usize>,
    /// The part of the library to answer from (default: all of it).
    #[serde(default)]
    scope: quarry::api::AskScope,
    /// The conversation: a thread id, or "new" (default: a question on its own).
    #[serde(default)]
    thread: Option<String>,
}

/// Sends answer text as `token` events and stages as `stage` events; a client that went away
/// cancels the answer.
struct SseSink {
    tx: mpsc::UnboundedSender<AskMsg>,
    cancel: CancelToken,
}

impl SseSink {
    fn send(&self, event: Result<Event, axum::Error>) {
        if event.map(|e| self.tx.send(AskMsg::Event(e))).is_err() || self.tx.is_closed() {
            self.cancel.cancel();
        }
    }
}

impl quarry::generate::TokenSink for SseSink {
    fn text(&mut self, piece: &str) {
        self.send(Event::default().event("token").json_data(serde_json::json!({ "text": piece })));
    }

    fn stage(&mut self, stage: quarry::api::AnswerStage) {
        self.send(Event::default().event("stage").json_data(stage));
    }
}

/// What the answering task sends the response: stream events, or (before any) a refusal.
enum AskMsg {
    Event(Event),
    Refused(ApiError),
}

/// Streams `token` events with answer text as it is written, then one `answer` event with the
/// checked answer (or an `error` event). Closing the stream cancels generation. When the
/// engine is busy with as many answers as it takes, the request gets 429 and no stream.
async fn ask(State(state): State<Shared>, Json(body): Json<AskBody>) -> Response {
    let (tx, mut rx) = mpsc::unbounded_channel::<AskMsg>();
    let engine = Arc::clone(&state.engine);
    tokio::spawn(async move {
        let cancel = CancelToken::new();
        let defaults = engine.ask_options();
        let options = AskOptions {
            k: body.k.unwrap_or(defaults.k).clamp(1, 50),
            evidence: body.evidence,
            scope: body.scope,
            thread: body.thread,
            ..defaults
        };
        let mut sink = SseSink { tx: tx.clone(), cancel: cancel.clone() };
        let result = engine.ask(&body.question, &options, &mut sink, &cancel).await;
        let msg = match result {
            Ok(answer) => Event::default().event("answer").json_data(&answer).map(AskMsg::Event),
            Err(err @ quarry::Error::Busy(_)) => {
                let mut refused = ApiError::from(err);
                refused.status = StatusCode::TOO_MANY_REQUESTS;
                Ok(AskMsg::Refused(refused))
            }
            Err(err) => {
                Event::default().event("error").json_data(ApiError::from(err)).map(AskMsg::Event)
            }
        };
        if let Ok(msg) = msg {
            let _ = tx.send(msg);
        }
    });
    let first = match rx.recv().await {
        Some(AskMsg::Refused(err)) => return err.into_response(),
        Some(AskMsg::Event(event)) => Some(event),
        None => None,
    };
    let stream = futures::stream::unfold((first, rx), |(first, mut rx)| async move {
        if let Some(event) = first {
            return Some((Ok::<_, std::convert::Infallible>(event), (None, rx)));
        }
        loop {
            match rx.recv().await? {
                AskMsg::Event(event) => return Some((Ok(event), (None, rx))),
                AskMsg::Refused(_) => continue,
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default()).into_response()
}

/// The saved conversations, the most recent first.
async fn threads(State(state): State<Shared>) -> Result<Response, ApiError> {
    Ok(Json(serde_json::json!({ "threads": state.engine.threads()? })).into_response())
}

#[derive(Debug, Deserialize)]
struct ThreadQuery {
    id: String,
    #[serde(default)]
    format: Option<quarry::api::ThreadExportFormat>,
}

async fn thread(
    State(state): State<Shared>,
    Query(query): Query<ThreadQuery>,
) -> Result<Response, ApiError> {
    Ok(Json(state.engine.thread(&query.id)?).into_response())
}

#[derive(Debug, Deserialize)]
struct RenameBody {
    id: String,
    title: String,
}

async fn rename_thread(
    State(state): State<Shared>,
    Json(body): Json<RenameBody>,
) -> Result<Response, ApiError> {
    Ok(Json(state.engine.rename_thread(&body.id, &body.title)?).into_response())
}

async fn delete_thread(
    State(state): State<Shared>,
    Json(body): Json<IdBody>,
) -> Result<Response, ApiError> {
    state.engine.delete_thread(&body.id)?;
    Ok(Json(serde_json::json!({ "deleted": body.id })).into_response())
}

/// A conversation as Markdown (the default) or JSON, as a download.
async fn export_thread(
    State(state): State<Shared>,
    Query(query): Query<ThreadQuery>,
) -> Result<Response, ApiError> {
    let format = query.format.unwrap_or(quarry::api::ThreadExportFormat::Markdown);
    let text = state.engine.export_thread(&query.id, format)?;
    let content_type = match format {
        quarry::api::ThreadExportFormat::Markdown => "text/markdown; charset=utf-8",
        quarry::api::ThreadExportFormat::Json => "application/json",
    };
    Ok(([(header::CONTENT_TYPE, content_type)], text).into_response())
}

#[derive(Debug, Deserialize)]
struct PathQuery {
    path: PathBuf,
}

async fn document(
    State(state): State<Shared>,
    Query(query): Query<PathQuery>,
) -> Result<Response, ApiError> {
    let text = state.engine.document_text(&query.path).await?;
    Ok(Json(text).into_response())
}

#[derive(Debug, Deserialize)]
struct PageQuery {
    path: PathBuf,
    page: u32,
}

/// The words OCR read on a page, with their boxes, for highlighting a quote on a scan.
async fn ocr_words(
    State(state): State<Shared>,
    Query(query): Query<PageQuery>,
) -> Result<Response, ApiError> {
    let words = state.engine.ocr_words(&query.path, query.page).await?;
    Ok(Json(words).into_response())
}

/// The bytes of a document of the library (never any other file), for the PDF viewer.
async fn file(
    State(state): State<Shared>,
    Query(query): Query<PathQuery>,
) -> Result<Response, ApiError> {
    let (kind, bytes) = state.engine.document_bytes(&query.path).await?;
    let content_type = match kind {
        quarry::FileKind::Pdf => "application/pdf",
        // Never rendered as a page: HTML from a document is shown as text.
        _ => "text/plain; charset=utf-8",
    };
    Ok(([(header::CONTENT_TYPE, content_type)], bytes).into_response())
}

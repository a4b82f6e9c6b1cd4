//! `quarry mcp`: the library as a Model Context Protocol server on stdin/stdout, so any MCP host
//! (an assistant, an IDE) can search it and get grounded, cited answers from it. Tools `search`,
//! `ask`, `list_documents` and `get_passage`; every indexed document is a resource
//! (`quarry://document/<id>`, its indexed text). An edge like `serve`: it forwards to the
//! engine and holds no state of its own. Built on rmcp, the protocol's official Rust SDK.

use std::path::Path;
use std::sync::Arc;

use quarry::api::{Answer, AskOptions, DocumentInfo, DocumentState, SearchHit};
use quarry::{CancelToken, Engine};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolResult, ContentBlock, Implementation, ListResourcesResult, PaginatedRequestParams,
    ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, Resource,
    ResourceContents, ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt, tool, tool_handler, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Where document resources live.
const DOCUMENT_URI: &str = "quarry://document/";
/// Most hits one `search` returns.
const MAX_HITS: u32 = 50;

/// Serves the library behind `engine` on stdin/stdout until the host closes the connection.
pub(crate) async fn run(engine: Engine) -> anyhow::Result<()> {
    let server = LibraryServer::new(Arc::new(engine));
    let running = server.serve(rmcp::transport::stdio()).await?;
    running.waiting().await?;
    Ok(())
}

#[derive(Debug, Deserialize, JsonSchema)]
struct SearchArgs {
    /// What to look for: words, a phrase or a question, in any language of the library.
    query: String,
    /// How many passages to return (default 8, at most 50).
    #[serde(default)]
    k: Option<u32>,
}

#[derive(Debug, Deserialize, JsonSchema)]
struct AskArgs {
    /// The question, answered only from the library's documents.
    question: String,
    /// Quote the documents' best sentences instead of having the local model write the answer.
    #[serde(default)]
    quotes_only: Option<bool>,
    /// Ask as a turn of a saved conversation: a thread id from an earlier answer's
    /// `conversation`, or "new" to start one; follow-ups are then understood.
    #[serde(default)]
    thread: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
struct PassageArgs {
    /// A passage id as `search` or `ask` return it (`chunk_id`).
    chunk_id: String,
}

/// A passage as the tools return it.
#[derive(Debug, Serialize)]
struct PassageOut {
    chunk_id: String,
    document: String,
    page: u32,
    page_end: u32,
    heading: String,
    text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    score: Option<f32>,
}

impl PassageOut {
    fn of(hit: SearchHit, scored: bool) -> Self {
        Self {
            chunk_id: hit.chunk_id,
            document: hit.doc_path,
            page: hit.page,
            page_end: hit.page_end,
            heading: hit.heading,
            text: hit.text,
            score: scored.then_some(hit.score),
        }
    }
}

/// A grounded answer as `ask` returns it.
#[derive(Debug, Serialize)]
struct AnswerOut {
    answer: String,
    abstained: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    /// "generated" or "evidence" (quoted).
    mode: &'static str,
    language: &'static str,
    citations: Vec<CitationOut>,
}

#[derive(Debug, Serialize)]
struct CitationOut {
    n: u32,
    chunk_id: String,
    document: String,
    page: u32,
    quote: String,
}

impl From<Answer> for AnswerOut {
    fn from(a: Answer) -> Self {
        Self {
            abstained: a.abstained,
            reason: a.abstain_reason,
            mode: a.mode.as_str(),
            language: a.language.code(),
            citations: a
                .citations
                .into_iter()
                .map(|c| CitationOut {
                    n: c.n,
                    chunk_id: c.chunk_id,
                    document: c.doc_path,
                    page: c.page,
                    quote: c.quote,
                })
                .collect(),
            answer: a.answer,
        }
    }
}

#[derive(Debug, Serialize)]
struct DocumentOut {
    uri: String,
    path: String,
    title: Option<String>,
    kind: &'static str,
    pages: u32,
    passages: u32,
}

fn document_uri(path: &str) -> String {
    format!("{DOCUMENT_URI}{}", Engine::document_id(Path::new(path)))
}

fn document_out(d: DocumentInfo) -> DocumentOut {
    DocumentOut {
        uri: document_uri(&d.path),
        kind: d.kind.as_str(),
        pages: d.pages,
        passages: d.chunks,
        title: d.title,
        path: d.path,
    }
}

/// A tool's answer as JSON text, or the engine's error as a tool error the host's model reads.
fn json_result<T: Serialize>(value: quarry::Result<T>) -> Result<CallToolResult, ErrorData> {
    match value {
        Ok(value) => Ok(CallToolResult::success(vec![ContentBlock::json(&value)?])),
        Err(err) => Ok(CallToolResult::error(vec![ContentBlock::text(err.to_string())])),
    }
}

#[derive(Clone)]
struct LibraryServer {
    engine: Arc<Engine>,
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl LibraryServer {
    fn new(engine: Arc<Engine>) -> Self {
        Self { engine, tool_router: Self::tool_router() }
    }

    #[tool(
        description = "Search the user's document library (hybrid keyword and vector search). \
                       Returns passages with their document path, page and text.",
        annotations(read_only_hint = true)
    )]
    async fn search(
        &self,
        Parameters(SearchArgs { query, k }): Parameters<SearchArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let k = k.unwrap_or(8).clamp(1, MAX_HITS) as usize;
        let mode = self.engine.default_search_mode();
        let hits = self.engine.search(&query, mode, k).await;
        json_result(
            hits.map(|hits| hits.into_iter().map(|h| PassageOut::of(h, true)).collect::<Vec<_>>()),
        )
    }

    #[tool(description = "Answer a question from the user's documents only, with every sentence \
                       cited to a document, page and quote; says it could not find the answer \
                       (abstained) rather than guess.")]
    async fn ask(
        &self,
        Parameters(AskArgs { question, quotes_only, thread }): Parameters<AskArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let options = AskOptions {
            evidence: quotes_only.unwrap_or(false),
            thread,
            ..self.engine.ask_options()
        };
        let answer =
            self.engine.ask(&question, &options, &mut |_: &str| {}, &CancelToken::new()).await;
        json_result(answer.map(AnswerOut::from))
    }

    #[tool(
        description = "List the documents in the library with their resource URI, pages and \
                       number of passages.",
        annotations(read_only_hint = true)
    )]
    async fn list_documents(&self) -> Result<CallToolResult, ErrorData> {
        let docs = self.engine.documents().await.map(|docs| {
            docs.into_iter()
                .filter(|d| d.state == DocumentState::Indexed)
                .map(document_out)
                .collect::<Vec<_>>()
        });
        json_result(docs)
    }

    #[tool(
        description = "The full text of one passage by its chunk_id (from search or ask), with \
                       its document and page.",
        annotations(read_only_hint = true)
    )]
    async fn get_passage(
        &self,
        Parameters(PassageArgs { chunk_id }): Parameters<PassageArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        match self.engine.passage(&chunk_id).await {
            Ok(Some(hit)) => json_result(Ok(PassageOut::of(hit, false))),
            Ok(None) => Ok(CallToolResult::error(vec![ContentBlock::text(format!(
                "no passage {chunk_id} in the library"
            ))])),
            Err(err) => json_result::<()>(Err(err)),
        }
    }
}

impl LibraryServer {
    /// The library's indexed documents (the resources), or the engine's error as a protocol error.
    async fn indexed_documents(&self) -> Result<Vec<DocumentInfo>, ErrorData> {
        let docs = self
            .engine
            .documents()
            .await
            .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
        Ok(docs.into_iter().filter(|d| d.state == DocumentState::Indexed).collect())
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for LibraryServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().enable_resources().build())
            .with_server_info(Implementation::new("quarry", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "The user's own documents, searched and answered offline. Use `ask` for a \
                 grounded answer with citations, `search` for passages, `get_passage` for one \
                 passage's full text; documents are resources quarry://document/<id>.",
            )
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let resources = self
            .indexed_documents()
            .await?
            .into_iter()
            .map(|d| {
                let name = d.title.clone().unwrap_or_else(|| {
                    Path::new(&d.path)
                        .file_name()
                        .map_or_else(|| d.path.clone(), |n| n.to_string_lossy().into_owned())
                });
                Resource::new(document_uri(&d.path), name)
                    .with_description(d.path.clone())
                    .with_mime_type("text/plain")
            })
            .collect();
        Ok(ListResourcesResult::with_all_items(resources))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let uri = request.uri;
        let not_found = || ErrorData::resource_not_found(format!("no document {uri}"), None);
        let id = uri.strip_prefix(DOCUMENT_URI).ok_or_else(not_found)?;
        let doc = self
            .indexed_documents()
            .await?
            .into_iter()
            .find(|d| Engine::document_id(Path::new(&d.path)).as_str() == id)
            .ok_or_else(not_found)?;
        let text = self
            .engine
            .document_text(Path::new(&doc.path))
            .await
            .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
        Ok(ReadResourceResult::new(vec![ResourceContents::text(text.text, uri.clone())]).into())
    }
}

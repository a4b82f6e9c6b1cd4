//! Argument parsing and output for each `quarry` subcommand. Errors become messages and exit
//! codes here, at the edge, with `anyhow` carrying context.

mod answering;
mod generation;
mod mcp;
mod progress;
mod pull;
mod serve;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use quarry::{CancelToken, Engine, EngineConfig, SearchMode};

/// First argument that starts the hidden extraction worker.
pub(crate) use quarry::ingest::worker::WORKER_ARG;

#[derive(Debug, Parser)]
#[command(name = "quarry", version, about = "Ask questions about your own documents, offline")]
struct Cli {
    /// Library folder, or a library on S3-compatible storage (s3://bucket/prefix: credentials,
    /// region and endpoint from the usual AWS variables and profiles, AWS_ENDPOINT_URL for
    /// MinIO, Ceph or Garage) [default: the platform's data folder]
    #[arg(long, env = "QUARRY_DATA_DIR", global = true)]
    data_dir: Option<PathBuf>,
    /// This machine's folder for a library on S3 (its text index, settings, conversations
    /// and audit log) [default: ~/.cache/quarry/libraries/<bucket>-<prefix>-<hash>]
    #[arg(long, env = "QUARRY_CACHE_DIR", global = true)]
    cache_dir: Option<PathBuf>,
    /// Models folder [default: <data-dir>/models]
    #[arg(long, env = "QUARRY_MODELS_DIR", global = true)]
    models_dir: Option<PathBuf>,
    /// Embedding model (catalog id) of a new library, or the one this command must use; an
    /// existing library keeps the one it was built with [default: `quarry models use`, else
    /// multilingual-e5-small when installed, else all-MiniLM-L6-v2]
    #[arg(long, env = "QUARRY_EMBEDDER", global = true)]
    embedder: Option<String>,
    /// Write answers with an OpenAI-compatible server (llama.cpp's server, vLLM, Ollama, LM
    /// Studio, TGI) at this URL instead of a local model; its API key, if it needs one, is read
    /// from QUARRY_GENERATOR_API_KEY (else OPENAI_API_KEY) and never logged
    #[arg(long, env = "QUARRY_GENERATOR_URL", global = true)]
    generator_url: Option<String>,
    /// The model the server should run [default: the first one it lists]
    #[arg(long, env = "QUARRY_GENERATOR_MODEL", global = true)]
    generator_model: Option<String>,
    /// Tokens the server's model attends to; passages are chosen to fit
    #[arg(long, global = true, default_value_t = 4096)]
    generator_context: usize,
    /// Do not read scanned pages and image files by OCR (Tesseract)
    #[arg(long, env = "QUARRY_NO_OCR", global = true)]
    no_ocr: bool,
    /// Tesseract language models for OCR, `+`-joined (installed ones: `tesseract --list-langs`)
    #[arg(long, env = "QUARRY_OCR_LANGUAGES", global = true, default_value = "deu+eng")]
    ocr_languages: String,
    /// More log output (-v info, -vv debug)
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Only errors on stderr: no warnings, no progress
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Add files or folders and index them incrementally (no paths: re-scan known folders)
    Index {
        /// Files or folders
        paths: Vec<PathBuf>,
        /// Print the report as JSON
        #[arg(long)]
        json: bool,
        /// Seconds one file may take before its extractor is stopped
        #[arg(long, default_value_t = 120)]
        timeout: u64,
        /// Files extracted at once [default: number of cores, at most 4]
        #[arg(long)]
        workers: Option<usize>,
        /// Keep running and re-index whenever files under the sources change
        #[arg(long)]
        watch: bool,
        /// Passwords for encrypted PDFs, one per line, each tried on every locked PDF (also
        /// those that failed before for want of one); used for this run only, never stored
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
    },
    /// Library summary
    Status {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// List documents with their state and errors
    Docs {
        /// Only failed documents
        #[arg(long)]
        failed: bool,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Remove files or folders from the library
    Remove {
        /// Files or folders
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Search the library
    Search {
        /// The query
        query: String,
        /// Number of hits
        #[arg(short, default_value_t = 10)]
        k: usize,
        /// How to search [default: hybrid when the library has vectors, else text]
        #[arg(long, value_enum)]
        mode: Option<Mode>,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Answer a question from the library, citing page and passage
    Ask {
        /// The question
        question: String,
        #[command(flatten)]
        how: AnswerFlags,
        /// Ask as a turn of this conversation (a thread id; "new" starts one): a follow-up is
        /// rewritten into a standalone question, and the turn is saved
        #[arg(long, value_name = "ID")]
        thread: Option<String>,
        /// Print the answer document as JSON
        #[arg(long)]
        json: bool,
    },
    /// A conversation in the terminal: one question per line, follow-ups understood, the
    /// thread saved in the library (an empty line ends it)
    Chat {
        /// Continue this conversation [default: start a new one]
        #[arg(long, value_name = "ID")]
        thread: Option<String>,
        #[command(flatten)]
        how: AnswerFlags,
        /// Print each answer document as JSON
        #[arg(long)]
        json: bool,
    },
    /// The saved conversations: list, show, rename, delete, export
    Threads {
        #[command(subcommand)]
        what: ThreadsCommand,
    },
    /// Serve the web UI and the library's operations on 127.0.0.1 (prints the address once)
    Serve {
        /// Port (0: any free port)
        #[arg(long, default_value_t = 7341)]
        port: u16,
        /// Folder with the built UI (index.html) [default: beside the binary, else ui/dist]
        #[arg(long)]
        ui_dir: Option<PathBuf>,
    },
    /// Serve the library to an MCP host (assistants, IDEs) on stdin/stdout: tools search, ask,
    /// list_documents and get_passage; documents as resources
    Mcp,
    /// The record of every answer given
    Audit {
        #[command(subcommand)]
        what: AuditCommand,
    },
    /// Measure quality on standard data sets
    Eval {
        #[command(subcommand)]
        what: EvalCommand,
    },
    /// Measure speed (JSON on stdout)
    Bench {
        #[command(subcommand)]
        what: BenchCommand,
    },
    /// Stream a reply from a local language model (a developer tool; `ask` answers from documents)
    Generate {
        /// GGUF file, or the name of an installed generator
        #[arg(long)]
        model: String,
        /// The user message
        prompt: String,
        /// A system message before it
        #[arg(long)]
        system: Option<String>,
        /// Most tokens to generate
        #[arg(long, default_value_t = 256)]
        max_tokens: usize,
        /// Sampling temperature [default: greedy decoding]
        #[arg(long)]
        temperature: Option<f64>,
        /// Nucleus sampling mass (with --temperature)
        #[arg(long)]
        top_p: Option<f64>,
        /// Sampler seed
        #[arg(long, default_value_t = 299_792_458)]
        seed: u64,
        /// Stop at this string (repeatable)
        #[arg(long)]
        stop: Vec<String>,
        /// Repetition penalty over the last 64 tokens (1.0 = off, as llama.cpp's default)
        #[arg(long, default_value_t = 1.0)]
        repeat_penalty: f32,
        /// Print the reply and timings as JSON instead of streaming
        #[arg(long)]
        json: bool,
    },
    /// Installed models
    Models {
        #[command(subcommand)]
        what: ModelsCommand,
    },
    /// The library's settings: show them, or change some (saved in <data-dir>/settings.json)
    Settings {
        #[command(subcommand)]
        what: Option<SettingsCommand>,
        /// As JSON
        #[arg(long)]
        json: bool,
    },
    /// Rebuild derived indexes from the tables
    Reindex {
        /// Rebuild the full-text index
        #[arg(long, required = true)]
        text: bool,
    },
}

#[derive(Debug, Subcommand)]
enum ModelsCommand {
    /// Generators and embedders in the models folder (and the Hugging Face cache layout)
    List {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Copy a model folder (or a .gguf file) into the models folder and check that it loads
    Import {
        /// The folder or file, e.g. on a USB stick
        source: PathBuf,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Download a catalog model (resumable; every file checked before it is installed)
    Pull {
        /// Catalog id (see `quarry models catalog`), or its folder name
        id: String,
        /// A mirror with the Hugging Face layout (http://host/...) or a folder with the files
        #[arg(long)]
        from: Option<String>,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Check installed catalog models against their sizes and hashes
    Verify {
        /// One catalog id (default: every installed one)
        id: Option<String>,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Remove an installed catalog model (and any partial download of it)
    Remove {
        /// Catalog id or folder name
        id: String,
    },
    /// Choose the generator (or, for new libraries, the embedder) this library uses
    Use {
        /// An installed generator (id, file name or path) or an embedder's catalog id
        id: String,
    },
    /// The models Quarry can download, with size, licence, languages and what each is good for
    Catalog {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
}

/// How `ask` and `chat` answer.
#[derive(Debug, clap::Args)]
pub(crate) struct AnswerFlags {
    /// Passages to retrieve [default: the library's setting, 8 unless changed]
    #[arg(short)]
    k: Option<usize>,
    /// Quote the best-supported sentences instead of generating (no model needed)
    #[arg(long)]
    evidence: bool,
    /// Generator: a GGUF file or an installed model's name [default: the first installed]
    #[arg(long)]
    model: Option<String>,
    /// Most tokens to generate [default: the library's setting, 384 unless changed]
    #[arg(long)]
    max_tokens: Option<usize>,
    /// Answer only from documents under this folder (or this file); repeatable
    #[arg(long = "in", value_name = "PATH")]
    within: Vec<PathBuf>,
    /// Answer only from documents of this kind (pdf, text, markdown, html, docx, odt, rtf, presentation, spreadsheet, epub, email, mbox, zip, image); repeatable
    #[arg(long = "kind", value_name = "KIND")]
    kinds: Vec<String>,
}

impl AnswerFlags {
    /// The options these flags ask for, the library's settings filling in what they leave out;
    /// a named model replaces the configured generator.
    fn options(
        self,
        config: &mut EngineConfig,
        models: &quarry::models::ModelFolder,
        thread: Option<String>,
    ) -> anyhow::Result<quarry::AskOptions> {
        if let Some(name) = &self.model {
            config.generator = Some(generation::resolve_model(models, name)?);
            config.generator_server = None;
        }
        Ok(quarry::AskOptions {
            k: self.k.unwrap_or(config.answer.passages_per_question),
            evidence: self.evidence,
            max_tokens: self.max_tokens.unwrap_or(config.answer.max_answer_tokens),
            scope: ask_scope(&self.within, &self.kinds)?,
            thread,
        })
    }
}

/// `quarry settings set …`.
#[derive(Debug, Subcommand)]
pub(crate) enum SettingsCommand {
    /// Change the settings named (the others keep their values); a value out of range is
    /// refused with the field's name
    Set {
        /// Evidence threshold of the retrieval gate (0 to 1)
        #[arg(long)]
        gate_threshold: Option<f32>,
        /// Passages retrieved per question (1 to 50)
        #[arg(long)]
        passages: Option<usize>,
        /// Most tokens an answer may take (16 to 4096)
        #[arg(long)]
        max_answer_tokens: Option<usize>,
        /// Read scanned pages and images by OCR (on or off)
        #[arg(long, value_parser = ["on", "off"])]
        ocr: Option<String>,
        /// Models folder (a full path; used from the next start)
        #[arg(long)]
        models_dir: Option<PathBuf>,
    },
}

/// `quarry threads …`.
#[derive(Debug, Subcommand)]
pub(crate) enum ThreadsCommand {
    /// The conversations, the most recent first
    List {
        /// As JSON
        #[arg(long)]
        json: bool,
    },
    /// One conversation with every turn, its answers and sources
    Show {
        /// The conversation's id
        id: String,
        /// As JSON
        #[arg(long)]
        json: bool,
    },
    /// Give a conversation a new title
    Rename {
        /// The conversation's id
        id: String,
        /// The new title
        title: String,
    },
    /// Delete a conversation (its answers stay in the audit log)
    Delete {
        /// The conversation's id
        id: String,
    },
    /// Export a conversation with its sources
    Export {
        /// The conversation's id
        id: String,
        /// md (a report for people) or json (the thread and the audit records of its answers)
        #[arg(long, default_value = "md")]
        format: String,
        /// Write to this file [default: standard output]
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Write the answers recorded since a date as JSON lines or a Markdown report
    Export {
        /// Earliest answer: a date (2026-11-21) or an RFC 3339 time
        #[arg(long)]
        since: Option<String>,
        /// jsonl or md
        #[arg(long, default_value = "md")]
        format: String,
        /// Write to this file instead of standard output
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Check that no record was changed, removed, added or moved (exit code 1 if one was)
    Verify {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum EvalCommand {
    /// Retrieval quality on a BEIR data set (nDCG@10, Recall@10/100, MRR@10)
    Retrieval {
        /// BEIR folder with corpus.jsonl, queries.jsonl and qrels/test.tsv
        #[arg(long)]
        beir: PathBuf,
        /// Search mode to evaluate [default: all three on one index]
        #[arg(long, value_enum)]
        mode: Option<Mode>,
        /// Chunk size in tokens, to compare chunking settings [default: the library default]
        #[arg(long)]
        chunk_tokens: Option<usize>,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// What each part of the German full-text analysis earns: BM25 recall@1/5/10 over a
    /// SQuAD-layout paragraph file (no embedder needed)
    Analyzers {
        /// Questions (JSON lines with pid and question)
        #[arg(long)]
        squad: PathBuf,
        /// Paragraphs [default: beside the questions]
        #[arg(long)]
        paragraphs: Option<PathBuf>,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Grounded answers on SQuAD 2.0: abstention, citation precision, F1
    Qa {
        /// Questions (JSON lines: id, title, question, is_impossible, answers)
        #[arg(long)]
        squad: PathBuf,
        /// Paragraphs [default: beside the questions, "questions" → "paragraphs" in the name]
        #[arg(long)]
        paragraphs: Option<PathBuf>,
        /// Evaluate evidence mode (no generation)
        #[arg(long)]
        evidence: bool,
        /// Generator for generated answers [default: the first installed]
        #[arg(long)]
        model: Option<String>,
        /// Ask only the first N questions
        #[arg(long)]
        limit: Option<usize>,
        /// Also report the gate thresholds that fit these questions best
        #[arg(long)]
        calibrate: bool,
        /// Layout of the grounded prompt: plain, compact or fenced [default: plain]
        #[arg(long)]
        prompt_style: Option<String>,
        /// Repetition penalty for generated answers (1.0 = off) [default: the engine's]
        #[arg(long)]
        repeat_penalty: Option<f32>,
        /// Most passages given to the model [default: the engine's]
        #[arg(long)]
        passages: Option<usize>,
        /// Give the model only each passage's best sentence and N on either side
        #[arg(long)]
        sentence_window: Option<usize>,
        /// Write every question with its answer to this JSON lines file
        #[arg(long)]
        dump: Option<PathBuf>,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Embedding throughput on 256-token chunks, at each thread count
    Embed {
        /// Thread counts to measure, each in a fresh process
        #[arg(long, value_delimiter = ',', default_value = "1,2")]
        threads: Vec<usize>,
        /// Chunks per round
        #[arg(long, default_value_t = 256)]
        chunks: usize,
        /// Measured rounds (the best counts)
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// Run one measurement in this process (used by the parent)
        #[arg(long, hide = true)]
        in_process: bool,
    },
    /// Time of a grounded answer stage by stage (retrieval, evidence scoring, prompt, decode;
    /// p50/p95) over SQuAD-layout questions asked of a real model; `bench/bench_ask.py` replays
    /// the same prompts through llama.cpp
    Ask {
        /// Questions (JSON lines: id, title, question, is_impossible, answers)
        #[arg(long)]
        squad: PathBuf,
        /// Paragraphs [default: beside the questions, "questions" → "paragraphs" in the name]
        #[arg(long)]
        paragraphs: Option<PathBuf>,
        /// Generator [default: the first installed]
        #[arg(long)]
        model: Option<String>,
        /// Ask only the first N questions
        #[arg(long, default_value_t = 40)]
        limit: usize,
        /// Most passages given to the model [default: the engine's]
        #[arg(long)]
        passages: Option<usize>,
        /// Write every question with its prompt and timings to this JSON lines file
        #[arg(long)]
        prompts: Option<PathBuf>,
    },
    /// Hybrid query latency (query embedding excluded) over synthetic libraries
    Search {
        /// Library sizes in chunks
        #[arg(long, value_delimiter = ',', default_value = "10000,100000")]
        sizes: Vec<usize>,
        /// Queries timed per size
        #[arg(long, default_value_t = 200)]
        queries: usize,
        /// Vector dimensions
        #[arg(long, default_value_t = 384)]
        dims: usize,
    },
    /// Prompt processing and decoding speed of a GGUF model, at each thread count
    Generate {
        /// GGUF file, or the name of an installed generator
        #[arg(long)]
        model: String,
        /// Thread counts to measure, each in a fresh process
        #[arg(long, value_delimiter = ',', default_value = "2")]
        threads: Vec<usize>,
        /// Prompt length in tokens
        #[arg(long, default_value_t = 512)]
        prompt_tokens: usize,
        /// Tokens to decode
        #[arg(long, default_value_t = 128)]
        gen_tokens: usize,
        /// Measured rounds (the best counts)
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// Run one measurement in this process (used by the parent)
        #[arg(long, hide = true)]
        in_process: bool,
        /// Print JSON (the only output format; accepted for symmetry)
        #[arg(long)]
        json: bool,
    },
    /// Teacher-forced logits at every position, for comparing with a reference implementation
    Logits {
        /// GGUF file
        #[arg(long)]
        model: PathBuf,
        /// JSON array of token ids
        #[arg(long)]
        tokens: PathBuf,
        /// Output: little-endian f32, one row of vocabulary size per position
        #[arg(long)]
        out: PathBuf,
        /// Read the ids as one prompt (in prefill chunks, the prompt path) and write only the
        /// logits after the last of them
        #[arg(long)]
        after_prompt: bool,
    },
    /// Write a random-weight checkpoint in a real model's shape (tests and benchmarks): a GGUF
    /// file, or a Hugging Face folder with `--format safetensors`
    Checkpoint {
        /// Shape: smollm2-135m, qwen2.5-0.5b, qwen3-0.6b, llama-3.2-1b, gemma3-1b,
        /// phi-3.5-mini, or tiny-llama|qwen2|qwen3|phi3|gemma3
        #[arg(long)]
        shape: String,
        /// f32, q8_0 or q4_k_m (GGUF); f32 or bf16 (safetensors)
        #[arg(long, default_value = "q4_k_m")]
        quant: String,
        /// gguf (a file) or safetensors (a folder; llama, qwen2 and qwen3 shapes)
        #[arg(long, default_value = "gguf")]
        format: String,
        /// tokenizer.json whose vocabulary goes into the file
        #[arg(long)]
        tokenizer: PathBuf,
        /// Beginning-of-text token
        #[arg(long, default_value = "<|im_start|>")]
        bos: String,
        /// End-of-text token
        #[arg(long, default_value = "<|im_end|>")]
        eos: String,
        /// Jinja chat template to embed
        #[arg(long)]
        chat_template: Option<PathBuf>,
        /// Seed of the weights
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Output file (GGUF) or folder (safetensors)
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Mode {
    /// Vector and BM25 results fused (reciprocal rank fusion)
    Hybrid,
    /// Nearest neighbours of the query embedding
    Vector,
    /// BM25 full-text search
    Text,
}

impl From<Mode> for SearchMode {
    fn from(mode: Mode) -> Self {
        match mode {
            Mode::Hybrid => SearchMode::Hybrid,
            Mode::Vector => SearchMode::Vector,
            Mode::Text => SearchMode::Text,
        }
    }
}

/// Runs the command line and maps errors to exit codes.
pub(crate) fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose, cli.quiet);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(err) => {
            let user =
                err.downcast_ref::<quarry::Error>().is_some_and(quarry::Error::is_user_error);
            eprintln!("error: {err:#}");
            ExitCode::from(if user { 1 } else { 2 })
        }
    }
}

/// Log lines on stderr: warnings by default, more with `-v`, errors only with `--quiet`; in
/// colour only on a terminal, and never when `NO_COLOR` is set (no-color.org).
#[allow(clippy::disallowed_methods)] // The CLI is one of the two places that read the environment.
fn init_logging(verbose: u8, quiet: bool) {
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, _) => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("QUARRY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal() && !no_color)
        .with_target(false)
        .try_init();
}

/// The engine settings and the models folder for this command. Only commands that write
/// answers look for a default generator (reading model headers); `status` and friends don't.
#[allow(clippy::disallowed_methods)] // The server's API key comes from the environment.
async fn config_for(cli: &Cli) -> anyhow::Result<(EngineConfig, quarry::models::ModelFolder)> {
    let remote = match cli.data_dir.as_deref().and_then(|dir| dir.to_str()) {
        Some(uri) => remote_library(uri)?,
        None => None,
    };
    let data_dir = match (&remote, &cli.data_dir) {
        (Some(remote), _) => {
            let cache = match &cli.cache_dir {
                Some(dir) => dir.clone(),
                None => remote.default_cache_dir()?,
            };
            // The library's own record of its embedder, so the model is chosen to match. A
            // store out of reach is reported by the command that opens the library; others
            // (`models list`) go on.
            if let Err(e) = quarry::index::remote::mirror_library_meta(remote, &cache).await {
                tracing::debug!("library.json not copied from {}: {e}", remote.uri);
            }
            cache
        }
        (None, Some(dir)) => dir.clone(),
        (None, None) => quarry::config::default_data_dir()?,
    };
    let models_dir = cli
        .models_dir
        .clone()
        .or_else(|| quarry::config::LibrarySettings::models_dir(&data_dir))
        .unwrap_or_else(|| data_dir.join("models"));
    let models = quarry::models::discover(&models_dir);
    let generates = cli.generator_url.is_none()
        && matches!(
            cli.command,
            Command::Ask { how: AnswerFlags { evidence: false, model: None, .. }, .. }
                | Command::Chat { how: AnswerFlags { evidence: false, model: None, .. }, .. }
                | Command::Serve { .. }
                | Command::Mcp
                | Command::Eval { what: EvalCommand::Qa { evidence: false, model: None, .. } }
                | Command::Bench { what: BenchCommand::Ask { model: None, .. } }
        );
    let mut config = models.engine_config(data_dir, generates);
    config.remote = remote;
    if let Some(url) = &cli.generator_url {
        let mut server = quarry::config::GeneratorServerConfig::new(url);
        server.model = cli.generator_model.clone();
        server.context_length = cli.generator_context;
        server.api_key = ["QUARRY_GENERATOR_API_KEY", "OPENAI_API_KEY"]
            .iter()
            .find_map(|name| std::env::var(name).ok().filter(|key| !key.is_empty()));
        config.generator = None;
        config.generator_server = Some(server);
    } else if cli.generator_model.is_some() {
        return Err(quarry::Error::user("--generator-model needs --generator-url").into());
    }
    if let Some(id) = &cli.embedder {
        let chosen = models.embedder(id).ok_or_else(|| {
            quarry::Error::user(format!(
                "--embedder {id}: not installed in {} (quarry models pull {id})",
                models_dir.display()
            ))
        })?;
        config.use_embedder(chosen);
    }
    let uses_embedder = matches!(
        cli.command,
        Command::Index { .. }
            | Command::Search { .. }
            | Command::Eval { what: EvalCommand::Qa { .. } | EvalCommand::Retrieval { .. } }
            | Command::Bench { what: BenchCommand::Ask { .. } }
            | Command::Ask { .. }
            | Command::Serve { .. }
            | Command::Mcp
    );
    if config.embedder.is_none() && uses_embedder {
        tracing::warn!(
            "embedding model {} not found in {}: text search only, chunks sized by characters",
            quarry::models::DEFAULT_EMBEDDER,
            models_dir.display()
        );
    }
    if cli.no_ocr {
        config.extraction.ocr = None;
    } else if let Some(ocr) = &mut config.extraction.ocr {
        ocr.languages = cli.ocr_languages.clone();
    }
    let exe = std::env::current_exe().context("cannot find the quarry executable")?;
    config.extraction.worker_command = Some(quarry::ingest::worker::worker_command(&exe));
    Ok((config, models))
}

/// The library on object storage that `--data-dir` names, if it names one, with what the
/// AWS environment says about the server (plain HTTP for an `http://` endpoint) and the lease
/// length from QUARRY_LEASE_SECONDS.
#[allow(clippy::disallowed_methods)] // The storage server is the user's AWS setting.
fn remote_library(uri: &str) -> anyhow::Result<Option<quarry::config::RemoteLibrary>> {
    let Some(mut remote) = quarry::config::RemoteLibrary::parse(uri)? else { return Ok(None) };
    let endpoint = ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_ENDPOINT"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()));
    if let Some(endpoint) = endpoint {
        remote.allow_http_for(&endpoint);
    }
    if let Ok(seconds) = std::env::var("QUARRY_LEASE_SECONDS") {
        remote.lease_seconds = seconds.parse().ok().filter(|s| *s >= 5).ok_or_else(|| {
            quarry::Error::user(format!(
                "QUARRY_LEASE_SECONDS={seconds}: expected whole seconds, at least 5"
            ))
        })?;
    }
    Ok(Some(remote))
}

/// `--model` and `--passages` of `eval qa` and `bench ask`: the generator to answer with (a
/// local model instead of any server) and the most passages it is given.
fn choose_generator_and_passages(
    config: &mut EngineConfig,
    models: &quarry::models::ModelFolder,
    model: Option<String>,
    passages: Option<usize>,
) -> anyhow::Result<()> {
    if let Some(name) = model {
        config.generator = Some(generation::resolve_model(models, &name)?);
        config.generator_server = None;
    }
    if let Some(n) = passages {
        config.answer.max_passages = n.max(1);
    }
    Ok(())
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let (mut config, models) = config_for(&cli).await?;
    let models_dir = models.dir().to_owned();
    match cli.command {
        Command::Index { paths, json, timeout, workers, watch, password_file } => {
            config.extraction.per_file_timeout_secs = timeout;
            if let Some(file) = password_file {
                let text = std::fs::read_to_string(&file)
                    .with_context(|| format!("cannot read the password file {}", file.display()))?;
                let passwords: Vec<String> = text
                    .lines()
                    .map(|l| l.trim_end_matches('\r').to_owned())
                    .filter(|l| !l.is_empty())
                    .collect();
                if passwords.is_empty() {
                    anyhow::bail!("the password file {} holds no password", file.display());
                }
                config.extraction.pdf_passwords = quarry::ingest::Passwords(passwords);
            }
            if let Some(workers) = workers {
                config.extraction.workers = workers;
            }
            let engine = Engine::open_for_write(config).await?;
            let cancel = CancelToken::new();
            let on_interrupt = cancel.clone();
            tokio::spawn(async move {
                if tokio::signal::ctrl_c().await.is_ok() {
                    eprintln!("stopping after the files in progress (Ctrl-C again to abort)");
                    on_interrupt.cancel();
                    if tokio::signal::ctrl_c().await.is_ok() {
                        std::process::exit(130);
                    }
                }
            });
            let mut display = progress::IndexDisplay::new(
                !json && !cli.quiet,
                !cli.quiet && std::io::stderr().is_terminal(),
            );
            let report = engine.index(&paths, &mut |e| display.event(e), &cancel).await?;
            display.finish();
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!(
                    "{} added, {} updated, {} removed, {} unchanged, {} failed; {} pages, {} chunks in {:.1} s",
                    report.added,
                    report.updated,
                    report.removed,
                    report.unchanged,
                    report.failed,
                    report.pages,
                    report.chunks,
                    report.seconds
                );
                for skipped in &report.passed_over {
                    eprintln!("not indexed: {}: {}", skipped.path, skipped.error);
                }
            }
            if watch {
                watch_and_reindex(Arc::new(engine), json, &cancel).await;
            }
        }
        Command::Status { json } => {
            let status = Engine::open(config).await?.status().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                println!("library   {}", status.data_dir);
                println!(
                    "documents {} ({} indexed, {} failed, {} skipped, {} pending)",
                    status.documents, status.indexed, status.failed, status.skipped, status.pending
                );
                println!("chunks    {} (text index {})", status.chunks, status.text_index_chunks);
                println!("chunking  {}", status.chunker);
                for source in &status.sources {
                    println!("source    {source}");
                }
            }
        }
        Command::Docs { failed, json } => {
            let mut docs = Engine::open(config).await?.documents().await?;
            if failed {
                docs.retain(|d| d.state != quarry::DocumentState::Indexed);
            }
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({ "documents": docs }))?
                );
            } else {
                for doc in &docs {
                    println!(
                        "{:<8} {:>4} p {:>5} ch  {}",
                        doc.state.as_str(),
                        doc.pages,
                        doc.chunks,
                        doc.path
                    );
                    if let Some(error) = &doc.error {
                        println!("         error: {error}");
                    }
                    for warning in &doc.warnings {
                        println!("         warning: {warning}");
                    }
                }
            }
        }
        Command::Remove { paths, json } => {
            let engine = Engine::open_for_write(config).await?;
            let removed = engine.remove(&paths).await?;
            if json {
                println!("{}", serde_json::json!({ "removed": removed }));
            } else {
                println!("{removed} documents removed");
            }
        }
        Command::Search { query, k, mode, json } => {
            let engine = Engine::open(config).await?;
            let mode = mode.map_or_else(|| engine.default_search_mode(), SearchMode::from);
            let hits = engine.search(&query, mode, k).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "hits": hits }))?);
            } else if hits.is_empty() {
                println!("no matches");
            } else {
                for (n, hit) in hits.iter().enumerate() {
                    let unit = answering::page_name(&hit.doc_path);
                    let pages = match (unit, hit.page_end > hit.page) {
                        ("page", true) => format!("pp. {}-{}", hit.page, hit.page_end),
                        ("page", false) => format!("p. {}", hit.page),
                        (unit, true) => format!("{unit}s {}-{}", hit.page, hit.page_end),
                        (unit, false) => format!("{unit} {}", hit.page),
                    };
                    println!("[{}] {} ({pages}) score {:.2}", n + 1, hit.doc_path, hit.score);
                    println!("    {}", preview(&hit.text, 240));
                }
            }
        }
        Command::Eval { what: EvalCommand::Analyzers { squad, paragraphs, json } } => {
            let paragraphs = match paragraphs {
                Some(p) => p,
                None => quarry::eval::squad::default_paragraphs(&squad)?,
            };
            let work = tempfile::tempdir().context("cannot create a temporary folder")?;
            let runs = quarry::eval::analyzers::evaluate(&squad, &paragraphs, work.path())?;
            if json {
                println!("{}", serde_json::to_string_pretty(&runs)?);
            } else {
                if let Some(first) = runs.first() {
                    println!(
                        "{} questions, {} paragraphs ({} German), BM25 only",
                        first.questions, first.paragraphs, first.german_paragraphs
                    );
                }
                println!("{:<50} {:>6} {:>6} {:>6}", "analysis", "R@1", "R@5", "R@10");
                for run in &runs {
                    println!(
                        "{:<50} {:>6.3} {:>6.3} {:>6.3}",
                        run.variant, run.recall_at_1, run.recall_at_5, run.recall_at_10
                    );
                }
            }
        }
        Command::Eval { what: EvalCommand::Retrieval { beir, mode, chunk_tokens, json } } => {
            if let Some(n) = chunk_tokens {
                config.chunking.max_tokens = n;
            }
            if config.embedder.is_none() && !matches!(mode, Some(Mode::Text)) {
                anyhow::bail!(quarry::Error::user(
                    "vector and hybrid evaluation need the embedding model; pass --models-dir or use --mode text"
                ));
            }
            if matches!(mode, Some(Mode::Text)) {
                // Text-only evaluation needs no vectors: skip the embedding work (chunks are
                // still sized with the model's tokenizer, as in a full library).
                config.embedder = None;
            }
            let modes: Vec<SearchMode> = match mode {
                Some(mode) => vec![mode.into()],
                None if config.embedder.is_some() => {
                    vec![SearchMode::Hybrid, SearchMode::Vector, SearchMode::Text]
                }
                None => vec![SearchMode::Text],
            };
            let work = tempfile::tempdir().context("cannot create a temporary folder")?;
            let runs = quarry::eval::beir::evaluate(&beir, config, work.path(), &modes).await?;
            if json {
                if let [run] = runs.as_slice() {
                    println!("{}", serde_json::to_string_pretty(run)?);
                } else {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&serde_json::json!({ "runs": runs }))?
                    );
                }
            } else {
                for run in &runs {
                    let m = &run.metrics;
                    println!(
                        "{:<7} nDCG@10 {:.4}  Recall@10 {:.4}  Recall@100 {:.4}  MRR@10 {:.4}  ({} queries, {} docs, {} chunks, index {:.1} s, search p50 {:.1} ms)",
                        run.mode.as_str(),
                        m.ndcg_10,
                        m.recall_10,
                        m.recall_100,
                        m.mrr_10,
                        run.queries,
                        run.documents,
                        run.chunks,
                        run.index_seconds,
                        run.search_ms_p50
                    );
                }
            }
        }
        Command::Ask { question, how, thread, json } => {
            let options = how.options(&mut config, &models, thread)?;
            answering::ask(config, answering::AskArgs { question, options, json }).await?;
        }
        Command::Chat { thread, how, json } => {
            let options = how.options(&mut config, &models, thread)?;
            answering::chat(config, options, json).await?;
        }
        Command::Threads { what } => {
            answering::threads(config, what).await?;
        }
        Command::Settings { what, json } => {
            let engine = Engine::open(config).await?;
            let settings = match what {
                None => engine.app_settings(),
                Some(SettingsCommand::Set {
                    gate_threshold,
                    passages,
                    max_answer_tokens,
                    ocr,
                    models_dir,
                }) => engine.update_settings(&quarry::config::LibrarySettings {
                    models_dir: models_dir
                        .map(|d| std::path::absolute(&d).map(|d| d.to_string_lossy().into_owned()))
                        .transpose()
                        .context("cannot resolve --models-dir")?,
                    gate_threshold,
                    passages_per_question: passages,
                    max_answer_tokens,
                    ocr: ocr.map(|o| o == "on"),
                })?,
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&settings)?);
            } else {
                println!("library            {}", settings.data_dir);
                println!("models folder      {}", settings.models_dir);
                if let Some(next) = &settings.models_dir_next_start {
                    println!("                   (next start: {next})");
                }
                println!("embedder           {}", settings.embedder.as_deref().unwrap_or("none"));
                println!(
                    "generator          {}",
                    settings.generator.as_deref().unwrap_or("none (quotes)")
                );
                println!("evidence threshold {:.2}", settings.gate_threshold);
                println!("passages/question  {}", settings.default_k);
                println!("max answer tokens  {}", settings.max_answer_tokens);
                println!("OCR                {}", if settings.ocr { "on" } else { "off" });
            }
        }
        Command::Serve { port, ui_dir } => {
            let args = serve::ServeArgs { port, ui_dir };
            serve::serve(config, args).await?;
        }
        Command::Mcp => {
            // Stdout is the protocol's channel: logs already go to stderr.
            let engine = Engine::open(config).await?;
            mcp::run(engine).await?;
        }
        Command::Audit { what: AuditCommand::Export { since, format, out } } => {
            answering::export_audit(&config.data_dir, since.as_deref(), &format, out)?;
        }
        Command::Audit { what: AuditCommand::Verify { json } } => {
            if !answering::verify_audit(&config.data_dir, json)? {
                return Ok(ExitCode::from(1));
            }
        }
        Command::Eval {
            what:
                EvalCommand::Qa {
                    squad,
                    paragraphs,
                    evidence,
                    model,
                    limit,
                    calibrate,
                    prompt_style,
                    repeat_penalty,
                    passages,
                    sentence_window,
                    dump,
                    json,
                },
        } => {
            if sentence_window.is_some() {
                config.answer.prompt_sentence_window = sentence_window;
            }
            choose_generator_and_passages(&mut config, &models, model, passages)?;
            if let Some(name) = prompt_style {
                config.answer.prompt_style = quarry::answer::prompt::PromptStyle::parse(&name)
                    .ok_or_else(|| {
                        quarry::Error::user(format!(
                            "--prompt-style {name}: expected plain, compact or fenced"
                        ))
                    })?;
            }
            if let Some(penalty) = repeat_penalty {
                config.answer.repeat_penalty = penalty;
            }
            config.validate()?;
            let options = quarry::eval::squad::QaEvalOptions {
                questions: squad,
                paragraphs,
                evidence,
                limit,
                calibrate,
                dump,
            };
            let work = tempfile::tempdir().context("cannot create a temporary folder")?;
            let run = quarry::eval::squad::evaluate(&options, config, work.path()).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&run)?);
            } else {
                let m = &run.metrics;
                let c = &run.counts;
                println!(
                    "mode {} ({} questions, gate {:.3})",
                    run.mode.as_str(),
                    c.questions,
                    run.gate_threshold
                );
                println!(
                    "out-of-library abstention recall  {:.3}  ({} questions)",
                    m.out_of_library_abstention_recall, c.out_of_library
                );
                println!(
                    "in-library wrongly refused rate   {:.3}  ({} questions)",
                    m.in_library_wrongly_refused_rate, c.in_library
                );
                println!(
                    "citation precision                {:.3}  ({} answered)",
                    m.citation_precision, c.answered_in_library
                );
                println!("citing the gold paragraph         {:.3}", m.citation_paragraph_precision);
                println!("citations outside retrieved       {}", m.citations_outside_retrieved);
                println!(
                    "retrieval recall@1 / @5           {:.3} / {:.3}  (text {:.3} / {:.3}, vector@5 {:.3})",
                    m.retrieval_recall_at_1,
                    m.retrieval_recall_at_5,
                    m.text_recall_at_1,
                    m.text_recall_at_5,
                    m.vector_recall_at_5
                );
                println!(
                    "impossible abstention recall      {:.3}  ({} questions)",
                    m.impossible_abstention_recall, c.impossible
                );
                println!("answer F1 {:.3}, exact match {:.3}", m.answer_f1, m.exact_match);
                if run.mode == quarry::api::AnswerMode::Generated {
                    println!(
                        "answered {:.3}, gold in answer {:.3}, degenerate {:.3} (max tokens {:.3}), \
                         attributed {:.3}, fallback {:.3}  ({} generated)",
                        m.answered_rate,
                        m.gold_in_answer_rate,
                        m.degenerate_rate,
                        m.max_tokens_rate,
                        m.attributed_rate,
                        m.fallback_rate,
                        c.generated
                    );
                    println!(
                        "generated answer p50 {:.0} ms, p95 {:.0} ms; first token p50 {:.0} ms, p95 {:.0} ms",
                        run.generated_ms_p50,
                        run.generated_ms_p95,
                        run.ttft_ms_p50,
                        run.ttft_ms_p95
                    );
                }
                for cal in run.calibration.iter().flatten() {
                    println!(
                        "calibration: weight {:.1} threshold {:.3} → out-of-library recall {:.3}, wrongly refused {:.3} (≤ {})",
                        cal.cosine_weight,
                        cal.threshold,
                        cal.out_of_library_abstention_recall,
                        cal.in_library_wrongly_refused_rate,
                        cal.max_wrongly_refused
                    );
                }
            }
        }
        Command::Bench { what: BenchCommand::Embed { threads, chunks, rounds, in_process } } => {
            let embedder = config.embedder.clone().ok_or_else(|| {
                quarry::Error::user("the embedding model is not installed; pass --models-dir")
            })?;
            if in_process {
                let threads = threads.first().copied().unwrap_or(1);
                let prefixes = quarry::embed::candle_bert::Prefixes::default();
                let model = quarry::embed::candle_bert::CandleEmbedder::load(
                    &embedder.dir,
                    &embedder.id,
                    prefixes,
                )?;
                let res = quarry::bench::embed(&model, threads, chunks, rounds)?;
                println!("{}", serde_json::to_string(&res)?);
            } else {
                let runs = generation::per_thread_count(&threads, |t| {
                    let mut cmd = std::process::Command::new(std::env::current_exe()?);
                    cmd.arg("--data-dir")
                        .arg(&config.data_dir)
                        .arg("--models-dir")
                        .arg(&models_dir)
                        .args(["--embedder", &embedder.id]);
                    cmd.args(["bench", "embed", "--in-process", "--threads", &t.to_string()])
                        .args(["--chunks", &chunks.to_string(), "--rounds", &rounds.to_string()]);
                    Ok(cmd)
                })?;
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({ "embed": runs }))?
                );
            }
        }
        Command::Bench {
            what: BenchCommand::Ask { squad, paragraphs, model, limit, passages, prompts },
        } => {
            choose_generator_and_passages(&mut config, &models, model, passages)?;
            if config.generator.is_none() && config.generator_server.is_none() {
                anyhow::bail!("no generator installed in {}; pass --model", models_dir.display());
            }
            config.validate()?;
            let options = quarry::eval::squad::QaEvalOptions {
                questions: squad,
                paragraphs,
                evidence: false,
                limit: Some(limit),
                calibrate: false,
                dump: prompts,
            };
            let work = tempfile::tempdir().context("cannot create a temporary folder")?;
            let run = quarry::eval::squad::evaluate(&options, config, work.path()).await?;
            let report = quarry::bench::AskBench::of(&run);
            println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "ask": report }))?);
        }
        Command::Bench { what: BenchCommand::Search { sizes, queries, dims } } => {
            let mut runs = Vec::new();
            for size in sizes {
                let work = tempfile::tempdir()?;
                // On object storage: a fresh library under the named prefix for each size.
                let remote = config.remote.as_ref().map(|library| {
                    let mut bench = library.clone();
                    bench.uri = format!("{}/bench-{size}-{}", library.uri, std::process::id());
                    bench
                });
                runs.push(
                    quarry::bench::search(work.path(), remote.as_ref(), size, dims, queries)
                        .await?,
                );
            }
            println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "search": runs }))?);
        }
        Command::Generate {
            model,
            prompt,
            system,
            max_tokens,
            temperature,
            top_p,
            seed,
            stop,
            repeat_penalty,
            json,
        } => {
            let model = generation::resolve_model(&models, &model)?;
            let params = quarry::generate::GenerationParams {
                max_tokens,
                temperature,
                top_p,
                seed,
                stop,
                repeat_penalty,
                ..Default::default()
            };
            let args = generation::GenerateArgs { model, prompt, system, params, json };
            tokio::task::spawn_blocking(move || generation::generate(args)).await??;
        }
        Command::Models { what: ModelsCommand::List { json } } => {
            generation::list_models(&models, json)?;
        }
        Command::Models { what: ModelsCommand::Import { source, json } } => {
            generation::import_model(&models_dir, &source, json)?;
        }
        Command::Models { what: ModelsCommand::Pull { id, from, json } } => {
            pull::pull(&models_dir, &id, from, json).await?;
        }
        Command::Models { what: ModelsCommand::Verify { id, json } } => {
            if !pull::verify(&models_dir, id.as_deref(), json)? {
                return Ok(ExitCode::from(1));
            }
        }
        Command::Models { what: ModelsCommand::Remove { id } } => {
            pull::remove(&models_dir, &id)?;
        }
        Command::Models { what: ModelsCommand::Use { id } } => {
            pull::choose(&models, &config.data_dir, &id)?;
        }
        Command::Models { what: ModelsCommand::Catalog { json } } => {
            pull::list_catalog(json)?;
        }
        Command::Bench {
            what:
                BenchCommand::Generate {
                    model,
                    threads,
                    prompt_tokens,
                    gen_tokens,
                    rounds,
                    in_process,
                    json: _,
                },
        } => {
            let model = generation::resolve_model(&models, &model)?;
            generation::bench_generate(
                &model,
                &threads,
                prompt_tokens,
                gen_tokens,
                rounds,
                in_process,
            )?;
        }
        Command::Bench { what: BenchCommand::Logits { model, tokens, out, after_prompt } } => {
            generation::bench_logits(&model, &tokens, &out, after_prompt)?;
        }
        Command::Bench {
            what:
                BenchCommand::Checkpoint {
                    shape,
                    quant,
                    format,
                    tokenizer,
                    bos,
                    eos,
                    chat_template,
                    seed,
                    out,
                },
        } => {
            generation::write_checkpoint(generation::CheckpointArgs {
                shape,
                quant,
                format,
                tokenizer,
                bos,
                eos,
                chat_template,
                seed,
                out,
            })?;
        }
        Command::Reindex { text } => {
            let engine = Engine::open_for_write(config).await?;
            if text {
                engine.rebuild_text_index().await?;
                println!("full-text index rebuilt");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `index --watch`: the engine watches the library's sources and re-indexes after each burst
/// of changes; this prints each run's outcome until Ctrl-C.
async fn watch_and_reindex(engine: Arc<Engine>, json: bool, cancel: &CancelToken) {
    let mut updates = engine.follow_index_progress();
    let watch = engine.watch_sources();
    eprintln!("watching the library's folders for changes (Ctrl-C to stop)");
    let mut was_running = false;
    while !cancel.is_cancelled() {
        let tick = std::time::Duration::from_millis(200);
        match tokio::time::timeout(tick, updates.changed()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => break,
            Err(_) => continue,
        }
        let progress = updates.borrow_and_update().clone();
        if progress.running && !was_running {
            eprintln!("files changed; re-indexing");
        }
        if !progress.running && was_running {
            match (&progress.report, &progress.error) {
                (_, Some(err)) => eprintln!("error: {err}"),
                (Some(report), None) if json => {
                    println!("{}", serde_json::to_string(report).unwrap_or_default())
                }
                (Some(r), None) => println!(
                    "{} added, {} updated, {} removed, {} unchanged, {} failed",
                    r.added, r.updated, r.removed, r.unchanged, r.failed
                ),
                (None, None) => {}
            }
        }
        was_running = progress.running;
    }
    engine.cancel_index();
    watch.stop();
}

fn preview(text: &str, max_chars: usize) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max_chars {
        flat
    } else {
        let cut: String = flat.chars().take(max_chars).collect();
        format!("{cut}…")
    }
}

/// The part of the library `--in` and `--kind` name.
fn ask_scope(within: &[PathBuf], kinds: &[String]) -> anyhow::Result<quarry::api::AskScope> {
    let kinds = kinds
        .iter()
        .map(|k| {
            quarry::FileKind::parse(k).ok_or_else(|| {
                let known: Vec<&str> = quarry::FileKind::ALL.iter().map(|k| k.as_str()).collect();
                quarry::Error::user(format!("--kind {k}: expected one of {}", known.join(", ")))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let within = within
        .iter()
        .map(|p| std::path::absolute(p).map(|p| p.to_string_lossy().into_owned()))
        .collect::<Result<Vec<_>, _>>()
        .context("cannot resolve an --in path")?;
    Ok(quarry::api::AskScope { within, kinds })
}

//! Generate stage: a local language model turns a chat into streamed text. The [`Generator`]
//! trait is all the answer pipeline sees; [`candle_gguf::GgufGenerator`] runs GGUF checkpoints
//! on candle, [`chat_template::ChatTemplate`] renders the model's own chat template, and
//! [`text_stream`] turns token ids into text the moment it is complete.

mod attention;
pub mod candle_gguf;
pub mod chat_template;
pub mod checkpoint;
pub mod gemma3;
pub mod gguf_tokenizer;
mod linear;
pub mod llama_family;
pub mod openai_server;
mod safetensors_checkpoint;
pub mod text_stream;
pub mod widen_q5;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::progress::CancelToken;

/// One turn of a chat, as chat templates expect it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// "system", "user" or "assistant".
    pub role: String,
    /// The text of the turn.
    pub content: String,
}

impl ChatMessage {
    /// A system turn.
    pub fn system(content: impl Into<String>) -> Self {
        Self { role: "system".into(), content: content.into() }
    }
    /// A user turn.
    pub fn user(content: impl Into<String>) -> Self {
        Self { role: "user".into(), content: content.into() }
    }
    /// An assistant turn.
    pub fn assistant(content: impl Into<String>) -> Self {
        Self { role: "assistant".into(), content: content.into() }
    }
}

/// How tokens are chosen and when generation stops.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerationParams {
    /// Most tokens to generate.
    pub max_tokens: usize,
    /// Sampling temperature; `None` (the default) decodes greedily, which makes answers
    /// reproducible.
    pub temperature: Option<f64>,
    /// Nucleus sampling mass, used with a temperature.
    pub top_p: Option<f64>,
    /// Seed of the sampler, so sampled answers are reproducible too.
    pub seed: u64,
    /// Strings that end generation; they are not part of the output.
    pub stop: Vec<String>,
    /// Repetition penalty as llama.cpp and transformers apply it: the logit of every token
    /// among the last `repeat_last_n` generated ones is divided by this (multiplied when
    /// negative). 1.0 (the default, as in both) turns it off.
    #[serde(default = "no_penalty")]
    pub repeat_penalty: f32,
    /// How many of the last generated tokens the penalty looks at.
    #[serde(default = "default_repeat_window")]
    pub repeat_last_n: usize,
}

fn no_penalty() -> f32 {
    1.0
}

fn default_repeat_window() -> usize {
    64
}

impl Default for GenerationParams {
    fn default() -> Self {
        Self {
            max_tokens: 512,
            temperature: None,
            top_p: None,
            seed: 299_792_458,
            stop: Vec::new(),
            repeat_penalty: no_penalty(),
            repeat_last_n: default_repeat_window(),
        }
    }
}

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The model produced one of its end-of-turn tokens.
    EndOfTurn,
    /// One of the stop strings appeared.
    StopString,
    /// `max_tokens` were generated.
    MaxTokens,
    /// The model's context window is full.
    ContextFull,
    /// The cancel token was set.
    Cancelled,
}

/// What one generation produced and how long it took.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerationReport {
    /// The generated text (stop strings and end-of-turn tokens left out).
    pub text: String,
    /// Why it ended.
    pub stop_reason: StopReason,
    /// Tokens in the rendered prompt.
    pub prompt_tokens: usize,
    /// Prompt tokens whose attention cache was reused from an earlier call (shared prefix).
    pub cached_prompt_tokens: usize,
    /// Tokens generated.
    pub generated_tokens: usize,
    /// Milliseconds spent on the prompt.
    pub prefill_ms: f64,
    /// Milliseconds from the call to the first generated token.
    pub ttft_ms: f64,
    /// Milliseconds of the whole call.
    pub total_ms: f64,
    /// Generated tokens per second after the first.
    pub decode_tokens_per_s: f64,
}

/// What a loaded generator model is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GeneratorInfo {
    /// The model file.
    pub path: PathBuf,
    /// Name from the file's metadata, else the file name.
    pub name: String,
    /// GGUF `general.architecture`.
    pub architecture: String,
    /// Tokens the model can attend to (as far as the implementation allows).
    pub context_length: usize,
    /// Number of weights.
    pub parameters: u64,
    /// Quantization, e.g. "Q4_K_M" or "Q8_0".
    pub quantization: String,
    /// Size of the file.
    pub file_bytes: u64,
    /// Where the tokenizer came from ("tokenizer.json" beside the file, or the GGUF vocabulary).
    pub tokenizer_source: String,
    /// The server that runs the model, for a model behind an OpenAI-compatible server (no
    /// credentials in it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_url: Option<String>,
}

/// Receives generated text as soon as it is complete (never half a UTF-8 character), and, from
/// the answer pipeline, where the answer is.
pub trait TokenSink: Send {
    /// Called with each new piece of text, in order.
    fn text(&mut self, piece: &str);

    /// Called as an answer moves on (searching, reading, writing, checking); ignored unless a
    /// sink shows it.
    fn stage(&mut self, _stage: crate::api::AnswerStage) {}
}

impl<F: FnMut(&str) + Send> TokenSink for F {
    fn text(&mut self, piece: &str) {
        self(piece)
    }
}

/// Why a generator could not load or run.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// The model file or its tokenizer is missing or unreadable.
    #[error("cannot load model {path}: {message}")]
    Load {
        /// The model file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The file holds an architecture Quarry cannot run.
    #[error(
        "cannot load model {path}: architecture \"{architecture}\" is not supported (supported: {supported})"
    )]
    UnsupportedArchitecture {
        /// The model file.
        path: String,
        /// Its `general.architecture`.
        architecture: String,
        /// What is supported.
        supported: String,
    },
    /// The chat template failed to render.
    #[error("chat template: {0}")]
    Template(String),
    /// Tokenizing or detokenizing failed.
    #[error("tokenizer: {0}")]
    Tokenize(String),
    /// The prompt does not fit the model's context window.
    #[error(
        "the prompt has {prompt_tokens} tokens but the model's context holds {context_length}; \
         shorten the question or retrieve fewer passages"
    )]
    ContextTooLong {
        /// Tokens in the prompt.
        prompt_tokens: usize,
        /// The model's context length.
        context_length: usize,
    },
    /// The model computation failed.
    #[error("model: {0}")]
    Model(String),
    /// The inference server failed while answering (it went away, sent an error or garbage).
    #[error("the answer server {url} {message}")]
    Server {
        /// The endpoint, without credentials.
        url: String,
        /// What went wrong.
        message: String,
    },
}

impl From<GenerateError> for crate::error::Error {
    fn from(err: GenerateError) -> Self {
        match err {
            GenerateError::Model(_) => crate::error::Error::internal("generation", err),
            // Like a file that cannot be read: the answer falls back to quoting the evidence.
            GenerateError::Server { url, message } => {
                crate::error::Error::io(url, std::io::Error::other(message))
            }
            other => crate::error::Error::user(other.to_string()),
        }
    }
}

/// A language model that continues a chat. Implementations are blocking and CPU-bound;
/// callers run them on a blocking thread.
pub trait Generator: Send {
    /// What model this is.
    fn info(&self) -> &GeneratorInfo;
    /// The prompt the model's chat template makes of `messages`, ready for the assistant turn.
    fn render_prompt(&self, messages: &[ChatMessage]) -> Result<String, GenerateError>;
    /// Tokens `text` takes in this model's vocabulary (for context budgets).
    fn count_tokens(&self, text: &str) -> Result<usize, GenerateError>;
    /// Generates the assistant's reply to `messages`, pushing text into `sink` as it comes.
    /// Cancelling ends generation between two tokens with [`StopReason::Cancelled`].
    fn generate(
        &mut self,
        messages: &[ChatMessage],
        params: &GenerationParams,
        sink: &mut dyn TokenSink,
        cancel: &CancelToken,
    ) -> Result<GenerationReport, GenerateError>;
}

/// The id of the model in folder `dir`: its repository in the Hugging Face cache layout, else
/// the folder's name.
pub fn folder_id(dir: &Path) -> String {
    let name = id_from_path(&dir.join("x"));
    if name == "x" {
        dir.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
    } else {
        name
    }
}

/// The id of the model a file belongs to: its repository in the Hugging Face cache layout
/// (`models--org--name/snapshots/<rev>/file`), else the file name without extension.
pub fn id_from_path(path: &Path) -> String {
    // Hugging Face cache: .../models--org--name/snapshots/<rev>/file
    for ancestor in path.ancestors() {
        if let Some(name) = ancestor.file_name().and_then(|n| n.to_str())
            && let Some(rest) = name.strip_prefix("models--")
        {
            return rest.replacen("--", "/", 1);
        }
    }
    path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
}

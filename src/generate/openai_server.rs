//! Answers from an inference server the user already runs (llama.cpp's server, vLLM, Ollama,
//! LM Studio, TGI): a [`Generator`] that streams from an OpenAI-compatible
//! `/v1/chat/completions`. The prompt, verification and audit are the engine's as for a local
//! model; only the text comes from the server. Besides model downloads this is the one place
//! Quarry opens a network connection, and only when a server is configured.
//!
//! The HTTP client runs on a thread of its own with its own small runtime, so the blocking
//! [`Generator`] calls work from any thread (the engine calls them from a blocking task) and
//! dropping the generator never blocks an async task.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{
    ChatMessage, GenerateError, GenerationParams, GenerationReport, Generator, GeneratorInfo,
    StopReason, TokenSink,
};
use crate::config::GeneratorServerConfig;
use crate::progress::CancelToken;

/// How often a waiting call looks at its cancel token.
const CANCEL_POLL: Duration = Duration::from_millis(50);
/// How long to wait for a TCP connection to the server.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The most of an error body quoted in a message.
const ERROR_BODY_CHARS: usize = 300;

/// A chat model behind an OpenAI-compatible server.
pub struct ServerGenerator {
    info: GeneratorInfo,
    endpoint: String,
    model: String,
    idle_timeout: Duration,
    jobs: tokio::sync::mpsc::UnboundedSender<Job>,
}

impl std::fmt::Debug for ServerGenerator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The API key lives in the client thread only; nothing here can print it.
        f.debug_struct("ServerGenerator")
            .field("endpoint", &self.endpoint)
            .field("model", &self.model)
            .finish_non_exhaustive()
    }
}

/// Work for the client thread.
enum Job {
    /// `GET …/models`: the model ids the server serves.
    Models { reply: mpsc::Sender<Result<Vec<String>, String>> },
    /// `POST …/chat/completions` with `stream: true`; pieces go to `events`.
    Chat { body: Value, events: mpsc::Sender<Event>, cancel: CancelToken },
}

/// What the client thread reports about one streamed answer.
enum Event {
    /// A piece of the answer's text.
    Text(String),
    /// The server ended the answer (`finish_reason`, and the token counts when it sent them).
    Finished { reason: Option<String>, usage: Option<Usage> },
    /// The request failed or the stream broke off.
    Failed(String),
}

#[derive(Clone, Copy)]
struct Usage {
    prompt_tokens: usize,
    completion_tokens: usize,
}

/// The endpoints of a server given by its base URL, `…/v1` or the full chat URL.
fn endpoints(url: &str) -> (String, String) {
    let base = url.trim_end_matches('/');
    let v1 = if let Some(v1) = base.strip_suffix("/chat/completions") {
        v1.to_owned()
    } else if base.ends_with("/v1") {
        base.to_owned()
    } else {
        format!("{base}/v1")
    };
    (format!("{v1}/chat/completions"), format!("{v1}/models"))
}

/// A URL as it may be shown and recorded: without a password or user name in it.
pub fn display_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) => {
            let _ = parsed.set_password(None);
            let _ = parsed.set_username("");
            parsed.to_string().trim_end_matches('/').to_owned()
        }
        Err(_) => url.to_owned(),
    }
}

impl ServerGenerator {
    /// Connects to the server in `config`: lists its models (which also checks that it answers
    /// and that the key is accepted) and settles on the configured one, else the first listed.
    pub fn connect(config: &GeneratorServerConfig) -> Result<Self, GenerateError> {
        let shown = display_url(&config.url);
        let load_err = |message: String| GenerateError::Load { path: shown.clone(), message };
        reqwest::Url::parse(&config.url).map_err(|e| load_err(format!("not a URL: {e}")))?;
        let (endpoint, models_url) = endpoints(&config.url);
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(|e| load_err(format!("cannot set up the HTTP client: {e}")))?;
        let (jobs, inbox) = tokio::sync::mpsc::unbounded_channel();
        let thread = ClientThread {
            client,
            api_key: config.api_key.clone(),
            endpoint: endpoint.clone(),
            models_url,
            idle_timeout: Duration::from_secs(config.timeout_s.max(1)),
        };
        std::thread::Builder::new()
            .name("quarry-answer-server".into())
            .spawn(move || thread.run(inbox))
            .map_err(|e| load_err(format!("cannot start the client thread: {e}")))?;
        let (reply, listed) = mpsc::channel();
        jobs.send(Job::Models { reply }).map_err(|_| load_err("the client thread ended".into()))?;
        let listed = listed
            .recv()
            .map_err(|_| load_err("the client thread ended".into()))?
            .map_err(|e| load_err(format!("the server did not list its models: {e}")))?;
        let model = match &config.model {
            Some(model) => {
                if !listed.is_empty() && !listed.contains(model) {
                    // Some servers load models on demand or answer under any name.
                    tracing::warn!(
                        target: "generate::server",
                        "{shown} does not list model \"{model}\" (it lists: {}); asking for it anyway",
                        listed.join(", ")
                    );
                }
                model.clone()
            }
            None => listed.first().cloned().ok_or_else(|| {
                load_err("the server lists no models; name one with --generator-model".into())
            })?,
        };
        let info = GeneratorInfo {
            path: std::path::PathBuf::new(),
            name: model.clone(),
            architecture: "openai-compatible server".into(),
            context_length: config.context_length,
            parameters: 0,
            quantization: String::new(),
            file_bytes: 0,
            tokenizer_source: "estimated (the server's tokenizer is not visible)".into(),
            server_url: Some(shown),
        };
        Ok(Self {
            info,
            endpoint,
            model,
            idle_timeout: Duration::from_secs(config.timeout_s.max(1)),
            jobs,
        })
    }

    /// The request body for `messages` under `params`.
    fn body(&self, messages: &[ChatMessage], params: &GenerationParams) -> Value {
        let mut body = json!({
            "model": self.model,
            "messages": messages,
            "stream": true,
            "stream_options": { "include_usage": true },
            "max_tokens": params.max_tokens,
            // Greedy unless a temperature was asked for, as with a local model.
            "temperature": params.temperature.unwrap_or(0.0),
            "seed": params.seed,
        });
        if let Some(top_p) = params.top_p {
            body["top_p"] = json!(top_p);
        }
        if !params.stop.is_empty() {
            body["stop"] = json!(params.stop);
        }
        // Always sent, 1.0 included: llama.cpp's servers otherwise apply their own default
        // (1.1), and answers would not decode as they do locally. llama.cpp's name and vLLM's;
        // servers that know neither ignore them.
        body["repeat_penalty"] = json!(params.repeat_penalty);
        body["repetition_penalty"] = json!(params.repeat_penalty);
        body["repeat_last_n"] = json!(params.repeat_last_n);
        body
    }

    fn server_error(&self, message: String) -> GenerateError {
        GenerateError::Server { url: display_url(&self.endpoint), message }
    }
}

impl Generator for ServerGenerator {
    fn info(&self) -> &GeneratorInfo {
        &self.info
    }

    fn render_prompt(&self, messages: &[ChatMessage]) -> Result<String, GenerateError> {
        // The server applies its model's template; this is what is sent, turn by turn.
        Ok(messages.iter().map(|m| format!("{}: {}\n", m.role, m.content)).collect())
    }

    fn count_tokens(&self, text: &str) -> Result<usize, GenerateError> {
        // The server's tokenizer is not visible through the chat API. Three bytes per token
        // overestimates English (about four) and German (about 3.3) text, so passages chosen
        // by this count fit the server's context.
        Ok(text.len().div_ceil(3))
    }

    fn generate(
        &mut self,
        messages: &[ChatMessage],
        params: &GenerationParams,
        sink: &mut dyn TokenSink,
        cancel: &CancelToken,
    ) -> Result<GenerationReport, GenerateError> {
        let started = Instant::now();
        let (events, received) = mpsc::channel();
        let job = Job::Chat { body: self.body(messages, params), events, cancel: cancel.clone() };
        self.jobs.send(job).map_err(|_| self.server_error("the client thread ended".into()))?;
        let mut text = String::new();
        let mut pieces = 0usize;
        let mut first_piece: Option<Instant> = None;
        let mut last_event = Instant::now();
        let (reason, usage) = loop {
            match received.recv_timeout(CANCEL_POLL) {
                Ok(Event::Text(piece)) => {
                    last_event = Instant::now();
                    if piece.is_empty() {
                        continue;
                    }
                    first_piece.get_or_insert_with(Instant::now);
                    pieces += 1;
                    sink.text(&piece);
                    text.push_str(&piece);
                }
                Ok(Event::Finished { reason, usage }) => break (reason, usage),
                Ok(Event::Failed(message)) => {
                    if cancel.is_cancelled() {
                        break (Some("cancelled".into()), None);
                    }
                    return Err(self.server_error(message));
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if cancel.is_cancelled() {
                        // The client thread drops the response, which closes the connection
                        // and tells the server to stop.
                        break (Some("cancelled".into()), None);
                    }
                    if last_event.elapsed() > self.idle_timeout + CONNECT_TIMEOUT {
                        return Err(self.server_error(format!(
                            "sent nothing for {} s",
                            self.idle_timeout.as_secs()
                        )));
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(self.server_error("the client thread ended".into()));
                }
            }
        };
        let stop_reason = if cancel.is_cancelled() {
            StopReason::Cancelled
        } else {
            match reason.as_deref() {
                Some("length") => StopReason::MaxTokens,
                _ if params.stop.iter().any(|s| !s.is_empty() && text.ends_with(s.as_str())) => {
                    StopReason::StopString
                }
                _ => StopReason::EndOfTurn,
            }
        };
        let total_ms = started.elapsed().as_secs_f64() * 1000.0;
        let ttft_ms =
            first_piece.map_or(total_ms, |t| t.duration_since(started).as_secs_f64() * 1000.0);
        let generated_tokens = usage.map_or(pieces, |u| u.completion_tokens);
        let decode_s = (total_ms - ttft_ms) / 1000.0;
        Ok(GenerationReport {
            text,
            stop_reason,
            // 0 when the server does not say (llama-cpp-python sends no usage when streaming).
            prompt_tokens: usage.map_or(0, |u| u.prompt_tokens),
            cached_prompt_tokens: 0,
            generated_tokens,
            prefill_ms: ttft_ms,
            ttft_ms,
            total_ms,
            decode_tokens_per_s: if decode_s > 0.0 && generated_tokens > 1 {
                (generated_tokens - 1) as f64 / decode_s
            } else {
                0.0
            },
        })
    }
}

/// The HTTP side, on its own thread: one job at a time.
struct ClientThread {
    client: reqwest::Client,
    api_key: Option<String>,
    endpoint: String,
    models_url: String,
    idle_timeout: Duration,
}

impl ClientThread {
    fn run(self, mut inbox: tokio::sync::mpsc::UnboundedReceiver<Job>) {
        let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(runtime) => runtime,
            Err(e) => {
                tracing::error!(target: "generate::server", "cannot start a runtime: {e}");
                return;
            }
        };
        runtime.block_on(async move {
            while let Some(job) = inbox.recv().await {
                match job {
                    Job::Models { reply } => {
                        let _ = reply.send(self.models().await);
                    }
                    Job::Chat { body, events, cancel } => {
                        if let Err(message) = self.chat(body, &events, &cancel).await {
                            let _ = events.send(Event::Failed(message));
                        }
                    }
                }
            }
        });
    }

    fn request(&self, builder: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.api_key {
            Some(key) => builder.bearer_auth(key),
            None => builder,
        }
    }

    async fn models(&self) -> Result<Vec<String>, String> {
        let sent = self.request(self.client.get(&self.models_url)).send();
        let response = tokio::time::timeout(self.idle_timeout, sent)
            .await
            .map_err(|_| format!("no answer within {} s", self.idle_timeout.as_secs()))?
            .map_err(describe)?;
        let response = checked(response).await?;
        let listed: Value = response.json().await.map_err(describe)?;
        Ok(listed["data"]
            .as_array()
            .map(|models| {
                models.iter().filter_map(|m| m["id"].as_str().map(str::to_owned)).collect()
            })
            .unwrap_or_default())
    }

    async fn chat(
        &self,
        body: Value,
        events: &mpsc::Sender<Event>,
        cancel: &CancelToken,
    ) -> Result<(), String> {
        let sent = self.request(self.client.post(&self.endpoint)).json(&body).send();
        let mut response = self.until_cancelled(sent, cancel).await?.map_err(describe)?;
        response = checked(response).await?;
        let mut stream = SseLines::default();
        let mut finish_reason = None;
        let mut usage = None;
        loop {
            let chunk = self.until_cancelled(response.chunk(), cancel).await?;
            let Some(bytes) =
                chunk.map_err(|e| format!("the stream broke off: {}", describe(e)))?
            else {
                // The connection closed without the end marker.
                if finish_reason.is_some() {
                    let _ = events.send(Event::Finished { reason: finish_reason, usage });
                    return Ok(());
                }
                return Err(
                    "the server closed the connection before the answer was finished".into()
                );
            };
            for data in stream.push(&bytes) {
                if data == "[DONE]" {
                    let _ = events.send(Event::Finished { reason: finish_reason, usage });
                    return Ok(());
                }
                let value: Value = serde_json::from_str(&data)
                    .map_err(|e| format!("sent an unreadable event ({e})"))?;
                if let Some(error) = value.get("error") {
                    return Err(format!("reported an error: {}", error_text(error)));
                }
                if let Some(u) = value.get("usage").filter(|u| !u.is_null()) {
                    usage = Some(Usage {
                        prompt_tokens: u["prompt_tokens"].as_u64().unwrap_or(0) as usize,
                        completion_tokens: u["completion_tokens"].as_u64().unwrap_or(0) as usize,
                    });
                }
                let Some(choice) = value["choices"].get(0) else { continue };
                if let Some(piece) = choice["delta"]["content"].as_str()
                    && events.send(Event::Text(piece.to_owned())).is_err()
                {
                    return Ok(()); // Nobody listens any more.
                }
                if let Some(reason) = choice["finish_reason"].as_str() {
                    finish_reason = Some(reason.to_owned());
                }
            }
        }
    }

    /// Awaits `work` unless `cancel` is set first or the server stays silent past the idle
    /// timeout.
    async fn until_cancelled<T>(
        &self,
        work: impl std::future::Future<Output = T>,
        cancel: &CancelToken,
    ) -> Result<T, String> {
        let deadline = Instant::now() + self.idle_timeout;
        tokio::pin!(work);
        loop {
            tokio::select! {
                done = &mut work => return Ok(done),
                () = tokio::time::sleep(CANCEL_POLL) => {
                    if cancel.is_cancelled() {
                        return Err("cancelled".into());
                    }
                    if Instant::now() > deadline {
                        return Err(format!("sent nothing for {} s", self.idle_timeout.as_secs()));
                    }
                }
            }
        }
    }
}

/// The response if its status is a success, else its status and the start of its body.
async fn checked(response: reqwest::Response) -> Result<reqwest::Response, String> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let body = response.text().await.unwrap_or_default();
    let detail = serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|v| v.get("error").map(error_text))
        .unwrap_or(body);
    let detail: String = detail.chars().take(ERROR_BODY_CHARS).collect();
    let hint = if status.as_u16() == 401 || status.as_u16() == 403 {
        " (set QUARRY_GENERATOR_API_KEY to the server's key)"
    } else {
        ""
    };
    Err(format!("answered {status}{hint}: {}", detail.trim()))
}

/// An error object's message, as OpenAI-style servers send it.
fn error_text(error: &Value) -> String {
    error["message"].as_str().map_or_else(|| error.to_string(), str::to_owned)
}

/// A transport error in a few words, without the URL (the caller names the server).
fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut message = if e.is_connect() {
        "cannot connect".to_owned()
    } else if e.is_timeout() {
        "timed out".to_owned()
    } else {
        e.to_string()
    };
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

/// Splits a server-sent-event stream into the `data:` payloads of its events.
#[derive(Default)]
struct SseLines {
    pending: Vec<u8>,
    data: String,
}

impl SseLines {
    /// Feeds received bytes; returns the payloads of the events they completed.
    fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        self.pending.extend_from_slice(bytes);
        let mut done = Vec::new();
        while let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                if !self.data.is_empty() {
                    done.push(std::mem::take(&mut self.data));
                }
            } else if let Some(value) = line.strip_prefix("data:") {
                if !self.data.is_empty() {
                    self.data.push('\n');
                }
                self.data.push_str(value.strip_prefix(' ').unwrap_or(value));
                // Some servers put `[DONE]` without the blank line after it.
                if self.data == "[DONE]" {
                    done.push(std::mem::take(&mut self.data));
                }
            }
            // Comments (`:`), `event:`, `id:` and `retry:` lines carry nothing needed here.
        }
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_accept_a_base_a_v1_url_or_the_full_path() {
        let chat = "http://127.0.0.1:8080/v1/chat/completions";
        let models = "http://127.0.0.1:8080/v1/models";
        for url in [
            "http://127.0.0.1:8080",
            "http://127.0.0.1:8080/",
            "http://127.0.0.1:8080/v1",
            "http://127.0.0.1:8080/v1/chat/completions",
        ] {
            assert_eq!(endpoints(url), (chat.to_owned(), models.to_owned()), "{url}");
        }
    }

    #[test]
    fn shown_urls_carry_no_credentials() {
        assert_eq!(display_url("http://user:secret@host:8000/v1"), "http://host:8000/v1");
    }

    #[test]
    fn sse_events_split_across_reads_and_lines() {
        let mut sse = SseLines::default();
        assert!(sse.push(b"data: {\"a\"").is_empty());
        assert_eq!(
            sse.push(b":1}\r\n\r\n: keep-alive\n\ndata: x\ndata: y\n\n"),
            ["{\"a\":1}", "x\ny"]
        );
        assert_eq!(sse.push(b"data: [DONE]\n"), ["[DONE]"]);
    }
}

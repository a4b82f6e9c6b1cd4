//! Test doubles for the engine's two models, injected through `Engine::builder`: a
//! deterministic bag-of-words embedder and a generator that writes scripted replies. With them
//! the whole ask pipeline (retrieval, gate, prompt, streaming, guard, verification,
//! attribution, audit) runs in milliseconds on any machine, with no model files.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use quarry::CancelToken;
use quarry::embed::{EmbedError, Embedder, Embedding};
use quarry::generate::{
    ChatMessage, GenerateError, GenerationParams, GenerationReport, Generator, GeneratorInfo,
    StopReason, TokenSink,
};

/// Embeds text as a normalised bag of its lowercase words, each word hashed (FNV-1a) into one
/// of `dims` buckets with a hashed sign: texts sharing words point the same way, so retrieval
/// and the gate behave like a lexical embedder, deterministically.
pub(crate) struct WordHashEmbedder {
    dims: usize,
}

impl WordHashEmbedder {
    pub(crate) const ID: &'static str = "test/word-hash";

    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self { dims: 256 })
    }

    fn embed(&self, text: &str) -> Embedding {
        let mut v = vec![0f32; self.dims];
        let words = text
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| w.chars().count() > 2)
            .map(str::to_lowercase);
        for word in words {
            let hash = word.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
            });
            let sign = if hash >> 63 == 0 { 1.0 } else { -1.0 };
            v[(hash % self.dims as u64) as usize] += sign;
        }
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        if norm > 0.0 {
            v.iter_mut().for_each(|x| *x /= norm);
        }
        v
    }
}

impl Embedder for WordHashEmbedder {
    fn model_id(&self) -> &str {
        Self::ID
    }
    fn dimensions(&self) -> usize {
        self.dims
    }
    fn max_input_tokens(&self) -> usize {
        512
    }
    fn embed_documents(&self, texts: &[&str]) -> Result<Vec<Embedding>, EmbedError> {
        Ok(texts.iter().map(|t| self.embed(t)).collect())
    }
    fn embed_query(&self, text: &str) -> Result<Embedding, EmbedError> {
        Ok(self.embed(text))
    }
}

/// What a scripted reply is made from: the chat the engine sent.
pub(crate) type Script = Box<dyn Fn(&[ChatMessage]) -> String + Send>;

/// Every chat a scripted generator was sent, in order.
pub(crate) type SentChats = Arc<Mutex<Vec<Vec<ChatMessage>>>>;

/// A generator that "writes" the reply its script makes of the prompt, word by word through
/// the sink, honouring the token limit and the cancel token like a real model; it records
/// every chat it was sent.
pub(crate) struct ScriptedGenerator {
    info: GeneratorInfo,
    script: Script,
    chats: SentChats,
}

impl ScriptedGenerator {
    pub(crate) const NAME: &'static str = "scripted-test-model";

    /// The generator and a handle on the chats it will be sent.
    pub(crate) fn new(script: Script) -> (Box<Self>, SentChats) {
        let chats = Arc::new(Mutex::new(Vec::new()));
        let info = GeneratorInfo {
            path: PathBuf::new(),
            name: Self::NAME.into(),
            architecture: "scripted".into(),
            context_length: 32_768,
            parameters: 0,
            quantization: "none".into(),
            file_bytes: 0,
            tokenizer_source: "whitespace".into(),
            server_url: None,
        };
        (Box::new(Self { info, script, chats: Arc::clone(&chats) }), chats)
    }
}

impl Generator for ScriptedGenerator {
    fn info(&self) -> &GeneratorInfo {
        &self.info
    }

    fn render_prompt(&self, messages: &[ChatMessage]) -> Result<String, GenerateError> {
        Ok(messages.iter().map(|m| format!("<{}>\n{}\n", m.role, m.content)).collect())
    }

    fn count_tokens(&self, text: &str) -> Result<usize, GenerateError> {
        Ok(text.split_whitespace().count())
    }

    fn generate(
        &mut self,
        messages: &[ChatMessage],
        params: &GenerationParams,
        sink: &mut dyn TokenSink,
        cancel: &CancelToken,
    ) -> Result<GenerationReport, GenerateError> {
        let started = Instant::now();
        if let Ok(mut chats) = self.chats.lock() {
            chats.push(messages.to_vec());
        }
        let reply = (self.script)(messages);
        let mut text = String::new();
        let mut generated = 0;
        let mut stop_reason = StopReason::EndOfTurn;
        let mut ttft_ms = 0.0;
        // Words with the space before them, as a tokenizer streams them.
        for piece in reply.split_inclusive(' ') {
            if cancel.is_cancelled() {
                stop_reason = StopReason::Cancelled;
                break;
            }
            if generated == params.max_tokens {
                stop_reason = StopReason::MaxTokens;
                break;
            }
            if generated == 0 {
                ttft_ms = (started.elapsed().as_secs_f64() * 1000.0).max(0.001);
            }
            sink.text(piece);
            text.push_str(piece);
            generated += 1;
        }
        let prompt_tokens = messages.iter().map(|m| m.content.split_whitespace().count()).sum();
        Ok(GenerationReport {
            text,
            stop_reason,
            prompt_tokens,
            cached_prompt_tokens: 0,
            generated_tokens: generated,
            prefill_ms: 0.0,
            ttft_ms,
            total_ms: started.elapsed().as_secs_f64() * 1000.0,
            decode_tokens_per_s: 0.0,
        })
    }
}

/// The number of the passage in the engine's prompt whose text contains `needle`.
pub(crate) fn passage_holding(messages: &[ChatMessage], needle: &str) -> Option<u32> {
    let user = &messages.iter().rfind(|m| m.role == "user")?.content;
    user.split("<passage n=\"").skip(1).find_map(|rest| {
        let (n, body) = rest.split_once('"')?;
        let body = body.split("</passage>").next()?;
        body.contains(needle).then(|| n.parse().ok()).flatten()
    })
}

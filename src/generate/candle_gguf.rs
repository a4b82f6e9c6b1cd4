//! Runs GGUF checkpoints on candle: dispatches on `general.architecture` to the matching
//! candle-transformers quantized module, prefills in chunks, keeps the attention cache of the
//! system prompt for the next question, samples, streams, and stops on the model's own
//! end-of-turn tokens.

use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::quantized::gguf_file::{self, Content};
use candle_core::{DType, Device, Tensor};
use candle_transformers::generation::{LogitsProcessor, Sampling};
use candle_transformers::models::quantized_phi3;
use tokenizers::Tokenizer;

use super::chat_template::ChatTemplate;
use super::text_stream::{IncrementalDecoder, StopMatcher};
use super::{
    ChatMessage, GenerateError, GenerationParams, GenerationReport, Generator, GeneratorInfo,
    StopReason, TokenSink,
};
use crate::progress::CancelToken;

/// Architectures Quarry runs, as GGUF names them.
pub const SUPPORTED_ARCHITECTURES: &[&str] = &["llama", "qwen2", "qwen3", "phi3", "gemma3"];

/// Architectures Quarry runs from Hugging Face checkpoint folders (on the llama-family module).
pub const FOLDER_ARCHITECTURES: &[&str] = &["llama", "qwen2", "qwen3"];

/// Whether Quarry runs a model of `architecture` stored at `path` (a checkpoint folder, or a
/// GGUF file).
pub fn runs(path: &Path, architecture: &str) -> bool {
    let supported = if path.is_dir() { FOLDER_ARCHITECTURES } else { SUPPORTED_ARCHITECTURES };
    supported.contains(&architecture)
}

/// Prompt tokens per forward pass while prefilling; bounds the attention scores' memory.
const PREFILL_CHUNK: usize = 512;

/// Strings models use to end a turn; those in a vocabulary stop generation.
const END_OF_TURN_TOKENS: &[&str] = &[
    "<|im_end|>",
    "<|eot_id|>",
    "<|eom_id|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|end_of_text|>",
    "</s>",
];

/// The loaded network of one of the supported architectures.
enum Weights {
    /// llama, qwen2 and qwen3.
    Llama(Box<super::llama_family::LlamaFamily>),
    Phi3(Box<quantized_phi3::ModelWeights>),
    Gemma3(Box<super::gemma3::Gemma3>),
}

impl Weights {
    fn load(arch: &str, content: Content, file: std::fs::File) -> candle_core::Result<Self> {
        // Quarry's modules run Q5_0 with their own kernels (`linear.rs`); candle's phi3 gets
        // it widened to Q8_0, which candle runs with SIMD.
        let widened = match arch {
            "phi3" => super::widen_q5::widen(&content, file.try_clone()?),
            _ => None,
        };
        match widened {
            Some((content, mut widened)) => Self::load_from(arch, content, &mut widened),
            None => Self::load_from(arch, content, &mut std::io::BufReader::new(file)),
        }
    }

    fn load_from<R: std::io::Read + std::io::Seek>(
        arch: &str,
        content: Content,
        file: &mut R,
    ) -> candle_core::Result<Self> {
        let dev = &Device::Cpu;
        Ok(match arch {
            "llama" | "qwen2" | "qwen3" => Self::Llama(Box::new(
                super::llama_family::LlamaFamily::from_gguf(arch, content, file, dev)?,
            )),
            "phi3" => Self::Phi3(Box::new(quantized_phi3::ModelWeights::from_gguf(
                false, content, file, dev,
            )?)),
            "gemma3" => {
                Self::Gemma3(Box::new(super::gemma3::Gemma3::from_gguf(content, file, dev)?))
            }
            other => candle_core::bail!("unsupported architecture {other}"),
        })
    }

    /// Logits after the last of `ids`, which sit at positions `pos..`.
    fn forward(&mut self, ids: &[u32], pos: usize) -> candle_core::Result<Tensor> {
        let input = Tensor::new(ids, &Device::Cpu)?.unsqueeze(0)?;
        let logits = match self {
            Self::Llama(m) => m.forward(&input, pos)?,
            Self::Phi3(m) => m.forward(&input, pos)?,
            Self::Gemma3(m) => m.forward(&input, pos)?,
        };
        logits.squeeze(0)?.to_dtype(DType::F32)
    }

    /// A copy sharing the weights, with its own attention cache.
    fn copy(&self) -> Self {
        match self {
            Self::Llama(m) => Self::Llama(m.clone()),
            Self::Phi3(m) => Self::Phi3(m.clone()),
            Self::Gemma3(m) => Self::Gemma3(m.clone()),
        }
    }

    /// Longest sequence the module can hold, whatever the file says.
    fn max_positions(&self, file_context: usize) -> usize {
        match self {
            Self::Llama(m) => file_context.min(m.max_positions),
            Self::Gemma3(m) => file_context.min(m.max_positions),
            Self::Phi3(_) => file_context,
        }
    }
}

/// The attention state after a system prompt, reused while the next prompt starts the same.
struct PrefixCache {
    ids: Vec<u32>,
    weights: Weights,
}

/// A GGUF model on the CPU.
pub struct GgufGenerator {
    info: GeneratorInfo,
    tokenizer: Tokenizer,
    template: Option<ChatTemplate>,
    stop_ids: Vec<u32>,
    /// The beginning-of-sequence token every prompt starts with, when the file asks for it
    /// (`tokenizer.ggml.add_bos_token`, as llama.cpp reads it); templates that write it
    /// themselves do not get a second one.
    bos: Option<u32>,
    /// Never run: copied for each fresh start, so no copy shares an attention cache.
    pristine: Weights,
    /// The instance that runs.
    work: Weights,
    prefix: Option<PrefixCache>,
    /// The tokenizer's control strings, defused in every message before its template runs.
    controls: ControlStrings,
}

impl std::fmt::Debug for GgufGenerator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufGenerator").field("info", &self.info).finish()
    }
}

fn metadata_str(content: &Content, key: &str) -> Option<String> {
    content.metadata.get(key).and_then(|v| v.to_string().ok()).cloned()
}

fn metadata_u32(content: &Content, key: &str) -> Option<u32> {
    content.metadata.get(key).and_then(|v| v.to_u32().ok())
}

/// llama.cpp's `general.file_type` names.
fn file_type_name(file_type: u32) -> Option<&'static str> {
    Some(match file_type {
        0 => "F32",
        1 => "F16",
        2 => "Q4_0",
        3 => "Q4_1",
        7 => "Q8_0",
        8 => "Q5_0",
        9 => "Q5_1",
        10 => "Q2_K",
        11 => "Q3_K_S",
        12 => "Q3_K_M",
        13 => "Q3_K_L",
        14 => "Q4_K_S",
        15 => "Q4_K_M",
        16 => "Q5_K_S",
        17 => "Q5_K_M",
        18 => "Q6_K",
        32 => "BF16",
        _ => return None,
    })
}

/// Reads the GGUF header of `path` (metadata and tensor table, not the weights).
pub fn read_header(path: &Path) -> Result<Content, GenerateError> {
    let load = |message: String| GenerateError::Load { path: path.display().to_string(), message };
    let file = std::fs::File::open(path).map_err(|e| load(e.to_string()))?;
    // Buffered: the header is read a few bytes at a time (a 150k-token vocabulary is over a
    // million reads, each a system call on a bare file: seconds of system time).
    gguf_file::Content::read(&mut std::io::BufReader::with_capacity(1 << 20, file))
        .map_err(|e| load(format!("not a readable GGUF file: {e}")))
}

/// Describes the model in `path` (a GGUF file, or a Hugging Face checkpoint folder) from its
/// headers alone.
pub fn describe(path: &Path) -> Result<GeneratorInfo, GenerateError> {
    if path.is_dir() {
        return describe_folder(path);
    }
    let content = read_header(path)?;
    Ok(info_of(path, &content, None, String::new()))
}

fn info_of(
    path: &Path,
    content: &Content,
    max_positions: Option<usize>,
    tokenizer_source: String,
) -> GeneratorInfo {
    let architecture = metadata_str(content, "general.architecture").unwrap_or_default();
    let file_context =
        metadata_u32(content, &format!("{architecture}.context_length")).unwrap_or(2048) as usize;
    let quantization = metadata_u32(content, "general.file_type")
        .and_then(file_type_name)
        .map(str::to_owned)
        .unwrap_or_else(|| {
            // Without a file type, name the storage of the largest tensor.
            content
                .tensor_infos
                .values()
                .max_by_key(|t| t.shape.elem_count())
                .map(|t| format!("{:?}", t.ggml_dtype))
                .unwrap_or_default()
        });
    GeneratorInfo {
        path: path.to_path_buf(),
        name: metadata_str(content, "general.name").unwrap_or_else(|| {
            path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
        }),
        architecture,
        context_length: max_positions.unwrap_or(file_context),
        parameters: content.tensor_infos.values().map(|t| t.shape.elem_count() as u64).sum(),
        quantization,
        file_bytes: std::fs::metadata(path).map(|m| m.len()).unwrap_or(0),
        tokenizer_source,
        server_url: None,
    }
}

/// A Hugging Face checkpoint folder from `config.json` and the safetensors headers.
fn describe_folder(dir: &Path) -> Result<GeneratorInfo, GenerateError> {
    use super::safetensors_checkpoint::{HfConfig, architecture_of, header_summary, weight_files};
    let load = |message: String| GenerateError::Load { path: dir.display().to_string(), message };
    let config = HfConfig::read(dir).map_err(load)?;
    let files = weight_files(dir).map_err(load)?;
    let (parameters, dtype) = header_summary(&files).map_err(load)?;
    let context = config.family().map(|f| f.shape.context).unwrap_or_default();
    Ok(GeneratorInfo {
        path: dir.to_path_buf(),
        name: super::folder_id(dir),
        architecture: architecture_of(&config.model_type)
            .map(str::to_owned)
            .unwrap_or(config.model_type),
        context_length: context,
        parameters,
        quantization: format!("{dtype} (run as F32)"),
        file_bytes: files.iter().filter_map(|f| std::fs::metadata(f).ok()).map(|m| m.len()).sum(),
        tokenizer_source: "tokenizer.json".into(),
        server_url: None,
    })
}

/// `tokenizer.json` beside the model: `<stem>.tokenizer.json` or `tokenizer.json`.
fn tokenizer_beside(path: &Path) -> Option<PathBuf> {
    let dir = path.parent()?;
    let stem = path.file_stem()?.to_string_lossy();
    [dir.join(format!("{stem}.tokenizer.json")), dir.join("tokenizer.json")]
        .into_iter()
        .find(|p| p.is_file())
}

/// The chat template in `tokenizer_config.json` beside the model (a string, or a list of
/// named templates of which "default" is taken).
fn template_beside(path: &Path) -> Option<String> {
    let config = path.parent()?.join("tokenizer_config.json");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(config).ok()?).ok()?;
    match &json["chat_template"] {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Array(list) => list
            .iter()
            .find(|t| t["name"] == "default")
            .or_else(|| list.first())
            .and_then(|t| t["template"].as_str().map(str::to_owned)),
        _ => None,
    }
}

/// The `tokenizer.*` metadata of `content`, moved out into a header of its own (the weights
/// never read it).
fn split_off_vocabulary(content: &mut Content) -> Content {
    let keys: Vec<String> =
        content.metadata.keys().filter(|k| k.starts_with("tokenizer.")).cloned().collect();
    Content {
        magic: content.magic,
        metadata: keys.iter().filter_map(|k| content.metadata.remove_entry(k)).collect(),
        tensor_infos: Default::default(),
        tensor_data_offset: 0,
    }
}

/// The declared end-of-sequence ids and the vocabulary's end-of-turn tokens, sorted.
fn stop_ids_of(tokenizer: &Tokenizer, declared: impl Iterator<Item = u32>) -> Vec<u32> {
    let mut stop_ids: Vec<u32> = declared.collect();
    stop_ids.extend(END_OF_TURN_TOKENS.iter().filter_map(|t| tokenizer.token_to_id(t)));
    stop_ids.sort_unstable();
    stop_ids.dedup();
    stop_ids
}

impl GgufGenerator {
    /// Loads the GGUF file at `path` with its tokenizer and chat template, or the Hugging Face
    /// checkpoint in the folder `path` (`config.json`, safetensors weights, `tokenizer.json`).
    pub fn load(path: &Path) -> Result<Self, GenerateError> {
        if path.is_dir() {
            return Self::load_safetensors(path);
        }
        let load =
            |message: String| GenerateError::Load { path: path.display().to_string(), message };
        let started = Instant::now();
        let file = std::fs::File::open(path).map_err(|e| load(e.to_string()))?;
        // Buffered: the header is read a few bytes at a time (a 150k-token vocabulary is over a
        // million reads, each a system call on a bare file: seconds of system time).
        let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
        let mut content = gguf_file::Content::read(&mut reader)
            .map_err(|e| load(format!("not a readable GGUF file: {e}")))?;
        let file = reader.into_inner();
        let header_ms = started.elapsed().as_millis() as u64;
        let arch = metadata_str(&content, "general.architecture")
            .ok_or_else(|| load("the file has no general.architecture".into()))?;
        if !SUPPORTED_ARCHITECTURES.contains(&arch.as_str()) {
            return Err(GenerateError::UnsupportedArchitecture {
                path: path.display().to_string(),
                architecture: arch,
                supported: SUPPORTED_ARCHITECTURES.join(", "),
            });
        }
        // llama.cpp takes these flags from the file whatever tokenizer is used.
        let markers = super::gguf_tokenizer::SequenceMarkers::of(&content);
        let bos_id = markers.bos_id.filter(|_| markers.add_bos);
        let template_source =
            metadata_str(&content, "tokenizer.chat_template").or_else(|| template_beside(path));
        let [bos_token, eos_token, eot_token] = [
            "tokenizer.ggml.bos_token_id",
            "tokenizer.ggml.eos_token_id",
            "tokenizer.ggml.eot_token_id",
        ]
        .map(|key| metadata_u32(&content, key));
        let beside = tokenizer_beside(path);
        let tokenizer_source = match &beside {
            Some(tok) => {
                tok.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
            }
            None => "gguf".to_owned(),
        };
        let mut info = info_of(path, &content, None, tokenizer_source);
        // The vocabulary is rebuilt on a thread of its own while the weights load: each takes
        // a few hundred milliseconds on a 150k-token model, and they share nothing.
        let vocabulary = split_off_vocabulary(&mut content);
        let (work, tokenizer) = std::thread::scope(|scope| {
            let tokenizer = scope.spawn(|| {
                let started = Instant::now();
                let tokenizer = match &beside {
                    Some(tok) => Tokenizer::from_file(tok)
                        .map_err(|e| load(format!("{}: {e}", tok.display()))),
                    None => super::gguf_tokenizer::from_gguf(&vocabulary).map_err(load),
                };
                tracing::debug!(ms = started.elapsed().as_millis() as u64, "tokenizer built");
                tokenizer
            });
            let weights_started = Instant::now();
            let work = Weights::load(&arch, content, file).map_err(|e| load(e.to_string()));
            tracing::debug!(ms = weights_started.elapsed().as_millis() as u64, "weights read");
            let tokenizer = tokenizer
                .join()
                .unwrap_or_else(|_| Err(load("rebuilding the tokenizer panicked".into())));
            (work, tokenizer)
        });
        let (work, tokenizer) = (work?, tokenizer?);
        let token_text =
            |id: Option<u32>| id.and_then(|id| tokenizer.id_to_token(id)).unwrap_or_default();
        let template = match template_source {
            Some(source) => {
                Some(ChatTemplate::new(source, token_text(bos_token), token_text(eos_token))?)
            }
            None => None,
        };
        let stop_ids = stop_ids_of(&tokenizer, [eos_token, eot_token].into_iter().flatten());
        info.context_length = work.max_positions(info.context_length);
        tracing::info!(
            model = %info.name, arch = %info.architecture, ms = started.elapsed().as_millis() as u64,
            header_ms, "generator loaded"
        );
        Ok(Self::assemble(work, info, tokenizer, template, stop_ids, bos_id))
    }

    /// A loaded model with a never-run copy kept for fresh starts.
    fn assemble(
        work: Weights,
        info: GeneratorInfo,
        tokenizer: Tokenizer,
        template: Option<ChatTemplate>,
        stop_ids: Vec<u32>,
        bos: Option<u32>,
    ) -> Self {
        let controls = ControlStrings::of(&tokenizer);
        Self {
            pristine: work.copy(),
            work,
            info,
            tokenizer,
            template,
            stop_ids,
            bos,
            prefix: None,
            controls,
        }
    }

    /// A Hugging Face checkpoint folder, in full precision (`safetensors_checkpoint.rs`).
    fn load_safetensors(dir: &Path) -> Result<Self, GenerateError> {
        use super::safetensors_checkpoint::{HfConfig, SafetensorsTensors, weight_files};
        let load =
            |message: String| GenerateError::Load { path: dir.display().to_string(), message };
        let config = HfConfig::read(dir).map_err(load)?;
        let family =
            config.family().map_err(
                |message| match super::safetensors_checkpoint::architecture_of(&config.model_type) {
                    None => GenerateError::UnsupportedArchitecture {
                        path: dir.display().to_string(),
                        architecture: config.model_type.clone(),
                        supported: "llama, mistral, qwen2, qwen3 (safetensors)".into(),
                    },
                    Some(_) => load(message),
                },
            )?;
        let tokenizer_path = dir.join("tokenizer.json");
        let tokenizer = Tokenizer::from_file(&tokenizer_path)
            .map_err(|e| load(format!("{}: {e}", tokenizer_path.display())))?;
        let token_text = |ids: &super::safetensors_checkpoint::TokenIds| {
            ids.ids().first().and_then(|&id| tokenizer.id_to_token(id)).unwrap_or_default()
        };
        let (bos, eos) = (token_text(&config.bos_token_id), token_text(&config.eos_token_id));
        let template = match template_beside(&dir.join("config.json")) {
            Some(source) => Some(ChatTemplate::new(source, bos, eos)?),
            None => None,
        };
        // generation_config.json may list more end ids than config.json (Llama 3 instruct).
        let generation: Vec<u32> = std::fs::read(dir.join("generation_config.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| serde_json::from_value(v["eos_token_id"].clone()).ok())
            .map(|ids: super::safetensors_checkpoint::TokenIds| ids.ids())
            .unwrap_or_default();
        let stop_ids =
            stop_ids_of(&tokenizer, config.eos_token_id.ids().into_iter().chain(generation));

        let started = Instant::now();
        let files = weight_files(dir).map_err(load)?;
        let dev = &Device::Cpu;
        let mut tensors = SafetensorsTensors::open(&files, dev).map_err(|e| load(e.to_string()))?;
        let arch = family.arch.clone();
        let model = super::llama_family::LlamaFamily::build(family, &mut tensors, dev)
            .map_err(|e| load(e.to_string()))?;
        // What the folder is, as `describe` says it; the context as far as the model runs.
        let mut info = describe_folder(dir)?;
        info.architecture = arch;
        info.context_length = info.context_length.min(model.max_positions);
        tracing::info!(
            model = %info.name, arch = %info.architecture, ms = started.elapsed().as_millis() as u64,
            "generator loaded"
        );
        let work = Weights::Llama(Box::new(model));
        // Hugging Face folders: the chat template writes whatever start token the model needs.
        Ok(Self::assemble(work, info, tokenizer, template, stop_ids, None))
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// Token ids of `text`, without adding special tokens (templates write their own).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, GenerateError> {
        self.tokenizer
            .encode(text, false)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| GenerateError::Tokenize(e.to_string()))
    }

    /// Token ids of a whole prompt: `text` with the file's beginning-of-sequence token in
    /// front when the file asks for one and `text` does not already start with it.
    fn encode_prompt(&self, text: &str) -> Result<Vec<u32>, GenerateError> {
        let mut ids = self.encode(text)?;
        if let Some(bos) = self.bos
            && ids.first() != Some(&bos)
        {
            ids.insert(0, bos);
        }
        Ok(ids)
    }

    /// Whether the model has a chat template (instruct models do; base models only continue
    /// text, see [`GgufGenerator::complete`]).
    pub fn has_chat_template(&self) -> bool {
        self.template.is_some()
    }

    /// Token ids that end a turn.
    pub fn stop_ids(&self) -> &[u32] {
        &self.stop_ids
    }

    /// Starts from an empty attention cache.
    pub fn start_fresh(&mut self) {
        self.work = self.pristine.copy();
    }

    /// Runs `ids` at positions `pos..` on the current attention cache (position 0 starts
    /// fresh) and returns the logits after the last one.
    pub fn forward(&mut self, ids: &[u32], pos: usize) -> Result<Vec<f32>, GenerateError> {
        if pos == 0 {
            self.start_fresh();
        }
        self.check_fits(pos + ids.len())?;
        let logits = self.run_prompt(ids, pos, &CancelToken::new())?;
        let logits = logits.ok_or_else(|| GenerateError::Model("no tokens to run".into()))?;
        logits.to_vec1().map_err(|e| GenerateError::Model(e.to_string()))
    }

    /// Runs `ids` from position `pos` in passes of at most `PREFILL_CHUNK` tokens, checking
    /// `cancel` between passes; the logits after the last token, `None` when cancelled.
    fn run_prompt(
        &mut self,
        ids: &[u32],
        mut pos: usize,
        cancel: &CancelToken,
    ) -> Result<Option<Tensor>, GenerateError> {
        let mut logits = None;
        let mut done = 0;
        while done < ids.len() {
            if cancel.is_cancelled() {
                return Ok(None);
            }
            let end = (done + PREFILL_CHUNK).min(ids.len());
            logits = Some(self.forward_raw(&ids[done..end], pos)?);
            pos += end - done;
            done = end;
        }
        Ok(logits)
    }

    fn forward_raw(&mut self, ids: &[u32], pos: usize) -> Result<Tensor, GenerateError> {
        let _span = tracing::trace_span!("forward", tokens = ids.len(), pos).entered();
        self.work.forward(ids, pos).map_err(|e| GenerateError::Model(e.to_string()))
    }

    fn check_fits(&self, tokens: usize) -> Result<(), GenerateError> {
        if tokens > self.info.context_length {
            return Err(GenerateError::ContextTooLong {
                prompt_tokens: tokens,
                context_length: self.info.context_length,
            });
        }
        Ok(())
    }

    /// Logits at every position of `ids`, each token fed after the previous one (teacher
    /// forcing), from an empty cache: what `bench/compare_logits.py` compares with llama.cpp.
    pub fn logits_per_position(&mut self, ids: &[u32]) -> Result<Vec<Vec<f32>>, GenerateError> {
        self.check_fits(ids.len())?;
        self.start_fresh();
        let mut out = Vec::with_capacity(ids.len());
        for (pos, &id) in ids.iter().enumerate() {
            let logits = self.forward_raw(&[id], pos)?;
            out.push(logits.to_vec1().map_err(|e| GenerateError::Model(e.to_string()))?);
        }
        Ok(out)
    }

    /// Prompt tokens of the system message alone, when the prompt starts with them: the
    /// prefix worth caching across questions.
    fn system_prefix(&self, messages: &[ChatMessage], ids: &[u32]) -> Option<Vec<u32>> {
        let template = self.template.as_ref()?;
        if messages.len() < 2 || messages[0].role != "system" {
            return None;
        }
        let text = template.render(&messages[..1], false).ok()?;
        let prefix = self.encode_prompt(&text).ok()?;
        (!prefix.is_empty() && ids.len() > prefix.len() && ids.starts_with(&prefix))
            .then_some(prefix)
    }

    /// Sets up the attention cache for `ids`: the cached system prompt when it matches, else
    /// a fresh start that caches the system prompt for next time. Returns the next position
    /// and whether it was reached by reusing the cache.
    fn prepare_prefix(
        &mut self,
        messages: &[ChatMessage],
        ids: &[u32],
    ) -> Result<(usize, bool), GenerateError> {
        if let Some(cached) = &self.prefix
            && ids.len() > cached.ids.len()
            && ids.starts_with(&cached.ids)
        {
            self.work = cached.weights.copy();
            return Ok((cached.ids.len(), true));
        }
        self.start_fresh();
        let Some(prefix) = self.system_prefix(messages, ids) else { return Ok((0, false)) };
        self.run_prompt(&prefix, 0, &CancelToken::new())?;
        self.prefix = Some(PrefixCache { ids: prefix.clone(), weights: self.work.copy() });
        Ok((prefix.len(), false))
    }
}

impl Generator for GgufGenerator {
    fn info(&self) -> &GeneratorInfo {
        &self.info
    }

    fn render_prompt(&self, messages: &[ChatMessage]) -> Result<String, GenerateError> {
        self.render_defused(&self.controls.defuse_messages(messages))
    }

    fn count_tokens(&self, text: &str) -> Result<usize, GenerateError> {
        Ok(self.encode(text)?.len())
    }

    fn generate(
        &mut self,
        messages: &[ChatMessage],
        params: &GenerationParams,
        sink: &mut dyn TokenSink,
        cancel: &CancelToken,
    ) -> Result<GenerationReport, GenerateError> {
        let _span = tracing::info_span!("generate", model = %self.info.name).entered();
        let started = Instant::now();
        // Message text is data: none of it may become one of the model's control tokens.
        let messages = self.controls.defuse_messages(messages);
        let prompt = self.render_defused(&messages)?;
        let ids = self.encode_prompt(&prompt)?;
        if ids.is_empty() {
            return Err(GenerateError::Template("the chat template rendered nothing".into()));
        }
        self.run(&ids, Some(&messages), params, sink, cancel, started)
    }
}

impl GgufGenerator {
    /// The prompt the chat template makes of messages already defused.
    fn render_defused(&self, messages: &[ChatMessage]) -> Result<String, GenerateError> {
        let template = self.template.as_ref().ok_or_else(|| {
            GenerateError::Template(format!(
                "{} has no chat template (no tokenizer.chat_template in the file and no \
                 tokenizer_config.json beside it): it is a base model, which continues text \
                 (`quarry generate`) but cannot answer questions; choose an instruct model",
                self.info.path.display()
            ))
        })?;
        template.render(messages, true)
    }

    /// Continues `text` as it is, without a chat template: what a base model is for.
    pub fn complete(
        &mut self,
        text: &str,
        params: &GenerationParams,
        sink: &mut dyn TokenSink,
        cancel: &CancelToken,
    ) -> Result<GenerationReport, GenerateError> {
        let _span = tracing::info_span!("complete", model = %self.info.name).entered();
        let started = Instant::now();
        let ids = self.encode_prompt(text)?;
        if ids.is_empty() {
            return Err(GenerateError::Tokenize("the text to continue is empty".into()));
        }
        self.run(&ids, None, params, sink, cancel, started)
    }

    /// Generates after the prompt `ids` (the chat `messages` they were rendered from, when
    /// there is one, lets the system prompt's attention state be cached).
    fn run(
        &mut self,
        ids: &[u32],
        messages: Option<&[ChatMessage]>,
        params: &GenerationParams,
        sink: &mut dyn TokenSink,
        cancel: &CancelToken,
        started: Instant,
    ) -> Result<GenerationReport, GenerateError> {
        // The prompt and at least one generated token must fit.
        self.check_fits(ids.len() + 1)?;

        let mut report = GenerationReport {
            text: String::new(),
            stop_reason: StopReason::Cancelled,
            prompt_tokens: ids.len(),
            cached_prompt_tokens: 0,
            generated_tokens: 0,
            prefill_ms: 0.0,
            ttft_ms: 0.0,
            total_ms: 0.0,
            decode_tokens_per_s: 0.0,
        };
        let ms = |since: Instant| since.elapsed().as_secs_f64() * 1000.0;
        let (mut pos, reused) = match messages {
            Some(messages) => self.prepare_prefix(messages, ids)?,
            None => {
                self.start_fresh();
                (0, false)
            }
        };
        if reused {
            report.cached_prompt_tokens = pos;
        }
        let Some(mut logits) = self.run_prompt(&ids[pos..], pos, cancel)? else {
            report.total_ms = ms(started);
            return Ok(report);
        };
        pos = ids.len();
        report.prefill_ms = ms(started);

        let sampling = match (params.temperature, params.top_p) {
            (Some(t), Some(p)) if t > 0.0 => Sampling::TopP { p, temperature: t },
            (Some(t), None) if t > 0.0 => Sampling::All { temperature: t },
            _ => Sampling::ArgMax,
        };
        let mut sampler = LogitsProcessor::from_sampling(params.seed, sampling);
        let mut decoder = IncrementalDecoder::new();
        let mut matcher = StopMatcher::new(&params.stop);
        let mut first_token_at = None;
        let mut generated: Vec<u32> = Vec::new();
        report.stop_reason = loop {
            if cancel.is_cancelled() {
                break StopReason::Cancelled;
            }
            if report.generated_tokens >= params.max_tokens {
                break StopReason::MaxTokens;
            }
            if params.repeat_penalty != 1.0 && !generated.is_empty() {
                let window = &generated[generated.len().saturating_sub(params.repeat_last_n)..];
                logits = candle_transformers::utils::apply_repeat_penalty(
                    &logits,
                    params.repeat_penalty,
                    window,
                )
                .map_err(|e| GenerateError::Model(e.to_string()))?;
            }
            let next = sampler.sample(&logits).map_err(|e| GenerateError::Model(e.to_string()))?;
            generated.push(next);
            if first_token_at.is_none() {
                first_token_at = Some(Instant::now());
                report.ttft_ms = ms(started);
            }
            if self.stop_ids.contains(&next) {
                break StopReason::EndOfTurn;
            }
            report.generated_tokens += 1;
            if let Some(piece) = decoder.push(&self.tokenizer, next)? {
                let matched = matcher.push(&piece);
                if !matched.release.is_empty() {
                    sink.text(&matched.release);
                    report.text.push_str(&matched.release);
                }
                if matched.stopped {
                    break StopReason::StopString;
                }
            }
            if report.generated_tokens >= params.max_tokens {
                break StopReason::MaxTokens;
            }
            if pos + 1 > self.info.context_length {
                break StopReason::ContextFull;
            }
            logits = self.forward_raw(&[next], pos)?;
            pos += 1;
        };
        if report.stop_reason != StopReason::StopString {
            let mut rest = decoder.finish(&self.tokenizer)?.unwrap_or_default();
            let held = matcher.push(&rest);
            rest = held.release;
            if !held.stopped {
                rest.push_str(&matcher.finish());
            }
            if !rest.is_empty() {
                sink.text(&rest);
                report.text.push_str(&rest);
            }
        }
        report.total_ms = ms(started);
        if let Some(first) = first_token_at
            && report.generated_tokens > 1
        {
            let secs = first.elapsed().as_secs_f64();
            report.decode_tokens_per_s = (report.generated_tokens - 1) as f64 / secs.max(1e-9);
        }
        Ok(report)
    }
}

/// The strings of a tokenizer's added vocabulary that act as control tokens (turn markers,
/// `<tool_call>`, `[INST]`, `<bos>`, DeepSeek's full-width markers: whatever this model has),
/// taken from the tokenizer itself rather than a hand list. Found in message text, each gets a
/// word joiner (U+2060, invisible) after its first character, so the text still reads the same
/// but can never be tokenized as the control token: a document cannot end the user's turn and
/// speak as the assistant or the system.
#[derive(Debug, Clone)]
pub struct ControlStrings {
    finder: Option<aho_corasick::AhoCorasick>,
}

impl ControlStrings {
    /// The control strings of `tokenizer`: every added token that is not blank and longer than
    /// one character.
    pub fn of(tokenizer: &Tokenizer) -> Self {
        let strings: Vec<String> = tokenizer
            .get_added_tokens_decoder()
            .values()
            .map(|t| t.content.clone())
            .filter(|c| is_control_like(c))
            .collect();
        let finder = (!strings.is_empty())
            .then(|| {
                aho_corasick::AhoCorasick::builder()
                    .match_kind(aho_corasick::MatchKind::LeftmostLongest)
                    .build(&strings)
                    .ok()
            })
            .flatten();
        Self { finder }
    }

    /// `text` with every control string broken by a word joiner after its first character.
    pub fn defuse(&self, text: &str) -> String {
        let Some(finder) = &self.finder else { return text.to_owned() };
        let mut out = text.to_owned();
        // A break can only remove matches, so this ends; a second pass catches a control
        // string that began inside the first one's remainder.
        while finder.find(&out).is_some() {
            let mut next = String::with_capacity(out.len() + 8);
            let mut at = 0;
            for m in finder.find_iter(&out) {
                let first = out[m.start()..].chars().next().map_or(1, char::len_utf8);
                next.push_str(&out[at..m.start() + first]);
                next.push('\u{2060}');
                at = m.start() + first;
            }
            next.push_str(&out[at..]);
            out = next;
        }
        out
    }

    fn defuse_messages(&self, messages: &[ChatMessage]) -> Vec<ChatMessage> {
        messages
            .iter()
            .map(|m| ChatMessage { role: m.role.clone(), content: self.defuse(&m.content) })
            .collect()
    }
}

/// Whether an added token's text can act as a control token: not blank, more than one
/// character (whitespace runs and single symbols some vocabularies add are plain text).
pub fn is_control_like(content: &str) -> bool {
    !content.trim().is_empty() && content.chars().count() > 1
}

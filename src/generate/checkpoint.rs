//! Writes GGUF checkpoints with random weights in the real shapes and file layout of chosen
//! models (SmolLM2-135M, Qwen2.5-0.5B, Llama-3.2-1B, ...), quantized like llama.cpp's Q4_K_M or
//! Q8_0, and the same weights as Hugging Face checkpoint folders (safetensors, f32 or bf16).
//! No generator weights can be downloaded here, and speed does not depend on weight values, so
//! these files drive the tests (tiny shapes), the benchmarks (real shapes) and the logit
//! comparisons against llama.cpp and transformers (`bench/compare_logits*.py`).
//!
//! Weights are scaled like a trained model's so that logits are far from flat: projections
//! have standard deviation `1/sqrt(fan_in)` (each sub-layer contributes O(1) to the residual
//! stream, attention scores are O(1)), and embeddings `3/sqrt(hidden)` (logits with a standard
//! deviation of about 3 after the final norm).

use std::io::{BufWriter, Write};
use std::path::Path;

use candle_core::quantized::{GgmlDType, QTensor, gguf_file};
use candle_core::{Device, Tensor};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Normal};
use serde::Serialize;

use super::GenerateError;

/// The shape of a model family member, as its `config.json` gives it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelShape {
    /// GGUF `general.architecture`.
    pub architecture: &'static str,
    /// Hidden size.
    pub hidden: usize,
    /// Transformer blocks.
    pub layers: usize,
    /// Attention heads.
    pub heads: usize,
    /// Key/value heads (grouped-query attention).
    pub kv_heads: usize,
    /// Size of one head.
    pub head_dim: usize,
    /// Feed-forward size.
    pub ff: usize,
    /// Rows of the embedding matrix.
    pub vocab: usize,
    /// Context length written into the file.
    pub context: usize,
    /// RoPE base frequency.
    pub rope_base: f32,
    /// RMS norm epsilon.
    pub eps: f32,
    /// Whether the output projection is the embedding matrix.
    pub tied: bool,
    /// llama.cpp pre-tokenizer name (`tokenizer.ggml.pre`).
    pub pre_tokenizer: &'static str,
    /// Sliding-window size (Gemma 3).
    pub sliding_window: usize,
    /// Whether the file carries Llama 3.1+'s `rope_freqs` (long-context rope scaling).
    pub rope_freqs: bool,
}

/// Names of the shapes [`preset`] knows.
pub const PRESETS: &[&str] = &[
    "smollm2-135m",
    "qwen2.5-0.5b",
    "qwen3-0.6b",
    "llama-3.2-1b",
    "gemma3-1b",
    "phi-3.5-mini",
    "tiny-llama",
    "tiny-llama3",
    "tiny-qwen2",
    "tiny-qwen3",
    "tiny-qwen3-k",
    "tiny-phi3",
    "tiny-gemma3",
];

/// The shape called `name` (one of [`PRESETS`]). Real shapes follow the models' published
/// `config.json`; `tiny-*` ones keep each family's structure at a size tests can afford
/// (vocabulary of 49,152 so the SmolLM2 tokenizer fits).
pub fn preset(name: &str) -> Option<ModelShape> {
    let base = |architecture, hidden, layers, heads, kv_heads, ff, vocab| ModelShape {
        architecture,
        hidden,
        layers,
        heads,
        kv_heads,
        head_dim: hidden / heads,
        ff,
        vocab,
        context: 4096,
        rope_base: 10_000.0,
        eps: 1e-6,
        tied: true,
        pre_tokenizer: "smollm",
        sliding_window: 0,
        rope_freqs: false,
    };
    // The SmolLM2 vocabulary plus room for other families' turn markers.
    let tiny = 49_152 + 32;
    Some(match name {
        "smollm2-135m" => ModelShape {
            context: 8192,
            rope_base: 100_000.0,
            eps: 1e-5,
            ..base("llama", 576, 30, 9, 3, 1536, 49_152)
        },
        "qwen2.5-0.5b" => ModelShape {
            context: 32_768,
            rope_base: 1_000_000.0,
            pre_tokenizer: "qwen2",
            ..base("qwen2", 896, 24, 14, 2, 4864, 151_936)
        },
        "qwen3-0.6b" => ModelShape {
            head_dim: 128,
            context: 40_960,
            rope_base: 1_000_000.0,
            pre_tokenizer: "qwen2",
            ..base("qwen3", 1024, 28, 16, 8, 3072, 151_936)
        },
        "llama-3.2-1b" => ModelShape {
            context: 131_072,
            rope_base: 500_000.0,
            eps: 1e-5,
            pre_tokenizer: "llama-bpe",
            rope_freqs: true,
            ..base("llama", 2048, 16, 32, 8, 8192, 128_256)
        },
        "gemma3-1b" => ModelShape {
            head_dim: 256,
            context: 32_768,
            rope_base: 1_000_000.0,
            sliding_window: 512,
            ..base("gemma3", 1152, 26, 4, 1, 6912, 262_144)
        },
        "phi-3.5-mini" => ModelShape {
            context: 4096,
            eps: 1e-5,
            tied: false,
            ..base("phi3", 3072, 32, 32, 32, 8192, 32_064)
        },
        "tiny-llama" => {
            ModelShape { rope_base: 100_000.0, ..base("llama", 64, 2, 4, 2, 192, tiny) }
        }
        "tiny-llama3" => ModelShape {
            rope_base: 500_000.0,
            rope_freqs: true,
            ..base("llama", 64, 2, 4, 2, 192, tiny)
        },
        "tiny-qwen2" => base("qwen2", 64, 2, 4, 2, 192, tiny),
        "tiny-qwen3" => ModelShape { head_dim: 32, ..base("qwen3", 64, 2, 4, 2, 192, tiny) },
        // Rows of 256 and 512: the Q4_K_M mix stores it in Q4_K and Q6_K, as real Qwen3 files.
        "tiny-qwen3-k" => ModelShape { head_dim: 64, ..base("qwen3", 256, 2, 4, 2, 512, tiny) },
        "tiny-phi3" => ModelShape { tied: false, ..base("phi3", 64, 2, 4, 4, 192, tiny) },
        "tiny-gemma3" => ModelShape {
            head_dim: 32,
            sliding_window: 16,
            ..base("gemma3", 64, 7, 4, 2, 192, tiny)
        },
        _ => return None,
    })
}

/// How the weights are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Quantization {
    /// 32-bit floats.
    F32,
    /// 8-bit blocks of 32.
    Q8_0,
    /// llama.cpp's Q4_K_M mix: Q4_K, with Q6_K for the output and for `attn_v`/`ffn_down` in
    /// the layers llama.cpp gives more bits; Q5_0/Q8_0 where rows are not a multiple of 256.
    Q4KM,
}

impl Quantization {
    /// Parses "f32", "q8_0" or "q4_k_m".
    pub fn parse(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "f32" => Some(Self::F32),
            "q8_0" => Some(Self::Q8_0),
            "q4_k_m" => Some(Self::Q4KM),
            _ => None,
        }
    }

    /// llama.cpp's `general.file_type`.
    fn file_type(self) -> u32 {
        match self {
            Self::F32 => 0,
            Self::Q8_0 => 7,
            Self::Q4KM => 15,
        }
    }
}

/// A vocabulary in GGUF form, taken from a Hugging Face `tokenizer.json` (byte-level BPE).
#[derive(Debug, Clone)]
pub struct GgufVocab {
    tokens: Vec<String>,
    types: Vec<i32>,
    merges: Vec<String>,
    bos: u32,
    eos: u32,
}

impl GgufVocab {
    /// Reads `tokenizer.json`; `bos`/`eos` name the special tokens to record.
    pub fn from_tokenizer_json(path: &Path, bos: &str, eos: &str) -> Result<Self, GenerateError> {
        let err =
            |message: String| GenerateError::Load { path: path.display().to_string(), message };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        let json: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| err(e.to_string()))?;
        let model = &json["model"];
        if model["type"] != "BPE" {
            return Err(err(format!("only BPE tokenizers can be embedded, not {}", model["type"])));
        }
        let vocab = model["vocab"].as_object().ok_or_else(|| err("no model.vocab".into()))?;
        let size = vocab.values().filter_map(|v| v.as_u64()).max().unwrap_or(0) as usize + 1;
        let mut tokens = vec![String::new(); size];
        let mut types = vec![1i32; size];
        for (token, id) in vocab {
            if let Some(id) = id.as_u64() {
                tokens[id as usize] = token.clone();
            }
        }
        for added in json["added_tokens"].as_array().into_iter().flatten() {
            if let (Some(id), Some(content)) = (added["id"].as_u64(), added["content"].as_str()) {
                let id = id as usize;
                if id >= tokens.len() {
                    tokens.resize(id + 1, String::new());
                    types.resize(id + 1, 1);
                }
                tokens[id] = content.to_owned();
                types[id] = if added["special"].as_bool().unwrap_or(false) { 3 } else { 4 };
            }
        }
        let merges = model["merges"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| match m {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Array(pair) => {
                    Some(format!("{} {}", pair.first()?.as_str()?, pair.get(1)?.as_str()?))
                }
                _ => None,
            })
            .collect();
        let find = |name: &str| {
            tokens
                .iter()
                .position(|t| t == name)
                .map(|p| p as u32)
                .ok_or_else(|| err(format!("token {name} is not in the vocabulary")))
        };
        Ok(Self { bos: find(bos)?, eos: find(eos)?, tokens, types, merges })
    }

    /// Tokens in the vocabulary.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether the vocabulary is empty.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }
}

/// What [`write`] produced.
#[derive(Debug, Clone, Serialize)]
pub struct WrittenCheckpoint {
    /// Number of weights.
    pub parameters: u64,
    /// Size of the file.
    pub bytes: u64,
}

/// Everything [`write`] needs.
#[derive(Debug, Clone)]
pub struct CheckpointSpec {
    /// Shape of the model.
    pub shape: ModelShape,
    /// Storage of the weights.
    pub quantization: Quantization,
    /// Seed of the weights, so the same spec always gives the same file.
    pub seed: u64,
    /// The vocabulary (padded with unused tokens up to the shape's vocabulary size).
    pub vocab: GgufVocab,
    /// `tokenizer.chat_template`.
    pub chat_template: Option<String>,
    /// `general.name`.
    pub name: String,
}

/// Writes the checkpoint described by `spec` to `path`.
pub fn write(path: &Path, spec: &CheckpointSpec) -> Result<WrittenCheckpoint, GenerateError> {
    let err = |message: String| GenerateError::Load { path: path.display().to_string(), message };
    let shape = &spec.shape;
    if spec.vocab.len() > shape.vocab {
        return Err(err(format!(
            "the vocabulary has {} tokens but the shape only {} rows",
            spec.vocab.len(),
            shape.vocab
        )));
    }
    let tensors = tensors(spec).map_err(|e| err(e.to_string()))?;
    let parameters = tensors.iter().map(|(_, t)| t.shape().elem_count() as u64).sum();
    let metadata = metadata(spec);
    let metadata_refs: Vec<(&str, &gguf_file::Value)> =
        metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let tensor_refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let file = std::fs::File::create(path).map_err(|e| err(e.to_string()))?;
    let mut out = BufWriter::new(file);
    gguf_file::write(&mut out, &metadata_refs, &tensor_refs).map_err(|e| err(e.to_string()))?;
    out.flush().map_err(|e| err(e.to_string()))?;
    let bytes = std::fs::metadata(path).map_err(|e| err(e.to_string()))?.len();
    Ok(WrittenCheckpoint { parameters, bytes })
}

fn metadata(spec: &CheckpointSpec) -> Vec<(String, gguf_file::Value)> {
    use gguf_file::Value;
    let s = &spec.shape;
    let arch = s.architecture;
    let u = |v: usize| Value::U32(v as u32);
    let mut md: Vec<(String, Value)> = vec![
        ("general.architecture".into(), Value::String(arch.into())),
        ("general.name".into(), Value::String(spec.name.clone())),
        ("general.file_type".into(), Value::U32(spec.quantization.file_type())),
        ("general.quantization_version".into(), Value::U32(2)),
    ];
    let mut arch_md = vec![
        ("context_length", u(s.context)),
        ("embedding_length", u(s.hidden)),
        ("block_count", u(s.layers)),
        ("feed_forward_length", u(s.ff)),
        ("attention.head_count", u(s.heads)),
        ("attention.head_count_kv", u(s.kv_heads)),
        ("attention.layer_norm_rms_epsilon", Value::F32(s.eps)),
        ("attention.key_length", u(s.head_dim)),
        ("attention.value_length", u(s.head_dim)),
        ("rope.freq_base", Value::F32(s.rope_base)),
        ("rope.dimension_count", u(s.head_dim)),
        ("vocab_size", u(s.vocab)),
    ];
    if arch == "gemma3" {
        arch_md.push(("attention.sliding_window", u(s.sliding_window)));
        arch_md.push(("rope.local_freq_base", Value::F32(10_000.0)));
    }
    md.extend(arch_md.into_iter().map(|(k, v)| (format!("{arch}.{k}"), v)));

    let v = &spec.vocab;
    let mut tokens: Vec<Value> = v.tokens.iter().map(|t| Value::String(t.clone())).collect();
    let mut types: Vec<Value> = v.types.iter().map(|&t| Value::I32(t)).collect();
    // Rows beyond the vocabulary first get the turn markers other families use (llama.cpp
    // looks some of them up by name, e.g. Phi-3's `<|end|>`), then unused tokens.
    let mut markers = FAMILY_MARKERS.iter().filter(|m| !v.tokens.iter().any(|t| t == *m));
    for idx in v.tokens.len()..s.vocab {
        match markers.next() {
            Some(marker) => {
                tokens.push(Value::String((*marker).to_owned()));
                types.push(Value::I32(3));
            }
            None => {
                tokens.push(Value::String(format!("<|unused_{idx}|>")));
                types.push(Value::I32(5));
            }
        }
    }
    md.extend([
        ("tokenizer.ggml.model".into(), Value::String("gpt2".into())),
        ("tokenizer.ggml.pre".into(), Value::String(s.pre_tokenizer.into())),
        ("tokenizer.ggml.tokens".into(), Value::Array(tokens)),
        ("tokenizer.ggml.token_type".into(), Value::Array(types)),
        (
            "tokenizer.ggml.merges".into(),
            Value::Array(v.merges.iter().map(|m| Value::String(m.clone())).collect()),
        ),
        ("tokenizer.ggml.bos_token_id".into(), Value::U32(v.bos)),
        ("tokenizer.ggml.eos_token_id".into(), Value::U32(v.eos)),
        ("tokenizer.ggml.add_bos_token".into(), Value::Bool(false)),
    ]);
    if let Some(template) = &spec.chat_template {
        md.push(("tokenizer.chat_template".into(), Value::String(template.clone())));
    }
    md
}

/// Special tokens of the families, added to vocabularies that lack them.
const FAMILY_MARKERS: &[&str] = &[
    "<|end|>",
    "<|assistant|>",
    "<|user|>",
    "<|system|>",
    "<|eot_id|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|begin_of_text|>",
    "<start_of_turn>",
    "<end_of_turn>",
    "<s>",
    "</s>",
    "<unk>",
];

/// llama.cpp's `use_more_bits`: the first and last eighth of the layers and every third one
/// between get more bits in Q4_K_M.
fn more_bits(layer: usize, layers: usize) -> bool {
    let eighth = layers / 8;
    layer < eighth || layer >= 7 * layers / 8 || (layer - eighth) % 3 == 2
}

/// The storage type of one 2-D weight with rows of `row_len` under `quant`; `high` asks for
/// the higher-precision type of the mix.
fn weight_dtype(quant: Quantization, row_len: usize, high: bool) -> GgmlDType {
    match quant {
        Quantization::F32 => GgmlDType::F32,
        Quantization::Q8_0 => GgmlDType::Q8_0,
        Quantization::Q4KM => match (high, row_len.is_multiple_of(256)) {
            (true, true) => GgmlDType::Q6K,
            (true, false) => GgmlDType::Q8_0,
            (false, true) => GgmlDType::Q4K,
            (false, false) => GgmlDType::Q5_0,
        },
    }
}

/// Writes the weights of `spec` (whose quantization must be F32) as a Hugging Face checkpoint
/// folder `dir`: `config.json`, `model.safetensors` in f32 or, with `bf16`, bfloat16,
/// `tokenizer.json` (a copy of `tokenizer_json`) and, when `spec` has a chat template,
/// `tokenizer_config.json`. Tensors get the Hugging Face names of the GGUF ones; q and k are
/// written as generated, so for `llama` the folder and the GGUF file of one seed are different
/// networks (llama.cpp's converter permutes them), while for Qwen they are the same.
pub fn write_safetensors(
    dir: &Path,
    spec: &CheckpointSpec,
    tokenizer_json: &Path,
    bf16: bool,
) -> Result<WrittenCheckpoint, GenerateError> {
    let err = |message: String| GenerateError::Load { path: dir.display().to_string(), message };
    let s = &spec.shape;
    let class = match s.architecture {
        "llama" => "LlamaForCausalLM",
        "qwen2" => "Qwen2ForCausalLM",
        "qwen3" => "Qwen3ForCausalLM",
        other => return Err(err(format!("no safetensors layout for {other}"))),
    };
    if spec.quantization != Quantization::F32 {
        return Err(err("safetensors checkpoints are written in full precision".into()));
    }
    std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
    let dtype = if bf16 { candle_core::DType::BF16 } else { candle_core::DType::F32 };
    let mut out = std::collections::HashMap::new();
    let mut parameters = 0u64;
    for (name, q) in tensors(spec).map_err(|e| err(e.to_string()))? {
        let Some(hf) = super::safetensors_checkpoint::hf_name(&name) else { continue };
        let t = q.dequantize(&Device::Cpu).and_then(|t| t.to_dtype(dtype));
        parameters += q.shape().elem_count() as u64;
        out.insert(hf, t.map_err(|e| err(e.to_string()))?);
    }
    let weights = dir.join("model.safetensors");
    candle_core::safetensors::save(&out, &weights).map_err(|e| err(e.to_string()))?;
    let mut config = serde_json::json!({
        "architectures": [class],
        "model_type": s.architecture,
        "hidden_size": s.hidden,
        "intermediate_size": s.ff,
        "num_attention_heads": s.heads,
        "num_key_value_heads": s.kv_heads,
        "num_hidden_layers": s.layers,
        "head_dim": s.head_dim,
        "rms_norm_eps": s.eps,
        "rope_theta": s.rope_base,
        "max_position_embeddings": s.context,
        "tie_word_embeddings": s.tied,
        "vocab_size": s.vocab,
        "hidden_act": "silu",
        "bos_token_id": spec.vocab.bos,
        "eos_token_id": spec.vocab.eos,
        "torch_dtype": if bf16 { "bfloat16" } else { "float32" },
        "use_cache": true,
    });
    if s.architecture == "llama" {
        config["attention_bias"] = false.into();
        config["mlp_bias"] = false.into();
    }
    if s.rope_freqs {
        config["rope_scaling"] = serde_json::json!({"rope_type": "llama3", "factor": 8.0,
            "low_freq_factor": 1.0, "high_freq_factor": 4.0,
            "original_max_position_embeddings": 8192});
    }
    let write_json = |name: &str, value: &serde_json::Value| {
        let text = serde_json::to_string_pretty(value).map_err(|e| err(e.to_string()))?;
        std::fs::write(dir.join(name), text).map_err(|e| err(e.to_string()))
    };
    write_json("config.json", &config)?;
    if let Some(template) = &spec.chat_template {
        write_json("tokenizer_config.json", &serde_json::json!({ "chat_template": template }))?;
    }
    // Read and written rather than copied, so the copy does not keep a read-only source's mode.
    let tokenizer = std::fs::read(tokenizer_json)
        .map_err(|e| err(format!("{}: {e}", tokenizer_json.display())))?;
    std::fs::write(dir.join("tokenizer.json"), tokenizer).map_err(|e| err(e.to_string()))?;
    let bytes = std::fs::metadata(&weights).map_err(|e| err(e.to_string()))?.len();
    Ok(WrittenCheckpoint { parameters, bytes })
}

fn tensors(spec: &CheckpointSpec) -> candle_core::Result<Vec<(String, QTensor)>> {
    let s = &spec.shape;
    let mut out = Vec::new();
    let mut seed = spec.seed;
    if s.rope_freqs {
        let factors = Tensor::new(
            super::attention::llama3_rope_factors(s.head_dim, s.rope_base, 8.0, 1.0, 4.0, 8192.0)
                .as_slice(),
            &Device::Cpu,
        )?;
        out.push(("rope_freqs.weight".into(), QTensor::quantize(&factors, GgmlDType::F32)?));
    }
    let mut add = |name: String, rows: usize, cols: usize, std: f32, dtype: GgmlDType| {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        let mut rng = StdRng::seed_from_u64(seed);
        let data: Vec<f32> = if std == 0.0 {
            vec![1.0; rows * cols]
        } else {
            let normal = Normal::new(0.0f32, std).map_err(candle_core::Error::wrap)?;
            (0..rows * cols).map(|_| normal.sample(&mut rng)).collect()
        };
        let shape: Vec<usize> = if rows == 1 { vec![cols] } else { vec![rows, cols] };
        let tensor = Tensor::from_vec(data, shape, &Device::Cpu)?;
        out.push((name, QTensor::quantize(&tensor, dtype)?));
        Ok::<(), candle_core::Error>(())
    };
    let q = spec.quantization;
    let d = s.hidden;
    let (q_dim, kv_dim) = (s.heads * s.head_dim, s.kv_heads * s.head_dim);
    let emb_std = 3.0 / (d as f32).sqrt();
    let proj = |fan_in: usize| 1.0 / (fan_in as f32).sqrt();
    // Norm weights are 1 (`std` 0 writes ones); 1-D tensors stay f32 as llama.cpp keeps them.
    let embd_high = s.tied && q == Quantization::Q4KM;
    add("token_embd.weight".into(), s.vocab, d, emb_std, weight_dtype(q, d, embd_high))?;
    if !s.tied {
        add("output.weight".into(), s.vocab, d, emb_std, weight_dtype(q, d, true))?;
    }
    add("output_norm.weight".into(), 1, d, 0.0, GgmlDType::F32)?;
    for layer in 0..s.layers {
        let p = format!("blk.{layer}");
        let high = more_bits(layer, s.layers);
        add(format!("{p}.attn_norm.weight"), 1, d, 0.0, GgmlDType::F32)?;
        add(format!("{p}.ffn_norm.weight"), 1, d, 0.0, GgmlDType::F32)?;
        if s.architecture == "phi3" {
            let qkv = q_dim + 2 * kv_dim;
            add(format!("{p}.attn_qkv.weight"), qkv, d, proj(d), weight_dtype(q, d, false))?;
            add(format!("{p}.ffn_up.weight"), 2 * s.ff, d, proj(d), weight_dtype(q, d, false))?;
        } else {
            add(format!("{p}.attn_q.weight"), q_dim, d, proj(d), weight_dtype(q, d, false))?;
            add(format!("{p}.attn_k.weight"), kv_dim, d, proj(d), weight_dtype(q, d, false))?;
            add(format!("{p}.attn_v.weight"), kv_dim, d, proj(d), weight_dtype(q, d, high))?;
            add(format!("{p}.ffn_gate.weight"), s.ff, d, proj(d), weight_dtype(q, d, false))?;
            add(format!("{p}.ffn_up.weight"), s.ff, d, proj(d), weight_dtype(q, d, false))?;
        }
        add(
            format!("{p}.attn_output.weight"),
            d,
            q_dim,
            proj(q_dim),
            weight_dtype(q, q_dim, false),
        )?;
        add(format!("{p}.ffn_down.weight"), d, s.ff, proj(s.ff), weight_dtype(q, s.ff, high))?;
        match s.architecture {
            "qwen2" => {
                add(format!("{p}.attn_q.bias"), 1, q_dim, 0.1, GgmlDType::F32)?;
                add(format!("{p}.attn_k.bias"), 1, kv_dim, 0.1, GgmlDType::F32)?;
                add(format!("{p}.attn_v.bias"), 1, kv_dim, 0.1, GgmlDType::F32)?;
            }
            "qwen3" => {
                add(format!("{p}.attn_q_norm.weight"), 1, s.head_dim, 0.0, GgmlDType::F32)?;
                add(format!("{p}.attn_k_norm.weight"), 1, s.head_dim, 0.0, GgmlDType::F32)?;
            }
            "gemma3" => {
                add(format!("{p}.attn_q_norm.weight"), 1, s.head_dim, 0.0, GgmlDType::F32)?;
                add(format!("{p}.attn_k_norm.weight"), 1, s.head_dim, 0.0, GgmlDType::F32)?;
                add(format!("{p}.post_attention_norm.weight"), 1, d, 0.0, GgmlDType::F32)?;
                add(format!("{p}.post_ffw_norm.weight"), 1, d, 0.0, GgmlDType::F32)?;
            }
            _ => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q4_k_m_mix_follows_llama_cpp() {
        // 24 layers: 0-2 and 21-23 get more bits, and every third from layer 5.
        let more: Vec<usize> = (0..24).filter(|&l| more_bits(l, 24)).collect();
        assert_eq!(more, vec![0, 1, 2, 5, 8, 11, 14, 17, 20, 21, 22, 23]);
        assert_eq!(weight_dtype(Quantization::Q4KM, 896, false), GgmlDType::Q5_0);
        assert_eq!(weight_dtype(Quantization::Q4KM, 4864, true), GgmlDType::Q6K);
        assert_eq!(weight_dtype(Quantization::Q4KM, 2048, false), GgmlDType::Q4K);
        assert!(PRESETS.iter().all(|p| preset(p).is_some()));
    }
}

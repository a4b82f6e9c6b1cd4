//! Builds a Hugging Face tokenizer from the vocabulary inside a GGUF file, for models shipped
//! as a single `.gguf` without `tokenizer.json`. Byte-level BPE vocabularies
//! (`tokenizer.ggml.model = "gpt2"`: Qwen, Llama 3, SmolLM, GPT-2 style) are rebuilt with the
//! pre-tokenizer llama.cpp names in `tokenizer.ggml.pre`; SentencePiece vocabularies need the
//! model's `tokenizer.json` beside the file.

use std::collections::HashMap;

use candle_core::quantized::gguf_file::{Content, Value};
use serde_json::json;
use tokenizers::Tokenizer;

/// GPT-2's split regex (also SmolLM's, after splitting digits).
const GPT2_SPLIT: &str =
    r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";
/// Llama 3's split regex: numbers in groups of up to three.
const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Qwen2's split regex: single digits.
const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

fn strings(content: &Content, key: &str) -> Result<Vec<String>, String> {
    let values = content
        .metadata
        .get(key)
        .ok_or_else(|| format!("the file has no {key}"))?
        .to_vec()
        .map_err(|e| e.to_string())?;
    values.iter().map(|v| v.to_string().cloned().map_err(|e| e.to_string())).collect()
}

/// The tokenizer described by the GGUF metadata in `content`.
pub fn from_gguf(content: &Content) -> Result<Tokenizer, String> {
    let kind = content
        .metadata
        .get("tokenizer.ggml.model")
        .and_then(|v| v.to_string().ok())
        .cloned()
        .unwrap_or_default();
    if kind != "gpt2" {
        return Err(format!(
            "its vocabulary is of type \"{kind}\", which Quarry cannot rebuild; put the model's \
             tokenizer.json beside the .gguf file"
        ));
    }
    let tokens = strings(content, "tokenizer.ggml.tokens")?;
    let merges = strings(content, "tokenizer.ggml.merges").unwrap_or_default();
    let types: Vec<i32> = match content.metadata.get("tokenizer.ggml.token_type") {
        Some(Value::Array(values)) => values.iter().map(|v| v.to_i32().unwrap_or(1)).collect(),
        _ => vec![1; tokens.len()],
    };
    let pre = content
        .metadata
        .get("tokenizer.ggml.pre")
        .and_then(|v| v.to_string().ok())
        .cloned()
        .unwrap_or_else(|| "default".into());

    let vocab: HashMap<&str, usize> =
        tokens.iter().enumerate().map(|(id, t)| (t.as_str(), id)).collect();
    let added: Vec<serde_json::Value> = tokens
        .iter()
        .enumerate()
        .filter(|(id, _)| matches!(types.get(*id), Some(3) | Some(4)))
        .map(|(id, t)| {
            json!({
                "id": id, "content": t, "single_word": false, "lstrip": false, "rstrip": false,
                "normalized": false, "special": types.get(id) == Some(&3),
            })
        })
        .collect();
    let split = |pattern: &str| json!({"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated", "invert": false});
    let byte_level = json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false});
    let pre_tokenizers = match pre.as_str() {
        "llama-bpe" | "llama3" | "falcon3" => vec![split(LLAMA3_SPLIT), byte_level],
        "qwen2" | "deepseek-r1-qwen" => vec![split(QWEN2_SPLIT), byte_level],
        "smollm" => vec![
            json!({"type": "Digits", "individual_digits": true}),
            split(GPT2_SPLIT),
            byte_level,
        ],
        _ => vec![split(GPT2_SPLIT), byte_level],
    };
    let spec = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": pre_tokenizers},
        "post_processor": null,
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {
            "type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
            "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false,
            "ignore_merges": false, "vocab": vocab, "merges": merges,
        },
    });
    let bytes = serde_json::to_vec(&spec).map_err(|e| e.to_string())?;
    Tokenizer::from_bytes(bytes).map_err(|e| format!("cannot rebuild its tokenizer: {e}"))
}

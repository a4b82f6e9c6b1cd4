//! Builds a Hugging Face tokenizer from the vocabulary inside a GGUF file, for models shipped
//! as a single `.gguf` without `tokenizer.json`, giving the ids llama.cpp gives. Byte-level BPE
//! vocabularies (`tokenizer.ggml.model = "gpt2"`: Qwen, Llama 3, SmolLM, GPT-2 style) are
//! rebuilt with the pre-tokenizer llama.cpp names in `tokenizer.ggml.pre`; SentencePiece
//! vocabularies (`"llama"`: Gemma, Llama 2, TinyLlama, Mistral, Phi-3) become a BPE model with
//! byte fallback whose merges come from the piece scores, as Hugging Face's converters do.
//! `tests/gguf_vocab.rs` checks both against llama.cpp's own tokenizer on real files.

use std::collections::HashMap;
use std::path::Path;

use candle_core::quantized::gguf_file::{Content, Value};
use tokenizers::decoders::byte_fallback::ByteFallback;
use tokenizers::decoders::fuse::Fuse;
use tokenizers::decoders::sequence::Sequence as DecoderSequence;
use tokenizers::decoders::strip::Strip;
use tokenizers::models::bpe::{BPE, Vocab};
use tokenizers::normalizers::{Prepend, Replace, Sequence as NormalizerSequence};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence as PreTokenizerSequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{
    AddedToken, DecoderWrapper, NormalizerWrapper, PreTokenizerWrapper, SplitDelimiterBehavior,
    Tokenizer,
};

/// GPT-2's split regex (also SmolLM's, after splitting digits).
const GPT2_SPLIT: &str =
    r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";
/// Llama 3's split regex: numbers in groups of up to three.
const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Qwen2's split regex: single digits.
const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// SentencePiece's stand-in for a space inside pieces (U+2581).
const SPACE_MARK: &str = "\u{2581}";

/// llama.cpp's token types (`tokenizer.ggml.token_type`).
const CONTROL: i32 = 3;
const USER_DEFINED: i32 = 4;

/// The BOS and EOS llama.cpp puts around a prompt, as the GGUF metadata asks; the same
/// whether the tokenizer comes from the file or from a `tokenizer.json` beside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SequenceMarkers {
    /// `tokenizer.ggml.bos_token_id` (SentencePiece files without it: 1, llama.cpp's default).
    pub bos_id: Option<u32>,
    /// `tokenizer.ggml.eos_token_id` (SentencePiece files without it: 2).
    pub eos_id: Option<u32>,
    /// Whether llama.cpp starts a prompt with BOS (`tokenizer.ggml.add_bos_token`; without the
    /// key: yes for SentencePiece and Llama 3 vocabularies, no for other BPE ones).
    pub add_bos: bool,
    /// Whether llama.cpp ends a prompt with EOS (`tokenizer.ggml.add_eos_token`, else no).
    pub add_eos: bool,
}

impl SequenceMarkers {
    /// The markers the metadata in `content` asks for, with llama.cpp's defaults where it does
    /// not say (`llama_vocab::impl::load`).
    pub fn of(content: &Content) -> Self {
        let sentencepiece = string(content, "tokenizer.ggml.model").as_deref() == Some("llama");
        let pre = string(content, "tokenizer.ggml.pre").unwrap_or_default();
        let id = |key: &str, default: u32| {
            content
                .metadata
                .get(key)
                .and_then(|v| v.to_u32().ok())
                .or(sentencepiece.then_some(default))
        };
        Self {
            bos_id: id("tokenizer.ggml.bos_token_id", 1),
            eos_id: id("tokenizer.ggml.eos_token_id", 2),
            add_bos: flag(content, "tokenizer.ggml.add_bos_token")
                .unwrap_or(sentencepiece || is_llama3(&pre)),
            add_eos: flag(content, "tokenizer.ggml.add_eos_token").unwrap_or(false),
        }
    }
}

/// A GGUF file's tokenizer and the sequence markers llama.cpp puts around a prompt.
#[derive(Clone)]
pub struct GgufTokenizer {
    /// Encodes without adding BOS/EOS, whatever `add_special_tokens` says (no post-processor:
    /// whoever builds a prompt decides with [`Self::markers`]). Control tokens written in the
    /// text are parsed unless `set_encode_special_tokens(true)`; user-defined tokens always
    /// are, as in SentencePiece and llama.cpp.
    pub tokenizer: Tokenizer,
    /// The BOS and EOS the file asks for.
    pub markers: SequenceMarkers,
}

impl std::fmt::Debug for GgufTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufTokenizer")
            .field("tokens", &self.tokenizer.get_vocab_size(true))
            .field("markers", &self.markers)
            .finish()
    }
}

impl GgufTokenizer {
    /// The vocabulary of the GGUF file at `path`, reading its metadata only (not the weights).
    pub fn read(path: &Path) -> Result<Self, String> {
        let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
        // Buffered: the header is read a few bytes at a time, a system call each on a bare file.
        let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
        let content =
            Content::read(&mut reader).map_err(|e| format!("not a readable GGUF file: {e}"))?;
        Self::from_content(&content)
    }

    /// The vocabulary described by the GGUF metadata in `content`.
    pub fn from_content(content: &Content) -> Result<Self, String> {
        let kind = string(content, "tokenizer.ggml.model").unwrap_or_default();
        let tokenizer = match kind.as_str() {
            "llama" => sentencepiece_tokenizer(content)?,
            "gpt2" => gpt2(content)?,
            _ => {
                return Err(format!(
                    "its vocabulary is of type \"{kind}\", which Quarry cannot rebuild; put the \
                     model's tokenizer.json beside the .gguf file"
                ));
            }
        };
        Ok(Self { tokenizer, markers: SequenceMarkers::of(content) })
    }
}

/// The tokenizer described by the GGUF metadata in `content` (see [`GgufTokenizer`] for the BOS
/// and EOS the file asks for).
pub fn from_gguf(content: &Content) -> Result<Tokenizer, String> {
    GgufTokenizer::from_content(content).map(|vocab| vocab.tokenizer)
}

/// Llama 3's pre-tokenizer names: llama.cpp adds BOS and takes whole-word tokens for them.
fn is_llama3(pre: &str) -> bool {
    matches!(pre, "llama-bpe" | "llama3" | "llama-v3" | "falcon3")
}

fn string(content: &Content, key: &str) -> Option<String> {
    content.metadata.get(key).and_then(|v| v.to_string().ok()).cloned()
}

fn flag(content: &Content, key: &str) -> Option<bool> {
    content.metadata.get(key).and_then(|v| v.to_bool().ok())
}

fn strings(content: &Content, key: &str) -> Result<Vec<String>, String> {
    let values = content
        .metadata
        .get(key)
        .ok_or_else(|| format!("the file has no {key}"))?
        .to_vec()
        .map_err(|e| e.to_string())?;
    values.iter().map(|v| v.to_string().cloned().map_err(|e| e.to_string())).collect()
}

/// `tokenizer.ggml.token_type`, or all normal where the file has none.
fn token_types(content: &Content, count: usize) -> Vec<i32> {
    match content.metadata.get("tokenizer.ggml.token_type") {
        Some(Value::Array(values)) => values.iter().map(|v| v.to_i32().unwrap_or(1)).collect(),
        _ => vec![1; count],
    }
}

/// Control tokens as special added tokens, user-defined ones as plain added tokens: both
/// matched on the raw text before anything else, longest first.
fn added_tokens(tokens: &[String], types: &[i32]) -> (Vec<AddedToken>, Vec<AddedToken>) {
    let of_type = |wanted: i32, special: bool| {
        tokens
            .iter()
            .zip(types)
            .filter(|(_, t)| **t == wanted)
            .map(|(token, _)| AddedToken::from(token.clone(), special).normalized(false))
            .collect()
    };
    (of_type(CONTROL, true), of_type(USER_DEFINED, false))
}

/// A SentencePiece vocabulary as llama.cpp's `llm_tokenizer_spm` reads it.
///
/// llama.cpp splits out user-defined tokens (and control tokens, when parsing them) first,
/// writes spaces as `▁` (prepending one to each remaining fragment when
/// `tokenizer.ggml.add_space_prefix`, which defaults to true), then starts from single
/// characters and repeatedly merges the adjacent pair whose concatenation is the
/// highest-scoring piece in the vocabulary, leftmost first among equals; a character left
/// without a piece becomes its `<0xXX>` byte tokens. A BPE model does the same when every
/// split of every piece into two pieces is a merge ranked by the whole piece's score, and
/// `byte_fallback` stands in for the byte tokens.
fn sentencepiece_tokenizer(content: &Content) -> Result<Tokenizer, String> {
    let tokens = strings(content, "tokenizer.ggml.tokens")?;
    let types = token_types(content, tokens.len());
    let scores: Vec<f32> = match content.metadata.get("tokenizer.ggml.scores") {
        Some(Value::Array(values)) => values.iter().map(|v| v.to_f32().unwrap_or(0.0)).collect(),
        _ => vec![0.0; tokens.len()],
    };
    let add_space_prefix = flag(content, "tokenizer.ggml.add_space_prefix").unwrap_or(true);
    let unk = content
        .metadata
        .get("tokenizer.ggml.unknown_token_id")
        .and_then(|v| v.to_u32().ok())
        .unwrap_or(0);

    // A piece spelled twice resolves to its last id, as in llama.cpp's token_to_id.
    let ids: HashMap<&str, u32> =
        tokens.iter().enumerate().map(|(id, t)| (t.as_str(), id as u32)).collect();
    let merges = merges_by_score(&tokens, &scores, &ids);
    let vocab: Vocab = tokens.iter().enumerate().map(|(id, t)| (t.clone(), id as u32)).collect();
    let mut bpe = BPE::builder().vocab_and_merges(vocab, merges).byte_fallback(true).fuse_unk(true);
    if let Some(unk) = tokens.get(unk as usize) {
        bpe = bpe.unk_token(unk.clone());
    }
    let bpe = bpe.build().map_err(|e| format!("cannot rebuild its tokenizer: {e}"))?;

    let mut tokenizer = Tokenizer::new(bpe);
    let escape = Replace::new(" ", SPACE_MARK).map_err(|e| e.to_string())?;
    let mut normalizers: Vec<NormalizerWrapper> = vec![escape.into()];
    if add_space_prefix {
        // Applied to every fragment between added tokens, as llama.cpp prefixes each fragment
        // that follows a token (or starts the text).
        normalizers.insert(0, Prepend::new(SPACE_MARK.into()).into());
    }
    tokenizer
        .with_normalizer(Some(NormalizerSequence::new(normalizers)))
        .map_err(|e| e.to_string())?;
    let unescape = Replace::new(SPACE_MARK, " ").map_err(|e| e.to_string())?;
    let mut decoders: Vec<DecoderWrapper> =
        vec![unescape.into(), ByteFallback::new().into(), Fuse::new().into()];
    if add_space_prefix {
        // llama_detokenize drops the leading space of the first piece, the one the prefix added.
        decoders.push(Strip::new(' ', 1, 0).into());
    }
    tokenizer.with_decoder(Some(DecoderSequence::new(decoders)));
    let (control, user_defined) = added_tokens(&tokens, &types);
    tokenizer.add_special_tokens(control).map_err(|e| e.to_string())?;
    tokenizer.add_tokens(user_defined).map_err(|e| e.to_string())?;
    Ok(tokenizer)
}

/// Every split of a piece into two pieces, as a merge ranked by the whole piece's score (best
/// first). Equal scores fall back to the lower piece id, then the lower left id. llama.cpp
/// takes the leftmost of equal-score pairs instead, so the two can only differ where two
/// overlapping pairs of equal score (two splits of one piece, or two pieces scored alike)
/// compete in one fragment: none of the fixture lines, nor 200,000 random ones, does that.
fn merges_by_score(
    tokens: &[String],
    scores: &[f32],
    ids: &HashMap<&str, u32>,
) -> Vec<(String, String)> {
    let mut ranked: Vec<(f32, u32, u32, u32)> = Vec::new();
    for (id, piece) in tokens.iter().enumerate() {
        let id = id as u32;
        if ids.get(piece.as_str()) != Some(&id) {
            continue;
        }
        let score = scores.get(id as usize).copied().unwrap_or(0.0);
        for (at, _) in piece.char_indices().skip(1) {
            let (left, right) = piece.split_at(at);
            if let (Some(&l), Some(&r)) = (ids.get(left), ids.get(right)) {
                ranked.push((score, id, l, r));
            }
        }
    }
    ranked.sort_by(|a, b| {
        b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)).then(a.3.cmp(&b.3))
    });
    ranked
        .into_iter()
        .map(|(_, _, l, r)| (tokens[l as usize].clone(), tokens[r as usize].clone()))
        .collect()
}

/// A byte-level BPE vocabulary with its merges, split as `tokenizer.ggml.pre` says. Built with
/// the tokenizers API, not through a JSON spec: a 150k-token vocabulary's JSON cost a second of
/// the model's load time.
fn gpt2(content: &Content) -> Result<Tokenizer, String> {
    let tokens = strings(content, "tokenizer.ggml.tokens")?;
    let merges: Vec<(String, String)> = strings(content, "tokenizer.ggml.merges")
        .unwrap_or_default()
        .into_iter()
        .map(|m| match m.split_once(' ') {
            Some((l, r)) => Ok((l.to_owned(), r.to_owned())),
            None => Err(format!("tokenizer.ggml.merges holds \"{m}\", not two pieces")),
        })
        .collect::<Result<_, _>>()?;
    let types = token_types(content, tokens.len());
    let pre = string(content, "tokenizer.ggml.pre").unwrap_or_else(|| "default".into());

    let (control, user_defined) = added_tokens(&tokens, &types);
    let vocab: Vocab = tokens.into_iter().zip(0u32..).collect();
    let llama3 = is_llama3(&pre);
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        // Llama 3 takes a word that is itself a token whole (llama.cpp and Hugging Face both).
        .ignore_merges(llama3)
        .build()
        .map_err(|e| format!("cannot rebuild its tokenizer: {e}"))?;
    let split = |pattern: &str| -> Result<PreTokenizerWrapper, String> {
        Ok(Split::new(SplitPattern::Regex(pattern.into()), SplitDelimiterBehavior::Isolated, false)
            .map_err(|e| e.to_string())?
            .into())
    };
    let byte_level = || -> PreTokenizerWrapper { ByteLevel::new(false, true, false).into() };
    let pre_tokenizers = match pre.as_str() {
        _ if llama3 => vec![split(LLAMA3_SPLIT)?, byte_level()],
        "qwen2" | "deepseek-r1-qwen" => vec![split(QWEN2_SPLIT)?, byte_level()],
        "smollm" => vec![Digits::new(true).into(), split(GPT2_SPLIT)?, byte_level()],
        _ => vec![split(GPT2_SPLIT)?, byte_level()],
    };
    let mut tokenizer = Tokenizer::new(bpe);
    tokenizer.with_pre_tokenizer(Some(PreTokenizerSequence::new(pre_tokenizers)));
    tokenizer.with_decoder(Some(ByteLevel::new(true, true, true)));
    tokenizer.add_special_tokens(control).map_err(|e| e.to_string())?;
    tokenizer.add_tokens(user_defined).map_err(|e| e.to_string())?;
    Ok(tokenizer)
}

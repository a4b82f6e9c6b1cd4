//! The tokenizer Quarry rebuilds from a real GGUF file's own vocabulary gives llama.cpp's ids on
//! every fixture line and decodes them as llama.cpp does: Gemma 3's SentencePiece vocabulary
//! (also with the space prefix of Llama 2, Mistral and Phi-3 switched on) and Qwen 2.5's
//! byte-level BPE one. The fixtures come from `bench/tokenizer_reference.py`.

use std::path::Path;

use candle_core::quantized::gguf_file::{Content, Value};
use quarry::generate::gguf_tokenizer::{GgufTokenizer, SequenceMarkers};
use serde::Deserialize;
use tokenizers::{AddedToken, Tokenizer};

use crate::support::{real_model, repo_root};

const GEMMA: &str = "gemma-3-270m-q4_k_m.gguf";
const QWEN: &str = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf";

/// One fixture line: llama.cpp's ids and detokenization (see tests/fixtures/tokenizer/).
#[derive(Deserialize)]
struct Line {
    text: String,
    ids: Vec<u32>,
    special: Option<Vec<u32>>,
    detok: Option<String>,
}

fn fixture(name: &str) -> Vec<Line> {
    let path = repo_root().join("tests/fixtures/tokenizer").join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn metadata(path: &Path) -> Content {
    let file = std::fs::File::open(path).unwrap();
    Content::read(&mut std::io::BufReader::with_capacity(1 << 20, file)).unwrap()
}

/// llama.cpp retypes a token spelled `</s>` as a control token whatever the file says (its
/// end-of-generation list names it for PaddleOCR), so it is parsed only with special tokens.
/// Quarry keeps the file's type, as SentencePiece and Hugging Face do (in Gemma 3 it is the
/// user-defined HTML tag); the comparison applies llama.cpp's retyping to a copy.
fn as_llama_cpp_types(tokenizer: &Tokenizer) -> Tokenizer {
    let mut tokenizer = tokenizer.clone();
    if tokenizer.token_to_id("</s>").is_some() {
        tokenizer.add_special_tokens([AddedToken::from("</s>", true).normalized(false)]).unwrap();
    }
    tokenizer
}

fn pieces(tokenizer: &Tokenizer, ids: &[u32]) -> Vec<String> {
    ids.iter().map(|&id| tokenizer.id_to_token(id).unwrap_or_else(|| format!("#{id}"))).collect()
}

/// Encodes and decodes every line; panics listing the first mismatches.
fn compare(tokenizer: &Tokenizer, lines: &[Line], what: &str) {
    let mut tokenizer = as_llama_cpp_types(tokenizer);
    let mut failures = Vec::new();
    let (mut identical, mut round_trips) = (0, 0);
    for line in lines {
        tokenizer.set_encode_special_tokens(true);
        let plain = tokenizer.encode(line.text.as_str(), false).unwrap().get_ids().to_vec();
        tokenizer.set_encode_special_tokens(false);
        let parsed = tokenizer.encode(line.text.as_str(), false).unwrap().get_ids().to_vec();
        let want_parsed = line.special.as_ref().unwrap_or(&line.ids);
        let decoded = tokenizer.decode(&line.ids, true).unwrap();
        let want_decoded = line.detok.as_ref().unwrap_or(&line.text);
        if plain == line.ids && &parsed == want_parsed {
            identical += 1;
        }
        if decoded == line.text {
            round_trips += 1;
        }
        if plain != line.ids {
            failures.push(format!(
                "{:?}\n  llama.cpp {:?}\n  quarry    {:?}",
                line.text,
                pieces(&tokenizer, &line.ids),
                pieces(&tokenizer, &plain)
            ));
        }
        if &parsed != want_parsed {
            failures.push(format!(
                "{:?} (control tokens parsed)\n  llama.cpp {:?}\n  quarry    {:?}",
                line.text,
                pieces(&tokenizer, want_parsed),
                pieces(&tokenizer, &parsed)
            ));
        }
        if &decoded != want_decoded {
            failures.push(format!(
                "{:?} decodes as {decoded:?}, llama.cpp {want_decoded:?}",
                line.text
            ));
        }
    }
    eprintln!(
        "{what}: {} lines, {identical} with identical ids, {round_trips} decode to their text \
         ({} do in llama.cpp)",
        lines.len(),
        lines.iter().filter(|l| l.detok.is_none()).count()
    );
    assert!(
        failures.is_empty(),
        "{what}: {} mismatches; the first:\n{}",
        failures.len(),
        failures.iter().take(8).cloned().collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn gemma_sentencepiece_vocabulary_matches_llama_cpp() {
    let Some(path) = real_model("gemma_sentencepiece_vocabulary_matches_llama_cpp", GEMMA) else {
        return;
    };
    let vocab = GgufTokenizer::read(&path).unwrap();
    // llama.cpp starts Gemma prompts with <bos> (id 2) because the file says so.
    let markers =
        SequenceMarkers { bos_id: Some(2), eos_id: Some(1), add_bos: true, add_eos: false };
    assert_eq!(vocab.markers, markers);
    compare(&vocab.tokenizer, &fixture("gemma-3-270m-q4_k_m.jsonl"), "gemma");

    // Without llama.cpp's retyping, `</s>` is Gemma's user-defined HTML tag, split out of
    // plain text like the other tags.
    let mut tokenizer = vocab.tokenizer.clone();
    tokenizer.set_encode_special_tokens(true);
    let ids = tokenizer.encode("a<s>b</s>", false).unwrap().get_ids().to_vec();
    assert_eq!(pieces(&tokenizer, &ids), ["a", "<s>", "b", "</s>"]);
}

#[test]
fn sentencepiece_space_prefix_matches_llama_cpp() {
    let Some(path) = real_model("sentencepiece_space_prefix_matches_llama_cpp", GEMMA) else {
        return;
    };
    // The fixture was made from a copy of the file with this one key changed.
    let mut content = metadata(&path);
    content.metadata.insert("tokenizer.ggml.add_space_prefix".into(), Value::Bool(true));
    let vocab = GgufTokenizer::from_content(&content).unwrap();
    compare(&vocab.tokenizer, &fixture("gemma-3-270m-q4_k_m.space-prefix.jsonl"), "gemma+prefix");
}

#[test]
fn qwen_byte_level_vocabulary_matches_llama_cpp() {
    let Some(path) = real_model("qwen_byte_level_vocabulary_matches_llama_cpp", QWEN) else {
        return;
    };
    let vocab = GgufTokenizer::read(&path).unwrap();
    assert!(!vocab.markers.add_bos && !vocab.markers.add_eos);
    compare(&vocab.tokenizer, &fixture("qwen2.5-coder-0.5b-instruct-q4_k_m.jsonl"), "qwen");
}

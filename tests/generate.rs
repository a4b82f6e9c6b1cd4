//! The generation engine on random-weight GGUF checkpoints of every supported architecture
//! (tiny shapes, real file format, the SmolLM2 vocabulary), and the chat templates of real
//! models against reference renderings made the way transformers renders them.

use std::path::{Path, PathBuf};

use chrono::{Local, NaiveDate, TimeZone};
use quarry::CancelToken;
use quarry::generate::candle_gguf::GgufGenerator;
use quarry::generate::chat_template::ChatTemplate;
use quarry::generate::checkpoint::{self, CheckpointSpec, GgufVocab, Quantization};
use quarry::generate::{ChatMessage, GenerateError, GenerationParams, Generator, StopReason};

use crate::support::{repo_root, test_data};

const TINY: &[&str] = &["tiny-llama", "tiny-qwen2", "tiny-qwen3", "tiny-phi3", "tiny-gemma3"];

fn templates_dir() -> PathBuf {
    repo_root().join("tests/fixtures/templates")
}

fn smollm_tokenizer(data: &Path) -> PathBuf {
    data.join("models/smollm2-135m-instruct-tokenizer/tokenizer.json")
}

/// Writes the tiny checkpoint `shape` into `dir` (no tokenizer.json beside it).
pub(crate) fn tiny_checkpoint(
    data: &Path,
    dir: &Path,
    shape: &str,
    quant: Quantization,
) -> PathBuf {
    let spec = CheckpointSpec {
        shape: checkpoint::preset(shape).unwrap(),
        quantization: quant,
        seed: 11,
        vocab: GgufVocab::from_tokenizer_json(
            &smollm_tokenizer(data),
            "<|im_start|>",
            "<|im_end|>",
        )
        .unwrap(),
        chat_template: Some(
            std::fs::read_to_string(templates_dir().join("smollm2.jinja")).unwrap(),
        ),
        name: format!("random {shape}"),
    };
    let path = dir.join(format!("{shape}.gguf"));
    checkpoint::write(&path, &spec).unwrap();
    path
}

fn chat(question: &str) -> Vec<ChatMessage> {
    vec![
        ChatMessage::system("Answer only from the numbered sources and cite them as [n]."),
        ChatMessage::user(question),
    ]
}

#[test]
fn chat_templates_match_reference_renderings() {
    // bench/render_chat_templates.py made the .expected files with jinja2 as transformers
    // configures it, at this date.
    let now = Local
        .from_local_datetime(
            &NaiveDate::from_ymd_opt(2026, 11, 21).unwrap().and_hms_opt(9, 30, 0).unwrap(),
        )
        .unwrap();
    let conversations = [
        (
            "with_system",
            vec![
                ChatMessage::system("Answer only from the sources. Cite [n]."),
                ChatMessage::user("Wie lang ist die Kündigungsfrist?"),
            ],
        ),
        (
            "multi_turn",
            vec![
                ChatMessage::user("What is the notice period?"),
                ChatMessage::assistant("Three months [1]."),
                ChatMessage::user("And the deposit?"),
            ],
        ),
    ];
    let tokens = [
        ("qwen2.5", "", "<|im_end|>"),
        ("qwen3", "", "<|im_end|>"),
        ("smollm2", "<|im_start|>", "<|im_end|>"),
        ("llama3.2", "<|begin_of_text|>", "<|eot_id|>"),
        ("phi3", "<s>", "<|endoftext|>"),
        ("gemma3", "<bos>", "<eos>"),
    ];
    for (name, bos, eos) in tokens {
        let source =
            std::fs::read_to_string(templates_dir().join(format!("{name}.jinja"))).unwrap();
        let template = ChatTemplate::new(source, bos, eos).unwrap();
        for (conversation, messages) in &conversations {
            let expected = std::fs::read_to_string(
                templates_dir().join(format!("{name}.{conversation}.expected")),
            )
            .unwrap();
            let got = template.render_at(messages, true, now).unwrap();
            assert_eq!(got, expected, "{name} {conversation}");
        }
    }
    // Spot checks of what the formats must look like, independent of the reference files.
    let llama = ChatTemplate::new(
        std::fs::read_to_string(templates_dir().join("llama3.2.jinja")).unwrap(),
        "<|begin_of_text|>",
        "<|eot_id|>",
    )
    .unwrap();
    let got = llama.render_at(&conversations[0].1, true, now).unwrap();
    assert!(got.starts_with("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"));
    assert!(got.contains("Today Date: 21 Nov 2026"), "{got}");
    assert!(got.ends_with("<|start_header_id|>assistant<|end_header_id|>\n\n"));
    // Gemma 3 rejects turns that do not alternate, through raise_exception.
    let gemma = ChatTemplate::new(
        std::fs::read_to_string(templates_dir().join("gemma3.jinja")).unwrap(),
        "<bos>",
        "<eos>",
    )
    .unwrap();
    let err = gemma
        .render(&[ChatMessage::user("a"), ChatMessage::user("b")], true)
        .unwrap_err()
        .to_string();
    assert!(err.contains("alternate"), "{err}");
}

#[test]
fn every_architecture_generates_deterministically_and_streams() {
    let Some(data) = test_data("every_architecture_generates_deterministically_and_streams") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for shape in TINY {
        let path = tiny_checkpoint(&data, dir.path(), shape, Quantization::Q8_0);
        let mut model = GgufGenerator::load(&path).unwrap();
        assert_eq!(model.info().tokenizer_source, "gguf", "{shape}");
        assert_eq!(model.info().quantization, "Q8_0");
        let params = GenerationParams { max_tokens: 12, ..GenerationParams::default() };
        let mut pieces = Vec::new();
        let first = model
            .generate(
                &chat("What is the notice period?"),
                &params,
                &mut |p: &str| pieces.push(p.to_owned()),
                &CancelToken::new(),
            )
            .unwrap();
        assert!(first.generated_tokens > 0, "{shape}: {first:?}");
        assert_eq!(pieces.concat(), first.text, "{shape}: streamed pieces make the text");
        assert!(
            matches!(first.stop_reason, StopReason::MaxTokens | StopReason::EndOfTurn),
            "{shape}: {first:?}"
        );
        // Greedy decoding is reproducible, and a fresh load gives the same answer as a
        // generator whose system prompt is cached.
        let second = model
            .generate(
                &chat("What is the notice period?"),
                &params,
                &mut |_: &str| {},
                &CancelToken::new(),
            )
            .unwrap();
        assert_eq!(second.text, first.text, "{shape}");
        assert!(second.cached_prompt_tokens > 0, "{shape}: system prompt reused: {second:?}");
        let other = model
            .generate(
                &chat("Who pays for repairs?"),
                &params,
                &mut |_: &str| {},
                &CancelToken::new(),
            )
            .unwrap();
        let mut fresh = GgufGenerator::load(&path).unwrap();
        let expected = fresh
            .generate(
                &chat("Who pays for repairs?"),
                &params,
                &mut |_: &str| {},
                &CancelToken::new(),
            )
            .unwrap();
        assert_eq!(other.text, expected.text, "{shape}: cached prefix changes nothing");
        assert_eq!(expected.cached_prompt_tokens, 0);
    }
}

#[test]
fn chunked_prefill_matches_token_by_token() {
    let Some(data) = test_data("chunked_prefill_matches_token_by_token") else { return };
    let dir = tempfile::tempdir().unwrap();
    for shape in ["tiny-llama", "tiny-qwen2", "tiny-qwen3", "tiny-gemma3"] {
        let path = tiny_checkpoint(&data, dir.path(), shape, Quantization::F32);
        let mut model = GgufGenerator::load(&path).unwrap();
        // Longer than one prefill chunk (512), and than the tiny Gemma's sliding window.
        let text = "The tenant gives notice in writing three months ahead. ".repeat(60);
        let ids = model.encode(&text).unwrap();
        assert!(ids.len() > 600, "{}", ids.len());
        let ids = &ids[..600];
        let at_once = model.forward(ids, 0).unwrap();
        let stepwise = model.logits_per_position(ids).unwrap();
        let last = stepwise.last().unwrap();
        let max_diff = at_once.iter().zip(last).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(max_diff < 2e-3, "{shape}: chunked prefill differs by {max_diff}");
    }
    // Quantized weights: prompts run through the byte-product prompt kernel (or, on CPUs
    // without AVX-512 VNNI, f32 GEMM on expanded weights), single tokens through quantized dot
    // products; the two must agree closely. tiny-qwen3-k is stored in Q4_K and Q6_K.
    for shape in ["tiny-qwen2", "tiny-qwen3-k", "tiny-gemma3"] {
        let path = tiny_checkpoint(&data, dir.path(), shape, Quantization::Q4KM);
        let mut model = GgufGenerator::load(&path).unwrap();
        // Past one prefill chunk, so a second chunk reads the first one's cache.
        let ids = model.encode(&"Rent is due on the third working day. ".repeat(70)).unwrap();
        assert!(ids.len() > 600, "{}", ids.len());
        let at_once = model.forward(&ids, 0).unwrap();
        let stepwise = model.logits_per_position(&ids).unwrap();
        let cos = quarry::embed::cosine(&at_once, stepwise.last().unwrap());
        assert!(cos > 0.999, "{shape}: prompt and token-by-token logits differ (cosine {cos})");
    }
}

/// A Hugging Face checkpoint folder (safetensors) of tiny Qwen2 runs as the GGUF file of the
/// same weights does (Qwen's layout needs no q/k permutation, so the two are one network):
/// same logits at every position, its own chat template and stop tokens, and it is listed as a
/// generator. (`bench/compare_logits_hf.py` compares such folders with transformers.)
#[test]
fn a_safetensors_folder_runs_as_its_gguf_twin() {
    let Some(data) = test_data("a_safetensors_folder_runs_as_its_gguf_twin") else { return };
    let dir = tempfile::tempdir().unwrap();
    let gguf = tiny_checkpoint(&data, dir.path(), "tiny-qwen2", Quantization::F32);
    let folder = dir.path().join("tiny-qwen2-hf");
    let spec = CheckpointSpec {
        shape: checkpoint::preset("tiny-qwen2").unwrap(),
        quantization: Quantization::F32,
        seed: 11,
        vocab: GgufVocab::from_tokenizer_json(
            &smollm_tokenizer(&data),
            "<|im_start|>",
            "<|im_end|>",
        )
        .unwrap(),
        chat_template: Some(
            std::fs::read_to_string(templates_dir().join("smollm2.jinja")).unwrap(),
        ),
        name: "random tiny-qwen2".into(),
    };
    checkpoint::write_safetensors(&folder, &spec, &smollm_tokenizer(&data), false).unwrap();

    let mut from_gguf = GgufGenerator::load(&gguf).unwrap();
    let mut from_folder = GgufGenerator::load(&folder).unwrap();
    assert_eq!(from_folder.info().architecture, "qwen2");
    assert_eq!(from_folder.info().quantization, "F32 (run as F32)");
    let ids = from_gguf.encode("The deposit is returned within thirty days.").unwrap();
    let want = from_gguf.logits_per_position(&ids).unwrap();
    let got = from_folder.logits_per_position(&ids).unwrap();
    for (pos, (a, b)) in want.iter().zip(&got).enumerate() {
        let diff = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
        assert!(diff < 1e-4, "position {pos}: logits differ by {diff}");
    }
    assert!(
        from_folder
            .stop_ids()
            .contains(&from_folder.tokenizer().token_to_id("<|im_end|>").unwrap())
    );
    let params = GenerationParams { max_tokens: 8, ..GenerationParams::default() };
    let a = from_gguf.generate(&chat("Hi"), &params, &mut |_: &str| {}, &CancelToken::new());
    let b = from_folder.generate(&chat("Hi"), &params, &mut |_: &str| {}, &CancelToken::new());
    assert_eq!(a.unwrap().text, b.unwrap().text, "greedy replies differ");

    let listed = quarry::models::discover(dir.path()).installed().to_vec();
    let entry = listed.iter().find(|m| m.path == folder).expect("the folder is listed");
    assert_eq!((entry.role.as_str(), entry.family.as_str()), ("generate", "qwen2"));
    assert!(entry.problem.is_none(), "{:?}", entry.problem);

    // A folder of an architecture Quarry does not run says so, naming it.
    let config = folder.join("config.json");
    let text = std::fs::read_to_string(&config).unwrap().replace("\"qwen2\"", "\"gpt_neox\"");
    std::fs::write(&config, text).unwrap();
    match GgufGenerator::load(&folder) {
        Err(GenerateError::UnsupportedArchitecture { architecture, .. }) => {
            assert_eq!(architecture, "gpt_neox")
        }
        Err(other) => panic!("expected an unsupported architecture, got {other}"),
        Ok(_) => panic!("a gpt_neox folder loaded"),
    }
}

#[test]
fn stop_strings_cancel_and_context_limits() {
    let Some(data) = test_data("stop_strings_cancel_and_context_limits") else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = tiny_checkpoint(&data, dir.path(), "tiny-llama", Quantization::Q8_0);
    let mut model = GgufGenerator::load(&path).unwrap();
    let params = GenerationParams { max_tokens: 24, ..GenerationParams::default() };
    let full =
        model.generate(&chat("Hi"), &params, &mut |_: &str| {}, &CancelToken::new()).unwrap();
    assert_eq!(full.stop_reason, StopReason::MaxTokens);
    assert_eq!(full.generated_tokens, 24);

    // A stop string taken from the middle of the greedy output cuts it there.
    let words: Vec<&str> = full.text.split_inclusive(' ').collect();
    if words.len() >= 3 {
        let stop = words[1].trim().to_owned();
        if !stop.is_empty() {
            let with_stop = GenerationParams { stop: vec![stop.clone()], ..params.clone() };
            let cut = model
                .generate(&chat("Hi"), &with_stop, &mut |_: &str| {}, &CancelToken::new())
                .unwrap();
            assert_eq!(cut.stop_reason, StopReason::StopString, "{stop:?} in {:?}", full.text);
            assert!(!cut.text.contains(&stop));
            assert!(full.text.starts_with(&cut.text));
        }
    }

    let none = GenerationParams { max_tokens: 0, ..params.clone() };
    let empty = model.generate(&chat("Hi"), &none, &mut |_: &str| {}, &CancelToken::new()).unwrap();
    assert_eq!((empty.generated_tokens, empty.text.as_str()), (0, ""));

    // Cancelling from the sink stops before the next token.
    let cancel = CancelToken::new();
    let on_first = cancel.clone();
    let report = model
        .generate(&chat("Hi"), &params, &mut move |_: &str| on_first.cancel(), &cancel)
        .unwrap();
    assert_eq!(report.stop_reason, StopReason::Cancelled);
    assert!(report.generated_tokens <= 2, "{report:?}");

    // A prompt longer than the context is refused with the numbers.
    let long = "word ".repeat(5000);
    let err =
        model.generate(&chat(&long), &params, &mut |_: &str| {}, &CancelToken::new()).unwrap_err();
    assert!(matches!(err, GenerateError::ContextTooLong { context_length: 4096, .. }), "{err}");
    assert!(err.to_string().contains("4096"), "{err}");
}

#[test]
fn gguf_vocabulary_rebuilds_the_tokenizer() {
    let Some(data) = test_data("gguf_vocabulary_rebuilds_the_tokenizer") else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = tiny_checkpoint(&data, dir.path(), "tiny-llama", Quantization::Q8_0);
    let rebuilt = GgufGenerator::load(&path).unwrap();
    let real = tokenizers::Tokenizer::from_file(smollm_tokenizer(&data)).unwrap();
    let samples = [
        "The notice period is three months.",
        "Die Kündigungsfrist beträgt 3 Monate, gezählt ab 01.02.2025!",
        "<|im_start|>user\nWhat's 12345 + 678?<|im_end|>\n",
        "  indented\tcode();\n\n\nend  ",
        "東京 — naïve café 🚀",
    ];
    for text in samples {
        let expected = real.encode(text, false).unwrap().get_ids().to_vec();
        assert_eq!(rebuilt.encode(text).unwrap(), expected, "{text:?}");
        assert_eq!(rebuilt.tokenizer().decode(&expected, false).unwrap(), text);
    }
}

#[test]
fn unsupported_and_broken_files_name_the_cause() {
    let Some(data) = test_data("unsupported_and_broken_files_name_the_cause") else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut shape = checkpoint::preset("tiny-llama").unwrap();
    shape.architecture = "mamba";
    let spec = CheckpointSpec {
        shape,
        quantization: Quantization::F32,
        seed: 1,
        vocab: GgufVocab::from_tokenizer_json(
            &smollm_tokenizer(&data),
            "<|im_start|>",
            "<|im_end|>",
        )
        .unwrap(),
        chat_template: None,
        name: "mamba".into(),
    };
    let path = dir.path().join("mamba.gguf");
    checkpoint::write(&path, &spec).unwrap();
    let err = GgufGenerator::load(&path).unwrap_err().to_string();
    assert!(err.contains("\"mamba\" is not supported") && err.contains("mamba.gguf"), "{err}");
    assert!(err.contains("qwen2"), "lists what is supported: {err}");

    let garbage = dir.path().join("garbage.gguf");
    std::fs::write(&garbage, b"GGUF but not really").unwrap();
    let err = GgufGenerator::load(&garbage).unwrap_err().to_string();
    assert!(err.contains("garbage.gguf") && err.contains("not a readable GGUF file"), "{err}");

    // A truncated file fails cleanly too.
    let good = tiny_checkpoint(&data, dir.path(), "tiny-qwen2", Quantization::Q8_0);
    let bytes = std::fs::read(&good).unwrap();
    let cut = dir.path().join("cut.gguf");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let err = GgufGenerator::load(&cut).unwrap_err().to_string();
    assert!(err.contains("cut.gguf"), "{err}");
}

#[test]
fn cli_imports_lists_and_generates() {
    let Some(data) = test_data("cli_imports_lists_and_generates") else { return };
    let usb = tempfile::tempdir().unwrap();
    let folder = usb.path().join("tiny-qwen3-instruct");
    std::fs::create_dir_all(&folder).unwrap();
    tiny_checkpoint(&data, &folder, "tiny-qwen3", Quantization::Q8_0);
    std::fs::copy(smollm_tokenizer(&data), folder.join("tokenizer.json")).unwrap();
    let home = tempfile::tempdir().unwrap();
    let models = home.path().join("models");
    let quarry = |args: &[&str]| {
        std::process::Command::new(crate::support::quarry_bin())
            .arg("--data-dir")
            .arg(home.path())
            .arg("--models-dir")
            .arg(&models)
            .args(args)
            .output()
            .unwrap()
    };

    let out = quarry(&["models", "import", folder.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(models.join("tiny-qwen3-instruct/tiny-qwen3.gguf").is_file());

    let out = quarry(&["models", "list", "--json"]);
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let entry = listed["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["role"] == "generate")
        .unwrap()
        .clone();
    assert_eq!(entry["family"], "qwen3");
    assert_eq!(entry["quantization"], "Q8_0");
    assert!(entry["problem"].is_null(), "{entry}");

    let out =
        quarry(&["generate", "--model", "tiny-qwen3", "Hello", "--max-tokens", "5", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["model"]["architecture"], "qwen3");
    assert_eq!(report["model"]["tokenizer_source"], "tokenizer.json");
    let generated = report["report"]["generated_tokens"].as_u64().unwrap();
    assert!(generated <= 5 && report["report"]["prompt_tokens"].as_u64().unwrap() > 5);

    // A broken model is refused, says why, and leaves nothing behind.
    let broken = usb.path().join("broken");
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::write(broken.join("model.gguf"), b"GGUF\x03\x00\x00\x00truncated").unwrap();
    let out = quarry(&["models", "import", broken.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("model.gguf") && stderr.contains("not imported"), "{stderr}");
    assert!(!models.join("broken").exists());
    assert!(!models.join(".import-broken").exists());

    // The benchmark and the logit dump used by bench/compare_*.py.
    let out = quarry(&[
        "bench",
        "generate",
        "--model",
        "tiny-qwen3",
        "--threads",
        "1",
        "--prompt-tokens",
        "40",
        "--gen-tokens",
        "4",
        "--rounds",
        "1",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let bench: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let run = &bench["generate"][0];
    assert_eq!((run["threads"].as_u64(), run["prompt_tokens"].as_u64()), (Some(1), Some(40)));
    for key in ["prompt_tokens_per_s", "decode_tokens_per_s", "ttft_ms", "peak_rss_mb"] {
        assert!(run[key].as_f64().unwrap() > 0.0, "{key}: {run}");
    }
    let tokens = home.path().join("tokens.json");
    std::fs::write(&tokens, "[1, 504, 2017, 30, 2]").unwrap();
    let logits = home.path().join("logits.f32");
    let model_file = models.join("tiny-qwen3-instruct/tiny-qwen3.gguf");
    let out = quarry(&[
        "bench",
        "logits",
        "--model",
        model_file.to_str().unwrap(),
        "--tokens",
        tokens.to_str().unwrap(),
        "--out",
        logits.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let vocab = checkpoint::preset("tiny-qwen3").unwrap().vocab as u64;
    assert_eq!(std::fs::metadata(&logits).unwrap().len(), 5 * vocab * 4);

    // `bench ask`: stage times over SQuAD questions, and the prompts for a reference engine.
    let prompts = home.path().join("prompts.jsonl");
    let squad = data.join("squad2/squad2_dev_shared_questions.jsonl");
    let out = quarry(&[
        "bench",
        "ask",
        "--model",
        "tiny-qwen3",
        "--squad",
        squad.to_str().unwrap(),
        "--limit",
        "6",
        "--prompts",
        prompts.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let bench: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ask = &bench["ask"];
    assert_eq!(ask["questions"].as_u64(), Some(6), "{ask}");
    let generated = ask["generated"].as_u64().unwrap();
    assert!(generated >= 1, "{ask}");
    for stage in ["retrieve_ms", "first_token_ms", "prompt_ms", "prompt_tokens", "answer_tokens"] {
        assert!(ask["stages"][stage]["p50"].as_f64().unwrap() > 0.0, "{stage}: {ask}");
    }
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&prompts)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 6);
    let replayable: Vec<_> = lines.iter().filter(|l| l["messages"].is_array()).collect();
    assert_eq!(replayable.len() as u64, generated);
    for line in replayable {
        let user = line["messages"][1]["content"].as_str().unwrap();
        assert!(user.contains(line["question"].as_str().unwrap()), "{user}");
        assert!(line["timings"]["prompt_tokens"].as_u64().unwrap() > 0);
    }

    let out = quarry(&["generate", "--model", "no-such-model", "Hi"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no generator model \"no-such-model\""));
}

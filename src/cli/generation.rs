//! The generator-facing commands: `quarry generate` (stream a reply), `quarry models
//! list|import`, and the generation benchmarks and checkpoint tools under `quarry bench`.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use quarry::CancelToken;
use quarry::generate::candle_gguf::GgufGenerator;
use quarry::generate::checkpoint;
use quarry::generate::{ChatMessage, GenerationParams, Generator};
use quarry::models::ModelFolder;

/// Resolves `--model`: a file, or the id or file name of an installed generator.
pub(crate) fn resolve_model(models: &ModelFolder, model: &str) -> anyhow::Result<PathBuf> {
    models.find_generator(model).ok_or_else(|| {
        quarry::Error::user(format!(
            "no generator model \"{model}\": not a file, and not installed in {} (see `quarry \
             models list`)",
            models.dir().display()
        ))
        .into()
    })
}

/// Options of `quarry generate`.
#[derive(Debug)]
pub(crate) struct GenerateArgs {
    pub(crate) model: PathBuf,
    pub(crate) prompt: String,
    pub(crate) system: Option<String>,
    pub(crate) params: GenerationParams,
    pub(crate) json: bool,
}

/// `quarry generate`: streams the reply to stdout, or prints a JSON report.
pub(crate) fn generate(args: GenerateArgs) -> anyhow::Result<()> {
    let mut generator = GgufGenerator::load(&args.model).map_err(quarry::Error::from)?;
    let mut messages = Vec::new();
    if let Some(system) = args.system {
        messages.push(ChatMessage::system(system));
    }
    messages.push(ChatMessage::user(args.prompt));
    let cancel = CancelToken::new();
    let on_interrupt = cancel.clone();
    // Ctrl-C stops between two tokens; a second one aborts.
    std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
            return;
        };
        rt.block_on(async {
            if tokio::signal::ctrl_c().await.is_ok() {
                on_interrupt.cancel();
                if tokio::signal::ctrl_c().await.is_ok() {
                    std::process::exit(130);
                }
            }
        });
    });
    let stream = !args.json;
    let mut stdout = std::io::stdout();
    let mut sink = |piece: &str| {
        if stream {
            let _ = stdout.write_all(piece.as_bytes());
            let _ = stdout.flush();
        }
    };
    let report = if generator.has_chat_template() {
        generator.generate(&messages, &args.params, &mut sink, &cancel)
    } else {
        // A base model: no chat to render, it continues the text (the system text first).
        if !args.json {
            eprintln!("(no chat template: a base model; continuing the text as written)");
        }
        let text = messages.iter().map(|m| m.content.as_str()).collect::<Vec<_>>().join("\n\n");
        generator.complete(&text, &args.params, &mut sink, &cancel)
    }
    .map_err(quarry::Error::from)?;
    if args.json {
        let out = serde_json::json!({ "model": generator.info(), "report": report });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!();
        eprintln!(
            "[{} prompt tokens ({} cached), {} generated, {:?}; first token {:.0} ms, {:.1} tokens/s]",
            report.prompt_tokens,
            report.cached_prompt_tokens,
            report.generated_tokens,
            report.stop_reason,
            report.ttft_ms,
            report.decode_tokens_per_s
        );
    }
    Ok(())
}

/// `quarry models list`.
pub(crate) fn list_models(folder: &ModelFolder, json: bool) -> anyhow::Result<()> {
    let models_dir = folder.dir();
    let models = folder.installed();
    if json {
        let out = serde_json::json!({ "models_dir": models_dir, "models": models });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    if models.is_empty() {
        println!("no models in {} (add one with `quarry models import DIR`)", models_dir.display());
        return Ok(());
    }
    for m in models {
        let params = m
            .parameters
            .map(|p| format!("{:.0}M params", p as f64 / 1e6))
            .unwrap_or_else(|| "?".into());
        println!(
            "{:<9} {:<50} {:<8} {:<7} {:>12} {:>8.1} MB  {}{}",
            m.role,
            m.id,
            m.family,
            m.quantization,
            params,
            m.bytes as f64 / 1e6,
            m.path.display(),
            m.problem.as_ref().map(|p| format!("  [unusable: {p}]")).unwrap_or_default()
        );
    }
    Ok(())
}

/// `quarry models import DIR`: copies a model folder (or one `.gguf` file) into the models
/// folder and checks it loads; a model that does not load is removed again.
pub(crate) fn import_model(models_dir: &Path, source: &Path, json: bool) -> anyhow::Result<()> {
    let meta = std::fs::metadata(source)
        .map_err(|e| quarry::Error::user(format!("{}: {e}", source.display())))?;
    let name = source
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| quarry::Error::user(format!("{}: no folder name", source.display())))?;
    let target = if meta.is_dir() {
        models_dir.join(&name)
    } else {
        models_dir.join(Path::new(&name).file_stem().unwrap_or_default()).join(&name)
    };
    if target.exists() {
        return Err(quarry::Error::user(format!(
            "{} is already installed at {}",
            name,
            target.display()
        ))
        .into());
    }
    let staging = models_dir.join(format!(".import-{name}"));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).with_context(|| staging.display().to_string())?;
    let copied = if meta.is_dir() {
        copy_tree(source, &staging)
    } else {
        std::fs::copy(source, staging.join(&name))
            .map(|_| ())
            .with_context(|| source.display().to_string())
    };
    let checked = copied.and_then(|()| check_loads(&staging));
    let loaded = match checked {
        Ok(loaded) => loaded,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e.context(format!("{} was not imported", source.display())));
        }
    };
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::rename(&staging, &target).with_context(|| target.display().to_string())?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({ "imported": target, "models": loaded })
            )?
        );
    } else {
        println!("imported {} to {} ({})", name, target.display(), loaded.join(", "));
    }
    Ok(())
}

fn copy_tree(from: &Path, to: &Path) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(from).with_context(|| from.display().to_string())? {
        let entry = entry?;
        let dest = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            std::fs::create_dir_all(&dest)?;
            copy_tree(&entry.path(), &dest)?;
        } else {
            std::fs::copy(entry.path(), &dest)
                .with_context(|| entry.path().display().to_string())?;
        }
    }
    Ok(())
}

/// Loads every model in `dir`; returns what loaded, fails on the first that does not or
/// when there is none.
fn check_loads(dir: &Path) -> anyhow::Result<Vec<String>> {
    let found = quarry::models::discover(dir).installed().to_vec();
    if found.is_empty() {
        return Err(quarry::Error::user(
            "no model found: expected a .gguf file, or config.json with model.safetensors",
        )
        .into());
    }
    let mut loaded = Vec::new();
    for m in found {
        if m.role == "generate" {
            let generator = GgufGenerator::load(&m.path).map_err(quarry::Error::from)?;
            let info = generator.info();
            loaded.push(format!("{} {} {}", info.name, info.architecture, info.quantization));
        } else {
            let model = quarry::embed::candle_bert::CandleEmbedder::load(
                &m.path,
                &m.id,
                quarry::embed::candle_bert::Prefixes::default(),
            )
            .map_err(quarry::Error::from)?;
            use quarry::embed::Embedder;
            loaded.push(format!("{} ({} dimensions)", m.id, model.dimensions()));
        }
    }
    Ok(loaded)
}

/// `quarry bench generate`: each thread count in a fresh process.
pub(crate) fn bench_generate(
    model: &Path,
    threads: &[usize],
    prompt_tokens: usize,
    gen_tokens: usize,
    rounds: usize,
    in_process: bool,
) -> anyhow::Result<()> {
    if in_process {
        let t = threads.first().copied().unwrap_or(1);
        let res = quarry::bench::generate(model, t, prompt_tokens, gen_tokens, rounds)?;
        println!("{}", serde_json::to_string(&res)?);
        return Ok(());
    }
    let runs = per_thread_count(threads, |t| {
        let mut cmd = std::process::Command::new(std::env::current_exe()?);
        cmd.args(["bench", "generate", "--in-process", "--model"])
            .arg(model)
            .args(["--threads", &t.to_string(), "--prompt-tokens", &prompt_tokens.to_string()])
            .args(["--gen-tokens", &gen_tokens.to_string(), "--rounds", &rounds.to_string()]);
        Ok(cmd)
    })?;
    println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "generate": runs }))?);
    Ok(())
}

/// Runs the benchmark child `command(threads)` once per thread count and collects the JSON
/// each prints. candle sizes its thread pool once per process from `RAYON_NUM_THREADS`, so
/// every thread count needs a fresh process.
pub(crate) fn per_thread_count(
    threads: &[usize],
    command: impl Fn(usize) -> anyhow::Result<std::process::Command>,
) -> anyhow::Result<Vec<serde_json::Value>> {
    let mut runs = Vec::new();
    for &t in threads {
        let out = command(t)?.env("RAYON_NUM_THREADS", t.to_string()).output()?;
        anyhow::ensure!(
            out.status.success(),
            "bench child failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        runs.push(serde_json::from_slice::<serde_json::Value>(&out.stdout)?);
    }
    Ok(runs)
}

/// `quarry bench logits`: teacher-forced logits at every position of the token ids in
/// `tokens` (a JSON array), written as little-endian f32 rows to `out`; with `after_prompt`
/// the ids are read as one prompt and only the logits after the last are written.
pub(crate) fn bench_logits(
    model: &Path,
    tokens: &Path,
    out: &Path,
    after_prompt: bool,
) -> anyhow::Result<()> {
    let ids: Vec<u32> = serde_json::from_slice(
        &std::fs::read(tokens).with_context(|| tokens.display().to_string())?,
    )
    .with_context(|| format!("{}: expected a JSON array of token ids", tokens.display()))?;
    let mut generator = GgufGenerator::load(model).map_err(quarry::Error::from)?;
    let rows = match after_prompt {
        true => vec![generator.forward(&ids, 0).map_err(quarry::Error::from)?],
        false => generator.logits_per_position(&ids).map_err(quarry::Error::from)?,
    };
    let mut bytes = Vec::with_capacity(rows.len() * rows.first().map_or(0, Vec::len) * 4);
    for row in &rows {
        for v in row {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
    }
    std::fs::write(out, bytes).with_context(|| out.display().to_string())?;
    println!(
        "{}",
        serde_json::json!({ "positions": rows.len(), "vocab": rows.first().map_or(0, Vec::len) })
    );
    Ok(())
}

/// Options of `quarry bench checkpoint`.
#[derive(Debug)]
pub(crate) struct CheckpointArgs {
    pub(crate) shape: String,
    pub(crate) quant: String,
    pub(crate) format: String,
    pub(crate) tokenizer: PathBuf,
    pub(crate) bos: String,
    pub(crate) eos: String,
    pub(crate) chat_template: Option<PathBuf>,
    pub(crate) seed: u64,
    pub(crate) out: PathBuf,
}

/// `quarry bench checkpoint`: writes a random-weight GGUF file, or Hugging Face folder, of a
/// real model's shape.
pub(crate) fn write_checkpoint(args: CheckpointArgs) -> anyhow::Result<()> {
    let shape = checkpoint::preset(&args.shape).ok_or_else(|| {
        quarry::Error::user(format!(
            "unknown shape {}; known: {}",
            args.shape,
            checkpoint::PRESETS.join(", ")
        ))
    })?;
    let safetensors = match args.format.as_str() {
        "gguf" => false,
        "safetensors" => true,
        other => {
            return Err(quarry::Error::user(format!(
                "unknown format {other}; known: gguf, safetensors"
            ))
            .into());
        }
    };
    let bf16 = safetensors && args.quant.eq_ignore_ascii_case("bf16");
    let quantization = match (safetensors, args.quant.to_lowercase().as_str()) {
        (true, "f32" | "bf16") => checkpoint::Quantization::F32,
        (true, other) => {
            return Err(quarry::Error::user(format!(
                "safetensors checkpoints are f32 or bf16, not {other}"
            ))
            .into());
        }
        (false, _) => checkpoint::Quantization::parse(&args.quant)
            .ok_or_else(|| quarry::Error::user(format!("unknown quantization {}", args.quant)))?,
    };
    let vocab = checkpoint::GgufVocab::from_tokenizer_json(&args.tokenizer, &args.bos, &args.eos)
        .map_err(quarry::Error::from)?;
    let chat_template = match &args.chat_template {
        Some(path) => {
            Some(std::fs::read_to_string(path).with_context(|| path.display().to_string())?)
        }
        None => None,
    };
    let spec = checkpoint::CheckpointSpec {
        name: format!("random-{}-{}", args.shape, args.quant.to_lowercase()),
        shape,
        quantization,
        seed: args.seed,
        vocab,
        chat_template,
    };
    let written = match safetensors {
        true => checkpoint::write_safetensors(&args.out, &spec, &args.tokenizer, bf16),
        false => checkpoint::write(&args.out, &spec),
    }
    .map_err(quarry::Error::from)?;
    println!(
        "{}",
        serde_json::json!({ "path": args.out, "shape": spec.shape, "parameters": written.parameters, "bytes": written.bytes })
    );
    Ok(())
}

//! Benchmarks behind `quarry bench`: embedding throughput on 256-token chunks, and hybrid
//! query latency over synthetic libraries of 10k and 100k chunks (query embedding excluded).
//! Figures are for side-by-side comparison on one machine, never for assertions in tests.

use std::time::Instant;

use serde::Serialize;

use crate::api::{DocumentState, FileKind, SearchMode};
use crate::embed::Embedder;
use crate::error::{Error, Result};
use crate::ids::{ChunkId, DocumentId};
use crate::index::meta::EmbedderMeta;
use crate::index::schema::{ChunkRow, DocumentRow};
use crate::index::{PreparedDocument, Store};

/// Text the embedding benchmark cuts its chunks from (English prose with some German, like
/// the documents Quarry is for).
const PROSE: &str = "The tenant shall give notice of termination in writing no later than three \
months before the end of the lease. Rent is due on the third working day of each month and is \
paid into the account named in section four. Repairs below two hundred euros are the tenant's \
responsibility; larger repairs must be reported to the landlord without delay. Die Kaution \
beträgt drei Monatsmieten und wird auf einem gesonderten Konto angelegt. The landlord may \
inspect the flat once a year after announcing the visit at least two weeks in advance. Pets \
other than small animals require written consent, which may not be refused without good reason. \
Subletting part of the flat is allowed when the landlord agrees; the tenant remains liable for \
the whole rent. At the end of the lease the flat is returned cleaned, with all keys, and any \
damage beyond normal wear is repaired at the tenant's cost.";

/// Embedding throughput.
#[derive(Debug, Clone, Serialize)]
pub struct EmbedBench {
    /// Model id.
    pub model: String,
    /// Threads the math library used.
    pub threads: usize,
    /// Chunks embedded per measured round.
    pub chunks: usize,
    /// Tokens per chunk (special tokens included).
    pub tokens_per_chunk: usize,
    /// Chunks per second (best of the rounds).
    pub chunks_per_s: f64,
    /// Tokens per second (best of the rounds).
    pub tokens_per_s: f64,
    /// Seconds of each round.
    pub rounds_s: Vec<f64>,
}

/// Builds `n` distinct chunks of whole words, each as close to `tokens` word pieces (special
/// tokens included) as whole words allow.
fn bench_chunks(
    embedder: &crate::embed::candle_bert::CandleEmbedder,
    n: usize,
    tokens: usize,
) -> Result<Vec<String>> {
    let words: Vec<&str> = PROSE.split_whitespace().collect();
    let mut res = Vec::with_capacity(n);
    for idx in 0..n {
        // Rotate the prose so no two chunks are the same text.
        let rotated: Vec<&str> = words
            .iter()
            .cycle()
            .skip(idx * 7 % words.len())
            .take(words.len() * 3)
            .copied()
            .collect();
        // Three rotations of the prose are well over the budget: keep the most words that fit
        // in `tokens`, so every model sees chunks of the same length whatever its own limit.
        // `token_ids` truncates at the model's limit, so a count at that limit may hide more.
        let limit = embedder.max_input_tokens();
        let fits = |words: usize| -> Result<bool> {
            let n = embedder.token_ids(&rotated[..words].join(" "))?.len();
            Ok(n <= tokens && n < limit)
        };
        let (mut lo, mut hi) = (0, rotated.len());
        while lo < hi {
            let mid = (lo + hi).div_ceil(2);
            if fits(mid)? {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        let text = rotated[..lo].join(" ");
        let n_tokens = embedder.token_ids(&text)?.len();
        if n_tokens + 4 < tokens {
            return Err(Error::invariant(format!("bench chunk has only {n_tokens} tokens")));
        }
        res.push(text);
    }
    Ok(res)
}

/// Measures `embed_documents` on `n_chunks` chunks of 256 tokens, `rounds` times.
pub fn embed(
    embedder: &crate::embed::candle_bert::CandleEmbedder,
    threads: usize,
    n_chunks: usize,
    rounds: usize,
) -> Result<EmbedBench> {
    let tokens = 256.min(embedder.max_input_tokens());
    let chunks = bench_chunks(embedder, n_chunks, tokens)?;
    let texts: Vec<&str> = chunks.iter().map(String::as_str).collect();
    let real_tokens: usize =
        texts.iter().map(|t| embedder.token_ids(t).map_or(0, |ids| ids.len())).sum();
    // Warm-up: first calls allocate.
    embedder.embed_documents(&texts[..texts.len().min(8)])?;
    let mut rounds_s = Vec::new();
    for _ in 0..rounds.max(1) {
        let started = Instant::now();
        embedder.embed_documents(&texts)?;
        rounds_s.push(started.elapsed().as_secs_f64());
    }
    let best = rounds_s.iter().copied().fold(f64::INFINITY, f64::min);
    Ok(EmbedBench {
        model: embedder.model_id().to_owned(),
        threads,
        chunks: n_chunks,
        tokens_per_chunk: real_tokens / n_chunks.max(1),
        chunks_per_s: n_chunks as f64 / best,
        tokens_per_s: real_tokens as f64 / best,
        rounds_s,
    })
}

/// A grounded answer's time, stage by stage, over a run of questions (`quarry bench ask`).
#[derive(Debug, Clone, Serialize)]
pub struct AskBench {
    /// The generator.
    pub model: Option<String>,
    /// Questions asked.
    pub questions: usize,
    /// Questions the model answered (the rest were refused by the gate before generation).
    pub generated: usize,
    /// Most passages given to the model.
    pub max_passages: usize,
    /// Stage times (p50/p95): retrieval and evidence over every question, the rest over the
    /// generated answers.
    pub stages: crate::eval::squad::StageTimes,
    /// Prompt tokens read per second, at the p50 prompt.
    pub prompt_tokens_per_s_p50: f64,
    /// Answer tokens written per second after the first (p50 decode time, p50 answer).
    pub decode_tokens_per_s_p50: f64,
    /// The answers' quality on the same run, so a faster setting is not bought with worse
    /// answers unseen.
    pub metrics: crate::eval::squad::QaMetrics,
}

impl AskBench {
    /// The figures of an evaluation run.
    pub fn of(run: &crate::eval::squad::QaRun) -> Self {
        let s = &run.stages;
        let per_s = |n: f64, ms: f64| if ms > 0.0 { n * 1000.0 / ms } else { 0.0 };
        Self {
            model: run.model.clone(),
            questions: run.counts.questions,
            generated: run.counts.generated,
            max_passages: run.max_passages,
            stages: s.clone(),
            prompt_tokens_per_s_p50: per_s(
                s.prompt_tokens.p50 - s.cached_prompt_tokens.p50,
                s.prompt_ms.p50,
            ),
            decode_tokens_per_s_p50: per_s((s.answer_tokens.p50 - 1.0).max(0.0), s.decode_ms.p50),
            metrics: run.metrics.clone(),
        }
    }
}

/// Query latency at one library size.
#[derive(Debug, Clone, Serialize)]
pub struct SearchBench {
    /// Where the library was: its folder, or its `s3://` address.
    pub library: String,
    /// Chunks in the library.
    pub chunks: usize,
    /// Search mode.
    pub mode: SearchMode,
    /// Queries timed.
    pub queries: usize,
    /// Median latency, milliseconds.
    pub p50_ms: f64,
    /// 95th percentile latency, milliseconds.
    pub p95_ms: f64,
    /// Median latency of the vector search alone, milliseconds.
    pub vector_p50_ms: f64,
    /// Median latency of the BM25 search alone, milliseconds.
    pub text_p50_ms: f64,
    /// Seconds it took to build the synthetic library.
    pub build_s: f64,
}

/// A small deterministic generator (xorshift), so synthetic libraries are the same every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn unit(&mut self) -> f32 {
        (self.next() % 2_000_001) as f32 / 1_000_000.0 - 1.0
    }
}

fn random_unit_vector(rng: &mut Rng, dims: usize) -> Vec<f32> {
    let v: Vec<f32> = (0..dims).map(|_| rng.unit()).collect();
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-9);
    v.into_iter().map(|x| x / norm).collect()
}

/// Builds a library of `n_chunks` synthetic chunks (random words, random unit vectors) in
/// `dir` (or on object storage at `remote`, with `dir` as this machine's folder for it), then
/// times `n_queries` hybrid queries with precomputed query vectors.
pub async fn search(
    dir: &std::path::Path,
    remote: Option<&crate::config::RemoteLibrary>,
    n_chunks: usize,
    dims: usize,
    n_queries: usize,
) -> Result<SearchBench> {
    let n_queries = n_queries.max(1);
    let words: Vec<&str> = PROSE.split_whitespace().collect();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ n_chunks as u64);
    let meta = EmbedderMeta { id: "bench/random".into(), dimensions: dims };
    let store = Store::open_for_write(dir, remote, Some(meta)).await?;
    let started = Instant::now();
    const CHUNKS_PER_DOC: usize = 10;
    let mut batch = Vec::new();
    for doc_idx in 0..n_chunks.div_ceil(CHUNKS_PER_DOC) {
        let path = format!("/bench/doc{doc_idx:06}.txt");
        let doc_id = DocumentId::for_path(std::path::Path::new(&path));
        let sha = format!("{doc_idx:064x}");
        let chunks: Vec<ChunkRow> = (0..CHUNKS_PER_DOC)
            .map(|ordinal| {
                let text: Vec<&str> =
                    (0..60).map(|_| words[(rng.next() % words.len() as u64) as usize]).collect();
                ChunkRow {
                    chunk_id: ChunkId::new(&doc_id, &sha, ordinal as u32).0,
                    doc_id: doc_id.0.clone(),
                    doc_path: path.clone(),
                    ordinal: ordinal as u32,
                    text: format!("{} w{doc_idx}x{ordinal}", text.join(" ")),
                    page_start: 1,
                    page_end: 1,
                    char_start: 0,
                    char_end: 0,
                    heading: String::new(),
                    language: "eng".into(),
                    vector: Some(random_unit_vector(&mut rng, dims)),
                }
            })
            .collect();
        let row = DocumentRow {
            doc_id: doc_id.0.clone(),
            path,
            kind: FileKind::Text,
            size: 0,
            mtime_ns: 0,
            sha256: sha,
            state: DocumentState::Indexed,
            error: None,
            warnings: Vec::new(),
            pages: 1,
            chunks: CHUNKS_PER_DOC as u32,
            extractor: "bench".into(),
            title: None,
            indexed_at: None,
        };
        batch.push(PreparedDocument { row, chunks, ocr_words: Vec::new() });
        if batch.len() * CHUNKS_PER_DOC >= 10_000 {
            store.commit(&batch).await?;
            batch.clear();
        }
    }
    store.commit(&batch).await?;
    store.optimize().await?;
    let build_s = started.elapsed().as_secs_f64();
    let mut latencies = Vec::with_capacity(n_queries);
    let mut vector_latencies = Vec::with_capacity(n_queries);
    let mut text_latencies = Vec::with_capacity(n_queries);
    for q in 0..n_queries + 5 {
        let query: Vec<&str> =
            (0..4).map(|_| words[(rng.next() % words.len() as u64) as usize]).collect();
        let query = query.join(" ");
        let vector = random_unit_vector(&mut rng, dims);
        let ms = |since: Instant| since.elapsed().as_secs_f64() * 1000.0;
        let started = Instant::now();
        let vector_hits = store.search_vector(&vector, 100, None).await?;
        let vector_ms = ms(started);
        let text_started = Instant::now();
        let text_hits = store.search_text(&query, 100, None).await?;
        let text_ms = ms(text_started);
        let language = crate::language::TextLanguage::detect_confident(&query);
        let fused = crate::retrieve::hybrid(vector_hits, text_hits, 10, language);
        let elapsed = ms(started);
        if fused.is_empty() {
            return Err(Error::invariant("hybrid search over the bench library found nothing"));
        }
        // The first queries warm caches and are not counted.
        if q >= 5 {
            latencies.push(elapsed);
            vector_latencies.push(vector_ms);
            text_latencies.push(text_ms);
        }
    }
    let pct = |values: &mut Vec<f64>, p: f64| {
        values.sort_by(f64::total_cmp);
        values[((values.len() as f64 - 1.0) * p).round() as usize]
    };
    Ok(SearchBench {
        library: store.location(),
        chunks: n_chunks,
        mode: SearchMode::Hybrid,
        queries: n_queries,
        p50_ms: pct(&mut latencies, 0.5),
        p95_ms: pct(&mut latencies, 0.95),
        vector_p50_ms: pct(&mut vector_latencies, 0.5),
        text_p50_ms: pct(&mut text_latencies, 0.5),
        build_s,
    })
}

/// Generation speed of one GGUF model at one thread count.
#[derive(Debug, Clone, Serialize)]
pub struct GenerateBench {
    /// Model name.
    pub model: String,
    /// GGUF architecture.
    pub architecture: String,
    /// Quantization.
    pub quantization: String,
    /// Threads the math library used.
    pub threads: usize,
    /// Prompt length.
    pub prompt_tokens: usize,
    /// Tokens decoded after the prompt.
    pub gen_tokens: usize,
    /// Prompt processing, tokens per second (best round).
    pub prompt_tokens_per_s: f64,
    /// Decoding, tokens per second (best round).
    pub decode_tokens_per_s: f64,
    /// Time to first token: prompt processing plus choosing the first token (best round).
    pub ttft_ms: f64,
    /// Loading the model.
    pub load_ms: f64,
    /// Peak resident memory of the process.
    pub peak_rss_mb: f64,
}

/// Peak resident set size of this process in MiB (Linux; 0 elsewhere).
pub fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status.lines().find_map(|l| {
                l.strip_prefix("VmHWM:")?.trim().trim_end_matches("kB").trim().parse::<f64>().ok()
            })
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// Prompt processing and greedy decoding speed of the GGUF model at `path`, best of `rounds`.
/// The prompt is English prose in the model's vocabulary; decoding ignores end-of-turn tokens
/// so every round produces `gen_tokens`.
pub fn generate(
    path: &std::path::Path,
    threads: usize,
    prompt_tokens: usize,
    gen_tokens: usize,
    rounds: usize,
) -> Result<GenerateBench> {
    use crate::generate::Generator;
    use crate::generate::candle_gguf::GgufGenerator;
    use candle_core::{Device, Tensor};
    use candle_transformers::generation::{LogitsProcessor, Sampling};

    let started = Instant::now();
    let mut model = GgufGenerator::load(path)?;
    let load_ms = started.elapsed().as_secs_f64() * 1000.0;
    let mut prompt = Vec::with_capacity(prompt_tokens);
    while prompt.len() < prompt_tokens {
        prompt.extend(model.encode(PROSE)?);
    }
    prompt.truncate(prompt_tokens);
    if prompt.len() + gen_tokens > model.info().context_length {
        return Err(Error::user(format!(
            "{} prompt + {} generated tokens exceed the model's context of {}",
            prompt.len(),
            gen_tokens,
            model.info().context_length
        )));
    }
    // Warm-up: page in the weights and size the scratch buffers.
    model.forward(&prompt[..prompt.len().min(16)], 0)?;

    // Greedy choice by the sampler `Generator::generate` uses.
    let mut sampler = LogitsProcessor::from_sampling(0, Sampling::ArgMax);
    let mut argmax = |logits: Vec<f32>| -> Result<u32> {
        let n = logits.len();
        let greedy = |e| Error::internal("greedy choice of the next token", e);
        let logits = Tensor::from_vec(logits, n, &Device::Cpu).map_err(greedy)?;
        sampler.sample(&logits).map_err(greedy)
    };
    let (mut best_pp, mut best_tg, mut best_ttft) = (0.0f64, 0.0f64, f64::INFINITY);
    for _ in 0..rounds.max(1) {
        let t0 = Instant::now();
        let logits = model.forward(&prompt, 0)?;
        let prefill = t0.elapsed().as_secs_f64();
        let mut next = argmax(logits)?;
        best_ttft = best_ttft.min(t0.elapsed().as_secs_f64() * 1000.0);
        best_pp = best_pp.max(prompt.len() as f64 / prefill);
        let t1 = Instant::now();
        for step in 0..gen_tokens {
            next = argmax(model.forward(&[next], prompt.len() + step)?)?;
        }
        best_tg = best_tg.max(gen_tokens as f64 / t1.elapsed().as_secs_f64());
    }
    let info = model.info();
    Ok(GenerateBench {
        model: info.name.clone(),
        architecture: info.architecture.clone(),
        quantization: info.quantization.clone(),
        threads,
        prompt_tokens: prompt.len(),
        gen_tokens,
        prompt_tokens_per_s: best_pp,
        decode_tokens_per_s: best_tg,
        ttft_ms: best_ttft,
        load_ms,
        peak_rss_mb: peak_rss_mb(),
    })
}

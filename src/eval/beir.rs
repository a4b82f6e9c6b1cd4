//! BEIR evaluation: indexes a BEIR corpus (`corpus.jsonl`, `queries.jsonl`, `qrels/test.tsv`)
//! into a temporary library through the normal pipeline, runs every judged test query, and
//! averages the metrics over the queries.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::metrics::{Judgements, mrr_at, ndcg_at, recall_at};
use crate::api::SearchMode;
use crate::config::EngineConfig;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::progress::CancelToken;

/// Metrics of one mode, under the keys of the CLI contract.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RetrievalMetrics {
    /// nDCG@10.
    #[serde(rename = "ndcg@10")]
    pub ndcg_10: f64,
    /// Recall@10.
    #[serde(rename = "recall@10")]
    pub recall_10: f64,
    /// Recall@100.
    #[serde(rename = "recall@100")]
    pub recall_100: f64,
    /// MRR@10.
    #[serde(rename = "mrr@10")]
    pub mrr_10: f64,
}

/// The result of evaluating one mode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetrievalRun {
    /// Search mode.
    pub mode: SearchMode,
    /// Averages over the judged queries.
    pub metrics: RetrievalMetrics,
    /// Queries evaluated.
    pub queries: usize,
    /// Documents in the corpus.
    pub documents: usize,
    /// Chunks indexed.
    pub chunks: u64,
    /// Seconds spent indexing the corpus.
    pub index_seconds: f64,
    /// Mean search latency per query, milliseconds (query embedding included).
    pub search_ms_mean: f64,
    /// Median search latency per query, milliseconds.
    pub search_ms_p50: f64,
}

#[derive(Deserialize)]
struct CorpusLine {
    #[serde(rename = "_id")]
    id: String,
    #[serde(default)]
    title: String,
    text: String,
}

#[derive(Deserialize)]
struct QueryLine {
    #[serde(rename = "_id")]
    id: String,
    text: String,
}

fn open_lines(path: &Path) -> Result<impl Iterator<Item = std::io::Result<String>>> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    Ok(BufReader::new(file).lines())
}

fn bad_line(path: &Path, n: usize, e: impl std::fmt::Display) -> Error {
    Error::user(format!("{}: line {}: {e}", path.display(), n + 1))
}

/// Reads `qrels/test.tsv`: query id → judgements. A header row is skipped.
pub fn read_qrels(path: &Path) -> Result<HashMap<String, Judgements>> {
    let mut res: HashMap<String, Judgements> = HashMap::new();
    for (n, line) in open_lines(path)?.enumerate() {
        let line = line.map_err(|e| Error::io(path, e))?;
        let fields: Vec<&str> = line.trim_end_matches('\r').split('\t').collect();
        if fields.len() < 3 || (n == 0 && fields[2].parse::<i64>().is_err()) {
            continue;
        }
        let score: i64 = fields[2].trim().parse().map_err(|e| bad_line(path, n, e))?;
        res.entry(fields[0].to_owned())
            .or_default()
            .insert(fields[1].to_owned(), score.max(0) as u32);
    }
    Ok(res)
}

/// Writes the corpus as one text file per document (title, blank line, text) into `dir`,
/// so it goes through the same pipeline as a user's files. Returns file stem → document id.
fn write_corpus(corpus: &Path, dir: &Path) -> Result<HashMap<String, String>> {
    let mut ids = HashMap::new();
    for (n, line) in open_lines(corpus)?.enumerate() {
        let line = line.map_err(|e| Error::io(corpus, e))?;
        if line.trim().is_empty() {
            continue;
        }
        let doc: CorpusLine = serde_json::from_str(&line).map_err(|e| bad_line(corpus, n, e))?;
        let stem = format!("d{n:07}");
        let path = dir.join(format!("{stem}.txt"));
        let mut file = std::fs::File::create(&path).map_err(|e| Error::io(&path, e))?;
        let body =
            if doc.title.is_empty() { doc.text } else { format!("{}\n\n{}", doc.title, doc.text) };
        file.write_all(body.as_bytes()).map_err(|e| Error::io(&path, e))?;
        ids.insert(stem, doc.id);
    }
    Ok(ids)
}

/// Evaluates `modes` on the BEIR folder `beir`, indexing into a fresh library under `work`.
pub async fn evaluate(
    beir: &Path,
    config: EngineConfig,
    work: &Path,
    modes: &[SearchMode],
) -> Result<Vec<RetrievalRun>> {
    let qrels = read_qrels(&beir.join("qrels/test.tsv"))?;
    let mut queries: Vec<(String, String)> = Vec::new();
    let queries_path = beir.join("queries.jsonl");
    for (n, line) in open_lines(&queries_path)?.enumerate() {
        let line = line.map_err(|e| Error::io(&queries_path, e))?;
        if line.trim().is_empty() {
            continue;
        }
        let q: QueryLine =
            serde_json::from_str(&line).map_err(|e| bad_line(&queries_path, n, e))?;
        if qrels.contains_key(&q.id) {
            queries.push((q.id, q.text));
        }
    }
    let corpus_dir: PathBuf = work.join("corpus");
    std::fs::create_dir_all(&corpus_dir).map_err(|e| Error::io(&corpus_dir, e))?;
    let ids = write_corpus(&beir.join("corpus.jsonl"), &corpus_dir)?;
    let config = EngineConfig { data_dir: work.join("library"), ..config };
    let engine = Engine::open_for_write(config).await?;
    let started = Instant::now();
    let report = engine.index(&[corpus_dir], &mut |_| {}, &CancelToken::new()).await?;
    let index_seconds = started.elapsed().as_secs_f64();
    if report.failed > 0 {
        return Err(Error::invariant(format!(
            "{} corpus documents failed to index",
            report.failed
        )));
    }
    let mut runs = Vec::new();
    for &mode in modes {
        let mut totals = RetrievalMetrics::default();
        let mut latencies = Vec::with_capacity(queries.len());
        for (qid, text) in &queries {
            let started = Instant::now();
            // Several chunks may come from one document: ask for more and keep each
            // document's best rank (max-passage), as BEIR scores documents.
            let hits = engine.search(text, mode, 300).await?;
            latencies.push(started.elapsed().as_secs_f64() * 1000.0);
            let mut seen = HashSet::new();
            let ranking: Vec<String> = hits
                .iter()
                .filter_map(|h| {
                    let stem = Path::new(&h.doc_path).file_stem()?.to_str()?;
                    ids.get(stem).cloned()
                })
                .filter(|id| seen.insert(id.clone()))
                .take(100)
                .collect();
            let judged = &qrels[qid];
            totals.ndcg_10 += ndcg_at(&ranking, judged, 10);
            totals.recall_10 += recall_at(&ranking, judged, 10);
            totals.recall_100 += recall_at(&ranking, judged, 100);
            totals.mrr_10 += mrr_at(&ranking, judged, 10);
        }
        let n = queries.len().max(1) as f64;
        latencies.sort_by(f64::total_cmp);
        runs.push(RetrievalRun {
            mode,
            metrics: RetrievalMetrics {
                ndcg_10: totals.ndcg_10 / n,
                recall_10: totals.recall_10 / n,
                recall_100: totals.recall_100 / n,
                mrr_10: totals.mrr_10 / n,
            },
            queries: queries.len(),
            documents: ids.len(),
            chunks: report.chunks,
            index_seconds,
            search_ms_mean: latencies.iter().sum::<f64>() / n,
            search_ms_p50: latencies.get(latencies.len() / 2).copied().unwrap_or(0.0),
        });
    }
    Ok(runs)
}

//! A BERT-family sentence embedder on candle, loaded from a local sentence-transformers folder
//! (`config.json`, `tokenizer.json`, `model.safetensors`, `modules.json`, `1_Pooling/`).
//! Pooling and normalisation follow the folder's own files; inputs are truncated at the
//! model's `max_seq_length`, and batched by length; the encoder packs a batch's inputs row
//! after row, so no input is padded.

use std::path::Path;

use candle_core::Tensor;
use candle_transformers::models::bert::Config;
use tokenizers::{Tokenizer, TruncationParams};

use super::bert_encoder::{BertEncoder, Workspace};
use super::weights::SafetensorsFile;
use super::{EmbedError, Embedder, Embedding};

/// How token vectors become one sentence vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pooling {
    /// Mean over the tokens the attention mask keeps.
    Mean,
    /// The `[CLS]` token's vector.
    Cls,
}

/// Text put before inputs, as the model was trained (E5: `query: ` / `passage: `).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prefixes {
    /// Before queries.
    pub query: String,
    /// Before passages.
    pub passage: String,
}

/// Tokens (rows) embedded in one forward pass at most (an input longer than this goes alone):
/// enough for every thread's share of a product to amortise its fixed costs, few enough that
/// the buffers kept between batches stay near 60 MB for a 384-wide model (4,096 rows of 3,840
/// values: q/k/v, the feed-forward layer and three hidden-wide buffers).
const BATCH_ROWS: usize = 4096;

/// A sentence-transformers BERT model on the CPU.
pub struct CandleEmbedder {
    id: String,
    model: BertEncoder,
    tokenizer: Tokenizer,
    pooling: Pooling,
    normalize: bool,
    max_tokens: usize,
    dims: usize,
    prefixes: Prefixes,
    /// Buffers kept between calls (bounded by [`BATCH_ROWS`]).
    workspace: std::sync::Mutex<Workspace>,
}

impl std::fmt::Debug for CandleEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CandleEmbedder").field("id", &self.id).field("dims", &self.dims).finish()
    }
}

fn load_err(path: &Path, message: impl std::fmt::Display) -> EmbedError {
    EmbedError::Load { path: path.display().to_string(), message: message.to_string() }
}

fn read_json(path: &Path) -> Result<serde_json::Value, EmbedError> {
    let text = std::fs::read_to_string(path).map_err(|e| load_err(path, e))?;
    serde_json::from_str(&text).map_err(|e| load_err(path, e))
}

impl CandleEmbedder {
    /// Loads the model in `dir` under the id `id`.
    pub fn load(dir: &Path, id: &str, prefixes: Prefixes) -> Result<Self, EmbedError> {
        let config_path = dir.join("config.json");
        let config: Config = serde_json::from_value(read_json(&config_path)?)
            .map_err(|e| load_err(&config_path, e))?;
        let (pooling, normalize) = pooling_of(dir)?;
        let max_tokens = max_seq_length(dir)?.min(config.max_position_embeddings);
        let tokenizer_path = dir.join("tokenizer.json");
        let mut tokenizer =
            Tokenizer::from_file(&tokenizer_path).map_err(|e| load_err(&tokenizer_path, e))?;
        // The shipped tokenizer.json pads every input to 128 and truncates there: no padding
        // (the encoder packs inputs), and truncation at the model's real limit.
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: max_tokens,
                ..Default::default()
            }))
            .map_err(|e| load_err(&tokenizer_path, e))?;
        let weights_path = dir.join("model.safetensors");
        let weights =
            SafetensorsFile::open(&weights_path).map_err(|e| load_err(&weights_path, e))?;
        let model = BertEncoder::load(&weights, &config).map_err(|e| load_err(&weights_path, e))?;
        Ok(Self {
            id: id.to_owned(),
            model,
            tokenizer,
            pooling,
            normalize,
            max_tokens,
            dims: config.hidden_size,
            prefixes,
            workspace: std::sync::Mutex::new(Workspace::default()),
        })
    }

    /// Token ids of `text` as the model sees it (with special tokens, truncated).
    pub fn token_ids(&self, text: &str) -> Result<Vec<u32>, EmbedError> {
        let encoding =
            self.tokenizer.encode(text, true).map_err(|e| EmbedError::Tokenize(e.to_string()))?;
        Ok(encoding.get_ids().to_vec())
    }

    fn embed_all(&self, texts: Vec<String>) -> Result<Vec<Embedding>, EmbedError> {
        let encodings = self
            .tokenizer
            .encode_batch(texts, true)
            .map_err(|e| EmbedError::Tokenize(e.to_string()))?;
        // Batches of similar lengths, so the buffers reach their size early; the order is
        // restored at the end.
        let mut order: Vec<usize> = (0..encodings.len()).collect();
        order.sort_by_key(|&i| encodings[i].get_ids().len());
        let mut res: Vec<Embedding> = vec![Vec::new(); encodings.len()];
        // The buffers of earlier calls, unless another thread is embedding with them.
        let mut own = Workspace::default();
        let mut kept = self.workspace.try_lock().ok();
        let workspace = kept.as_deref_mut().unwrap_or(&mut own);
        let mut rest = &order[..];
        while !rest.is_empty() {
            let mut rows = 0;
            let take = rest
                .iter()
                .take_while(|&&i| {
                    rows += encodings[i].get_ids().len();
                    rows <= BATCH_ROWS
                })
                .count()
                .max(1);
            let (batch, after) = rest.split_at(take);
            rest = after;
            let ids: Vec<&[u32]> = batch.iter().map(|&i| encodings[i].get_ids()).collect();
            let vectors =
                self.forward(&ids, workspace).map_err(|e| EmbedError::Model(e.to_string()))?;
            for (&i, vector) in batch.iter().zip(vectors) {
                res[i] = vector;
            }
        }
        Ok(res)
    }

    fn forward(
        &self,
        batch: &[&[u32]],
        workspace: &mut Workspace,
    ) -> candle_core::Result<Vec<Embedding>> {
        // The inputs' token vectors, packed one input after the other.
        let hidden = self.model.forward(batch, workspace)?;
        let mut first = 0;
        let mut pooled = Vec::with_capacity(batch.len());
        for ids in batch {
            let rows = hidden.narrow(0, first, ids.len())?;
            first += ids.len();
            pooled.push(match self.pooling {
                Pooling::Mean => rows.mean(0)?,
                Pooling::Cls => rows.get(0)?,
            });
        }
        let pooled = Tensor::stack(&pooled, 0)?;
        let pooled = if self.normalize {
            let norms = pooled.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
            pooled.broadcast_div(&norms)?
        } else {
            pooled
        };
        pooled.to_vec2::<f32>()
    }
}

impl Embedder for CandleEmbedder {
    fn model_id(&self) -> &str {
        &self.id
    }

    fn dimensions(&self) -> usize {
        self.dims
    }

    fn max_input_tokens(&self) -> usize {
        self.max_tokens
    }

    fn embed_documents(&self, texts: &[&str]) -> Result<Vec<Embedding>, EmbedError> {
        let _span =
            tracing::debug_span!(target: "engine::embed", "embed_documents", n = texts.len())
                .entered();
        self.embed_all(texts.iter().map(|t| format!("{}{t}", self.prefixes.passage)).collect())
    }

    fn embed_query(&self, text: &str) -> Result<Embedding, EmbedError> {
        let mut res = self.embed_all(vec![format!("{}{text}", self.prefixes.query)])?;
        res.pop().ok_or_else(|| EmbedError::Model("no vector for the query".into()))
    }
}

/// Pooling mode and whether a Normalize module follows, from the sentence-transformers files.
/// Folders without them (plain transformers exports) get mean pooling and normalisation,
/// the sentence-transformers default.
fn pooling_of(dir: &Path) -> Result<(Pooling, bool), EmbedError> {
    let modules_path = dir.join("modules.json");
    if !modules_path.is_file() {
        return Ok((Pooling::Mean, true));
    }
    let modules = read_json(&modules_path)?;
    let modules = modules.as_array().cloned().unwrap_or_default();
    let kind_of = |m: &serde_json::Value| m["type"].as_str().unwrap_or_default().to_owned();
    let normalize = modules.iter().any(|m| kind_of(m).ends_with("Normalize"));
    let pooling_dir = modules
        .iter()
        .find(|m| kind_of(m).ends_with("Pooling"))
        .and_then(|m| m["path"].as_str())
        .map(|p| dir.join(p));
    let pooling = match pooling_dir {
        Some(path) => {
            let config = read_json(&path.join("config.json"))?;
            if config["pooling_mode_cls_token"].as_bool() == Some(true) {
                Pooling::Cls
            } else if config["pooling_mode_mean_tokens"].as_bool() == Some(true) {
                Pooling::Mean
            } else {
                return Err(load_err(&path, "only mean and CLS pooling are supported"));
            }
        }
        None => Pooling::Mean,
    };
    Ok((pooling, normalize))
}

fn max_seq_length(dir: &Path) -> Result<usize, EmbedError> {
    let path = dir.join("sentence_bert_config.json");
    if !path.is_file() {
        return Ok(512);
    }
    Ok(read_json(&path)?["max_seq_length"].as_u64().map_or(512, |n| n as usize))
}

/// The vector length of the model in `dir`, read from its `config.json` without loading weights.
pub fn dimensions_of(dir: &Path) -> Result<usize, EmbedError> {
    let path = dir.join("config.json");
    read_json(&path)?["hidden_size"]
        .as_u64()
        .map(|n| n as usize)
        .ok_or_else(|| load_err(&path, "no hidden_size"))
}

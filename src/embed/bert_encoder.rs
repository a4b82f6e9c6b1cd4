//! The BERT encoder under the sentence embedder: the weights and arithmetic of
//! candle-transformers' `BertModel`, arranged for CPU throughput on plain slices. candle's
//! model evaluates GELU and softmax with scalar libm calls, runs three products for q, k and
//! v, builds one padded score matrix for the whole batch, and allocates a fresh tensor for
//! every product, bias, residual sum and norm (page faults on tens of megabytes per layer, a
//! seventh of embedding time at 2 threads). Here the batch's inputs are packed row after row
//! without padding; q/k/v is one product; every product writes into buffers the caller keeps
//! across layers, batches and calls ([`Workspace`]), with its bias, each thread on its own rows;
//! residual sum and layer norm are one pass; attention runs per input and head over the
//! input's own length, all of them at once on the pool.

use candle_core::{Result, Tensor};
use candle_transformers::models::bert::{Config, HiddenAct};
use quarry_quant_kernels::activation;
use quarry_quant_kernels::attention::attend_packed;
use quarry_quant_kernels::{Executor, dense};
use rayon::prelude::*;

use super::weights::{SafetensorsFile, Scope};

/// Values handed to one thread by the element-wise kernels.
const ELEMENTS_PER_TASK: usize = 16 * 1024;
/// Fewest rows a thread multiplies on its own (fewer are not worth a task).
const MIN_ROWS_PER_TASK: usize = 64;

/// A BERT encoder (embeddings and transformer layers, no pooler).
pub struct BertEncoder {
    /// Word embeddings, vocabulary × hidden.
    word: Vec<f32>,
    /// Position embeddings, positions × hidden.
    position: Vec<f32>,
    /// The embedding of token type 0.
    token_type: Vec<f32>,
    norm: Norm,
    layers: Vec<Layer>,
    heads: usize,
    head_dim: usize,
    hidden: usize,
}

/// A dense layer: weight (outputs × inputs, row-major) and bias.
struct Dense {
    weight: Vec<f32>,
    bias: Vec<f32>,
}

impl Dense {
    /// `x · Wᵀ + b` into `out`, the rows shared out over the pool in two tasks per thread:
    /// each thread runs gemm alone on its rows (8 % more chunks per second at 2 threads than
    /// gemm's own split of one product, which synchronises its threads inside it).
    fn forward(&self, x: &[f32], out: &mut Vec<f32>) -> Result<()> {
        let (inputs, outputs) = (self.weight.len() / self.bias.len(), self.bias.len());
        let rows = x.len() / inputs;
        out.resize(rows * outputs, 0.0);
        let rows_per_task = rows.div_ceil(2 * rayon::current_num_threads()).max(MIN_ROWS_PER_TASK);
        x.par_chunks(rows_per_task * inputs)
            .zip(out.par_chunks_mut(rows_per_task * outputs))
            .try_for_each(|(x, out)| dense::linear(x, &self.weight, &self.bias, out, 1))
            .map_err(|e| candle_core::Error::Msg(e.to_string()))
    }
}

/// Layer normalisation's scale, shift and epsilon.
struct Norm {
    gamma: Vec<f32>,
    beta: Vec<f32>,
    eps: f32,
}

impl Norm {
    /// Each row of `x` plus the same row of `residual`, normalised, in place.
    fn add_and_normalise(&self, x: &mut [f32], residual: &[f32]) {
        let width = self.gamma.len();
        let rows_per_task = (ELEMENTS_PER_TASK / width).max(1);
        x.par_chunks_mut(rows_per_task * width)
            .zip(residual.par_chunks(rows_per_task * width))
            .for_each(|(x, residual)| {
                for (row, add) in x.chunks_exact_mut(width).zip(residual.chunks_exact(width)) {
                    activation::add_layer_norm(row, &[add], &self.gamma, &self.beta, self.eps);
                }
            });
    }
}

/// The buffers a batch works in (rows × width each, resized per batch), kept by the caller
/// between batches and calls so their pages are faulted in once, not per layer and batch
/// (giving them back after each call of 64 chunks cost 8-10 % of throughput); the caller
/// bounds their size by the rows it puts in a batch.
#[derive(Default)]
pub struct Workspace {
    hidden: Vec<f32>,
    qkv: Vec<f32>,
    context: Vec<f32>,
    projected: Vec<f32>,
    inner: Vec<f32>,
}

struct Layer {
    /// q, k and v stacked into one product; the q rows carry attention's 1/√d.
    qkv: Dense,
    attention_out: Dense,
    attention_norm: Norm,
    intermediate: Dense,
    activation: HiddenAct,
    out: Dense,
    out_norm: Norm,
}

/// A weight-loading error as candle's error type (the encoder's errors are candle's).
fn load_error(e: super::weights::WeightsError) -> candle_core::Error {
    candle_core::Error::Msg(e.to_string())
}

fn layer_norm(size: usize, eps: f64, at: &Scope<'_>) -> Result<Norm> {
    // Checkpoints name the parameters weight/bias or, in older exports, gamma/beta.
    let (weight, bias) = if at.contains("weight") { ("weight", "bias") } else { ("gamma", "beta") };
    Ok(Norm {
        gamma: at.get(weight, &[size]).map_err(load_error)?,
        beta: at.get(bias, &[size]).map_err(load_error)?,
        eps: eps as f32,
    })
}

fn linear(in_dim: usize, out_dim: usize, at: &Scope<'_>) -> Result<Dense> {
    Ok(Dense {
        weight: at.get("weight", &[out_dim, in_dim]).map_err(load_error)?,
        bias: at.get("bias", &[out_dim]).map_err(load_error)?,
    })
}

impl Layer {
    fn load(at: &Scope<'_>, config: &Config, head_dim: usize) -> Result<Self> {
        let hidden = config.hidden_size;
        let eps = config.layer_norm_eps;
        let att = at.pp("attention");
        let q = linear(hidden, hidden, &att.pp("self").pp("query"))?;
        let k = linear(hidden, hidden, &att.pp("self").pp("key"))?;
        let v = linear(hidden, hidden, &att.pp("self").pp("value"))?;
        // q, k and v stacked into one product, the q rows scaled by attention's 1/√d.
        let scale = 1.0 / (head_dim as f32).sqrt();
        let scaled = |values: Vec<f32>| values.into_iter().map(|w| w * scale);
        let qkv = Dense {
            weight: scaled(q.weight).chain(k.weight).chain(v.weight).collect(),
            bias: scaled(q.bias).chain(k.bias).chain(v.bias).collect(),
        };
        Ok(Self {
            qkv,
            attention_out: linear(hidden, hidden, &att.pp("output").pp("dense"))?,
            attention_norm: layer_norm(hidden, eps, &att.pp("output").pp("LayerNorm"))?,
            intermediate: linear(
                hidden,
                config.intermediate_size,
                &at.pp("intermediate").pp("dense"),
            )?,
            activation: config.hidden_act,
            out: linear(config.intermediate_size, hidden, &at.pp("output").pp("dense"))?,
            out_norm: layer_norm(hidden, eps, &at.pp("output").pp("LayerNorm"))?,
        })
    }

    /// One layer over the packed rows of `spans` (first row, length per input) in `ws.hidden`.
    fn forward(
        &self,
        ws: &mut Workspace,
        spans: &[(usize, usize)],
        heads: usize,
        head_dim: usize,
    ) -> Result<()> {
        let _span = tracing::trace_span!("bert_layer").entered();
        self.qkv.forward(&ws.hidden, &mut ws.qkv)?;
        ws.context.resize(ws.hidden.len(), 0.0);
        attend_packed(&ws.qkv, spans, heads, head_dim, &mut ws.context, &RayonPool)
            .map_err(|e| candle_core::Error::Msg(e.to_string()))?;
        self.attention_out.forward(&ws.context, &mut ws.projected)?;
        // hidden = norm(projected + hidden), written into `projected`, then swapped back.
        self.attention_norm.add_and_normalise(&mut ws.projected, &ws.hidden);
        std::mem::swap(&mut ws.hidden, &mut ws.projected);
        self.intermediate.forward(&ws.hidden, &mut ws.inner)?;
        activate(&mut ws.inner, self.activation)?;
        self.out.forward(&ws.inner, &mut ws.projected)?;
        self.out_norm.add_and_normalise(&mut ws.projected, &ws.hidden);
        std::mem::swap(&mut ws.hidden, &mut ws.projected);
        Ok(())
    }
}

/// The feed-forward activation in place.
fn activate(values: &mut [f32], act: HiddenAct) -> Result<()> {
    match act {
        HiddenAct::Gelu => {
            values.par_chunks_mut(ELEMENTS_PER_TASK).for_each(activation::gelu_erf_in_place);
        }
        // Rare in sentence embedders: candle's own kernels, through one tensor.
        HiddenAct::GeluApproximate | HiddenAct::Relu => {
            let t = Tensor::from_slice(values, values.len(), &candle_core::Device::Cpu)?;
            let t = if act == HiddenAct::Relu { t.relu()? } else { t.gelu()? };
            values.copy_from_slice(&t.to_vec1::<f32>()?);
        }
    }
    Ok(())
}

/// The rayon pool as the kernels' executor: the items in a few ranges per thread (the dense
/// products and element-wise passes run on the same pool).
struct RayonPool;

impl Executor for RayonPool {
    fn run(&self, items: usize, work: &(dyn Fn(std::ops::Range<usize>) + Sync)) {
        let per_range = items.div_ceil(4 * rayon::current_num_threads()).max(1);
        (0..items.div_ceil(per_range))
            .into_par_iter()
            .for_each(|i| work(i * per_range..((i + 1) * per_range).min(items)));
    }
}

impl BertEncoder {
    /// Loads the encoder from a checkpoint whose tensors sit at the root, under `bert.`, or
    /// under the config's `model_type`.
    pub fn load(file: &SafetensorsFile, config: &Config) -> Result<Self> {
        let root = Scope::root(file);
        let mut prefixes = vec![String::new(), "bert".to_owned()];
        prefixes.extend(config.model_type.clone());
        // The first prefix under which the embeddings exist; else the root, for its error.
        let at = prefixes
            .iter()
            .map(|p| if p.is_empty() { root.clone() } else { root.pp(p) })
            .find(|at| at.contains("embeddings.word_embeddings.weight"))
            .unwrap_or(root);
        Self::load_at(&at, config)
    }

    fn load_at(at: &Scope<'_>, config: &Config) -> Result<Self> {
        let hidden = config.hidden_size;
        let heads = config.num_attention_heads;
        if heads == 0 || hidden == 0 || !hidden.is_multiple_of(heads) {
            candle_core::bail!("hidden size {hidden} is not a multiple of {heads} heads");
        }
        let head_dim = hidden / heads;
        if config.intermediate_size == 0 {
            candle_core::bail!("an intermediate size of 0");
        }
        let emb = at.pp("embeddings");
        let word = emb
            .pp("word_embeddings")
            .get("weight", &[config.vocab_size, hidden])
            .map_err(load_error)?;
        let position = emb
            .pp("position_embeddings")
            .get("weight", &[config.max_position_embeddings, hidden])
            .map_err(load_error)?;
        let mut token_type = emb
            .pp("token_type_embeddings")
            .get("weight", &[config.type_vocab_size, hidden])
            .map_err(load_error)?;
        if token_type.len() < hidden {
            candle_core::bail!("no embedding for token type 0");
        }
        token_type.truncate(hidden);
        let norm = layer_norm(hidden, config.layer_norm_eps, &emb.pp("LayerNorm"))?;
        let layers = (0..config.num_hidden_layers)
            .map(|i| Layer::load(&at.pp(&format!("encoder.layer.{i}")), config, head_dim))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { word, position, token_type, norm, layers, heads, head_dim, hidden })
    }

    /// Token vectors of a batch of inputs (token ids, special tokens included; every token of
    /// type 0): the inputs' rows one after the other, `hidden` values each, as a (rows ×
    /// hidden) tensor. `ws` holds the buffers, kept by the caller between batches.
    pub fn forward(&self, batch: &[&[u32]], ws: &mut Workspace) -> Result<Tensor> {
        let _span = tracing::trace_span!("bert_encoder").entered();
        let hidden = self.hidden;
        let positions = self.position.len() / hidden;
        let vocab = self.word.len() / hidden;
        let mut spans = Vec::with_capacity(batch.len());
        let mut rows = 0;
        for ids in batch {
            if ids.is_empty() || ids.len() > positions {
                candle_core::bail!(
                    "an input of {} tokens (the model takes 1 to {positions})",
                    ids.len()
                );
            }
            if let Some(id) = ids.iter().find(|&&id| id as usize >= vocab) {
                candle_core::bail!("token id {id} outside the vocabulary of {vocab}");
            }
            spans.push((rows, ids.len()));
            rows += ids.len();
        }
        ws.hidden.resize(rows * hidden, 0.0);
        let ids: Vec<(u32, usize)> =
            batch.iter().flat_map(|ids| ids.iter().enumerate().map(|(t, &id)| (id, t))).collect();
        let rows_per_task = (ELEMENTS_PER_TASK / hidden).max(1);
        ws.hidden
            .par_chunks_mut(rows_per_task * hidden)
            .zip(ids.par_chunks(rows_per_task))
            .for_each(|(out, ids)| {
                for (row, &(id, t)) in out.chunks_exact_mut(hidden).zip(ids) {
                    let id = id as usize;
                    row.copy_from_slice(&self.word[id * hidden..(id + 1) * hidden]);
                    let position = &self.position[t * hidden..(t + 1) * hidden];
                    activation::add_layer_norm(
                        row,
                        &[position, &self.token_type],
                        &self.norm.gamma,
                        &self.norm.beta,
                        self.norm.eps,
                    );
                }
            });
        for layer in &self.layers {
            layer.forward(ws, &spans, self.heads, self.head_dim)?;
        }
        Tensor::from_slice(&ws.hidden, (rows, hidden), &candle_core::Device::Cpu)
    }
}

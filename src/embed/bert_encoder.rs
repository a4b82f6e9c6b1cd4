//! The BERT encoder under the sentence embedder: the weights and arithmetic of
//! candle-transformers' `BertModel`, arranged for CPU throughput. candle's model evaluates GELU
//! with libm's scalar `erff` and softmax with scalar `expf` (a fifth of embedding time at 2
//! threads), runs three products for q, k and v, and builds one padded score matrix for the
//! whole batch (100 MB at 32 inputs of 256 tokens, page-faulted afresh in every layer). Here
//! q/k/v is one product, GELU and softmax are vectorised kernels, and attention runs one input
//! at a time over its own length, so padding costs nothing there and no mask is needed.

use candle_core::{CpuStorage, Layout, Module, Result, Tensor};
use candle_nn::{Embedding, LayerNorm, Linear, VarBuilder};
use candle_transformers::models::bert::{Config, HiddenAct};
use quarry_quant_kernels::activation;
use rayon::prelude::*;

/// Values handed to one thread by the element-wise kernels.
const ELEMENTS_PER_TASK: usize = 16 * 1024;

/// A BERT encoder (embeddings and transformer layers, no pooler).
pub struct BertEncoder {
    word: Embedding,
    position: Tensor,
    token_type: Tensor,
    norm: LayerNorm,
    layers: Vec<Layer>,
    heads: usize,
    head_dim: usize,
}

struct Layer {
    /// q, k and v stacked into one product; the q rows carry attention's 1/√d.
    qkv: Linear,
    attention_out: Linear,
    attention_norm: LayerNorm,
    intermediate: Linear,
    activation: HiddenAct,
    out: Linear,
    out_norm: LayerNorm,
}

fn layer_norm(size: usize, eps: f64, vb: VarBuilder) -> Result<LayerNorm> {
    // Checkpoints name the parameters weight/bias or, in older exports, gamma/beta.
    let (weight, bias) = match (vb.get(size, "weight"), vb.get(size, "bias")) {
        (Ok(w), Ok(b)) => (w, b),
        _ => (vb.get(size, "gamma")?, vb.get(size, "beta")?),
    };
    Ok(LayerNorm::new(weight, bias, eps))
}

fn linear(in_dim: usize, out_dim: usize, vb: VarBuilder) -> Result<(Tensor, Tensor)> {
    Ok((vb.get((out_dim, in_dim), "weight")?, vb.get(out_dim, "bias")?))
}

impl Layer {
    fn load(vb: VarBuilder, config: &Config, head_dim: usize) -> Result<Self> {
        let hidden = config.hidden_size;
        let eps = config.layer_norm_eps;
        let att = vb.pp("attention");
        let (qw, qb) = linear(hidden, hidden, att.pp("self").pp("query"))?;
        let (kw, kb) = linear(hidden, hidden, att.pp("self").pp("key"))?;
        let (vw, vbias) = linear(hidden, hidden, att.pp("self").pp("value"))?;
        let scale = 1.0 / (head_dim as f64).sqrt();
        let qkv_w = Tensor::cat(&[(qw * scale)?, kw, vw], 0)?;
        let qkv_b = Tensor::cat(&[(qb * scale)?, kb, vbias], 0)?;
        let (ow, ob) = linear(hidden, hidden, att.pp("output").pp("dense"))?;
        let (iw, ib) = linear(hidden, config.intermediate_size, vb.pp("intermediate").pp("dense"))?;
        let (outw, outb) = linear(config.intermediate_size, hidden, vb.pp("output").pp("dense"))?;
        Ok(Self {
            qkv: Linear::new(qkv_w, Some(qkv_b)),
            attention_out: Linear::new(ow, Some(ob)),
            attention_norm: layer_norm(hidden, eps, att.pp("output").pp("LayerNorm"))?,
            intermediate: Linear::new(iw, Some(ib)),
            activation: config.hidden_act,
            out: Linear::new(outw, Some(outb)),
            out_norm: layer_norm(hidden, eps, vb.pp("output").pp("LayerNorm"))?,
        })
    }

    fn forward(
        &self,
        xs: &Tensor,
        lengths: &[usize],
        heads: usize,
        head_dim: usize,
    ) -> Result<Tensor> {
        let _span = tracing::trace_span!("bert_layer").entered();
        let (_, width, hidden) = xs.dims3()?;
        let qkv = self.qkv.forward(xs)?;
        let mut contexts = Vec::with_capacity(lengths.len());
        for (i, &len) in lengths.iter().enumerate() {
            let item = qkv.get(i)?.narrow(0, 0, len)?.reshape((len, 3, heads, head_dim))?;
            let part = |j: usize| item.narrow(1, j, 1)?.squeeze(1)?.transpose(0, 1)?.contiguous();
            let (q, k, v) = (part(0)?, part(1)?, part(2)?);
            let scores = q.matmul(&k.t()?)?;
            scores.inplace_op1(&Softmax)?;
            let context = scores.matmul(&v)?.transpose(0, 1)?.reshape((len, hidden))?;
            contexts.push(if len < width {
                context.pad_with_zeros(0, 0, width - len)?
            } else {
                context
            });
        }
        let context = Tensor::stack(&contexts, 0)?;
        let xs = self.attention_norm.forward(&(self.attention_out.forward(&context)? + xs)?)?;
        let inner = self.intermediate.forward(&xs)?;
        let inner = match self.activation {
            HiddenAct::Gelu => {
                inner.inplace_op1(&GeluErf)?;
                inner
            }
            HiddenAct::GeluApproximate => inner.gelu()?,
            HiddenAct::Relu => inner.relu()?,
        };
        self.out_norm.forward(&(self.out.forward(&inner)? + xs)?)
    }
}

impl BertEncoder {
    /// Loads the encoder from a checkpoint whose tensors sit at the root, under `bert.`, or
    /// under the config's `model_type`.
    pub fn load(vb: VarBuilder, config: &Config) -> Result<Self> {
        let mut prefixes = vec![String::new(), "bert".to_owned()];
        prefixes.extend(config.model_type.clone());
        let mut first_error = None;
        for prefix in prefixes {
            let at = if prefix.is_empty() { vb.clone() } else { vb.pp(prefix) };
            match Self::load_at(at, config) {
                Ok(model) => return Ok(model),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        Err(first_error.unwrap_or_else(|| candle_core::Error::Msg("no BERT weights".into())))
    }

    fn load_at(vb: VarBuilder, config: &Config) -> Result<Self> {
        let hidden = config.hidden_size;
        let heads = config.num_attention_heads;
        if heads == 0 || !hidden.is_multiple_of(heads) {
            candle_core::bail!("hidden size {hidden} is not a multiple of {heads} heads");
        }
        let head_dim = hidden / heads;
        let emb = vb.pp("embeddings");
        let word = Embedding::new(
            emb.pp("word_embeddings").get((config.vocab_size, hidden), "weight")?,
            hidden,
        );
        let position = emb
            .pp("position_embeddings")
            .get((config.max_position_embeddings, hidden), "weight")?;
        let token_type = emb
            .pp("token_type_embeddings")
            .get((config.type_vocab_size, hidden), "weight")?
            .get(0)?;
        let norm = layer_norm(hidden, config.layer_norm_eps, emb.pp("LayerNorm"))?;
        let layers = (0..config.num_hidden_layers)
            .map(|i| Layer::load(vb.pp(format!("encoder.layer.{i}")), config, head_dim))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { word, position, token_type, norm, layers, heads, head_dim })
    }

    /// Token vectors of a batch: `input_ids` is (batch, width), padded; `lengths` holds each
    /// input's real length. Every input has token type 0. Rows past an input's length hold
    /// values no real row depends on; pooling must mask them.
    pub fn forward(&self, input_ids: &Tensor, lengths: &[usize]) -> Result<Tensor> {
        let _span = tracing::trace_span!("bert_encoder").entered();
        let (batch, width) = input_ids.dims2()?;
        if lengths.len() != batch {
            candle_core::bail!("{} lengths for a batch of {batch}", lengths.len());
        }
        if let Some(len) = lengths.iter().find(|&&len| len == 0 || len > width) {
            candle_core::bail!("an input of {len} tokens in a batch {width} wide");
        }
        if width > self.position.dim(0)? {
            candle_core::bail!(
                "{width} tokens exceed the model's {} positions",
                self.position.dim(0)?
            );
        }
        let positions = self.position.narrow(0, 0, width)?;
        let xs = self
            .word
            .forward(input_ids)?
            .broadcast_add(&positions)?
            .broadcast_add(&self.token_type)?;
        let mut xs = self.norm.forward(&xs)?;
        for layer in &self.layers {
            xs = layer.forward(&xs, lengths, self.heads, self.head_dim)?;
        }
        Ok(xs)
    }
}

/// The f32 values of a contiguous CPU tensor, or an error naming the operation.
fn contiguous_f32<'a>(
    name: &str,
    storage: &'a mut CpuStorage,
    layout: &Layout,
) -> Result<&'a mut [f32]> {
    let Some((start, end)) = layout.contiguous_offsets() else {
        candle_core::bail!("{name} needs a contiguous tensor");
    };
    match storage {
        CpuStorage::F32(values) => Ok(&mut values[start..end]),
        _ => candle_core::bail!("{name} needs f32 values"),
    }
}

/// Exact (erf) GELU in place.
struct GeluErf;

impl candle_core::InplaceOp1 for GeluErf {
    fn name(&self) -> &'static str {
        "gelu-erf-vectorised"
    }

    fn cpu_fwd(&self, storage: &mut CpuStorage, layout: &Layout) -> Result<()> {
        let values = contiguous_f32(self.name(), storage, layout)?;
        values.par_chunks_mut(ELEMENTS_PER_TASK).for_each(activation::gelu_erf_in_place);
        Ok(())
    }
}

/// Softmax over the last dimension in place.
struct Softmax;

impl candle_core::InplaceOp1 for Softmax {
    fn name(&self) -> &'static str {
        "softmax-last-dim-vectorised"
    }

    fn cpu_fwd(&self, storage: &mut CpuStorage, layout: &Layout) -> Result<()> {
        let row = layout.dims().last().copied().unwrap_or(1).max(1);
        let values = contiguous_f32(self.name(), storage, layout)?;
        let rows_per_task = (ELEMENTS_PER_TASK / row).max(1);
        values
            .par_chunks_mut(rows_per_task * row)
            .for_each(|part| activation::softmax_rows_in_place(part, row));
        Ok(())
    }
}

//! The Llama family from GGUF (`llama`: Llama 2/3.x, SmolLM2, TinyLlama, Mistral; `qwen2`:
//! Qwen2/2.5, which adds biases to the query, key and value projections and rotates
//! NeoX-style; `qwen3`: Qwen3, which instead RMS-normalises each query and key head before
//! rotating), Quarry's own module following llama.cpp's graphs. candle-transformers'
//! modules for these hold the embedding table dequantized to f32 (545 MB for Qwen's 151,936
//! tokens, more than the whole Q4_K_M file), copy the attention cache once per query head,
//! ignore Llama 3.1+'s `rope_freqs` factors, stop at 4096 positions (llama) and cannot be
//! copied (qwen2, so no prompt-prefix cache). Here the table stays quantized and only the rows
//! a prompt uses are expanded, prompts run through GEMM (`linear.rs`), and the model is
//! `Clone` with weights shared.

use std::sync::Arc;

use candle_core::quantized::{GgmlDType, QTensor, gguf_file};
use candle_core::{Device, IndexOp, Result, Tensor};

use quarry_quant_kernels::activation::{add_in_place, rms_norm, silu_mul_in_place};
use quarry_quant_kernels::attention::AttentionShape;

use super::attention::{self, LayerCache, Rope, Shape, mask};
use super::linear::QLinear;

/// An embedding table kept in its file encoding (shared with the output layer when the model
/// ties them); rows are expanded when looked up.
#[derive(Debug, Clone)]
struct QuantizedRows {
    table: Arc<QTensor>,
    dtype: GgmlDType,
    row_bytes: usize,
    width: usize,
}

impl QuantizedRows {
    fn new(table: Arc<QTensor>) -> Result<Self> {
        let (_, width) = table.shape().dims2()?;
        let dtype = table.dtype();
        let row_bytes = width / dtype.block_size() * dtype.type_size();
        Ok(Self { table, dtype, row_bytes, width })
    }

    fn rows(&self, ids: &[u32], device: &Device) -> Result<Tensor> {
        // On the CPU this borrows the loaded bytes.
        let bytes = self.table.data()?;
        let mut raw = Vec::with_capacity(ids.len() * self.row_bytes);
        for &id in ids {
            let start = id as usize * self.row_bytes;
            let row = bytes.get(start..start + self.row_bytes).ok_or_else(|| {
                candle_core::Error::Msg(format!("token id {id} is outside the vocabulary"))
            })?;
            raw.extend_from_slice(row);
        }
        let rows = candle_core::quantized::ggml_file::qtensor_from_ggml(
            self.dtype,
            &raw,
            vec![ids.len(), self.width],
            device,
        )?;
        rows.dequantize(device)
    }
}

/// RMS norm weights, held once as plain values: the decode step reads them as a slice, a
/// prompt chunk wraps them in a tensor per call (a few kilobytes).
#[derive(Debug, Clone)]
struct Norm {
    weight: Arc<Vec<f32>>,
    eps: f32,
}

impl Norm {
    fn read(t: QTensor, eps: f64, device: &Device) -> Result<Self> {
        Ok(Self { weight: Arc::new(t.dequantize(device)?.to_vec1()?), eps: eps as f32 })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let w = Tensor::from_slice(self.weight.as_slice(), self.weight.len(), x.device())?;
        candle_nn::ops::rms_norm(x, &w, self.eps)
    }

    /// Normalises each run of the weight's length in `x` (each head), in place.
    fn each_head(&self, x: &mut [f32]) -> Result<()> {
        let n = self.weight.len();
        if n == 0 || !x.len().is_multiple_of(n) {
            candle_core::bail!("{} values are not heads of {n}", x.len());
        }
        let mut head = vec![0f32; n];
        for chunk in x.chunks_exact_mut(n) {
            rms_norm(chunk, &self.weight, self.eps, &mut head);
            chunk.copy_from_slice(&head);
        }
        Ok(())
    }

    fn values(&self, x: &[f32]) -> Result<Vec<f32>> {
        if x.len() != self.weight.len() {
            candle_core::bail!("{} values for a norm of {}", x.len(), self.weight.len());
        }
        let mut out = vec![0f32; x.len()];
        rms_norm(x, &self.weight, self.eps, &mut out);
        Ok(out)
    }
}

#[derive(Debug, Clone)]
struct Layer {
    wq: QLinear,
    wk: QLinear,
    wv: QLinear,
    /// Projection biases of q, k and v (qwen2).
    bias: Option<Arc<[Vec<f32>; 3]>>,
    /// Per-head RMS norms of q and k (qwen3).
    qk_norm: Option<(Norm, Norm)>,
    wo: QLinear,
    attn_norm: Norm,
    ffn_norm: Norm,
    gate: QLinear,
    up: QLinear,
    down: QLinear,
    n_head: usize,
    n_kv_head: usize,
    head_dim: usize,
    rope: Rope,
    cache: LayerCache,
}

/// `x += y` for a residual connection, refusing a width mismatch.
fn residual(x: &mut [f32], y: &[f32]) -> Result<()> {
    if x.len() != y.len() {
        candle_core::bail!("a residual of {} values added to {}", y.len(), x.len());
    }
    add_in_place(x, y);
    Ok(())
}

impl Layer {
    fn attention(&mut self, x: &Tensor, pos: usize) -> Result<Tensor> {
        let (b, seq_len, _) = x.dims3()?;
        let shape = |t: Tensor, heads: usize| -> Result<Tensor> {
            t.reshape((b, seq_len, heads, self.head_dim))?.transpose(1, 2)?.contiguous()
        };
        let (mut q, mut k, mut v) = (self.wq.forward(x)?, self.wk.forward(x)?, self.wv.forward(x)?);
        if let Some(bias) = &self.bias {
            let add = |t: Tensor, b: &[f32]| {
                t.broadcast_add(&Tensor::from_slice(b, b.len(), x.device())?)
            };
            (q, k, v) = (add(q, &bias[0])?, add(k, &bias[1])?, add(v, &bias[2])?);
        }
        if let Some((q_norm, k_norm)) = &self.qk_norm {
            let heads = |t: Tensor, n: usize| t.reshape((b, seq_len, n, self.head_dim));
            q = q_norm.forward(&heads(q, self.n_head)?)?;
            k = k_norm.forward(&heads(k, self.n_kv_head)?)?;
        }
        let q = shape(q, self.n_head)?;
        let k = shape(k, self.n_kv_head)?;
        let v = shape(v, self.n_kv_head)?;
        let q = self.rope.apply(&q, pos)?;
        let k = self.rope.apply(&k, pos)?;
        let (k, v) = self.cache.append(k, v, pos)?;
        let mask = if seq_len > 1 { Some(mask(seq_len, pos, None, x.device())?) } else { None };
        let out = attention::grouped(&q, &k, &v, mask.as_ref())?;
        self.wo.forward(&out)
    }

    /// [`Self::forward`] for one token on plain values, `x` updated in place: each group of
    /// projections that read one input (q/k/v, gate/up) is one hand-out of work to the
    /// threads, attention is one pass ([`attention::decode_step`]), and the element-wise steps
    /// run in `quarry-quant-kernels`, instead of some forty tensor ops.
    fn decode(&mut self, x: &mut [f32], pos: usize) -> Result<()> {
        let h = self.attn_norm.values(x)?;
        let [mut q, mut k, mut v] = QLinear::decode_many([&self.wq, &self.wk, &self.wv], &h)?;
        if let Some(bias) = &self.bias {
            for (out, bias) in [&mut q, &mut k, &mut v].into_iter().zip(bias.iter()) {
                if out.len() != bias.len() {
                    candle_core::bail!(
                        "a bias of {} values for a projection of {}",
                        bias.len(),
                        out.len()
                    );
                }
                add_in_place(out, bias);
            }
        }
        if let Some((q_norm, k_norm)) = &self.qk_norm {
            q_norm.each_head(&mut q)?;
            k_norm.each_head(&mut k)?;
        }
        let shape = AttentionShape {
            n_head: self.n_head,
            n_kv_head: self.n_kv_head,
            head_dim: self.head_dim,
        };
        let attended = attention::decode_step(q, k, &v, shape, &self.rope, &mut self.cache, pos)?;
        let [o] = QLinear::decode_many([&self.wo], &attended)?;
        residual(x, &o)?;
        let h = self.ffn_norm.values(x)?;
        let [mut gate, up] = QLinear::decode_many([&self.gate, &self.up], &h)?;
        if gate.len() != up.len() {
            candle_core::bail!("gate of {} and up of {} values", gate.len(), up.len());
        }
        silu_mul_in_place(&mut gate, &up);
        let [down] = QLinear::decode_many([&self.down], &gate)?;
        residual(x, &down)
    }

    fn forward(&mut self, x: &Tensor, pos: usize) -> Result<Tensor> {
        let h = self.attn_norm.forward(x)?;
        let x = (x + self.attention(&h, pos)?)?;
        let h = self.ffn_norm.forward(&x)?;
        let h = (candle_nn::ops::silu(&self.gate.forward(&h)?)? * self.up.forward(&h)?)?;
        x + self.down.forward(&h)?
    }
}

/// A Llama-family network read from GGUF.
#[derive(Debug, Clone)]
pub struct LlamaFamily {
    embed: QuantizedRows,
    layers: Vec<Layer>,
    norm: Norm,
    output: QLinear,
    /// Positions the rotary tables cover.
    pub max_positions: usize,
}

impl LlamaFamily {
    /// Reads the weights of architecture `arch` ("llama", "qwen2" or "qwen3") named as
    /// llama.cpp's converter names them.
    pub fn from_gguf<R: std::io::Seek + std::io::Read>(
        arch: &str,
        content: gguf_file::Content,
        reader: &mut R,
        device: &Device,
    ) -> Result<Self> {
        let Shape { n_head, n_kv_head, n_layers, hidden: _, head_dim, eps, context } =
            Shape::read(&content, arch)?;
        let base = attention::metadata(&content, arch, "rope.freq_base")
            .and_then(|v| v.to_f32())
            .unwrap_or(10_000.0);
        let max_positions = context.min(32_768);

        let mut tensor = |name: &str| content.tensor(reader, name, device);
        // Llama 3.1+ stores per-frequency divisors for its long-context rope scaling.
        let factors: Option<Vec<f32>> = match tensor("rope_freqs.weight") {
            Ok(t) => Some(t.dequantize(device)?.to_vec1()?),
            Err(_) => None,
        };
        // llama.cpp: Llama rotates adjacent pairs, Qwen2 the two halves (NeoX).
        let neox = arch != "llama";
        let rope =
            Rope::with_factors(head_dim, base, max_positions, factors.as_deref(), neox, device)?;
        let embed_q = Arc::new(tensor("token_embd.weight")?);
        let embed = QuantizedRows::new(embed_q.clone())?;
        let output = match tensor("output.weight") {
            Ok(t) => Arc::new(t),
            Err(_) => embed_q,
        };
        let norm = Norm::read(tensor("output_norm.weight")?, eps, device)?;
        let mut layers = Vec::with_capacity(n_layers);
        for idx in 0..n_layers {
            let mut t = |name: &str| tensor(&format!("blk.{idx}.{name}"));
            let mut values =
                |name: &str| -> Result<Vec<f32>> { t(name)?.dequantize(device)?.to_vec1() };
            let bias = match values("attn_q.bias") {
                Ok(bq) => Some(Arc::new([bq, values("attn_k.bias")?, values("attn_v.bias")?])),
                Err(_) => None,
            };
            let qk_norm = match arch {
                "qwen3" => Some((
                    Norm::read(t("attn_q_norm.weight")?, eps, device)?,
                    Norm::read(t("attn_k_norm.weight")?, eps, device)?,
                )),
                _ => None,
            };
            layers.push(Layer {
                wq: QLinear::new(t("attn_q.weight")?)?,
                wk: QLinear::new(t("attn_k.weight")?)?,
                wv: QLinear::new(t("attn_v.weight")?)?,
                bias,
                qk_norm,
                wo: QLinear::new(t("attn_output.weight")?)?,
                attn_norm: Norm::read(t("attn_norm.weight")?, eps, device)?,
                ffn_norm: Norm::read(t("ffn_norm.weight")?, eps, device)?,
                gate: QLinear::new(t("ffn_gate.weight")?)?,
                up: QLinear::new(t("ffn_up.weight")?)?,
                down: QLinear::new(t("ffn_down.weight")?)?,
                n_head,
                n_kv_head,
                head_dim,
                rope: rope.clone(),
                cache: LayerCache::default(),
            });
        }
        Ok(Self { embed, layers, norm, output: QLinear::from_arc(output)?, max_positions })
    }

    /// Logits after the last of `ids` (shape (batch, vocab)), the tokens sitting at `pos..`.
    pub fn forward(&mut self, ids: &Tensor, pos: usize) -> Result<Tensor> {
        let (b, seq_len) = ids.dims2()?;
        let flat: Vec<u32> = ids.flatten_all()?.to_vec1()?;
        if (b, seq_len) == (1, 1) {
            return self.decode(flat[0], pos, ids.device());
        }
        let mut x = self.embed.rows(&flat, ids.device())?.reshape((b, seq_len, ()))?;
        for layer in &mut self.layers {
            x = layer.forward(&x, pos)?;
        }
        let x = self.norm.forward(&x)?.i((.., seq_len - 1, ..))?;
        self.output.forward(&x.contiguous()?)
    }

    /// [`Self::forward`] for one token, on plain values through every layer.
    fn decode(&mut self, id: u32, pos: usize, device: &Device) -> Result<Tensor> {
        let mut x: Vec<f32> = self.embed.rows(&[id], device)?.flatten_all()?.to_vec1()?;
        for layer in &mut self.layers {
            layer.decode(&mut x, pos)?;
        }
        let [logits] = QLinear::decode_many([&self.output], &self.norm.values(&x)?)?;
        let vocab = logits.len();
        Tensor::from_vec(logits, (1, vocab), device)
    }
}

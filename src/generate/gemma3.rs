//! Gemma 3 from GGUF, Quarry's own module. candle-transformers 0.11's `quantized_gemma3`
//! differs from the model in three ways that change answers: its feed-forward uses SiLU where
//! Gemma uses tanh-approximated GELU, it applies the sliding window only when prefilling (so
//! decoding past the window attends to everything), and it cannot continue a cache with a
//! multi-token pass. This module follows llama.cpp's `gemma3` graph instead; it was checked
//! against llama.cpp's logits with `bench/compare_logits.py`.

use candle_core::quantized::gguf_file;
use candle_core::{Device, IndexOp, Module, Result, Tensor};
use candle_transformers::quantized_nn::RmsNorm;

use quarry_quant_kernels::attention::AttentionShape;

use super::attention::{self, LayerCache, Rope, Shape};
use std::sync::Arc;

use super::linear::{QLinear, Weight};
use super::llama_family::{EmbeddingTable, GgufTensors};

#[derive(Debug, Clone)]
struct Layer {
    wq: QLinear,
    wk: QLinear,
    wv: QLinear,
    wo: QLinear,
    q_norm: RmsNorm,
    k_norm: RmsNorm,
    attn_norm: RmsNorm,
    post_attn_norm: RmsNorm,
    ffn_norm: RmsNorm,
    post_ffn_norm: RmsNorm,
    gate: QLinear,
    up: QLinear,
    down: QLinear,
    n_head: usize,
    n_kv_head: usize,
    head_dim: usize,
    /// Keys at positions `pos - window` and before are hidden from a query at `pos`.
    window: Option<usize>,
    rope: Rope,
    cache: LayerCache,
}

impl Layer {
    fn attention(&mut self, x: &Tensor, pos: usize) -> Result<Tensor> {
        let (b, seq_len, _) = x.dims3()?;
        if b != 1 {
            candle_core::bail!("the attention cache holds one sequence, not {b}");
        }
        let heads = |t: Tensor, n: usize| t.reshape((b, seq_len, n, self.head_dim));
        let [q, k, v] = QLinear::forward_many([&self.wq, &self.wk, &self.wv], x)?;
        // Per-head norms, then position-major values for one causal pass on plain slices.
        let values = |t: Tensor| -> Result<Vec<f32>> { t.flatten_all()?.to_vec1() };
        let q = values(self.q_norm.forward(&heads(q, self.n_head)?)?)?;
        let k = values(self.k_norm.forward(&heads(k, self.n_kv_head)?)?)?;
        let shape = AttentionShape {
            n_head: self.n_head,
            n_kv_head: self.n_kv_head,
            head_dim: self.head_dim,
        };
        let out = attention::prompt_step(
            q,
            k,
            &values(v)?,
            shape,
            &self.rope,
            self.window,
            &mut self.cache,
            pos,
        )?;
        let out = Tensor::from_vec(out, (b, seq_len, self.n_head * self.head_dim), x.device())?;
        self.wo.forward(&out)
    }

    fn forward(&mut self, x: &Tensor, pos: usize) -> Result<Tensor> {
        let h = self.attn_norm.forward(x)?;
        let attended = self.attention(&h, pos)?;
        let h = self.post_attn_norm.forward(&attended)?;
        let x = (x + h)?;
        let h = self.ffn_norm.forward(&x)?;
        let [gate, up] = QLinear::forward_many([&self.gate, &self.up], &h)?;
        let h = (gate.gelu()? * up)?;
        let h = self.post_ffn_norm.forward(&self.down.forward(&h)?)?;
        x + h
    }
}

/// A Gemma 3 network read from GGUF.
#[derive(Debug, Clone)]
pub struct Gemma3 {
    /// Kept in the file's encoding (a 262k-row table expanded to f32 would be 670 MB); only
    /// the rows looked up are expanded.
    embed: EmbeddingTable,
    hidden: usize,
    layers: Vec<Layer>,
    norm: RmsNorm,
    output: QLinear,
    /// Positions the rotary tables cover.
    pub max_positions: usize,
}

impl Gemma3 {
    /// Reads the weights named as llama.cpp's converter names them.
    pub fn from_gguf<R: std::io::Seek + std::io::Read>(
        content: gguf_file::Content,
        reader: &mut R,
        device: &Device,
    ) -> Result<Self> {
        let md = |key: &str| attention::metadata(&content, "gemma3", key);
        let Shape { n_head, n_kv_head, n_layers, hidden, head_dim, eps, context } =
            Shape::read(&content, "gemma3")?;
        let window = md("attention.sliding_window")?.to_u32()? as usize;
        let base = md("rope.freq_base").and_then(|v| v.to_f32()).unwrap_or(1_000_000.0);
        let local_base = md("rope.local_freq_base").and_then(|v| v.to_f32()).unwrap_or(10_000.0);
        // Every sixth layer attends globally (llama.cpp: swa pattern 6).
        let pattern = md("attention.sliding_window_type")
            .and_then(|v| v.to_u32())
            .map(|v| v as usize)
            .unwrap_or(6);
        let max_positions = context.min(32_768);
        let global_rope = Rope::new(head_dim, base, max_positions, device)?;
        let local_rope = Rope::new(head_dim, local_base, max_positions, device)?;

        let mut tensors = GgufTensors { content: &content, reader, device, buffer: Vec::new() };
        let mut tensor = |name: &str| tensors.tensor(name);
        let embed_q = Arc::new(tensor("token_embd.weight")?);
        let output = match tensor("output.weight") {
            Ok(t) => QLinear::new(t)?,
            Err(_) => QLinear::from_arc(Arc::clone(&embed_q))?,
        };
        let embed = EmbeddingTable { table: Weight::Quantized(embed_q) };
        let norm = RmsNorm::from_qtensor(tensor("output_norm.weight")?, eps)?;
        let mut layers = Vec::with_capacity(n_layers);
        for idx in 0..n_layers {
            let mut t = |name: &str| tensor(&format!("blk.{idx}.{name}.weight"));
            let sliding = (idx + 1) % pattern != 0;
            layers.push(Layer {
                wq: QLinear::new(t("attn_q")?)?,
                wk: QLinear::new(t("attn_k")?)?,
                wv: QLinear::new(t("attn_v")?)?,
                wo: QLinear::new(t("attn_output")?)?,
                q_norm: RmsNorm::from_qtensor(t("attn_q_norm")?, eps)?,
                k_norm: RmsNorm::from_qtensor(t("attn_k_norm")?, eps)?,
                attn_norm: RmsNorm::from_qtensor(t("attn_norm")?, eps)?,
                post_attn_norm: RmsNorm::from_qtensor(t("post_attention_norm")?, eps)?,
                ffn_norm: RmsNorm::from_qtensor(t("ffn_norm")?, eps)?,
                post_ffn_norm: RmsNorm::from_qtensor(t("post_ffw_norm")?, eps)?,
                gate: QLinear::new(t("ffn_gate")?)?,
                up: QLinear::new(t("ffn_up")?)?,
                down: QLinear::new(t("ffn_down")?)?,
                n_head,
                n_kv_head,
                head_dim,
                window: sliding.then_some(window),
                rope: if sliding { local_rope.clone() } else { global_rope.clone() },
                cache: LayerCache::default(),
            });
        }
        Ok(Self { embed, hidden, layers, norm, output, max_positions })
    }

    /// Logits after the last of `ids` (shape (batch, vocab)), the tokens sitting at `pos..`.
    pub fn forward(&mut self, ids: &Tensor, pos: usize) -> Result<Tensor> {
        let (b, seq_len) = ids.dims2()?;
        let flat: Vec<u32> = ids.flatten_all()?.to_vec1()?;
        let mut x = self.embed.rows(&flat, ids.device())?.reshape((b, seq_len, self.hidden))?;
        x = (x * (self.hidden as f64).sqrt())?;
        for layer in &mut self.layers {
            x = layer.forward(&x, pos)?;
        }
        let x = self.norm.forward(&x)?.i((.., seq_len - 1, ..))?;
        self.output.forward(&x.contiguous()?)
    }
}

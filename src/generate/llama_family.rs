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

use candle_core::quantized::{QTensor, gguf_file};
use candle_core::{Device, IndexOp, Result, Tensor};

use quarry_quant_kernels::activation::{add_in_place, rms_norm, silu_mul_in_place};
use quarry_quant_kernels::attention::AttentionShape;

use super::attention::{self, LayerCache, Rope, Shape};
use super::linear::{QLinear, Weight};

/// An embedding table as the checkpoint stores it (shared with the output layer when the
/// model ties them): GGUF tables stay in their encoding and only the rows looked up are
/// expanded.
#[derive(Debug, Clone)]
pub(crate) struct EmbeddingTable {
    pub(crate) table: Weight,
}

impl EmbeddingTable {
    /// The rows of `ids`, expanded to f32: (ids, width).
    pub(crate) fn rows(&self, ids: &[u32], device: &Device) -> Result<Tensor> {
        let (vocab, width) = self.table.dims()?;
        if let Some(&id) = ids.iter().find(|&&id| id as usize >= vocab) {
            candle_core::bail!("token id {id} is outside the vocabulary of {vocab}");
        }
        let table = match &self.table {
            Weight::Dense(t) => return t.index_select(&Tensor::new(ids, device)?, 0),
            Weight::Quantized(q) => q,
        };
        let dtype = table.dtype();
        let row_bytes = width / dtype.block_size() * dtype.type_size();
        // On the CPU this borrows the loaded bytes.
        let bytes = table.data()?;
        let mut raw = Vec::with_capacity(ids.len() * row_bytes);
        for &id in ids {
            let start = id as usize * row_bytes;
            raw.extend_from_slice(&bytes[start..start + row_bytes]);
        }
        let rows = candle_core::quantized::ggml_file::qtensor_from_ggml(
            dtype,
            &raw,
            vec![ids.len(), width],
            device,
        )?;
        rows.dequantize(device)
    }
}

/// Where a llama-family network's tensors come from, by the names llama.cpp's converter
/// gives them (`blk.3.attn_q.weight`): a GGUF file, or a safetensors checkpoint whose
/// Hugging Face names are mapped (`safetensors_checkpoint.rs`).
pub(crate) trait TensorSource {
    /// Whether the checkpoint holds `name`.
    fn has(&self, name: &str) -> bool;
    /// A matrix (rows, cols).
    fn matrix(&mut self, name: &str) -> Result<Weight>;
    /// A vector (norm weights, biases, rotary factors) as plain values.
    fn vector(&mut self, name: &str) -> Result<Vec<f32>>;
}

/// The tensors of a GGUF file.
pub(crate) struct GgufTensors<'a, R> {
    pub(crate) content: &'a gguf_file::Content,
    pub(crate) reader: &'a mut R,
    pub(crate) device: &'a Device,
    /// One read buffer for every tensor: a fresh one per tensor (as candle's reader does) costs
    /// a page fault per 4 KiB of the file.
    pub(crate) buffer: Vec<u8>,
}

impl<R: std::io::Seek + std::io::Read> GgufTensors<'_, R> {
    /// The tensor `name` in the file's encoding.
    pub(crate) fn tensor(&mut self, name: &str) -> Result<QTensor> {
        let Some(info) = self.content.tensor_infos.get(name) else {
            candle_core::bail!("the file has no tensor {name}")
        };
        let (elems, block) = (info.shape.elem_count(), info.ggml_dtype.block_size());
        if !elems.is_multiple_of(block) {
            candle_core::bail!("{name}: {elems} values do not fill blocks of {block}");
        }
        let bytes = elems / block * info.ggml_dtype.type_size();
        let start = self.content.tensor_data_offset.saturating_add(info.offset);
        self.reader.seek(std::io::SeekFrom::Start(start))?;
        if self.buffer.len() < bytes {
            // Zeroed by the allocator, not by `resize`'s byte loop (unoptimised in dev builds,
            // where it took a second of a 491 MB model's load).
            self.buffer = vec![0u8; bytes];
        }
        let buffer = &mut self.buffer[..bytes];
        self.reader.read_exact(buffer).map_err(|e| {
            candle_core::Error::Msg(format!("{name}: {bytes} bytes at offset {start}: {e}"))
        })?;
        candle_core::quantized::ggml_file::qtensor_from_ggml(
            info.ggml_dtype,
            buffer,
            info.shape.dims().to_vec(),
            self.device,
        )
    }
}

impl<R: std::io::Seek + std::io::Read> TensorSource for GgufTensors<'_, R> {
    fn has(&self, name: &str) -> bool {
        self.content.tensor_infos.contains_key(name)
    }

    fn matrix(&mut self, name: &str) -> Result<Weight> {
        Ok(Weight::Quantized(Arc::new(self.tensor(name)?)))
    }

    fn vector(&mut self, name: &str) -> Result<Vec<f32>> {
        self.tensor(name)?.dequantize(self.device)?.to_vec1()
    }
}

/// What a llama-family network needs besides its tensors.
#[derive(Debug, Clone)]
pub(crate) struct FamilyConfig {
    /// "llama", "qwen2" or "qwen3".
    pub(crate) arch: String,
    pub(crate) shape: Shape,
    pub(crate) rope_base: f32,
    /// Per-frequency divisors of the rotary angles (Llama 3.1+), when the source has none.
    pub(crate) rope_factors: Option<Vec<f32>>,
    /// Rotate the two halves of each head (NeoX, and every Hugging Face checkpoint) rather
    /// than adjacent pairs (GGUF `llama`, whose converter permutes q and k to match).
    pub(crate) neox: bool,
}

/// RMS norm weights, held once as plain values: the decode step reads them as a slice, a
/// prompt chunk wraps them in a tensor per call (a few kilobytes).
#[derive(Debug, Clone)]
struct Norm {
    weight: Arc<Vec<f32>>,
    eps: f32,
}

impl Norm {
    fn new(weight: Vec<f32>, eps: f64) -> Self {
        Self { weight: Arc::new(weight), eps: eps as f32 }
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
        if b != 1 {
            candle_core::bail!("the attention cache holds one sequence, not {b}");
        }
        let [mut q, mut k, mut v] = QLinear::forward_many([&self.wq, &self.wk, &self.wv], x)?;
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
        let values = |t: Tensor| -> Result<Vec<f32>> { t.flatten_all()?.to_vec1() };
        let shape = AttentionShape {
            n_head: self.n_head,
            n_kv_head: self.n_kv_head,
            head_dim: self.head_dim,
        };
        let out = attention::prompt_step(
            values(q)?,
            values(k)?,
            &values(v)?,
            shape,
            &self.rope,
            None,
            &mut self.cache,
            pos,
        )?;
        let out = Tensor::from_vec(out, (b, seq_len, self.n_head * self.head_dim), x.device())?;
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
        let [gate, up] = QLinear::forward_many([&self.gate, &self.up], &h)?;
        let h = (candle_nn::ops::silu(&gate)? * up)?;
        x + self.down.forward(&h)?
    }
}

/// A Llama-family network read from GGUF.
#[derive(Debug, Clone)]
pub struct LlamaFamily {
    embed: EmbeddingTable,
    layers: Vec<Layer>,
    norm: Norm,
    output: QLinear,
    /// Positions the rotary tables cover.
    pub max_positions: usize,
}

impl LlamaFamily {
    /// Reads the weights of architecture `arch` ("llama", "qwen2" or "qwen3") from a GGUF
    /// file.
    pub fn from_gguf<R: std::io::Seek + std::io::Read>(
        arch: &str,
        content: gguf_file::Content,
        reader: &mut R,
        device: &Device,
    ) -> Result<Self> {
        let config = FamilyConfig {
            arch: arch.to_owned(),
            shape: Shape::read(&content, arch)?,
            rope_base: attention::metadata(&content, arch, "rope.freq_base")
                .and_then(|v| v.to_f32())
                .unwrap_or(10_000.0),
            rope_factors: None,
            // llama.cpp: Llama rotates adjacent pairs, Qwen the two halves (NeoX).
            neox: arch != "llama",
        };
        let mut tensors = GgufTensors { content: &content, reader, device, buffer: Vec::new() };
        Self::build(config, &mut tensors, device)
    }

    /// The network of `config` over the tensors of `source`.
    pub(crate) fn build(
        config: FamilyConfig,
        source: &mut dyn TensorSource,
        device: &Device,
    ) -> Result<Self> {
        let Shape { n_head, n_kv_head, n_layers, hidden: _, head_dim, eps, context } = config.shape;
        let max_positions = context.min(32_768);
        // Llama 3.1+ GGUF files store per-frequency divisors for long-context rope scaling.
        let factors = match source.has("rope_freqs.weight") {
            true => Some(source.vector("rope_freqs.weight")?),
            false => config.rope_factors,
        };
        let rope = Rope::with_factors(
            head_dim,
            config.rope_base,
            max_positions,
            factors.as_deref(),
            config.neox,
            device,
        )?;
        let embed = EmbeddingTable { table: source.matrix("token_embd.weight")? };
        let output = match source.has("output.weight") {
            true => source.matrix("output.weight")?,
            false => embed.table.clone(),
        };
        let norm = Norm::new(source.vector("output_norm.weight")?, eps);
        let mut layers = Vec::with_capacity(n_layers);
        for idx in 0..n_layers {
            let name = |n: &str| format!("blk.{idx}.{n}");
            let mut linear = |n: &str| QLinear::from_weight(source.matrix(&name(n))?);
            let (wq, wk, wv) =
                (linear("attn_q.weight")?, linear("attn_k.weight")?, linear("attn_v.weight")?);
            let (wo, gate, up, down) = (
                linear("attn_output.weight")?,
                linear("ffn_gate.weight")?,
                linear("ffn_up.weight")?,
                linear("ffn_down.weight")?,
            );
            let has_bias = source.has(&name("attn_q.bias"));
            let mut vector = |n: &str| source.vector(&name(n));
            let bias = match has_bias {
                true => Some(Arc::new([
                    vector("attn_q.bias")?,
                    vector("attn_k.bias")?,
                    vector("attn_v.bias")?,
                ])),
                false => None,
            };
            let qk_norm = match config.arch.as_str() {
                "qwen3" => Some((
                    Norm::new(vector("attn_q_norm.weight")?, eps),
                    Norm::new(vector("attn_k_norm.weight")?, eps),
                )),
                _ => None,
            };
            layers.push(Layer {
                wq,
                wk,
                wv,
                bias,
                qk_norm,
                wo,
                attn_norm: Norm::new(vector("attn_norm.weight")?, eps),
                ffn_norm: Norm::new(vector("ffn_norm.weight")?, eps),
                gate,
                up,
                down,
                n_head,
                n_kv_head,
                head_dim,
                rope: rope.clone(),
                cache: LayerCache::default(),
            });
        }
        Ok(Self { embed, layers, norm, output: QLinear::from_weight(output)?, max_positions })
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

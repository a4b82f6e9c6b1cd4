//! What Quarry's own transformer modules (`llama_family.rs`, `gemma3.rs`) share: rotary tables, the
//! attention cache of one layer, and the attention of a decode step and of a prompt chunk, one
//! pass each on plain slices through `quarry-quant-kernels` (grouped-query, the cache never
//! copied per query head, a sliding window where the model has one).

use std::sync::Arc;

use candle_core::quantized::gguf_file;
use candle_core::{DType, Device, Result, Tensor};
use quarry_quant_kernels::attention::{AttentionShape, attend_causal, attend_one, rope_in_place};

use super::linear::{CandlePool, kernel_error};

/// Rotary embedding tables for `positions` positions.
#[derive(Debug, Clone)]
pub(crate) struct Rope {
    /// Cosines and sines, positions × head_dim / 2, shared by every layer.
    cos_rows: Arc<Vec<f32>>,
    sin_rows: Arc<Vec<f32>>,
    /// Rotate the two halves of a head (NeoX) rather than adjacent pairs (Llama).
    neox: bool,
}

impl Rope {
    /// NeoX-style tables with frequencies `base^(-2i/head_dim)`.
    pub(crate) fn new(
        head_dim: usize,
        base: f32,
        positions: usize,
        device: &Device,
    ) -> Result<Self> {
        Self::with_factors(head_dim, base, positions, None, true, device)
    }

    /// Tables whose frequency `i` is divided by `factors[i]` when given (Llama 3.1+'s
    /// `rope_freqs`).
    pub(crate) fn with_factors(
        head_dim: usize,
        base: f32,
        positions: usize,
        factors: Option<&[f32]>,
        neox: bool,
        device: &Device,
    ) -> Result<Self> {
        let inv: Vec<f32> = (0..head_dim / 2)
            .map(|i| {
                let f = 1.0 / base.powf(2.0 * i as f32 / head_dim as f32);
                f / factors.and_then(|fs| fs.get(i)).copied().unwrap_or(1.0)
            })
            .collect();
        let inv = Tensor::new(inv.as_slice(), device)?;
        let t = Tensor::arange(0, positions as u32, device)?.to_dtype(DType::F32)?;
        let freqs = t.reshape((positions, 1))?.matmul(&inv.reshape((1, head_dim / 2))?)?;
        let cos_rows = Arc::new(freqs.cos()?.flatten_all()?.to_vec1()?);
        let sin_rows = Arc::new(freqs.sin()?.flatten_all()?.to_vec1()?);
        Ok(Self { cos_rows, sin_rows, neox })
    }

    /// The cosines and sines of positions `pos..pos + n` for heads of `head_dim`.
    fn rows(&self, pos: usize, n: usize, head_dim: usize) -> Result<(&[f32], &[f32])> {
        let half = head_dim / 2;
        let range = pos * half..(pos + n) * half;
        match (self.cos_rows.get(range.clone()), self.sin_rows.get(range)) {
            (Some(cos), Some(sin)) => Ok((cos, sin)),
            _ => candle_core::bail!("positions up to {} are beyond the rotary tables", pos + n),
        }
    }

    /// Rotates heads of `head_dim` values in `x` in place for position `pos`.
    pub(crate) fn apply_to_slice(&self, x: &mut [f32], head_dim: usize, pos: usize) -> Result<()> {
        let (cos, sin) = self.rows(pos, 1, head_dim)?;
        rope_in_place(x, head_dim, cos, sin, self.neox).map_err(kernel_error)
    }
}

/// One layer's keys and values so far, position-major (positions × kv_heads × head_dim), in
/// buffers that grow geometrically, so a decode step appends one token instead of copying
/// the whole cache.
#[derive(Debug, Clone, Default)]
pub(crate) struct LayerCache {
    keys: Vec<f32>,
    values: Vec<f32>,
    /// kv_heads × head_dim, set by the first append.
    width: usize,
}

impl LayerCache {
    /// Positions held.
    pub(crate) fn len(&self) -> usize {
        self.keys.len().checked_div(self.width).unwrap_or(0)
    }

    /// Keeps positions `..pos` (position 0 starts a new sequence); refuses a gap.
    fn rewind_to(&mut self, pos: usize, width: usize) -> Result<()> {
        if pos == 0 || self.width != width {
            self.keys.clear();
            self.values.clear();
            self.width = width;
        }
        if pos > self.len() {
            candle_core::bail!("the attention cache holds {} positions, not {pos}", self.len());
        }
        self.keys.truncate(pos * width);
        self.values.truncate(pos * width);
        Ok(())
    }

    /// Adds one position's keys and values (kv_heads × head_dim each) at `pos` and returns
    /// every key and value so far, position-major.
    pub(crate) fn push(&mut self, k: &[f32], v: &[f32], pos: usize) -> Result<(&[f32], &[f32])> {
        self.extend(k, v, k.len(), pos)
    }

    /// Adds the keys and values of positions `pos..` (position-major, `width` values per
    /// position each) and returns every key and value so far, position-major.
    pub(crate) fn extend(
        &mut self,
        k: &[f32],
        v: &[f32],
        width: usize,
        pos: usize,
    ) -> Result<(&[f32], &[f32])> {
        if width == 0 || k.len() != v.len() || !k.len().is_multiple_of(width) {
            candle_core::bail!("{} keys and {} values in rows of {width}", k.len(), v.len());
        }
        self.rewind_to(pos, width)?;
        self.keys.extend_from_slice(k);
        self.values.extend_from_slice(v);
        Ok((&self.keys, &self.values))
    }
}

/// The decode step of one layer for one token: `q`, `k`, `v` are the projections (biases
/// added), rotated here, the key and value appended to `cache`, and the attention output
/// (n_head × head_dim) returned. Single-token counterpart of [`grouped`] with no mask.
pub(crate) fn decode_step(
    mut q: Vec<f32>,
    mut k: Vec<f32>,
    v: &[f32],
    shape: AttentionShape,
    rope: &Rope,
    cache: &mut LayerCache,
    pos: usize,
) -> Result<Vec<f32>> {
    rope.apply_to_slice(&mut q, shape.head_dim, pos)?;
    rope.apply_to_slice(&mut k, shape.head_dim, pos)?;
    let (keys, values) = cache.push(&k, v, pos)?;
    let mut out = vec![0f32; q.len()];
    let scale = 1.0 / (shape.head_dim as f32).sqrt();
    attend_one(&q, keys, values, shape, scale, &mut out, &CandlePool).map_err(kernel_error)?;
    Ok(out)
}

/// The attention of one layer for a prompt chunk of `seq` tokens at `pos..`: `q`, `k`, `v`
/// are the projections (position-major, biases added), rotated here, the keys and values
/// appended to `cache`, and the causal attention output (seq × n_head × head_dim) returned;
/// with a `window`, a query at `p` sees keys after `p - window` only. Chunk counterpart of
/// [`decode_step`].
#[allow(clippy::too_many_arguments)]
pub(crate) fn prompt_step(
    mut q: Vec<f32>,
    mut k: Vec<f32>,
    v: &[f32],
    shape: AttentionShape,
    rope: &Rope,
    window: Option<usize>,
    cache: &mut LayerCache,
    pos: usize,
) -> Result<Vec<f32>> {
    let (q_width, kv_width) = (shape.n_head * shape.head_dim, shape.n_kv_head * shape.head_dim);
    if q_width == 0 || kv_width == 0 || !q.len().is_multiple_of(q_width) {
        candle_core::bail!("{} query values for {shape:?}", q.len());
    }
    let seq = q.len() / q_width;
    if k.len() != seq * kv_width {
        candle_core::bail!("{} key values for {seq} positions of {shape:?}", k.len());
    }
    for (i, (q, k)) in q.chunks_exact_mut(q_width).zip(k.chunks_exact_mut(kv_width)).enumerate() {
        rope.apply_to_slice(q, shape.head_dim, pos + i)?;
        rope.apply_to_slice(k, shape.head_dim, pos + i)?;
    }
    let (keys, values) = cache.extend(&k, v, kv_width, pos)?;
    let mut out = vec![0f32; q.len()];
    let scale = 1.0 / (shape.head_dim as f32).sqrt();
    attend_causal(&q, keys, values, shape, scale, window, &mut out, &CandlePool)
        .map_err(kernel_error)?;
    Ok(out)
}

/// The hyperparameters every decoder in GGUF declares under `<arch>.`.
#[derive(Debug, Clone)]
pub(crate) struct Shape {
    pub(crate) n_head: usize,
    pub(crate) n_kv_head: usize,
    pub(crate) n_layers: usize,
    pub(crate) hidden: usize,
    /// `attention.key_length`, else `hidden / n_head`.
    pub(crate) head_dim: usize,
    pub(crate) eps: f64,
    pub(crate) context: usize,
}

/// Reads `<arch>.<key>` from the GGUF metadata.
pub(crate) fn metadata<'a>(
    content: &'a gguf_file::Content,
    arch: &str,
    key: &str,
) -> Result<&'a gguf_file::Value> {
    content
        .metadata
        .get(&format!("{arch}.{key}"))
        .ok_or_else(|| candle_core::Error::Msg(format!("cannot find {arch}.{key}")))
}

impl Shape {
    pub(crate) fn read(content: &gguf_file::Content, arch: &str) -> Result<Self> {
        let md = |key: &str| metadata(content, arch, key);
        let n_head = md("attention.head_count")?.to_u32()? as usize;
        let hidden = md("embedding_length")?.to_u32()? as usize;
        Ok(Self {
            n_head,
            n_kv_head: md("attention.head_count_kv")?.to_u32()? as usize,
            n_layers: md("block_count")?.to_u32()? as usize,
            hidden,
            head_dim: md("attention.key_length")
                .and_then(|v| v.to_u32())
                .map(|v| v as usize)
                .unwrap_or(hidden / n_head),
            eps: md("attention.layer_norm_rms_epsilon")?.to_f32()? as f64,
            context: md("context_length")?.to_u32()? as usize,
        })
    }
}

/// Llama 3.1's rope scaling as llama.cpp's converter stores it (`rope_freqs`): a divisor per
/// frequency, 1 for wavelengths below `original / high`, `factor` above `original / low`,
/// smooth in between (`config.json`'s `rope_scaling` of type "llama3").
pub(crate) fn llama3_rope_factors(
    head_dim: usize,
    base: f32,
    factor: f32,
    low: f32,
    high: f32,
    original: f32,
) -> Vec<f32> {
    (0..head_dim / 2)
        .map(|i| {
            let freq = 1.0 / base.powf(2.0 * i as f32 / head_dim as f32);
            let wavelen = 2.0 * std::f32::consts::PI / freq;
            if wavelen < original / high {
                1.0
            } else if wavelen > original / low {
                factor
            } else {
                let smooth = (original / wavelen - low) / (high - low);
                1.0 / ((1.0 - smooth) / factor + smooth)
            }
        })
        .collect()
}

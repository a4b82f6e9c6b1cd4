//! A quantized weight matrix that picks its kernel by the number of tokens and the encoding:
//! decoding (few tokens) reads the compact weights once per token — `quarry-quant-kernels`' dot
//! products for Q5_0, Q8_0, Q4_K and Q6_K, candle's for the other encodings — while a prompt
//! chunk, on a CPU with AVX-512 VNNI or AVX-VNNI, goes through the kernel crate's prompt kernel (weights
//! unpacked to bytes per group of rows, byte products tile by tile; README for its speed
//! against llama.cpp). Elsewhere, and for other encodings, a prompt chunk expands the weights
//! to f32 and runs one GEMM, several times faster for many tokens than a quantized dot product
//! per token (Qwen2.5-0.5B-shaped Q4_K_M at 2 threads: ~108 prompt tokens/s quantized, ~250
//! with every weight kept in f32); expanding per call keeps memory at the compact size plus one
//! f32 matrix at a time.

use std::borrow::Cow;
use std::sync::Arc;

use candle_core::quantized::{GgmlDType, QMatMul, QTensor, ggml_file};
use candle_core::{D, Device, Module, Result, Tensor};
use quarry_quant_kernels::prompt_gemm::{self, PromptActivations, PromptProduct, matmul_prompt};
use quarry_quant_kernels::{
    Activations, Executor, Product, WeightEncoding, dequantize_q5_0, matmul_many,
};
use rayon::prelude::*;

/// Tokens in one call from which the f32 GEMM path pays for expanding the weights.
const GEMM_FROM_TOKENS: usize = 32;
/// Tokens in one call from which the prompt kernel (where the CPU has it) beats a dot
/// product per token.
const PROMPT_KERNEL_FROM_TOKENS: usize = 4;

/// A weight matrix (out_features, in_features) as the checkpoint stores it.
#[derive(Debug, Clone)]
pub(crate) enum Weight {
    /// In a GGUF encoding; shared where a tied embedding table is also the output layer.
    Quantized(Arc<QTensor>),
    /// Plain f32 values (safetensors checkpoints, run in full precision).
    Dense(Tensor),
}

impl Weight {
    /// (rows, cols).
    pub(crate) fn dims(&self) -> Result<(usize, usize)> {
        match self {
            Self::Quantized(q) => q.shape().dims2(),
            Self::Dense(t) => t.dims2(),
        }
    }
}

/// A linear layer without bias over a quantized or plain weight (out_features, in_features).
#[derive(Debug, Clone)]
pub(crate) struct QLinear {
    /// candle's kernels, for every encoding but Q5_0 and plain weights.
    quantized: Option<QMatMul>,
    weight: Weight,
    /// The encoding `quarry-quant-kernels` multiplies one token with, where it has a kernel.
    own_encoding: Option<WeightEncoding>,
}

/// candle's own worker pool: its idle workers spin for a while after each candle kernel, so
/// work handed to another pool (rayon) in between competes with them for the cores.
pub(crate) struct CandlePool;

impl Executor for CandlePool {
    fn run(&self, items: usize, work: &(dyn Fn(std::ops::Range<usize>) + Sync)) {
        candle_core::utils::barrier_pool().execute_chunked(items, work);
    }
}

/// A kernel's shape error as candle's error type.
pub(crate) fn kernel_error(e: quarry_quant_kernels::ShapeError) -> candle_core::Error {
    candle_core::Error::Msg(e.to_string())
}

impl QLinear {
    pub(crate) fn new(weight: QTensor) -> Result<Self> {
        Self::from_arc(Arc::new(weight))
    }

    pub(crate) fn from_weight(weight: Weight) -> Result<Self> {
        match weight {
            Weight::Quantized(q) => Self::from_arc(q),
            dense @ Weight::Dense(_) => {
                Ok(Self { quantized: None, weight: dense, own_encoding: None })
            }
        }
    }

    /// A layer over a weight shared with another user (a tied embedding table).
    pub(crate) fn from_arc(weight: Arc<QTensor>) -> Result<Self> {
        let own_encoding = match weight.dtype() {
            GgmlDType::Q5_0 => Some(WeightEncoding::Q5_0),
            GgmlDType::Q8_0 => Some(WeightEncoding::Q8_0),
            GgmlDType::Q4K => Some(WeightEncoding::Q4K),
            GgmlDType::Q6K => Some(WeightEncoding::Q6K),
            _ => None,
        };
        // candle's kernels only for the encodings Quarry's kernels lack (its Q4_K path would
        // also keep a repacked copy of the matrix, a third larger than the file's bytes).
        let quantized = match own_encoding {
            Some(_) => None,
            None => Some(QMatMul::from_arc(weight.clone())?),
        };
        Ok(Self { quantized, weight: Weight::Quantized(weight), own_encoding })
    }

    /// One token through several layers that read the same input `x`: the outputs, in the
    /// layers' order. Layers in an encoding `quarry-quant-kernels` has share one quantization
    /// of `x` and one hand-out of work to the threads; the others go through candle.
    pub(crate) fn decode_many<const N: usize>(
        layers: [&QLinear; N],
        x: &[f32],
    ) -> Result<[Vec<f32>; N]> {
        let mut outputs: [Vec<f32>; N] = std::array::from_fn(|_| Vec::new());
        for (layer, out) in layers.iter().zip(outputs.iter_mut()) {
            let (rows, cols) = layer.weight.dims()?;
            if cols != x.len() {
                candle_core::bail!("{} inputs for a layer of {cols}", x.len());
            }
            if layer.own_encoding.is_some() {
                *out = vec![0f32; rows];
            }
        }
        let bytes: Vec<Option<Cow<'_, [u8]>>> = layers
            .iter()
            .map(|l| match (&l.weight, l.own_encoding) {
                (Weight::Quantized(q), Some(_)) => q.data().map(Some),
                _ => Ok(None),
            })
            .collect::<Result<_>>()?;
        let mut products = Vec::with_capacity(layers.len());
        for ((layer, out), bytes) in layers.iter().zip(outputs.iter_mut()).zip(&bytes) {
            if let (Some(encoding), Some(weights)) = (layer.own_encoding, bytes) {
                products.push(Product { encoding, weights, rows: out.len(), out });
            }
        }
        if !products.is_empty() {
            let encodings: Vec<WeightEncoding> = products.iter().map(|p| p.encoding).collect();
            let acts = Activations::quantize(x, x.len(), &encodings).map_err(kernel_error)?;
            matmul_many(&mut products, &acts, &CandlePool).map_err(kernel_error)?;
        }
        drop(products);
        for (layer, out) in layers.iter().zip(outputs.iter_mut()) {
            if layer.own_encoding.is_none() {
                let input = Tensor::from_slice(x, (1, x.len()), &Device::Cpu)?;
                *out = layer.forward(&input)?.flatten_all()?.to_vec1()?;
            }
        }
        Ok(outputs)
    }

    /// `x` (batch, tokens, in_features) or (tokens, in_features) → the same with out_features.
    pub(crate) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let weight = match &self.weight {
            Weight::Dense(w) => return x.broadcast_matmul(&w.t()?),
            Weight::Quantized(q) => q,
        };
        let tokens = x.elem_count() / x.dim(D::Minus1)?;
        if self.takes_prompt_kernel(tokens, x.dim(D::Minus1)?) {
            let [out] = Self::forward_many([self], x)?;
            return Ok(out);
        }
        if tokens < GEMM_FROM_TOKENS {
            return match (&self.quantized, self.own_encoding) {
                (_, Some(encoding)) => Self::forward_own(weight, encoding, x, tokens),
                (Some(quantized), None) => quantized.forward(x),
                (None, None) => candle_core::bail!("no kernel for {:?}", weight.dtype()),
            };
        }
        Self::forward_expanded(weight, x)
    }

    /// A prompt chunk through weights expanded to f32, one GEMM per band of rows.
    fn forward_expanded(weight: &QTensor, x: &Tensor) -> Result<Tensor> {
        // Expanding is single-threaded in candle, so each thread expands a band of rows and
        // the bands' products are put side by side.
        let (rows, cols) = weight.shape().dims2()?;
        let dtype = weight.dtype();
        let row_bytes = cols / dtype.block_size() * dtype.type_size();
        let bytes = weight.data()?;
        let band = rows.div_ceil(rayon::current_num_threads().max(1));
        let bands: Vec<Tensor> = (0..rows)
            .step_by(band)
            .collect::<Vec<_>>()
            .into_par_iter()
            .map(|start| {
                let n = band.min(rows - start);
                let raw = &bytes[start * row_bytes..(start + n) * row_bytes];
                if dtype == GgmlDType::Q5_0 {
                    let mut dense = vec![0f32; n * cols];
                    dequantize_q5_0(raw, cols, &mut dense).map_err(kernel_error)?;
                    return Tensor::from_vec(dense, (n, cols), &Device::Cpu);
                }
                ggml_file::qtensor_from_ggml(dtype, raw, vec![n, cols], &Device::Cpu)?
                    .dequantize(&Device::Cpu)
            })
            .collect::<Result<_>>()?;
        let outputs =
            bands.iter().map(|w| x.broadcast_matmul(&w.t()?)).collect::<Result<Vec<_>>>()?;
        Tensor::cat(&outputs, D::Minus1)
    }

    /// Whether a chunk of `tokens` rows of `cols` values runs through the prompt kernel.
    fn takes_prompt_kernel(&self, tokens: usize, cols: usize) -> bool {
        self.own_encoding.is_some()
            && matches!(self.weight, Weight::Quantized(_))
            && tokens >= PROMPT_KERNEL_FROM_TOKENS
            && cols.is_multiple_of(prompt_gemm::GROUP)
            && self.own_encoding.is_some_and(prompt_gemm::fast_for)
    }

    /// A prompt chunk `x` through several layers that read it (q/k/v, gate/up): the outputs,
    /// in the layers' order. Where every layer takes the prompt kernel, `x` is quantized once
    /// and all the products are one hand-out of work; otherwise each layer runs on its own.
    pub(crate) fn forward_many<const N: usize>(
        layers: [&QLinear; N],
        x: &Tensor,
    ) -> Result<[Tensor; N]> {
        let cols = x.dim(D::Minus1)?;
        let tokens = x.elem_count() / cols.max(1);
        if !layers.iter().all(|l| l.takes_prompt_kernel(tokens, cols)) {
            let outputs = layers.iter().map(|l| l.forward(x)).collect::<Result<Vec<_>>>()?;
            return outputs.try_into().map_err(|_| candle_core::Error::Msg("layer count".into()));
        }
        let mut weights = Vec::with_capacity(N);
        for layer in layers {
            let (Weight::Quantized(q), Some(encoding)) = (&layer.weight, layer.own_encoding) else {
                candle_core::bail!("a layer without a prompt kernel among those that take it");
            };
            let (rows, width) = q.shape().dims2()?;
            if width != cols {
                candle_core::bail!("{cols} inputs for a layer of {width}");
            }
            weights.push((q.data()?, encoding, rows));
        }
        let values: Vec<f32> = x.flatten_all()?.to_vec1()?;
        let acts = PromptActivations::quantize(&values, cols).map_err(kernel_error)?;
        let mut outputs: Vec<Vec<f32>> =
            weights.iter().map(|(_, _, rows)| vec![0f32; rows * tokens]).collect();
        let mut products: Vec<PromptProduct<'_>> = weights
            .iter()
            .zip(outputs.iter_mut())
            .map(|((bytes, encoding, rows), out)| PromptProduct {
                encoding: *encoding,
                weights: bytes,
                rows: *rows,
                out,
            })
            .collect();
        matmul_prompt(&mut products, &acts, &CandlePool).map_err(kernel_error)?;
        drop(products);
        let tensors = outputs
            .into_iter()
            .zip(&weights)
            .map(|(out, (_, _, rows))| {
                let mut dims = x.dims().to_vec();
                if let Some(last) = dims.last_mut() {
                    *last = *rows;
                }
                Tensor::from_vec(out, dims, &Device::Cpu)
            })
            .collect::<Result<Vec<_>>>()?;
        tensors.try_into().map_err(|_| candle_core::Error::Msg("layer count".into()))
    }

    /// Few tokens through a weight `quarry-quant-kernels` multiplies: activations quantized
    /// once, integer dot products.
    fn forward_own(
        weight: &QTensor,
        encoding: WeightEncoding,
        x: &Tensor,
        tokens: usize,
    ) -> Result<Tensor> {
        let (rows, cols) = weight.shape().dims2()?;
        // On the CPU this borrows the loaded bytes.
        let bytes = weight.data()?;
        let values: Vec<f32> = x.flatten_all()?.to_vec1()?;
        let acts = Activations::quantize(&values, cols, &[encoding]).map_err(kernel_error)?;
        let mut out = vec![0f32; rows * tokens];
        let product = Product { encoding, weights: &bytes, rows, out: &mut out };
        matmul_many(&mut [product], &acts, &CandlePool).map_err(kernel_error)?;
        // The kernel writes weight row by weight row; the layer's output is token by token.
        let out = Tensor::from_vec(out, (rows, tokens), &Device::Cpu)?.t()?.contiguous()?;
        let mut dims = x.dims().to_vec();
        if let Some(last) = dims.last_mut() {
            *last = rows;
        }
        out.reshape(dims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q_arc(layer: &QLinear) -> Arc<QTensor> {
        match &layer.weight {
            Weight::Quantized(q) => q.clone(),
            Weight::Dense(_) => unreachable!("the test's layers are quantized"),
        }
    }

    /// A layer in each encoding Quarry's kernels multiply (weights quantized by candle, so
    /// the kernels read candle's and llama.cpp's block layout) gives the product of its
    /// expanded weights, for one token, a few and a prompt chunk, and through `decode_many`.
    #[test]
    fn own_kernel_layers_match_the_expanded_product() {
        let (rows, cols) = (48, 512);
        // Each 32-value sub-block of a row has its own magnitude (1x to 8x, shifted per row), so
        // a kernel that applied one sub-block's scale or min to another would be far off.
        let dense: Vec<f32> = (0..rows * cols)
            .map(|i| {
                let magnitude = 1 + (i % cols / 32 + i / cols) % 8;
                ((i * 37 % 23) as f32 - 11.0) / 40.0 * magnitude as f32
            })
            .collect();
        let w = Tensor::from_vec(dense, (rows, cols), &Device::Cpu).unwrap();
        for dtype in [GgmlDType::Q5_0, GgmlDType::Q8_0, GgmlDType::Q4K, GgmlDType::Q6K] {
            let q = QTensor::quantize(&w, dtype).unwrap();
            let expanded = q.dequantize(&Device::Cpu).unwrap();
            let layer = QLinear::new(q).unwrap();
            assert!(layer.quantized.is_none(), "{dtype:?} goes to Quarry's kernels");
            for tokens in [1, 3, PROMPT_KERNEL_FROM_TOKENS + 1, GEMM_FROM_TOKENS + 1] {
                let x: Vec<f32> =
                    (0..tokens * cols).map(|i| ((i * 13 % 17) as f32 - 8.0) / 9.0).collect();
                let x = Tensor::from_vec(x, (1, tokens, cols), &Device::Cpu).unwrap();
                let got = layer.forward(&x).unwrap();
                assert_eq!(got.dims(), &[1, tokens, rows]);
                let want = x.broadcast_matmul(&expanded.t().unwrap()).unwrap();
                let err: f32 =
                    (&got - &want).unwrap().abs().unwrap().max_all().unwrap().to_scalar().unwrap();
                let scale: f32 = want.abs().unwrap().max_all().unwrap().to_scalar().unwrap();
                // The kernels quantize the activations to 8 bits; the f32 path is exact.
                assert!(err <= scale * 0.01, "{dtype:?}, {tokens} tokens: error {err} of {scale}");
                if tokens > 1 {
                    let [a, b] = QLinear::forward_many([&layer, &layer], &x).unwrap();
                    let one: Vec<f32> = got.flatten_all().unwrap().to_vec1().unwrap();
                    for t in [a, b] {
                        assert_eq!(t.dims(), got.dims());
                        let t: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
                        assert_eq!(t, one, "{dtype:?}: forward_many");
                    }
                    // The f32 path, which CPUs without the prompt kernel take.
                    let expanded_path = QLinear::forward_expanded(&q_arc(&layer), &x).unwrap();
                    let err: f32 = (&expanded_path - &want)
                        .unwrap()
                        .abs()
                        .unwrap()
                        .max_all()
                        .unwrap()
                        .to_scalar()
                        .unwrap();
                    assert!(err <= scale * 1e-5, "{dtype:?}, {tokens} tokens expanded: {err}");
                }
                if tokens == 1 {
                    let values: Vec<f32> = x.flatten_all().unwrap().to_vec1().unwrap();
                    let [a, b] = QLinear::decode_many([&layer, &layer], &values).unwrap();
                    let one: Vec<f32> = got.flatten_all().unwrap().to_vec1().unwrap();
                    assert_eq!((&a, &b), (&one, &one), "{dtype:?}: decode_many");
                }
            }
        }
    }
}

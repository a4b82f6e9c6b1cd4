//! A quantized weight matrix that picks its kernel by the number of tokens: decoding (one
//! token) uses candle's quantized dot products, which read the compact weights once; a prompt
//! chunk expands the weights to f32 and runs one GEMM, which is several times faster for many
//! tokens than a quantized dot product per token (measured on Qwen2.5-0.5B-shaped Q4_K_M at 2
//! threads: ~108 prompt tokens/s quantized, ~250 with every weight kept in f32). Expanding per
//! call keeps memory at the compact size plus one f32 matrix at a time.

use std::sync::Arc;

use candle_core::quantized::{QMatMul, QTensor, ggml_file};
use candle_core::{D, Device, Module, Result, Tensor};
use rayon::prelude::*;

/// Tokens in one call from which the f32 GEMM path pays for expanding the weights.
const GEMM_FROM_TOKENS: usize = 32;

/// A linear layer without bias over a quantized weight (out_features, in_features).
#[derive(Debug, Clone)]
pub(crate) struct QLinear {
    quantized: QMatMul,
    weight: Arc<QTensor>,
}

impl QLinear {
    pub(crate) fn new(weight: QTensor) -> Result<Self> {
        let weight = Arc::new(weight);
        Ok(Self { quantized: QMatMul::from_arc(weight.clone())?, weight })
    }

    /// `x` (batch, tokens, in_features) → (batch, tokens, out_features).
    pub(crate) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let tokens = x.elem_count() / x.dim(D::Minus1)?;
        if tokens < GEMM_FROM_TOKENS {
            return self.quantized.forward(x);
        }
        // Expanding is single-threaded in candle, so each thread expands a band of rows and
        // the bands' products are put side by side.
        let (rows, cols) = self.weight.shape().dims2()?;
        let dtype = self.weight.dtype();
        let row_bytes = cols / dtype.block_size() * dtype.type_size();
        let bytes = self.weight.data()?;
        let band = rows.div_ceil(rayon::current_num_threads().max(1));
        let bands: Vec<Tensor> = (0..rows)
            .step_by(band)
            .collect::<Vec<_>>()
            .into_par_iter()
            .map(|start| {
                let n = band.min(rows - start);
                let raw = &bytes[start * row_bytes..(start + n) * row_bytes];
                ggml_file::qtensor_from_ggml(dtype, raw, vec![n, cols], &Device::Cpu)?
                    .dequantize(&Device::Cpu)
            })
            .collect::<Result<_>>()?;
        let outputs =
            bands.iter().map(|w| x.broadcast_matmul(&w.t()?)).collect::<Result<Vec<_>>>()?;
        Tensor::cat(&outputs, D::Minus1)
    }
}

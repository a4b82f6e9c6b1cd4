//! Serves a GGUF file with its Q5_0 tensors re-encoded as Q8_0, losslessly, while the model
//! loads. candle 0.11 has no SIMD kernel for Q5_0 (its scalar dot product took 57% of decode
//! time on a Qwen2.5-0.5B Q4_K_M file, where llama.cpp's mix stores most weights as Q5_0
//! because 896-wide rows do not fit Q4_K's 256-blocks), but it has AVX2 kernels for Q8_0. A
//! Q5_0 block is 32 integers in [-16, 15] with one f16 scale; Q8_0 is 32 integers in
//! [-128, 127] with one f16 scale, so the same integers and the same scale make the same
//! weights: products and sums are those llama.cpp computes (Q5_0 × Q8_0 activations), at the
//! cost of 34 instead of 22 bytes per block. Used for candle's own modules (qwen3, phi3);
//! Quarry's modules keep Q5_0 and run it with `quarry-quant-kernels` (`linear.rs`).
//!
//! The conversion streams: the reader presents a virtual file in which each Q5_0 tensor has
//! grown, and converts a tensor when the loader reads it, one tensor in memory at a time.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};

use candle_core::quantized::GgmlDType;
use candle_core::quantized::gguf_file::{Content, TensorInfo};

const Q5_0_BLOCK_BYTES: usize = 22;
const Q8_0_BLOCK_BYTES: usize = 34;

/// Re-encodes one Q5_0 block as a Q8_0 block.
fn widen_block(q5: &[u8], q8: &mut [u8]) {
    q8[..2].copy_from_slice(&q5[..2]);
    let qh = u32::from_le_bytes([q5[2], q5[3], q5[4], q5[5]]);
    let qs = &q5[6..22];
    for j in 0..16 {
        let low = (qs[j] & 0x0F) | ((((qh >> j) & 1) as u8) << 4);
        let high = (qs[j] >> 4) | ((((qh >> (j + 16)) & 1) as u8) << 4);
        q8[2 + j] = (low as i8 - 16) as u8;
        q8[2 + j + 16] = (high as i8 - 16) as u8;
    }
}

/// One tensor's place in the real and in the virtual file.
struct Segment {
    virtual_start: u64,
    virtual_len: u64,
    real_start: u64,
    widened: bool,
}

/// A `Read + Seek` view of a GGUF file whose tensor data has Q5_0 tensors widened to Q8_0.
pub struct WidenedReader<R> {
    inner: R,
    segments: Vec<Segment>,
    pos: u64,
    len: u64,
    /// The converted bytes of the last widened tensor read, by segment index.
    converted: Option<(usize, Vec<u8>)>,
}

/// The header and reader to load `content` from, with Q5_0 tensors widened; `None` when the
/// file has no Q5_0 tensor.
pub fn widen<R: Read + Seek>(content: &Content, inner: R) -> Option<(Content, WidenedReader<R>)> {
    if !content.tensor_infos.values().any(|t| t.ggml_dtype == GgmlDType::Q5_0) {
        return None;
    }
    let mut infos: Vec<(&String, &TensorInfo)> = content.tensor_infos.iter().collect();
    infos.sort_by_key(|(_, t)| t.offset);
    let mut segments = Vec::with_capacity(infos.len());
    let mut tensor_infos = HashMap::with_capacity(infos.len());
    let mut virtual_pos = 0u64;
    for (name, info) in infos {
        let blocks = info.shape.elem_count() / info.ggml_dtype.block_size();
        let widened = info.ggml_dtype == GgmlDType::Q5_0;
        let (dtype, len) = if widened {
            (GgmlDType::Q8_0, blocks * Q8_0_BLOCK_BYTES)
        } else {
            (info.ggml_dtype, blocks * info.ggml_dtype.type_size())
        };
        segments.push(Segment {
            virtual_start: virtual_pos,
            virtual_len: len as u64,
            real_start: content.tensor_data_offset + info.offset,
            widened,
        });
        tensor_infos.insert(
            name.clone(),
            TensorInfo { ggml_dtype: dtype, shape: info.shape.clone(), offset: virtual_pos },
        );
        virtual_pos += len as u64;
    }
    let header = Content {
        magic: content.magic,
        metadata: content.metadata.clone(),
        tensor_infos,
        tensor_data_offset: 0,
    };
    let reader = WidenedReader { inner, segments, pos: 0, len: virtual_pos, converted: None };
    Some((header, reader))
}

impl<R: Read + Seek> Read for WidenedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let Some(idx) = self.segments.iter().position(|s| {
            self.pos >= s.virtual_start && self.pos < s.virtual_start + s.virtual_len
        }) else {
            return Ok(0);
        };
        let seg = &self.segments[idx];
        let within = self.pos - seg.virtual_start;
        let n = buf.len().min((seg.virtual_len - within) as usize);
        if seg.widened {
            if self.converted.as_ref().map(|(i, _)| *i) != Some(idx) {
                let blocks = seg.virtual_len as usize / Q8_0_BLOCK_BYTES;
                let mut raw = vec![0u8; blocks * Q5_0_BLOCK_BYTES];
                self.inner.seek(SeekFrom::Start(seg.real_start))?;
                self.inner.read_exact(&mut raw)?;
                let mut out = vec![0u8; blocks * Q8_0_BLOCK_BYTES];
                for (q5, q8) in
                    raw.chunks_exact(Q5_0_BLOCK_BYTES).zip(out.chunks_exact_mut(Q8_0_BLOCK_BYTES))
                {
                    widen_block(q5, q8);
                }
                self.converted = Some((idx, out));
            }
            if let Some((_, bytes)) = &self.converted {
                buf[..n].copy_from_slice(&bytes[within as usize..within as usize + n]);
            }
        } else {
            self.inner.seek(SeekFrom::Start(seg.real_start + within))?;
            self.inner.read_exact(&mut buf[..n])?;
        }
        self.pos += n as u64;
        Ok(n)
    }
}

impl<R> Seek for WidenedReader<R> {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let target = match to {
            SeekFrom::Start(p) => p as i128,
            SeekFrom::End(d) => self.len as i128 + d as i128,
            SeekFrom::Current(d) => self.pos as i128 + d as i128,
        };
        if target < 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "seek before start"));
        }
        self.pos = target as u64;
        Ok(self.pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::quantized::QTensor;
    use candle_core::{Device, Tensor};

    #[test]
    fn widened_blocks_hold_the_same_weights() {
        let values: Vec<f32> = (0..256).map(|i| ((i * 37 % 101) as f32 - 50.0) / 17.0).collect();
        let t = Tensor::from_vec(values, (2, 128), &Device::Cpu).unwrap();
        let q5 = QTensor::quantize(&t, GgmlDType::Q5_0).unwrap();
        let bytes = q5.data().unwrap();
        let mut widened = vec![0u8; bytes.len() / Q5_0_BLOCK_BYTES * Q8_0_BLOCK_BYTES];
        for (a, b) in
            bytes.chunks_exact(Q5_0_BLOCK_BYTES).zip(widened.chunks_exact_mut(Q8_0_BLOCK_BYTES))
        {
            widen_block(a, b);
        }
        let q8 = candle_core::quantized::ggml_file::qtensor_from_ggml(
            GgmlDType::Q8_0,
            &widened,
            vec![2, 128],
            &Device::Cpu,
        )
        .unwrap();
        let flat = |q: &QTensor| -> Vec<f32> {
            q.dequantize(&Device::Cpu).unwrap().flatten_all().unwrap().to_vec1().unwrap()
        };
        assert_eq!(flat(&q5), flat(&q8));
    }
}

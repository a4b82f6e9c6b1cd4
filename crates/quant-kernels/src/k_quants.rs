//! Q4_K and Q6_K weight kernels: llama.cpp's Q4_K_M mix stores most weights of models whose
//! rows are multiples of 256 (Qwen3, Llama 3.2, Gemma) in these. candle runs them through a
//! repacked copy of each Q4_K matrix (a third more memory, on top of the file's bytes) and a
//! Q6_K path with a serial activation quantizer; these follow llama.cpp's
//! `ggml_vec_dot_q4_K_q8_K` and `ggml_vec_dot_q6_K_q8_K` (AVX2) and `quantize_row_q8_K`, on the
//! file's own bytes, so the sums are those llama.cpp computes.

use half::f16;

use crate::ShapeError;

/// Values per K-quant super-block.
pub const QK_K: usize = 256;
/// Bytes of one Q4_K block: f16 scale, f16 min scale, 12 bytes of 6-bit sub-block scales and
/// mins, 128 bytes of nibbles.
pub const Q4_K_BLOCK_BYTES: usize = 144;
/// Bytes of one Q6_K block: 128 bytes of low nibbles, 64 of high bit pairs, 16 signed
/// sub-block scales, an f16 scale.
pub const Q6_K_BLOCK_BYTES: usize = 210;

/// Activations (tokens × width) quantized per 256 values as llama.cpp's Q8_K: an f32 scale,
/// 256 integers and the sums of each 16 of them.
#[derive(Debug, Clone)]
pub struct Q8KActivations {
    width: usize,
    scales: Vec<f32>,
    quants: Vec<i8>,
    sums: Vec<i16>,
}

impl Q8KActivations {
    /// Quantizes `x`, a row-major (tokens × `width`) matrix, as `quantize_row_q8_K_ref`: the
    /// value of largest magnitude maps to -127, the others round half to even.
    pub fn quantize(x: &[f32], width: usize) -> Result<Self, ShapeError> {
        if width == 0 || !width.is_multiple_of(QK_K) || !x.len().is_multiple_of(width) {
            return Err(ShapeError(format!(
                "activations of {} values cannot be rows of width {width} in blocks of {QK_K}",
                x.len()
            )));
        }
        let blocks = x.len() / QK_K;
        let mut scales = Vec::with_capacity(blocks);
        let mut quants = Vec::with_capacity(x.len());
        let mut sums = Vec::with_capacity(blocks * QK_K / 16);
        for block in x.chunks_exact(QK_K) {
            let (mut max, mut amax) = (0f32, 0f32);
            for &v in block {
                if v.abs() > amax {
                    (amax, max) = (v.abs(), v);
                }
            }
            if amax == 0.0 {
                scales.push(0.0);
                quants.extend(std::iter::repeat_n(0i8, QK_K));
                sums.extend(std::iter::repeat_n(0i16, QK_K / 16));
                continue;
            }
            let inverse = -127.0 / max;
            let start = quants.len();
            // 1.5 · 2^23 rounds half to even and leaves the integer in the low bits (see
            // `Q8_0Activations::quantize`); |v · inverse| ≤ 127 since |v| ≤ |max|.
            quants.extend(block.iter().map(|v| (v * inverse + 12_582_912.0).to_bits() as u8 as i8));
            sums.extend(
                quants[start..]
                    .chunks_exact(16)
                    .map(|g| g.iter().map(|&q| i16::from(q)).sum::<i16>()),
            );
            scales.push(1.0 / inverse);
        }
        Ok(Self { width, scales, quants, sums })
    }

    /// Number of token rows.
    pub fn tokens(&self) -> usize {
        self.quants.len() / self.width
    }

    pub(crate) fn row(&self, t: usize) -> (&[f32], &[i8], &[i16]) {
        let blocks = self.width / QK_K;
        (
            &self.scales[t * blocks..(t + 1) * blocks],
            &self.quants[t * self.width..(t + 1) * self.width],
            &self.sums[t * blocks * 16..(t + 1) * blocks * 16],
        )
    }
}

/// Sub-block `j`'s 6-bit scale and min of a Q4_K block (ggml's `get_scale_min_k4`).
pub(crate) fn scale_min_k4(j: usize, s: &[u8]) -> (i32, i32) {
    if j < 4 {
        (i32::from(s[j] & 63), i32::from(s[j + 4] & 63))
    } else {
        (
            i32::from((s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4)),
            i32::from((s[j + 4] >> 4) | ((s[j] >> 6) << 4)),
        )
    }
}

/// One Q4_K row · one Q8_K activation row, the reference for the SIMD path.
pub fn dot_row_q4k_scalar(row: &[u8], scales: &[f32], quants: &[i8], sums: &[i16]) -> f32 {
    let mut total = 0f32;
    for (b, block) in row.chunks_exact(Q4_K_BLOCK_BYTES).enumerate() {
        let d = f16::from_le_bytes([block[0], block[1]]).to_f32();
        let dmin = f16::from_le_bytes([block[2], block[3]]).to_f32();
        let sc = &block[4..16];
        let qs = &block[16..];
        let q8 = &quants[b * QK_K..(b + 1) * QK_K];
        let (mut dot, mut min_sum) = (0i32, 0i32);
        for j in 0..8 {
            let (scale, min) = scale_min_k4(j, sc);
            // Sub-block j: 32 values, low nibbles of bytes 32·(j/2).. for even j, high for odd.
            let bytes = &qs[32 * (j / 2)..32 * (j / 2) + 32];
            let part: i32 = bytes
                .iter()
                .zip(&q8[32 * j..32 * j + 32])
                .map(|(&byte, &a)| {
                    let w = if j % 2 == 0 { byte & 0x0F } else { byte >> 4 };
                    i32::from(w) * i32::from(a)
                })
                .sum();
            dot += scale * part;
            let group_sum = i32::from(sums[b * 16 + 2 * j]) + i32::from(sums[b * 16 + 2 * j + 1]);
            min_sum += min * group_sum;
        }
        total += d * scales[b] * dot as f32 - dmin * scales[b] * min_sum as f32;
    }
    total
}

/// One Q6_K row · one Q8_K activation row, the reference for the SIMD path.
pub fn dot_row_q6k_scalar(row: &[u8], scales: &[f32], quants: &[i8]) -> f32 {
    let mut total = 0f32;
    for (b, block) in row.chunks_exact(Q6_K_BLOCK_BYTES).enumerate() {
        let (ql, qh, sc) = (&block[..128], &block[128..192], &block[192..208]);
        let d = f16::from_le_bytes([block[208], block[209]]).to_f32();
        let q8 = &quants[b * QK_K..(b + 1) * QK_K];
        let mut dot = 0i32;
        for (v, &a) in q8.iter().enumerate() {
            let (half, within) = (v / 128, v % 128);
            let (quarter, l) = (within / 32, within % 32);
            let low = ql[64 * half + l + 32 * (quarter % 2)];
            let nibble = if quarter < 2 { low & 0x0F } else { low >> 4 };
            let high = (qh[32 * half + l] >> (2 * quarter)) & 3;
            let w = i32::from(nibble | (high << 4)) - 32;
            let scale = i32::from(sc[8 * half + l / 16 + 2 * quarter] as i8);
            dot += scale * w * i32::from(a);
        }
        total += d * scales[b] * dot as f32;
    }
    total
}

#[cfg(all(
    target_arch = "x86_64",
    target_feature = "avx2",
    target_feature = "fma",
    target_feature = "f16c"
))]
pub(crate) fn dot_row_q4k(row: &[u8], scales: &[f32], quants: &[i8], sums: &[i16]) -> f32 {
    let blocks = row.len() / Q4_K_BLOCK_BYTES;
    if scales.len() < blocks || quants.len() < blocks * QK_K || sums.len() < blocks * 16 {
        // Not the shapes the vector loop reads; the scalar loop stops at the shorter input.
        return dot_row_q4k_scalar(row, scales, quants, sums);
    }
    // SAFETY: compiled only where the target has AVX2 and FMA; checked just above: a scale,
    // 256 activation values and 16 sums for each of the row's blocks.
    unsafe { avx2::dot_row_q4k(row, scales, quants, sums) }
}

#[cfg(not(all(
    target_arch = "x86_64",
    target_feature = "avx2",
    target_feature = "fma",
    target_feature = "f16c"
)))]
pub(crate) fn dot_row_q4k(row: &[u8], scales: &[f32], quants: &[i8], sums: &[i16]) -> f32 {
    dot_row_q4k_scalar(row, scales, quants, sums)
}

#[cfg(all(
    target_arch = "x86_64",
    target_feature = "avx2",
    target_feature = "fma",
    target_feature = "f16c"
))]
pub(crate) fn dot_row_q6k(row: &[u8], scales: &[f32], quants: &[i8]) -> f32 {
    let blocks = row.len() / Q6_K_BLOCK_BYTES;
    if scales.len() < blocks || quants.len() < blocks * QK_K {
        return dot_row_q6k_scalar(row, scales, quants);
    }
    // SAFETY: compiled only where the target has AVX2 and FMA; checked just above: a scale
    // and 256 activation values for each of the row's blocks.
    unsafe { avx2::dot_row_q6k(row, scales, quants) }
}

#[cfg(not(all(
    target_arch = "x86_64",
    target_feature = "avx2",
    target_feature = "fma",
    target_feature = "f16c"
)))]
pub(crate) fn dot_row_q6k(row: &[u8], scales: &[f32], quants: &[i8]) -> f32 {
    dot_row_q6k_scalar(row, scales, quants)
}

#[cfg(all(
    target_arch = "x86_64",
    target_feature = "avx2",
    target_feature = "fma",
    target_feature = "f16c"
))]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{Q4_K_BLOCK_BYTES, Q6_K_BLOCK_BYTES, QK_K};
    use crate::avx2::{f16_to_f32, horizontal_sum};

    /// llama.cpp's AVX2 `ggml_vec_dot_q4_K_q8_K`.
    ///
    /// # Safety
    /// `row` holds `quants.len() / 256` blocks, `scales` a scale and `sums` 16 sums per block.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn dot_row_q4k(
        row: &[u8],
        scales: &[f32],
        quants: &[i8],
        sums: &[i16],
    ) -> f32 {
        const KMASK1: u32 = 0x3f3f_3f3f;
        const KMASK2: u32 = 0x0f0f_0f0f;
        const KMASK3: u32 = 0x0303_0303;
        let m4 = _mm256_set1_epi8(0x0F);
        let mut acc = _mm256_setzero_ps();
        let mut acc_m = _mm_setzero_ps();
        for (b, block) in row.chunks_exact(Q4_K_BLOCK_BYTES).enumerate() {
            let yd = scales[b];
            let d = yd * f16_to_f32(block[0], block[1]);
            let dmin = -yd * f16_to_f32(block[2], block[3]);
            let word = |i: usize| {
                u32::from_le_bytes([
                    block[4 + 4 * i],
                    block[5 + 4 * i],
                    block[6 + 4 * i],
                    block[7 + 4 * i],
                ])
            };
            let mut utmp = [word(0), word(1), word(2), 0];
            utmp[3] = ((utmp[2] >> 4) & KMASK2) | (((utmp[1] >> 6) & KMASK3) << 4);
            let uaux = utmp[1] & KMASK1;
            utmp[1] = (utmp[2] & KMASK2) | (((utmp[0] >> 6) & KMASK3) << 4);
            utmp[2] = uaux;
            utmp[0] &= KMASK1;
            let mins_and_scales = _mm256_cvtepu8_epi16(_mm_set_epi32(
                utmp[3] as i32,
                utmp[2] as i32,
                utmp[1] as i32,
                utmp[0] as i32,
            ));
            // SAFETY: 16 sums per block, 256 quants per block, 128 nibble bytes at 16.
            let (q8sums, q4, q8) = unsafe {
                (
                    _mm256_loadu_si256(sums.as_ptr().add(16 * b).cast()),
                    block.as_ptr().add(16),
                    quants.as_ptr().add(QK_K * b),
                )
            };
            let q8s = _mm_hadd_epi16(
                _mm256_extracti128_si256(q8sums, 0),
                _mm256_extracti128_si256(q8sums, 1),
            );
            let prod = _mm_madd_epi16(_mm256_extracti128_si256(mins_and_scales, 1), q8s);
            acc_m = _mm_fmadd_ps(_mm_set1_ps(dmin), _mm_cvtepi32_ps(prod), acc_m);
            let sc128 = _mm256_extracti128_si256(mins_and_scales, 0);
            let scales16 = _mm256_set_m128i(sc128, sc128);
            let mut sumi = _mm256_setzero_si256();
            for j in 0..QK_K / 64 {
                // The 16-bit scale of sub-block i in every lane.
                let scale_l = _mm256_shuffle_epi8(scales16, broadcast_pair(2 * j));
                let scale_h = _mm256_shuffle_epi8(scales16, broadcast_pair(2 * j + 1));
                // SAFETY: 32 bytes of nibbles and 64 quants per step, inside the block.
                let (q4bits, q8l, q8h) = unsafe {
                    (
                        _mm256_loadu_si256(q4.add(32 * j).cast()),
                        _mm256_loadu_si256(q8.add(64 * j).cast()),
                        _mm256_loadu_si256(q8.add(64 * j + 32).cast()),
                    )
                };
                let q4l = _mm256_and_si256(q4bits, m4);
                let q4h = _mm256_and_si256(_mm256_srli_epi16(q4bits, 4), m4);
                let p16l = _mm256_madd_epi16(scale_l, _mm256_maddubs_epi16(q4l, q8l));
                let p16h = _mm256_madd_epi16(scale_h, _mm256_maddubs_epi16(q4h, q8h));
                sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(p16l, p16h));
            }
            acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
        }
        let acc_m = _mm_add_ps(acc_m, _mm_movehl_ps(acc_m, acc_m));
        let acc_m = _mm_add_ss(acc_m, _mm_movehdup_ps(acc_m));
        horizontal_sum(acc) + _mm_cvtss_f32(acc_m)
    }

    /// Byte indices that put 16-bit lane `i` (of each 128-bit half) into every lane.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn broadcast_pair(i: usize) -> __m256i {
        let lo = (2 * i) as i8;
        let pair = i16::from_le_bytes([lo as u8, (lo + 1) as u8]);
        _mm256_set1_epi16(pair)
    }

    /// Byte indices that put byte `2i` in the first eight bytes and `2i + 1` in the next.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn scale_shuffle(i: usize) -> __m128i {
        let (a, b) = ((2 * i) as i8, (2 * i + 1) as i8);
        _mm_set_epi8(b, b, b, b, b, b, b, b, a, a, a, a, a, a, a, a)
    }

    /// llama.cpp's AVX2 `ggml_vec_dot_q6_K_q8_K`.
    ///
    /// # Safety
    /// `row` holds `quants.len() / 256` blocks and `scales` a scale per block.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn dot_row_q6k(row: &[u8], scales: &[f32], quants: &[i8]) -> f32 {
        let m4 = _mm256_set1_epi8(0x0F);
        let m2 = _mm256_set1_epi8(3);
        let m32s = _mm256_set1_epi8(32);
        let mut acc = _mm256_setzero_ps();
        for (b, block) in row.chunks_exact(Q6_K_BLOCK_BYTES).enumerate() {
            let d = scales[b] * f16_to_f32(block[208], block[209]);
            // SAFETY: the block's 16 scales at 192, its nibbles at 0 and bit pairs at 128;
            // 256 quants per block.
            let (sc, ql, qh, q8) = unsafe {
                (
                    _mm_loadu_si128(block.as_ptr().add(192).cast()),
                    block.as_ptr(),
                    block.as_ptr().add(128),
                    quants.as_ptr().add(QK_K * b),
                )
            };
            let mut sumi = _mm256_setzero_si256();
            for j in 0..QK_K / 128 {
                let scale =
                    |k: usize| _mm256_cvtepi8_epi16(_mm_shuffle_epi8(sc, scale_shuffle(4 * j + k)));
                // SAFETY: per half: 64 nibble bytes, 32 bit-pair bytes and 128 quants.
                let (bits1, bits2, bits_h, y) = unsafe {
                    (
                        _mm256_loadu_si256(ql.add(64 * j).cast()),
                        _mm256_loadu_si256(ql.add(64 * j + 32).cast()),
                        _mm256_loadu_si256(qh.add(32 * j).cast()),
                        [
                            _mm256_loadu_si256(q8.add(128 * j).cast()),
                            _mm256_loadu_si256(q8.add(128 * j + 32).cast()),
                            _mm256_loadu_si256(q8.add(128 * j + 64).cast()),
                            _mm256_loadu_si256(q8.add(128 * j + 96).cast()),
                        ],
                    )
                };
                let h0 = _mm256_slli_epi16(_mm256_and_si256(bits_h, m2), 4);
                let h1 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(bits_h, 2), m2), 4);
                let h2 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(bits_h, 4), m2), 4);
                let h3 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(bits_h, 6), m2), 4);
                let w = [
                    _mm256_or_si256(_mm256_and_si256(bits1, m4), h0),
                    _mm256_or_si256(_mm256_and_si256(bits2, m4), h1),
                    _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(bits1, 4), m4), h2),
                    _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(bits2, 4), m4), h3),
                ];
                for k in 0..4 {
                    // (w - 32) · y = w · y - 32 · y; w in [0, 63] is unsigned for maddubs.
                    let p16 = _mm256_sub_epi16(
                        _mm256_maddubs_epi16(w[k], y[k]),
                        _mm256_maddubs_epi16(m32s, y[k]),
                    );
                    sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(scale(k), p16));
                }
            }
            acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
        }
        horizontal_sum(acc)
    }
}

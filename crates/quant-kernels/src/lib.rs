//! Weight kernels for Quarry's generator: one token's (or a few tokens') products with
//! quantized weight matrices, in llama.cpp's block formats, on the file's own bytes. candle 0.11
//! multiplies Q5_0 with a scalar loop (and Q5_0 is what llama.cpp's Q4_K_M mix stores most
//! weights of small models in: 896- or 1152-wide rows do not fit Q4_K's 256-value blocks),
//! repacks each Q4_K matrix into a copy a third larger, and quantizes activations serially.
//! These follow llama.cpp's AVX2 `ggml_vec_dot_q5_0_q8_0`, `ggml_vec_dot_q8_0_q8_0`
//! and ([`k_quants`]) `ggml_vec_dot_q4_K_q8_K` / `ggml_vec_dot_q6_K_q8_K`, with its activation
//! quantizers, so the sums are those llama.cpp computes; [`matmul_many`] runs several matrices
//! that read one input in one hand-out of work. A crate of its own so it is compiled optimised
//! in every profile, like candle. [`activation`] holds the element-wise functions of the
//! embedder and of the decode step, [`attention`] the generator's and the embedder's attention,
//! and [`dense`] the embedder's dense layers, for the same reason.

use half::f16;

pub mod activation;
pub mod attention;
pub mod dense;
pub mod k_quants;
pub mod prompt_gemm;

use k_quants::{Q4_K_BLOCK_BYTES, Q6_K_BLOCK_BYTES, Q8KActivations, QK_K};

/// Values per Q5_0 and Q8_0 block.
pub const BLOCK: usize = 32;
/// Bytes of one Q5_0 block: an f16 scale, the 32 fifth bits, then 16 bytes of low nibbles
/// (value `j` in the low nibble of byte `j`, value `j + 16` in its high nibble).
pub const Q5_0_BLOCK_BYTES: usize = 22;

/// A shape that does not fit the kernels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShapeError(String);

impl std::fmt::Display for ShapeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ShapeError {}

/// Activations (tokens × width) quantized per 32 values as llama.cpp's Q8_0: one scale
/// `amax / 127` (kept at f16 precision, as the file format stores it) and 32 rounded integers.
#[derive(Debug, Clone)]
pub struct Q8_0Activations {
    width: usize,
    scales: Vec<f32>,
    quants: Vec<i8>,
}

impl Q8_0Activations {
    /// Quantizes `x`, a row-major (tokens × `width`) matrix.
    pub fn quantize(x: &[f32], width: usize) -> Result<Self, ShapeError> {
        if width == 0 || !width.is_multiple_of(BLOCK) || !x.len().is_multiple_of(width) {
            return Err(ShapeError(format!(
                "activations of {} values cannot be rows of width {width} in blocks of {BLOCK}",
                x.len()
            )));
        }
        let mut scales = Vec::with_capacity(x.len() / BLOCK);
        let mut quants = Vec::with_capacity(x.len());
        for block in x.chunks_exact(BLOCK) {
            let amax = block.iter().fold(0f32, |m, v| m.max(v.abs()));
            let inverse = if amax != 0.0 { 127.0 / amax } else { 0.0 };
            scales.push(f16::from_f32(amax / 127.0).to_f32());
            // llama.cpp's x86 path rounds half to even (`_mm256_round_ps`, nearest). Adding
            // 1.5 · 2^23 rounds so (the default rounding mode) and leaves the integer, in
            // [-127, 127], in the low bits of the sum: an integer truncation where a float
            // cast, saturating in Rust, would keep the loop from being vectorised.
            quants.extend(block.iter().map(|v| (v * inverse + 12_582_912.0).to_bits() as u8 as i8));
        }
        Ok(Self { width, scales, quants })
    }

    /// Number of token rows.
    pub fn tokens(&self) -> usize {
        self.quants.len() / self.width
    }

    fn row(&self, t: usize) -> (&[f32], &[i8]) {
        let blocks = self.width / BLOCK;
        (
            &self.scales[t * blocks..(t + 1) * blocks],
            &self.quants[t * self.width..(t + 1) * self.width],
        )
    }
}

/// Bytes of one Q8_0 weight block: an f16 scale and 32 signed bytes.
pub const Q8_0_BLOCK_BYTES: usize = 34;

fn check_weights(weights: &[u8], rows: usize, cols: usize) -> Result<(), ShapeError> {
    if cols == 0
        || !cols.is_multiple_of(BLOCK)
        || weights.len() != rows * WeightEncoding::Q5_0.row_bytes(cols)
    {
        return Err(ShapeError(format!(
            "{} bytes are not a Q5_0 matrix of {rows} rows of {cols} values",
            weights.len()
        )));
    }
    Ok(())
}

/// How a weight matrix given to [`matmul_many`] is encoded, in llama.cpp's block formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightEncoding {
    /// 22-byte blocks of 32: f16 scale, fifth bits, nibbles.
    Q5_0,
    /// 34-byte blocks of 32: f16 scale, 32 signed bytes.
    Q8_0,
    /// 144-byte super-blocks of 256 (see [`k_quants`]).
    Q4K,
    /// 210-byte super-blocks of 256 (see [`k_quants`]).
    Q6K,
}

impl WeightEncoding {
    /// Bytes of one row of `cols` values.
    pub fn row_bytes(self, cols: usize) -> usize {
        match self {
            Self::Q5_0 => cols / BLOCK * Q5_0_BLOCK_BYTES,
            Self::Q8_0 => cols / BLOCK * Q8_0_BLOCK_BYTES,
            Self::Q4K => cols / QK_K * Q4_K_BLOCK_BYTES,
            Self::Q6K => cols / QK_K * Q6_K_BLOCK_BYTES,
        }
    }

    /// Values per block of the encoding; rows are whole blocks.
    fn block_len(self) -> usize {
        match self {
            Self::Q5_0 | Self::Q8_0 => BLOCK,
            Self::Q4K | Self::Q6K => QK_K,
        }
    }

    /// Checks that `weights` is a matrix of `rows` rows of `cols` values in this encoding and
    /// that `out_len` holds one product per row and token.
    fn check_product(
        self,
        weights: &[u8],
        rows: usize,
        cols: usize,
        out_len: usize,
        tokens: usize,
    ) -> Result<(), ShapeError> {
        if !cols.is_multiple_of(self.block_len()) || weights.len() != rows * self.row_bytes(cols) {
            return Err(ShapeError(format!(
                "{} bytes are not a {self:?} matrix of {rows} rows of {cols} values",
                weights.len()
            )));
        }
        if out_len != rows * tokens {
            return Err(ShapeError(format!("output of {out_len} values for {rows} × {tokens}")));
        }
        Ok(())
    }

    /// Whether the activations are quantized as Q8_K (else Q8_0).
    fn takes_q8_k(self) -> bool {
        matches!(self, Self::Q4K | Self::Q6K)
    }
}

/// Activations quantized for the encodings of the matrices they meet: Q8_0 for Q5_0 and Q8_0
/// weights, Q8_K for the K-quants.
#[derive(Debug, Clone)]
pub struct Activations {
    width: usize,
    tokens: usize,
    q8_0: Option<Q8_0Activations>,
    q8_k: Option<Q8KActivations>,
}

impl Activations {
    /// Quantizes `x` (tokens × `width`, row-major) once for each kind `encodings` need.
    pub fn quantize(
        x: &[f32],
        width: usize,
        encodings: &[WeightEncoding],
    ) -> Result<Self, ShapeError> {
        if width == 0 || !x.len().is_multiple_of(width) {
            return Err(ShapeError(format!("{} values are not rows of {width}", x.len())));
        }
        let q8_0 = match encodings.iter().any(|e| !e.takes_q8_k()) {
            true => Some(Q8_0Activations::quantize(x, width)?),
            false => None,
        };
        let q8_k = match encodings.iter().any(|e| e.takes_q8_k()) {
            true => Some(Q8KActivations::quantize(x, width)?),
            false => None,
        };
        Ok(Self { width, tokens: x.len() / width, q8_0, q8_k })
    }

    /// Number of token rows.
    pub fn tokens(&self) -> usize {
        self.tokens
    }
}

/// One weight matrix of [`matmul_many`] and the place for its products.
#[derive(Debug)]
pub struct Product<'a> {
    /// How `weights` is encoded.
    pub encoding: WeightEncoding,
    /// `rows` rows of the activations' width, row-major.
    pub weights: &'a [u8],
    /// Rows of the matrix.
    pub rows: usize,
    /// `out[r * tokens + t]` = weight row `r` · activation row `t`.
    pub out: &'a mut [f32],
}

/// Runs `work` over the item ranges it is handed, possibly on several threads at once, and
/// returns when every item in `0..items` has been done once. The caller brings its own pool
/// (Quarry passes candle's, so the kernels never compete with idle-spinning candle workers).
///
/// A safe trait: an implementation that hands an item out twice, or one beyond `items`,
/// cannot make the kernels write one output twice at once or out of bounds. Each kernel claims
/// an item before writing its outputs ([`Claims`]), skips duplicates and out-of-range items,
/// and reports items left undone as an error.
pub trait Executor {
    /// Calls `work` on ranges covering `0..items` exactly once.
    fn run(&self, items: usize, work: &(dyn Fn(std::ops::Range<usize>) + Sync));
}

/// Runs everything on the calling thread.
#[derive(Debug, Clone, Copy, Default)]
pub struct OneThread;

impl Executor for OneThread {
    fn run(&self, items: usize, work: &(dyn Fn(std::ops::Range<usize>) + Sync)) {
        work(0..items);
    }
}

/// Which work items a kernel has started: each is claimed once, by one worker, before that
/// worker writes the item's outputs. This is what keeps the output writes through
/// [`SharedOut`] disjoint whatever the [`Executor`] does.
struct Claims(Vec<std::sync::atomic::AtomicBool>);

impl Claims {
    fn new(items: usize) -> Self {
        Self((0..items).map(|_| std::sync::atomic::AtomicBool::new(false)).collect())
    }

    /// The items of `range` this caller now owns: in range, and not claimed before.
    fn take(&self, range: std::ops::Range<usize>) -> impl Iterator<Item = usize> + '_ {
        let end = range.end.min(self.0.len());
        (range.start.min(end)..end)
            .filter(|&item| !self.0[item].swap(true, std::sync::atomic::Ordering::AcqRel))
    }

    /// Fails unless the executor handed out every item.
    fn check_all_done(&self) -> Result<(), ShapeError> {
        let undone =
            self.0.iter().filter(|c| !c.load(std::sync::atomic::Ordering::Acquire)).count();
        match undone {
            0 => Ok(()),
            n => Err(ShapeError(format!("the executor left {n} of {} items undone", self.0.len()))),
        }
    }
}

/// Weight rows per unit of work handed to the executor.
const ROWS_PER_ITEM: usize = 16;

/// Products' rows in groups of [`ROWS_PER_ITEM`], numbered one matrix after another: the
/// items [`matmul_many`] and [`prompt_gemm::matmul_prompt`] hand out.
struct RowGroups {
    /// Each matrix's first item and row count.
    matrices: Vec<(usize, usize)>,
    items: usize,
}

impl RowGroups {
    fn new(rows: impl Iterator<Item = usize>) -> Self {
        let mut matrices = Vec::new();
        let mut items = 0;
        for rows in rows {
            matrices.push((items, rows));
            items += rows.div_ceil(ROWS_PER_ITEM);
        }
        Self { matrices, items }
    }

    /// The matrix `item < self.items` belongs to, and its rows.
    fn locate(&self, item: usize) -> (usize, std::ops::Range<usize>) {
        let m = self.matrices.partition_point(|&(first, _)| first <= item) - 1;
        let (first_item, rows) = self.matrices[m];
        let first = (item - first_item) * ROWS_PER_ITEM;
        (m, first..(first + ROWS_PER_ITEM).min(rows))
    }
}

/// Every product of several weight matrices with the same activations, in one hand-out of
/// work: a decode step's query, key and value projections (or gate and up) cost one wait for
/// the slowest thread instead of three (or two). Groups of rows of all the matrices are
/// shared out by `executor`.
pub fn matmul_many(
    products: &mut [Product<'_>],
    acts: &Activations,
    executor: &dyn Executor,
) -> Result<(), ShapeError> {
    let cols = acts.width;
    let tokens = acts.tokens();
    for p in products.iter() {
        let missing = match p.encoding.takes_q8_k() {
            true => acts.q8_k.is_none(),
            false => acts.q8_0.is_none(),
        };
        if missing {
            return Err(ShapeError(format!("activations not quantized for {:?}", p.encoding)));
        }
    }
    // Per product: its encoding, bytes and output pointer.
    let mut plans = Vec::with_capacity(products.len());
    for p in products.iter_mut() {
        p.encoding.check_product(p.weights, p.rows, cols, p.out.len(), tokens)?;
        plans.push((p.encoding, p.weights, SharedOut(p.out.as_mut_ptr())));
    }
    let groups = RowGroups::new(products.iter().map(|p| p.rows));
    let items = groups.items;
    let claims = Claims::new(items);
    let work = |range: std::ops::Range<usize>| {
        for item in claims.take(range) {
            let (m, std::ops::Range { start: first, end }) = groups.locate(item);
            let (encoding, weights, out_ptr) = plans[m];
            // SAFETY: `claims` gives each item to one worker only, so the row groups of one
            // matrix, and the output ranges `first * tokens..end * tokens` they own, are never
            // written by two workers; `item < items`, so they lie inside that matrix's output
            // (`end <= rows`, `out.len() == rows * tokens`, checked above), which is borrowed
            // mutably for this whole call (the executor cannot keep `work` past `run`).
            let outputs = unsafe {
                std::slice::from_raw_parts_mut(
                    out_ptr.get().add(first * tokens),
                    (end - first) * tokens,
                )
            };
            let row_bytes = encoding.row_bytes(cols);
            let rows = &weights[first * row_bytes..end * row_bytes];
            // One match per group of rows, so each encoding's loop is compiled on its own
            // (matching per dot product made the Q5_0 loop 2.8x slower).
            match (encoding, &acts.q8_0, &acts.q8_k) {
                (WeightEncoding::Q5_0, Some(q8), _) => {
                    each_dot(rows, row_bytes, outputs, |w, t| {
                        let (scales, quants) = q8.row(t);
                        dot_row(w, scales, quants)
                    })
                }
                (WeightEncoding::Q8_0, Some(q8), _) => {
                    each_dot(rows, row_bytes, outputs, |w, t| {
                        let (scales, quants) = q8.row(t);
                        dot_row_q8_0(w, scales, quants)
                    })
                }
                (WeightEncoding::Q4K, _, Some(q8k)) => {
                    each_dot(rows, row_bytes, outputs, |w, t| {
                        let (scales, quants, sums) = q8k.row(t);
                        k_quants::dot_row_q4k(w, scales, quants, sums)
                    })
                }
                (WeightEncoding::Q6K, _, Some(q8k)) => {
                    each_dot(rows, row_bytes, outputs, |w, t| {
                        let (scales, quants, _) = q8k.row(t);
                        k_quants::dot_row_q6k(w, scales, quants)
                    })
                }
                // Checked above: every product has its kind of activations.
                _ => {}
            }
        }
    };
    executor.run(items, &work);
    claims.check_all_done()
}

/// `outputs[r * tokens + t] = dot(row r, t)` for the rows of `rows` (each `row_bytes` long),
/// `outputs` holding `tokens` values per row.
#[inline(always)]
fn each_dot(rows: &[u8], row_bytes: usize, outputs: &mut [f32], dot: impl Fn(&[u8], usize) -> f32) {
    let tokens = outputs.len() / (rows.len() / row_bytes).max(1);
    for (row, row_outputs) in
        rows.chunks_exact(row_bytes).zip(outputs.chunks_exact_mut(tokens.max(1)))
    {
        for (t, o) in row_outputs.iter_mut().enumerate() {
            *o = dot(row, t);
        }
    }
}

/// The output pointer, shared with the executor's threads, which write disjoint ranges (each
/// range belongs to one item, and each item is claimed once: [`Claims`]).
#[derive(Clone, Copy)]
struct SharedOut(*mut f32);

// SAFETY: only used by the kernels, whose workers write the disjoint ranges of the items they
// claimed, in one slice borrowed mutably for the whole run.
unsafe impl Send for SharedOut {}
// SAFETY: as above.
unsafe impl Sync for SharedOut {}

impl SharedOut {
    fn get(self) -> *mut f32 {
        self.0
    }
}

/// Expands a Q5_0 matrix to f32 (`out` holds rows × cols values).
pub fn dequantize_q5_0(weights: &[u8], cols: usize, out: &mut [f32]) -> Result<(), ShapeError> {
    let rows = out.len() / cols.max(1);
    check_weights(weights, rows, cols)?;
    if out.len() != rows * cols {
        return Err(ShapeError(format!("{} values are not rows of {cols}", out.len())));
    }
    for (block, values) in weights.chunks_exact(Q5_0_BLOCK_BYTES).zip(out.chunks_exact_mut(BLOCK)) {
        let (d, ints) = unpack_block(block);
        for (v, q) in values.iter_mut().zip(ints) {
            *v = d * f32::from(q);
        }
    }
    Ok(())
}

/// A block's scale and its 32 integers in [-16, 15].
fn unpack_block(block: &[u8]) -> (f32, [i8; BLOCK]) {
    let d = f16::from_le_bytes([block[0], block[1]]).to_f32();
    let high = u32::from_le_bytes([block[2], block[3], block[4], block[5]]);
    let mut ints = [0i8; BLOCK];
    for j in 0..BLOCK / 2 {
        let byte = block[6 + j];
        let low = (byte & 0x0F) | ((((high >> j) & 1) as u8) << 4);
        let top = (byte >> 4) | ((((high >> (j + 16)) & 1) as u8) << 4);
        ints[j] = low as i8 - 16;
        ints[j + BLOCK / 2] = top as i8 - 16;
    }
    (d, ints)
}

/// One Q5_0 row · one quantized activation row, the reference every path must agree with.
pub fn dot_row_scalar(row: &[u8], scales: &[f32], quants: &[i8]) -> f32 {
    let mut sum = 0f32;
    for ((block, &ad), q) in
        row.chunks_exact(Q5_0_BLOCK_BYTES).zip(scales).zip(quants.chunks_exact(BLOCK))
    {
        let (wd, ints) = unpack_block(block);
        let dot: i32 = ints.iter().zip(q).map(|(&w, &a)| i32::from(w) * i32::from(a)).sum();
        sum += wd * ad * dot as f32;
    }
    sum
}

/// One Q8_0 row · one quantized activation row, the reference for [`dot_row_q8_0`].
pub fn dot_row_q8_0_scalar(row: &[u8], scales: &[f32], quants: &[i8]) -> f32 {
    let mut sum = 0f32;
    for ((block, &ad), q) in
        row.chunks_exact(Q8_0_BLOCK_BYTES).zip(scales).zip(quants.chunks_exact(BLOCK))
    {
        let wd = f16::from_le_bytes([block[0], block[1]]).to_f32();
        let dot: i32 =
            block[2..].iter().zip(q).map(|(&w, &a)| i32::from(w as i8) * i32::from(a)).sum();
        sum += wd * ad * dot as f32;
    }
    sum
}

#[cfg(all(
    target_arch = "x86_64",
    target_feature = "avx2",
    target_feature = "fma",
    target_feature = "f16c"
))]
fn dot_row_q8_0(row: &[u8], scales: &[f32], quants: &[i8]) -> f32 {
    // SAFETY: as for `dot_row`: AVX2 and FMA are compiled in, and the callers pass a block
    // per 32 activation values.
    unsafe { avx2::dot_row_q8_0(row, scales, quants) }
}

#[cfg(not(all(
    target_arch = "x86_64",
    target_feature = "avx2",
    target_feature = "fma",
    target_feature = "f16c"
)))]
fn dot_row_q8_0(row: &[u8], scales: &[f32], quants: &[i8]) -> f32 {
    dot_row_q8_0_scalar(row, scales, quants)
}

#[cfg(all(
    target_arch = "x86_64",
    target_feature = "avx2",
    target_feature = "fma",
    target_feature = "f16c"
))]
fn dot_row(row: &[u8], scales: &[f32], quants: &[i8]) -> f32 {
    // SAFETY: this is compiled only where the target has AVX2 and FMA; the slices' lengths
    // agree (checked by the callers: `row` has a block per 32 values of `quants`).
    unsafe { avx2::dot_row(row, scales, quants) }
}

#[cfg(not(all(
    target_arch = "x86_64",
    target_feature = "avx2",
    target_feature = "fma",
    target_feature = "f16c"
)))]
fn dot_row(row: &[u8], scales: &[f32], quants: &[i8]) -> f32 {
    dot_row_scalar(row, scales, quants)
}

#[cfg(all(
    target_arch = "x86_64",
    target_feature = "avx2",
    target_feature = "fma",
    target_feature = "f16c"
))]
pub(crate) mod avx2 {
    use std::arch::x86_64::*;

    use super::{BLOCK, Q5_0_BLOCK_BYTES};

    /// 32 bytes, byte `i` all ones when bit `i` of `bits` is set.
    #[inline]
    #[target_feature(enable = "avx2")]
    pub(crate) fn bytes_from_bits(bits: u32) -> __m256i {
        let spread = _mm256_shuffle_epi8(
            _mm256_set1_epi32(bits as i32),
            _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0),
        );
        let others = _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe);
        _mm256_cmpeq_epi8(_mm256_or_si256(spread, others), _mm256_set1_epi64x(-1))
    }

    /// One block's 32 products as eight partial sums, weighted by the two scales, added to
    /// `acc`.
    ///
    /// # Safety
    /// `block` holds 22 bytes and `q` 32 values.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn block_into(block: &[u8], scale: f32, q: &[i8], acc: __m256) -> __m256 {
        let high = u32::from_le_bytes([block[2], block[3], block[4], block[5]]);
        // SAFETY: `block` has 22 bytes, so 16 are readable from offset 6; `q` has 32.
        let (packed, y) = unsafe {
            (_mm_loadu_si128(block.as_ptr().add(6).cast()), _mm256_loadu_si256(q.as_ptr().cast()))
        };
        let nibbles = _mm256_and_si256(
            _mm256_set_m128i(_mm_srli_epi16(packed, 4), packed),
            _mm256_set1_epi8(0x0F),
        );
        // Where the fifth bit is 0 the value is nibble - 16, i.e. 0xF0 | nibble as i8.
        let x = _mm256_or_si256(
            nibbles,
            _mm256_andnot_si256(bytes_from_bits(high), _mm256_set1_epi8(0xF0u8 as i8)),
        );
        let products = _mm256_maddubs_epi16(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
        let sums = _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_set1_epi16(1), products));
        _mm256_fmadd_ps(_mm256_set1_ps(scale), sums, acc)
    }

    /// The f16 of little-endian bytes `lo`, `hi` as f32. Written as `vmovd` + `vcvtph2ps` in
    /// assembly because LLVM turns the intrinsics (and `half`'s conversion) into a `vpinsrw`
    /// that merges into whatever vector register is free, which in the dot-product loops was
    /// the accumulator: a false dependency on the previous block's FMA that made the Q5_0 loop
    /// 2.5x slower. `vmovd` from a general register depends on nothing.
    #[inline]
    #[target_feature(enable = "avx2,f16c")]
    pub(crate) fn f16_to_f32(lo: u8, hi: u8) -> f32 {
        let bits = u32::from(u16::from_le_bytes([lo, hi]));
        let value: f32;
        // SAFETY: two register-only instructions of F16C/AVX, which this function requires.
        unsafe {
            std::arch::asm!(
                "vmovd {v}, {bits:e}",
                "vcvtph2ps {v}, {v}",
                bits = in(reg) bits,
                v = out(xmm_reg) value,
                options(pure, nomem, nostack, preserves_flags),
            );
        }
        value
    }

    /// The eight lanes of `acc` added up.
    #[inline]
    #[target_feature(enable = "avx2")]
    pub(crate) fn horizontal_sum(acc: __m256) -> f32 {
        let half = _mm_add_ps(_mm256_extractf128_ps(acc, 1), _mm256_castps256_ps128(acc));
        let quarter = _mm_add_ps(half, _mm_movehl_ps(half, half));
        _mm_cvtss_f32(_mm_add_ss(quarter, _mm_movehdup_ps(quarter)))
    }

    /// llama.cpp's `ggml_vec_dot_q8_0_q8_0`: per block, the signed bytes of both sides
    /// multiplied in pairs (`maddubs` on |w| and the activations signed like `w`), summed in
    /// eight lanes, weighted by the two scales.
    ///
    /// # Safety
    /// `row` holds `quants.len() / 32` blocks of 34 bytes and `scales` as many scales.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn dot_row_q8_0(row: &[u8], scales: &[f32], quants: &[i8]) -> f32 {
        let mut acc = _mm256_setzero_ps();
        for ((block, &ad), q) in
            row.chunks_exact(super::Q8_0_BLOCK_BYTES).zip(scales).zip(quants.chunks_exact(BLOCK))
        {
            let scale = f16_to_f32(block[0], block[1]) * ad;
            // SAFETY: a block has 32 bytes after its scale; `q` has 32 values.
            let (x, y) = unsafe {
                (
                    _mm256_loadu_si256(block.as_ptr().add(2).cast()),
                    _mm256_loadu_si256(q.as_ptr().cast()),
                )
            };
            let products = _mm256_maddubs_epi16(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
            let sums = _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_set1_epi16(1), products));
            acc = _mm256_fmadd_ps(_mm256_set1_ps(scale), sums, acc);
        }
        horizontal_sum(acc)
    }

    /// Sum over blocks of scale products × integer dot products, eight lanes at a time.
    /// (Two accumulators over alternate blocks measured slower: 2.6 against 1.6 ns a block.)
    ///
    /// # Safety
    /// `row` holds `quants.len() / 32` blocks and `scales` as many scales.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn dot_row(row: &[u8], scales: &[f32], quants: &[i8]) -> f32 {
        let mut acc = _mm256_setzero_ps();
        for ((block, &ad), q) in
            row.chunks_exact(Q5_0_BLOCK_BYTES).zip(scales).zip(quants.chunks_exact(BLOCK))
        {
            let scale = f16_to_f32(block[0], block[1]) * ad;
            // SAFETY: a whole block and its 32 activation values.
            acc = unsafe { block_into(block, scale, q, acc) };
        }
        horizontal_sum(acc)
    }
}

/// Safe executors that misbehave, for the kernels' soundness tests.
#[cfg(test)]
pub(crate) mod misbehaving {
    use super::Executor;

    /// Every item twice, on two threads at once, plus items far beyond the count it was given.
    pub(crate) struct Overlapping;

    impl Executor for Overlapping {
        fn run(&self, items: usize, work: &(dyn Fn(std::ops::Range<usize>) + Sync)) {
            std::thread::scope(|s| {
                s.spawn(|| work(0..items + 1000));
                work(0..items + 1000);
            });
        }
    }

    /// Forgets the last item.
    pub(crate) struct SkipsOne;

    impl Executor for SkipsOne {
        fn run(&self, items: usize, work: &(dyn Fn(std::ops::Range<usize>) + Sync)) {
            work(0..items.saturating_sub(1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::misbehaving::{Overlapping, SkipsOne};
    use super::*;

    /// Deterministic pseudo-random numbers in [-1, 1).
    fn noise(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    /// Random Q5_0 blocks with every integer and bit pattern possible.
    fn random_q5(rows: usize, cols: usize, seed: u64) -> Vec<u8> {
        let bytes = noise(rows * WeightEncoding::Q5_0.row_bytes(cols), seed);
        let mut out: Vec<u8> = bytes.iter().map(|v| ((v + 1.0) * 127.9) as u8).collect();
        for block in out.chunks_exact_mut(Q5_0_BLOCK_BYTES) {
            let d = f16::from_f32(0.01 + f32::from(block[0]) / 5000.0).to_le_bytes();
            block[..2].copy_from_slice(&d);
        }
        out
    }

    /// One Q5_0 product through [`matmul_many`].
    fn matmul_q5_0(
        weights: &[u8],
        rows: usize,
        acts: &Q8_0Activations,
        out: &mut [f32],
        executor: &dyn Executor,
    ) -> Result<(), ShapeError> {
        let product = Product { encoding: WeightEncoding::Q5_0, weights, rows, out };
        matmul_many(&mut [product], &q8_0_only(acts), executor)
    }

    fn q8_0_only(acts: &Q8_0Activations) -> Activations {
        Activations {
            width: acts.width,
            tokens: acts.tokens(),
            q8_0: Some(acts.clone()),
            q8_k: None,
        }
    }

    /// Random K-quant super-blocks: every byte value, scales in a trained model's range.
    fn random_k(rows: usize, cols: usize, encoding: WeightEncoding, seed: u64) -> Vec<u8> {
        let bytes = noise(rows * encoding.row_bytes(cols), seed);
        let mut out: Vec<u8> = bytes.iter().map(|v| ((v + 1.0) * 127.9) as u8).collect();
        let block_bytes = encoding.row_bytes(QK_K);
        for block in out.chunks_exact_mut(block_bytes) {
            let d = f16::from_f32(0.0005 + f32::from(block[5]) / 200_000.0).to_le_bytes();
            match encoding {
                WeightEncoding::Q4K => {
                    block[..2].copy_from_slice(&d);
                    block[2..4].copy_from_slice(&f16::from_f32(0.0003).to_le_bytes());
                }
                _ => block[block_bytes - 2..].copy_from_slice(&d),
            }
        }
        out
    }

    /// Random Q8_0 blocks: every byte value, scales in a trained model's range.
    fn random_q8(rows: usize, cols: usize, seed: u64) -> Vec<u8> {
        let bytes = noise(rows * WeightEncoding::Q8_0.row_bytes(cols), seed);
        let mut out: Vec<u8> = bytes.iter().map(|v| ((v + 1.0) * 127.9) as u8).collect();
        for block in out.chunks_exact_mut(Q8_0_BLOCK_BYTES) {
            let d = f16::from_f32(0.001 + f32::from(block[0]) / 50000.0).to_le_bytes();
            block[..2].copy_from_slice(&d);
            // Quantizers write [-127, 127]; -128 would overflow the sign trick as in llama.cpp.
            for b in &mut block[2..] {
                if *b == 0x80 {
                    *b = 0x81;
                }
            }
        }
        out
    }

    /// Matrices of all four encodings and row counts that are not multiples of the work unit, in
    /// one call on two threads, give each row's reference dot product in its own output.
    #[test]
    fn many_products_in_one_call_equal_the_scalar_references() {
        let cols = 1024;
        let (r5, r8, r4k, r6k) = (37, 21, 19, 23);
        let w5 = random_q5(r5, cols, 4);
        let w8 = random_q8(r8, cols, 6);
        let w4k = random_k(r4k, cols, WeightEncoding::Q4K, 12);
        let w6k = random_k(r6k, cols, WeightEncoding::Q6K, 13);
        let tokens = 2;
        let x = noise(cols * tokens, 8);
        let all =
            [WeightEncoding::Q5_0, WeightEncoding::Q8_0, WeightEncoding::Q4K, WeightEncoding::Q6K];
        let acts = Activations::quantize(&x, cols, &all).unwrap();
        let (mut o5, mut o8) = (vec![0f32; r5 * tokens], vec![0f32; r8 * tokens]);
        let (mut o4k, mut o6k) = (vec![0f32; r4k * tokens], vec![0f32; r6k * tokens]);
        let mut products = [
            Product { encoding: WeightEncoding::Q5_0, weights: &w5, rows: r5, out: &mut o5 },
            Product { encoding: WeightEncoding::Q8_0, weights: &w8, rows: r8, out: &mut o8 },
            Product { encoding: WeightEncoding::Q4K, weights: &w4k, rows: r4k, out: &mut o4k },
            Product { encoding: WeightEncoding::Q6K, weights: &w6k, rows: r6k, out: &mut o6k },
        ];
        matmul_many(&mut products, &acts, &TwoThreads).unwrap();
        let (q8, q8k) = (acts.q8_0.as_ref().unwrap(), acts.q8_k.as_ref().unwrap());
        let check = |weights: &[u8], out: &[f32], encoding: WeightEncoding| {
            let row_bytes = encoding.row_bytes(cols);
            for (r, row) in weights.chunks_exact(row_bytes).enumerate() {
                for t in 0..tokens {
                    let (scales, quants) = q8.row(t);
                    let (k_scales, k_quants, k_sums) = q8k.row(t);
                    let want = match encoding {
                        WeightEncoding::Q5_0 => dot_row_scalar(row, scales, quants),
                        WeightEncoding::Q8_0 => dot_row_q8_0_scalar(row, scales, quants),
                        WeightEncoding::Q4K => {
                            k_quants::dot_row_q4k_scalar(row, k_scales, k_quants, k_sums)
                        }
                        WeightEncoding::Q6K => {
                            k_quants::dot_row_q6k_scalar(row, k_scales, k_quants)
                        }
                    };
                    let got = out[r * tokens + t];
                    let tolerance = 1e-4 * want.abs().max(1.0);
                    assert!(
                        (got - want).abs() <= tolerance,
                        "{encoding:?} row {r}: {got} vs {want}"
                    );
                    assert!(got != 0.0, "{encoding:?} row {r} token {t} was never written");
                }
            }
        };
        check(&w5, &o5, WeightEncoding::Q5_0);
        check(&w8, &o8, WeightEncoding::Q8_0);
        check(&w4k, &o4k, WeightEncoding::Q4K);
        check(&w6k, &o6k, WeightEncoding::Q6K);
        let mut short = vec![0f32; r8];
        let wrong =
            Product { encoding: WeightEncoding::Q8_0, weights: &w8, rows: r8, out: &mut short };
        assert!(matmul_many(&mut [wrong], &acts, &OneThread).is_err(), "an output too small");
        let only_q8_0 = Activations::quantize(&x, cols, &[WeightEncoding::Q5_0]).unwrap();
        let mut out = vec![0f32; r4k * tokens];
        let k = Product { encoding: WeightEncoding::Q4K, weights: &w4k, rows: r4k, out: &mut out };
        assert!(matmul_many(&mut [k], &only_q8_0, &OneThread).is_err(), "no Q8_K activations");
    }

    /// Handing items out twice or out of range cannot write an output twice or out of bounds:
    /// the results are those of a well-behaved run; items left undone are an error, not stale
    /// outputs passed off as results.
    #[test]
    fn a_misbehaving_executor_cannot_corrupt_or_skip_outputs() {
        let (cols, rows, tokens) = (256, 37, 2);
        let w = random_q8(rows, cols, 21);
        let x = noise(cols * tokens, 22);
        let acts = Activations::quantize(&x, cols, &[WeightEncoding::Q8_0]).unwrap();
        let run = |executor: &dyn Executor| {
            let mut out = vec![0f32; rows * tokens];
            let product =
                Product { encoding: WeightEncoding::Q8_0, weights: &w, rows, out: &mut out };
            matmul_many(&mut [product], &acts, executor).map(|()| out)
        };
        let good = run(&OneThread).unwrap();
        assert_eq!(run(&Overlapping).unwrap(), good);
        let err = run(&SkipsOne).unwrap_err();
        assert!(format!("{err:?}").contains("left 1 of 3 items undone"), "{err:?}");
    }

    /// Hands the items out in two halves on two threads.
    struct TwoThreads;

    impl Executor for TwoThreads {
        fn run(&self, items: usize, work: &(dyn Fn(std::ops::Range<usize>) + Sync)) {
            std::thread::scope(|s| {
                s.spawn(|| work(0..items / 2));
                work(items / 2..items);
            });
        }
    }

    #[test]
    fn unpacks_the_documented_layout() {
        // Scale 0.5; fifth bits set for values 0 and 17 only; nibbles: low 0x3, high 0xA.
        let mut block = vec![0u8; Q5_0_BLOCK_BYTES];
        block[..2].copy_from_slice(&f16::from_f32(0.5).to_le_bytes());
        block[2..6].copy_from_slice(&(1u32 | (1 << 17)).to_le_bytes());
        block[6..].fill(0xA3);
        let mut out = vec![0f32; BLOCK];
        dequantize_q5_0(&block, BLOCK, &mut out).unwrap();
        assert_eq!(out[0], 0.5 * (3 + 16 - 16) as f32);
        assert_eq!(out[1], 0.5 * (3 - 16) as f32);
        assert_eq!(out[16], 0.5 * (10 - 16) as f32);
        assert_eq!(out[17], 0.5 * (10 + 16 - 16) as f32);
    }

    #[test]
    fn quantizes_activations_as_llama_cpp() {
        let mut x = noise(64, 3);
        x[5] = -2.0; // the first block's largest magnitude
        let acts = Q8_0Activations::quantize(&x, 64).unwrap();
        assert_eq!(acts.tokens(), 1);
        assert_eq!(acts.quants[5], -127);
        assert_eq!(acts.scales[0], f16::from_f32(2.0 / 127.0).to_f32());
        let zeros = Q8_0Activations::quantize(&[0.0; 32], 32).unwrap();
        assert_eq!((zeros.scales[0], zeros.quants[0]), (0.0, 0));
        // Every value is its scaled input rounded half to even: 127 · v / amax, with exact
        // halves (0.5, 1.5, 2.5, -0.5, -2.5 steps) among them.
        let mut block: Vec<f32> = (0..32).map(|i| (i as f32 - 16.0) * 3.7).collect();
        block[0] = 127.0;
        block[1..6].copy_from_slice(&[0.5, 1.5, 2.5, -0.5, -2.5]);
        let acts = Q8_0Activations::quantize(&block, 32).unwrap();
        for (v, q) in block.iter().zip(&acts.quants) {
            assert_eq!(f32::from(*q), v.round_ties_even(), "{v}");
        }
        assert!(Q8_0Activations::quantize(&x, 48).is_err());
    }

    #[test]
    fn simd_dot_products_equal_the_scalar_reference() {
        let cols = 896;
        let weights = random_q5(3, cols, 11);
        let acts = Q8_0Activations::quantize(&noise(cols * 2, 5), cols).unwrap();
        let mut out = vec![0f32; 6];
        matmul_q5_0(&weights, 3, &acts, &mut out, &OneThread).unwrap();
        for r in 0..3 {
            let row = &weights[r * WeightEncoding::Q5_0.row_bytes(cols)
                ..(r + 1) * WeightEncoding::Q5_0.row_bytes(cols)];
            for t in 0..2 {
                let (scales, quants) = acts.row(t);
                let want = dot_row_scalar(row, scales, quants);
                let got = out[r * 2 + t];
                assert!((got - want).abs() <= 1e-4 * want.abs().max(1.0), "{got} vs {want}");
            }
        }
    }

    #[test]
    fn products_approximate_the_f32_matrix_product() {
        let (rows, cols) = (100, 256);
        let weights = random_q5(rows, cols, 2);
        let x = noise(cols, 9);
        let mut dense = vec![0f32; rows * cols];
        dequantize_q5_0(&weights, cols, &mut dense).unwrap();
        let acts = Q8_0Activations::quantize(&x, cols).unwrap();
        let mut out = vec![0f32; rows];
        matmul_q5_0(&weights, rows, &acts, &mut out, &OneThread).unwrap();
        for (r, got) in out.iter().enumerate() {
            let want: f32 =
                dense[r * cols..(r + 1) * cols].iter().zip(&x).map(|(w, v)| w * v).sum();
            let scale: f32 = dense[r * cols..(r + 1) * cols].iter().map(|w| w.abs()).sum();
            // Q8_0 rounding of the activations: at most half a step (amax / 254) per value.
            assert!((got - want).abs() <= scale / 254.0, "row {r}: {got} vs {want}");
        }
        assert!(matmul_q5_0(&weights, rows + 1, &acts, &mut out, &OneThread).is_err());
    }
}

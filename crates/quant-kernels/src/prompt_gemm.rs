//! Prompt chunks through quantized weights without expanding them to f32: a grounded answer's
//! prompt is 1,000-1,500 tokens, and expanding every weight matrix to f32 for one GEMM per
//! chunk (what the generator did) writes four bytes per weight and multiplies in f32. Here
//! each group of weight rows is unpacked once per call into bytes with a scale and an offset
//! per 16 values (exact for Q5_0, Q8_0, Q4_K and Q6_K), the prompt's activations are quantized
//! to bytes with a scale per 32 values (as llama.cpp's Q8_0), and a tile of 4 weight rows × 4
//! tokens is multiplied with AVX-512 VNNI byte dot products (`vpdpbusd`, 64 products per
//! instruction), on CPUs with AVX-VNNI but no AVX-512 (Intel's from Alder Lake on) its 256-bit
//! form, and on CPUs with AVX2 alone (AMD before Zen 4, Intel before Ice Lake) `vpmaddubsw`
//! and `vpmaddwd`, chosen at run time ([`TilePath`]). Elsewhere the same arithmetic runs as
//! plain Rust (correct, and what the tests check the vector paths against), and [`fast_for`]
//! tells the generator to keep its f32 path. One thread, a 4864 × 1024 matrix times 512 tokens
//! (`cargo run --release -p quarry-quant-kernels --example prompt_paths`): on an AVX-512 Xeon
//! before the block layout below, AVX-512 VNNI 40 GMAC/s, AVX-VNNI 30, plain Rust 4, and f32
//! GEMM on weights expanded beforehand 70 (the generator's f32 path also pays the expansion,
//! per chunk, which made it 0.7x llama.cpp where the byte kernel was 1.3x); on an AVX2-only
//! AMD EPYC, AVX2 32-36 GMAC/s against f32 GEMM's 38-42 (noisy, shared machine), where the
//! generator's prompts on a K-quant model ran 1.3-1.4x faster than through its f32 path, which
//! expands K-quants through candle per chunk.
//!
//! The arithmetic: a weight is `scale[g] · u + offset[g]` with `u` an unsigned byte and `g`
//! its group of 16; an activation is `ascale[k] · q` with `q` a signed byte and `k` its block
//! of 32. So `w · x = Σ_k ascale[k] Σ_{i∈k} scale[g(i)] · u_i · q_i + Σ_g offset[g] · xsum[g]`,
//! where `xsum[g]` is the sum of group `g`'s quantized activations: the first sum is byte
//! products, the second a short f32 dot product per row and token.
//!
//! The layout (`Layout`): rows and activations are stored in blocks of up to 256 values in
//! which each of a vector's 16 lanes keeps one group of 16 values (its 4 values of each step
//! of 64 bytes), so a lane's scales stay the same for the whole block. The byte products of a
//! block then add up in 32-bit integers, and are converted and scaled once per block instead
//! of once per 64 values: 4 `vpdpbusd` and 3 float operations per 256 values and pair of row
//! and token, where the natural order took 4 of each.

use half::f16;

use crate::k_quants::{Q4_K_BLOCK_BYTES, Q6_K_BLOCK_BYTES, QK_K};
use crate::{
    BLOCK, Claims, Executor, Q5_0_BLOCK_BYTES, Q8_0_BLOCK_BYTES, RowGroups, ShapeError, SharedOut,
    WeightEncoding,
};

/// Values per step of the kernel (one 512-bit vector of bytes); rows are multiples of it.
pub const GROUP: usize = 64;
/// Values per activation scale, as llama.cpp's Q8_0 (per 64 was 9 % faster, but turned a
/// near-tie refusal of the real Qwen file that the f32 path gives into a wrong answer).
const ACT_BLOCK: usize = 32;
/// Values per weight scale and offset: Q6_K's sub-blocks; the other encodings repeat theirs.
const SUB: usize = 16;
/// Values per lane of `vpdpbusd` (it sums 4 byte products into each 32-bit lane).
const LANE: usize = 4;
/// Weight rows and tokens of one tile of the kernel.
const TILE_ROWS: usize = 4;
const TILE_TOKENS: usize = 4;
/// Tokens whose activations stay in the core's cache while an item's rows meet them.
const TOKENS_PER_BLOCK: usize = 64;

/// Values of one full block of [`Layout`]: 16 groups of 16, one per lane.
const BLOCK_VALUES: usize = 256;
/// Lanes of one step (a 512-bit vector of 32-bit sums).
const LANES: usize = GROUP / LANE;

/// The order rows and activations are stored in for the kernel: blocks of 256 values while
/// they fit, then one of 128 and one of 64 where left (widths are multiples of 64). In a block
/// of `n` groups of 16 (16, 8 or 4) and `n / 4` steps of 64 bytes, lane `l` of every step holds
/// 4 values of group `l / (16 / n)`: step `s`, byte `b` of the lane is value
/// `(s · 16 / n + l mod (16 / n)) · 4 + b` of that group. Each lane keeps its group's weight
/// scale and activation scale through the whole block.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Layout {
    /// Per block: its first value and its steps of 64 bytes (4, 2 or 1).
    blocks: Vec<(usize, usize)>,
    /// `stored[i]` is value `order[i]` of the row in its natural order.
    order: Vec<u32>,
    /// Per block and lane: the lane's group, in the row's natural numbering.
    lane_groups: Vec<u32>,
}

impl Layout {
    fn new(cols: usize) -> Self {
        let mut blocks = Vec::new();
        let mut start = 0;
        while cols - start >= BLOCK_VALUES {
            blocks.push((start, BLOCK_VALUES / GROUP));
            start += BLOCK_VALUES;
        }
        for size in [BLOCK_VALUES / 2, BLOCK_VALUES / 4] {
            if cols - start >= size {
                blocks.push((start, size / GROUP));
                start += size;
            }
        }
        debug_assert_eq!(start, cols, "widths are multiples of {GROUP}");
        let mut order = Vec::with_capacity(cols);
        let mut lane_groups = Vec::with_capacity(blocks.len() * LANES);
        for &(start, steps) in &blocks {
            let per_group = LANES / (4 * steps);
            for lane in 0..LANES {
                lane_groups.push((start / SUB + lane / per_group) as u32);
            }
            for step in 0..steps {
                for lane in 0..LANES {
                    let (group, part) = (lane / per_group, lane % per_group);
                    for byte in 0..LANE {
                        let within = (step * per_group + part) * LANE + byte;
                        order.push((start + group * SUB + within) as u32);
                    }
                }
            }
        }
        Self { blocks, order, lane_groups }
    }

    /// `natural` in the stored order, into `stored`.
    fn store<T: Copy>(&self, natural: &[T], stored: &mut [T]) {
        for (s, &i) in stored.iter_mut().zip(&self.order) {
            *s = natural[i as usize];
        }
    }
}

/// How a tile is multiplied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TilePath {
    /// AVX-512 F/BW and VNNI: 64 values a step (server CPUs, AMD Zen 4 and later).
    Avx512Vnni,
    /// AVX-VNNI, the 256-bit VEX form of `vpdpbusd` with AVX2 and FMA: 32 values a step
    /// (Intel's laptop and desktop CPUs from Alder Lake on, which lack AVX-512).
    AvxVnni,
    /// AVX2 and FMA without VNNI (AMD before Zen 4, Intel before Ice Lake): `vpmaddubsw` and
    /// `vpmaddwd` for the byte products, 32 values a step. Pairs of byte products add up in
    /// 16 bits, which holds them for bytes below 64 (Q5_0, Q4_K, Q6_K) but not Q8_0's (those
    /// run the plain path here, [`TilePath::holds`]). The generator takes it for the K-quants
    /// only ([`TilePath::vectorizes`], [`fast_for`]) and keeps its f32 path for the others.
    Avx2,
    /// Plain Rust, the reference the vector paths are checked against.
    Plain,
}

impl TilePath {
    /// The fastest path this CPU has.
    pub fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512bw")
                && std::arch::is_x86_feature_detected!("avx512vnni")
            {
                return Self::Avx512Vnni;
            }
            if std::arch::is_x86_feature_detected!("avxvnni")
                && std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                return Self::AvxVnni;
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                return Self::Avx2;
            }
        }
        Self::Plain
    }

    /// Whether this path can multiply weights of `encoding` (the AVX2 path's 16-bit pairs
    /// cannot hold Q8_0's products); [`matmul_prompt_on`] runs the others on the plain path.
    pub fn holds(self, encoding: WeightEncoding) -> bool {
        self != TilePath::Avx2 || encoding != WeightEncoding::Q8_0
    }

    /// Whether this path is worth taking for weights of `encoding` instead of the generator's
    /// f32 product (what [`fast_for`] answers for the CPU's own path).
    pub fn vectorizes(self, encoding: WeightEncoding) -> bool {
        match self {
            TilePath::Plain => false,
            // Measured on an AMD EPYC (AVX2, 2 threads): the generator's prompts ran 1.42x
            // faster than through its f32 path on a K-quant model (Qwen3-0.6B shape,
            // Q4_K_M), and no faster on the Q5_0-heavy real Qwen2.5 file, whose f32 path
            // expands Q5_0 cheaply; Q8_0's bytes do not fit the 16-bit pairs at all.
            TilePath::Avx2 => matches!(encoding, WeightEncoding::Q4K | WeightEncoding::Q6K),
            TilePath::Avx512Vnni | TilePath::AvxVnni => true,
        }
    }

    /// Every path this CPU can run, fastest first (for tests and benchmarks).
    pub fn available() -> Vec<Self> {
        let mut paths = Vec::new();
        #[cfg(target_arch = "x86_64")]
        {
            if Self::detect() == Self::Avx512Vnni {
                paths.push(Self::Avx512Vnni);
            }
            if std::arch::is_x86_feature_detected!("avxvnni")
                && std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                paths.push(Self::AvxVnni);
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                paths.push(Self::Avx2);
            }
        }
        paths.push(Self::Plain);
        paths
    }
}

/// Whether this CPU runs a vector kernel for weights of `encoding`; without one
/// [`matmul_prompt`] is plain Rust and slower than expanding the weights for a float GEMM.
pub fn fast_for(encoding: WeightEncoding) -> bool {
    use_path().vectorizes(encoding)
}

/// A prompt chunk's activations (tokens × width) as signed bytes with a scale per 32 values
/// (also kept spread per 4 values, as the vector kernel's lanes take them), and the scaled sum
/// of each 16 (for the weights' offsets).
#[derive(Debug, Clone)]
pub struct PromptActivations {
    width: usize,
    tokens: usize,
    layout: Layout,
    /// Per token, in the [`Layout`]'s order.
    quants: Vec<i8>,
    scales: Vec<f32>,
    /// Per token, block and lane: the lane's activation scale.
    lanes: Vec<f32>,
    sums: Vec<f32>,
}

impl PromptActivations {
    /// Quantizes `x`, row-major (tokens × `width`); `width` must be a multiple of [`GROUP`].
    pub fn quantize(x: &[f32], width: usize) -> Result<Self, ShapeError> {
        if width == 0 || !width.is_multiple_of(GROUP) || !x.len().is_multiple_of(width) {
            return Err(ShapeError(format!(
                "activations of {} values cannot be rows of width {width} in groups of {GROUP}",
                x.len()
            )));
        }
        let layout = Layout::new(width);
        let mut quants = vec![0i8; x.len()];
        let mut scales = Vec::with_capacity(x.len() / ACT_BLOCK);
        let mut sums = Vec::with_capacity(x.len() / SUB);
        for (values, q) in x.chunks_exact(ACT_BLOCK).zip(quants.chunks_exact_mut(ACT_BLOCK)) {
            let amax = values.iter().fold(0f32, |m, v| m.max(v.abs()));
            let scale = amax / 127.0;
            let inverse = if amax > 0.0 { 127.0 / amax } else { 0.0 };
            // 1.5 · 2^23 rounds half to even and leaves the integer, in [-127, 127], in the
            // low bits (see `Q8_0Activations::quantize`).
            for (q, v) in q.iter_mut().zip(values) {
                *q = (v * inverse + 12_582_912.0).to_bits() as u8 as i8;
            }
            scales.push(scale);
            sums.extend(
                q.chunks_exact(SUB)
                    .map(|g| scale * g.iter().map(|&v| i32::from(v)).sum::<i32>() as f32),
            );
        }
        let tokens = x.len() / width;
        let mut stored = vec![0i8; x.len()];
        let mut lanes = Vec::with_capacity(tokens * layout.lane_groups.len());
        for t in 0..tokens {
            let row = t * width..(t + 1) * width;
            layout.store(&quants[row.clone()], &mut stored[row]);
            let token_scales = &scales[t * width / ACT_BLOCK..(t + 1) * width / ACT_BLOCK];
            lanes.extend(
                layout.lane_groups.iter().map(|&g| token_scales[g as usize * SUB / ACT_BLOCK]),
            );
        }
        Ok(Self { width, tokens, layout, quants: stored, scales, lanes, sums })
    }

    /// Number of token rows.
    pub fn tokens(&self) -> usize {
        self.tokens
    }

    fn quants(&self, t: usize) -> &[i8] {
        &self.quants[t * self.width..(t + 1) * self.width]
    }

    fn scales(&self, t: usize) -> &[f32] {
        let blocks = self.width / ACT_BLOCK;
        &self.scales[t * blocks..(t + 1) * blocks]
    }

    fn lanes(&self, t: usize) -> &[f32] {
        let lanes = self.layout.lane_groups.len();
        &self.lanes[t * lanes..(t + 1) * lanes]
    }

    fn sums(&self, t: usize) -> &[f32] {
        let subs = self.width / SUB;
        &self.sums[t * subs..(t + 1) * subs]
    }
}

/// One weight matrix of [`matmul_prompt`] and the place for its products.
#[derive(Debug)]
pub struct PromptProduct<'a> {
    /// How `weights` is encoded.
    pub encoding: WeightEncoding,
    /// `rows` rows of the activations' width, row-major.
    pub weights: &'a [u8],
    /// Rows of the matrix.
    pub rows: usize,
    /// `out[t * rows + r]` = activation row `t` · weight row `r` (the layer's output, token by
    /// token).
    pub out: &'a mut [f32],
}

/// Weight rows unpacked to one byte per value in the [`Layout`]'s order, with a scale and an
/// offset per 16 values, and per block the scale of each lane's group.
#[derive(Default)]
struct Unpacked {
    cols: usize,
    lanes_per_row: usize,
    /// One row in its natural order, before it is stored in the layout's.
    natural: Vec<u8>,
    bytes: Vec<u8>,
    scales: Vec<f32>,
    offsets: Vec<f32>,
    lanes: Vec<f32>,
}

impl Unpacked {
    fn reset(&mut self, rows: usize, layout: &Layout) {
        let cols = layout.order.len();
        self.cols = cols;
        self.lanes_per_row = layout.lane_groups.len();
        self.natural.resize(cols, 0);
        self.bytes.resize(rows * cols, 0);
        self.scales.resize(rows * cols / SUB, 0.0);
        self.offsets.resize(rows * cols / SUB, 0.0);
        self.lanes.resize(rows * self.lanes_per_row, 0.0);
    }

    /// Unpacks row `r` of the item from `row` in `encoding`.
    fn unpack(&mut self, r: usize, encoding: WeightEncoding, row: &[u8], layout: &Layout) {
        let (c, s, l) = (self.cols, self.cols / SUB, self.lanes_per_row);
        let (scales, offsets) =
            (&mut self.scales[r * s..(r + 1) * s], &mut self.offsets[r * s..(r + 1) * s]);
        unpack_row(encoding, row, &mut self.natural, scales, offsets);
        layout.store(&self.natural, &mut self.bytes[r * c..(r + 1) * c]);
        for (lane, &g) in self.lanes[r * l..(r + 1) * l].iter_mut().zip(&layout.lane_groups) {
            *lane = scales[g as usize];
        }
    }

    fn row(&self, r: usize) -> UnpackedRow<'_> {
        let (c, s, l) = (self.cols, self.cols / SUB, self.lanes_per_row);
        UnpackedRow {
            bytes: &self.bytes[r * c..(r + 1) * c],
            offsets: &self.offsets[r * s..(r + 1) * s],
            lanes: &self.lanes[r * l..(r + 1) * l],
        }
    }
}

#[derive(Clone, Copy)]
struct UnpackedRow<'a> {
    bytes: &'a [u8],
    offsets: &'a [f32],
    lanes: &'a [f32],
}

fn f16_at(bytes: &[u8], at: usize) -> f32 {
    f16::from_le_bytes([bytes[at], bytes[at + 1]]).to_f32()
}

/// Unpacks one row in `encoding` into `bytes` (one per value), `scales` and `offsets` (one per
/// 16 values): value `i` = `scales[i / 16] · bytes[i] + offsets[i / 16]`, exactly the file's.
fn unpack_row(
    encoding: WeightEncoding,
    row: &[u8],
    bytes: &mut [u8],
    scales: &mut [f32],
    offsets: &mut [f32],
) {
    match encoding {
        WeightEncoding::Q5_0 => {
            for (((block, u), s), o) in row
                .chunks_exact(Q5_0_BLOCK_BYTES)
                .zip(bytes.chunks_exact_mut(BLOCK))
                .zip(scales.chunks_exact_mut(2))
                .zip(offsets.chunks_exact_mut(2))
            {
                let d = f16_at(block, 0);
                unpack_q5_0_block(block, u);
                s.fill(d);
                o.fill(-16.0 * d);
            }
        }
        WeightEncoding::Q8_0 => {
            for (((block, u), s), o) in row
                .chunks_exact(Q8_0_BLOCK_BYTES)
                .zip(bytes.chunks_exact_mut(BLOCK))
                .zip(scales.chunks_exact_mut(2))
                .zip(offsets.chunks_exact_mut(2))
            {
                let d = f16_at(block, 0);
                // q + 128 as an unsigned byte: flipping the sign bit.
                for (u, &q) in u.iter_mut().zip(&block[2..]) {
                    *u = q ^ 0x80;
                }
                s.fill(d);
                o.fill(-128.0 * d);
            }
        }
        WeightEncoding::Q4K => {
            for (((block, u), s), o) in row
                .chunks_exact(Q4_K_BLOCK_BYTES)
                .zip(bytes.chunks_exact_mut(QK_K))
                .zip(scales.chunks_exact_mut(QK_K / SUB))
                .zip(offsets.chunks_exact_mut(QK_K / SUB))
            {
                let (d, dmin) = (f16_at(block, 0), f16_at(block, 2));
                let (sc, qs) = (&block[4..16], &block[16..]);
                for j in 0..8 {
                    let (scale, min) = crate::k_quants::scale_min_k4(j, sc);
                    let nibbles = &qs[32 * (j / 2)..32 * (j / 2) + 32];
                    let shift = 4 * (j % 2);
                    for (u, &b) in u[32 * j..32 * j + 32].iter_mut().zip(nibbles) {
                        *u = (b >> shift) & 0x0F;
                    }
                    s[2 * j..2 * j + 2].fill(d * scale as f32);
                    o[2 * j..2 * j + 2].fill(-dmin * min as f32);
                }
            }
        }
        WeightEncoding::Q6K => {
            for (((block, u), s), o) in row
                .chunks_exact(Q6_K_BLOCK_BYTES)
                .zip(bytes.chunks_exact_mut(QK_K))
                .zip(scales.chunks_exact_mut(QK_K / SUB))
                .zip(offsets.chunks_exact_mut(QK_K / SUB))
            {
                let (ql, qh, sc) = (&block[..128], &block[128..192], &block[192..208]);
                let d = f16_at(block, 208);
                for half in 0..2 {
                    for quarter in 0..4 {
                        let low = &ql[64 * half + 32 * (quarter % 2)..][..32];
                        let high = &qh[32 * half..][..32];
                        let shift = 4 * (quarter / 2);
                        let first = 128 * half + 32 * quarter;
                        for (l, u) in u[first..first + 32].iter_mut().enumerate() {
                            let nibble = (low[l] >> shift) & 0x0F;
                            *u = nibble | (((high[l] >> (2 * quarter)) & 3) << 4);
                        }
                    }
                }
                // Group g of 16 values has scale sc[g] (see `dot_row_q6k_scalar`).
                for ((s, o), &scale) in s.iter_mut().zip(o.iter_mut()).zip(sc) {
                    *s = d * f32::from(scale as i8);
                    *o = -32.0 * *s;
                }
            }
        }
    }
}

/// A Q5_0 block's 32 values as bytes in [0, 31]: value `j` is the low nibble of byte `6 + j`
/// with bit `j` of the fifth bits, value `j + 16` its high nibble with bit `j + 16`.
fn unpack_q5_0_block(block: &[u8], u: &mut [u8]) {
    let high = u32::from_le_bytes([block[2], block[3], block[4], block[5]]);
    #[cfg(all(
        target_arch = "x86_64",
        target_feature = "avx2",
        target_feature = "fma",
        target_feature = "f16c"
    ))]
    if block.len() >= Q5_0_BLOCK_BYTES && u.len() >= BLOCK {
        use std::arch::x86_64::*;
        // SAFETY: AVX2 is compiled in; 16 bytes are read from offset 6 of a 22-byte block and
        // 32 written to `u`, both checked just above.
        unsafe {
            let packed = _mm_loadu_si128(block.as_ptr().add(6).cast());
            let nibbles = _mm256_and_si256(
                _mm256_set_m128i(_mm_srli_epi16(packed, 4), packed),
                _mm256_set1_epi8(0x0F),
            );
            let fifth =
                _mm256_and_si256(crate::avx2::bytes_from_bits(high), _mm256_set1_epi8(0x10));
            _mm256_storeu_si256(u.as_mut_ptr().cast(), _mm256_or_si256(nibbles, fifth));
        }
        return;
    }
    for j in 0..BLOCK / 2 {
        let byte = block[6 + j];
        u[j] = (byte & 0x0F) | ((((high >> j) & 1) as u8) << 4);
        u[j + BLOCK / 2] = (byte >> 4) | ((((high >> (j + 16)) & 1) as u8) << 4);
    }
}

/// Every product of several weight matrices with one prompt chunk's activations, in one
/// hand-out of work to `executor` (groups of 16 rows of all the matrices).
pub fn matmul_prompt(
    products: &mut [PromptProduct<'_>],
    acts: &PromptActivations,
    executor: &dyn Executor,
) -> Result<(), ShapeError> {
    matmul_prompt_on(products, acts, executor, use_path())
}

/// [`matmul_prompt`] on a chosen path; a path the CPU lacks runs as [`TilePath::Plain`].
pub fn matmul_prompt_on(
    products: &mut [PromptProduct<'_>],
    acts: &PromptActivations,
    executor: &dyn Executor,
    path: TilePath,
) -> Result<(), ShapeError> {
    let vector = if TilePath::available().contains(&path) { path } else { TilePath::Plain };
    let cols = acts.width;
    let tokens = acts.tokens;
    // Per product: its encoding, bytes, rows and output pointer.
    let mut plans = Vec::with_capacity(products.len());
    for p in products.iter_mut() {
        p.encoding.check_product(p.weights, p.rows, cols, p.out.len(), tokens)?;
        plans.push((p.encoding, p.weights, p.rows, SharedOut(p.out.as_mut_ptr())));
    }
    // A path that cannot hold an encoding's products leaves them to the plain one.
    let path_for = |encoding| if vector.holds(encoding) { vector } else { TilePath::Plain };
    let groups = RowGroups::new(products.iter().map(|p| p.rows));
    let items = groups.items;
    let claims = Claims::new(items);
    let work = |range: std::ops::Range<usize>| {
        UNPACKED.with_borrow_mut(|unpacked| {
            for item in claims.take(range) {
                let (m, std::ops::Range { start: first, end }) = groups.locate(item);
                let (encoding, weights, rows, out_ptr) = plans[m];
                let row_bytes = encoding.row_bytes(cols);
                unpacked.reset(end - first, &acts.layout);
                for (r, row) in
                    weights[first * row_bytes..end * row_bytes].chunks_exact(row_bytes).enumerate()
                {
                    unpacked.unpack(r, encoding, row, &acts.layout);
                }
                // SAFETY: `claims` gives each item to one worker only; the item's outputs are
                // `out[t * rows + r]` for its rows `first..end` and every token, which no other
                // item writes, and they lie inside that matrix's output (`end <= rows`,
                // `out.len() == rows * tokens`, checked above), borrowed mutably for this
                // whole call (the executor cannot keep `work` past `run`).
                let out = unsafe { OutRows::new(out_ptr, rows, tokens, first, end) };
                multiply_item(unpacked, acts, out, path_for(encoding));
            }
        })
    };
    executor.run(items, &work);
    claims.check_all_done()
}

/// The path [`matmul_prompt`] takes: the fastest the CPU has (detected once).
fn use_path() -> TilePath {
    static PATH: std::sync::OnceLock<TilePath> = std::sync::OnceLock::new();
    *PATH.get_or_init(TilePath::detect)
}

thread_local! {
    /// Each worker's unpacked rows, kept between items and calls (a few hundred kilobytes).
    static UNPACKED: std::cell::RefCell<Unpacked> = std::cell::RefCell::default();
}

/// The outputs of one item: rows `first..end` of a matrix of `rows` rows, for every token.
struct OutRows {
    ptr: SharedOut,
    rows: usize,
    tokens: usize,
    first: usize,
    end: usize,
}

impl OutRows {
    /// # Safety
    /// `ptr` points to `rows * tokens` values that only this item writes at rows `first..end`.
    unsafe fn new(ptr: SharedOut, rows: usize, tokens: usize, first: usize, end: usize) -> Self {
        Self { ptr, rows, tokens, first, end }
    }

    fn set(&mut self, t: usize, r: usize, value: f32) {
        assert!(r < self.end - self.first && t < self.tokens);
        // SAFETY: `r` is one of this item's rows and `t` one of the tokens (asserted), and the
        // caller of `new` vouched that the pointer holds `tokens` rows of `rows` values of
        // which those at rows `first..end` are this item's alone.
        unsafe { *self.ptr.get().add(t * self.rows + self.first + r) = value };
    }
}

/// The item's unpacked rows times every token, tile by tile.
fn multiply_item(
    unpacked: &Unpacked,
    acts: &PromptActivations,
    mut out: OutRows,
    vector: TilePath,
) {
    let rows = out.end - out.first;
    for token_block in (0..acts.tokens).step_by(TOKENS_PER_BLOCK) {
        let token_end = (token_block + TOKENS_PER_BLOCK).min(acts.tokens);
        let mut r = 0;
        while r < rows {
            let tile_rows = if rows - r >= TILE_ROWS { TILE_ROWS } else { 1 };
            let mut t = token_block;
            while t < token_end {
                let tile_tokens = if token_end - t >= TILE_TOKENS { TILE_TOKENS } else { 1 };
                match (tile_rows, tile_tokens) {
                    (TILE_ROWS, TILE_TOKENS) => {
                        tile::<TILE_ROWS, TILE_TOKENS>(unpacked, acts, r, t, &mut out, vector)
                    }
                    (TILE_ROWS, _) => tile::<TILE_ROWS, 1>(unpacked, acts, r, t, &mut out, vector),
                    (_, TILE_TOKENS) => {
                        tile::<1, TILE_TOKENS>(unpacked, acts, r, t, &mut out, vector)
                    }
                    _ => tile::<1, 1>(unpacked, acts, r, t, &mut out, vector),
                }
                t += tile_tokens;
            }
            r += tile_rows;
        }
    }
}

/// `R` unpacked rows from `r` times `C` tokens from `t`, written to `out`.
#[inline(always)]
fn tile<const R: usize, const C: usize>(
    unpacked: &Unpacked,
    acts: &PromptActivations,
    r: usize,
    t: usize,
    out: &mut OutRows,
    vector: TilePath,
) {
    let weights: [UnpackedRow<'_>; R] = std::array::from_fn(|i| unpacked.row(r + i));
    let tokens: [TokenRow<'_>; C] = std::array::from_fn(|j| TokenRow {
        quants: acts.quants(t + j),
        scales: acts.scales(t + j),
        lanes: acts.lanes(t + j),
        sums: acts.sums(t + j),
    });
    let cols = acts.width;
    let blocks = &acts.layout.blocks;
    let lanes = blocks.len() * LANES;
    assert!(
        weights.iter().all(|w| w.bytes.len() == cols
            && w.lanes.len() == lanes
            && w.offsets.len() == cols / SUB)
            && tokens.iter().all(|t| t.quants.len() == cols
                && t.scales.len() == cols / ACT_BLOCK
                && t.lanes.len() == lanes
                && t.sums.len() == cols / SUB),
        "a tile's rows and tokens have one width"
    );
    assert!(
        cols.is_multiple_of(GROUP)
            && blocks
                .iter()
                .all(|&(start, steps)| (1..=4).contains(&steps) && start + steps * GROUP <= cols),
        "the vector paths step through rows {GROUP} values at a time, inside the row"
    );
    let products = match vector {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `matmul_prompt_on` takes this path only where `TilePath::available` lists
        // it: the CPU has AVX-512 F, BW and VNNI. Every row holds `cols` bytes, `cols / 16`
        // offsets and 16 lane scales per block, every token `cols` quants, 16 lane scales per
        // block and `cols / 16` sums, and every block's steps of 64 values lie inside `cols`
        // (`Unpacked::row`, `PromptActivations`, asserted just above), with `cols` a multiple
        // of 64.
        TilePath::Avx512Vnni => unsafe { avx512::tile::<R, C>(&weights, &tokens, blocks) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above, for a CPU with AVX-VNNI, AVX2 and FMA.
        TilePath::AvxVnni => unsafe { avx_vnni::tile::<R, C>(&weights, &tokens, blocks) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above, for a CPU with AVX2 and FMA; `matmul_prompt_on` gives this path
        // only encodings whose bytes are below 64 (`TilePath::holds`), so no pair of byte
        // products leaves 16 bits.
        TilePath::Avx2 => unsafe { avx2::tile::<R, C>(&weights, &tokens, blocks) },
        _ => tile_scalar::<R, C>(&weights, &tokens, blocks),
    };
    for (i, row) in products.iter().enumerate() {
        for (j, &value) in row.iter().enumerate() {
            out.set(t + j, r + i, value);
        }
    }
}

/// One token's quantized activations.
#[derive(Clone, Copy)]
struct TokenRow<'a> {
    quants: &'a [i8],
    scales: &'a [f32],
    lanes: &'a [f32],
    sums: &'a [f32],
}

/// A tile in plain Rust: the reference for the vector kernel (the same sums, lane by lane).
fn tile_scalar<const R: usize, const C: usize>(
    weights: &[UnpackedRow<'_>; R],
    tokens: &[TokenRow<'_>; C],
    blocks: &[(usize, usize)],
) -> [[f32; C]; R] {
    let mut products = [[0f32; C]; R];
    for (i, w) in weights.iter().enumerate() {
        for (j, token) in tokens.iter().enumerate() {
            let mut total: f32 = w.offsets.iter().zip(token.sums).map(|(o, s)| o * s).sum();
            for (b, &(start, steps)) in blocks.iter().enumerate() {
                for lane in 0..LANES {
                    let mut dot = 0i32;
                    for step in 0..steps {
                        let at = start + step * GROUP + lane * LANE;
                        dot += w.bytes[at..at + LANE]
                            .iter()
                            .zip(&token.quants[at..at + LANE])
                            .map(|(&u, &q)| i32::from(u) * i32::from(q))
                            .sum::<i32>();
                    }
                    let scale = w.lanes[b * LANES + lane] * token.lanes[b * LANES + lane];
                    total += dot as f32 * scale;
                }
            }
            products[i][j] = total;
        }
    }
    products
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::{GROUP, LANES, SUB, TokenRow, UnpackedRow};

    /// A tile: per block of the [`super::Layout`] and per row and token, the block's steps of
    /// 64 values summed by `vpdpbusd` in 32-bit lanes, then one conversion and two float
    /// operations with the lanes' weight and activation scales into the tile's accumulator;
    /// then the offsets, 16 groups a step.
    ///
    /// # Safety
    /// The CPU has AVX-512 F, BW and VNNI. Every row has as many bytes as the tokens have
    /// quants (a multiple of 64), an offset per 16 of them and 16 lane scales per block; every
    /// token 16 lane scales per block and a sum per 16; each block's steps lie inside the row.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub(super) unsafe fn tile<const R: usize, const C: usize>(
        weights: &[UnpackedRow<'_>; R],
        tokens: &[TokenRow<'_>; C],
        blocks: &[(usize, usize)],
    ) -> [[f32; C]; R] {
        let cols = tokens[0].quants.len();
        let zero = _mm512_setzero_si512();
        let mut acc = [[_mm512_setzero_ps(); C]; R];
        for (b, &(start, steps)) in blocks.iter().enumerate() {
            let mut ascale = [_mm512_setzero_ps(); C];
            for j in 0..C {
                // SAFETY: 16 lane scales per block lie in each token (the caller's contract).
                ascale[j] = unsafe { _mm512_loadu_ps(tokens[j].lanes.as_ptr().add(b * LANES)) };
            }
            for i in 0..R {
                // SAFETY: as above, for the row.
                let wscale = unsafe { _mm512_loadu_ps(weights[i].lanes.as_ptr().add(b * LANES)) };
                let mut dots = [zero; C];
                for step in 0..steps {
                    let at = start + step * GROUP;
                    // SAFETY: the block's steps lie inside the row's bytes and each token's
                    // quants (the caller's contract).
                    let w = unsafe { _mm512_loadu_si512(weights[i].bytes.as_ptr().add(at).cast()) };
                    for j in 0..C {
                        // SAFETY: as above.
                        let a =
                            unsafe { _mm512_loadu_si512(tokens[j].quants.as_ptr().add(at).cast()) };
                        dots[j] = _mm512_dpbusd_epi32(dots[j], w, a);
                    }
                }
                for j in 0..C {
                    let scale = _mm512_mul_ps(wscale, ascale[j]);
                    acc[i][j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dots[j]), scale, acc[i][j]);
                }
            }
        }
        let groups = cols / SUB;
        for g in (0..groups).step_by(16) {
            // The last step reads only the groups that are left.
            let mask: __mmask16 = if groups - g >= 16 { 0xFFFF } else { (1 << (groups - g)) - 1 };
            for i in 0..R {
                // SAFETY: the mask keeps the loads inside the `groups` offsets and sums.
                let offsets =
                    unsafe { _mm512_maskz_loadu_ps(mask, weights[i].offsets.as_ptr().add(g)) };
                for j in 0..C {
                    // SAFETY: as above.
                    let sums =
                        unsafe { _mm512_maskz_loadu_ps(mask, tokens[j].sums.as_ptr().add(g)) };
                    acc[i][j] = _mm512_fmadd_ps(offsets, sums, acc[i][j]);
                }
            }
        }
        let mut products = [[0f32; C]; R];
        for i in 0..R {
            for j in 0..C {
                products[i][j] = _mm512_reduce_add_ps(acc[i][j]);
            }
        }
        products
    }
}

/// The two 256-bit tiles, which differ only in how a step's bytes become 32-bit lane sums: the
/// same body, generated for each with its target features and its byte product.
macro_rules! tile_256 {
    (
        $(#[$doc:meta])*
        mod $name:ident, features = $features:literal,
        dot($dots:ident, $w:ident, $a:ident) = $dot:expr
    ) => {
        #[cfg(target_arch = "x86_64")]
        mod $name {
            use std::arch::x86_64::*;

            use super::{GROUP, LANES, SUB, TokenRow, UnpackedRow};

            /// Values per half step: one 256-bit register of bytes, 8 of a step's 16 lanes.
            const HALF: usize = 32;

            $(#[$doc])*
            #[target_feature(enable = $features)]
            pub(super) unsafe fn tile<const R: usize, const C: usize>(
                weights: &[UnpackedRow<'_>; R],
                tokens: &[TokenRow<'_>; C],
                blocks: &[(usize, usize)],
            ) -> [[f32; C]; R] {
                let mut products = [[0f32; C]; R];
                for i in 0..R {
                    // SAFETY: the caller's contract, for one of its rows.
                    products[i] = unsafe { row::<C>(&weights[i], tokens, blocks) };
                }
                products
            }

            /// One row of a tile, each step of 64 values as two halves of 32.
            ///
            /// # Safety
            /// As [`tile`].
            #[target_feature(enable = $features)]
            #[inline]
            unsafe fn row<const C: usize>(
                weights: &UnpackedRow<'_>,
                tokens: &[TokenRow<'_>; C],
                blocks: &[(usize, usize)],
            ) -> [f32; C] {
                let cols = tokens[0].quants.len();
                let zero = _mm256_setzero_si256();
                let mut acc = [_mm256_setzero_ps(); C];
                for (b, &(start, steps)) in blocks.iter().enumerate() {
                    for half in 0..2 {
                        let lanes = b * LANES + half * LANES / 2;
                        // SAFETY: 16 lane scales per block lie in the row and each token (the
                        // caller's contract); this half reads 8 of them.
                        let wscale = unsafe { _mm256_loadu_ps(weights.lanes.as_ptr().add(lanes)) };
                        let mut dots = [zero; C];
                        for step in 0..steps {
                            let at = start + step * GROUP + half * HALF;
                            // SAFETY: the block's steps lie inside the row's bytes and each
                            // token's quants (the caller's contract).
                            let $w = unsafe {
                                _mm256_loadu_si256(weights.bytes.as_ptr().add(at).cast())
                            };
                            for j in 0..C {
                                // SAFETY: as above.
                                let $a = unsafe {
                                    _mm256_loadu_si256(tokens[j].quants.as_ptr().add(at).cast())
                                };
                                let $dots = dots[j];
                                dots[j] = $dot;
                            }
                        }
                        for j in 0..C {
                            // SAFETY: as above.
                            let ascale = unsafe {
                                _mm256_loadu_ps(tokens[j].lanes.as_ptr().add(lanes))
                            };
                            let scale = _mm256_mul_ps(wscale, ascale);
                            acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dots[j]), scale, acc[j]);
                        }
                    }
                }
                // The offsets, 8 groups of 16 values a step, then the 4 left where there are
                // (`cols` is a multiple of 64).
                let groups = cols / SUB;
                let mut g = 0;
                while g < groups {
                    let four = groups - g < 8;
                    // SAFETY: 8 offsets and sums from `g` lie inside the `groups` of each, or 4
                    // where only 4 are left.
                    let offsets = unsafe {
                        super::avx256::load_upto8(weights.offsets.as_ptr().add(g), four)
                    };
                    for j in 0..C {
                        // SAFETY: as above.
                        let sums = unsafe {
                            super::avx256::load_upto8(tokens[j].sums.as_ptr().add(g), four)
                        };
                        acc[j] = _mm256_fmadd_ps(offsets, sums, acc[j]);
                    }
                    g += if four { 4 } else { 8 };
                }
                acc.map(|v| super::avx256::sum8(v))
            }
        }
    };
}

tile_256! {
    /// A tile as [`super::avx512::tile`] computes it, each step of 64 values as two halves of
    /// 32 with the 256-bit `vpdpbusd`, one row at a time: with sixteen vector registers, more
    /// rows' accumulators would leave none for the operands.
    ///
    /// # Safety
    /// The CPU has AVX-VNNI, AVX2 and FMA. Every row has as many bytes as the tokens have
    /// quants (a multiple of 64), an offset per 16 of them and 16 lane scales per block; every
    /// token 16 lane scales per block and a sum per 16; each block's steps lie inside the row.
    mod avx_vnni, features = "avx2,fma,avxvnni",
    dot(dots, w, a) = _mm256_dpbusd_avx_epi32(dots, w, a)
}

tile_256! {
    /// A tile as [`super::avx512::tile`] computes it, each step of 64 values as two halves of
    /// 32: `vpmaddubsw` multiplies the bytes and adds pairs in 16 bits, `vpmaddwd` by ones adds
    /// those pairs into the 32-bit lanes; one row at a time (sixteen vector registers).
    ///
    /// # Safety
    /// The CPU has AVX2 and FMA. Every row's bytes are below 64 (so a pair of products, at most
    /// 2 · 63 · 127, fits in 16 bits), as many as the tokens have quants (a multiple of 64),
    /// with an offset per 16 of them and 16 lane scales per block; every token has 16 lane
    /// scales per block and a sum per 16; each block's steps lie inside the row.
    mod avx2, features = "avx2,fma",
    dot(dots, w, a) = _mm256_add_epi32(
        dots,
        _mm256_madd_epi16(_mm256_maddubs_epi16(w, a), _mm256_set1_epi16(1))
    )
}

/// What the 256-bit tiles share.
#[cfg(target_arch = "x86_64")]
mod avx256 {
    use std::arch::x86_64::*;

    /// 8 floats at `p`, or 4 and zeros.
    ///
    /// # Safety
    /// `p` points to 8 readable floats, or 4 when `four`.
    #[target_feature(enable = "avx2")]
    #[inline]
    pub(super) unsafe fn load_upto8(p: *const f32, four: bool) -> __m256 {
        if four {
            // SAFETY: 4 floats at `p` (the caller's contract).
            _mm256_set_m128(_mm_setzero_ps(), unsafe { _mm_loadu_ps(p) })
        } else {
            // SAFETY: 8 floats at `p` (the caller's contract).
            unsafe { _mm256_loadu_ps(p) }
        }
    }

    /// The sum of the 8 lanes.
    #[target_feature(enable = "avx2")]
    #[inline]
    pub(super) fn sum8(v: __m256) -> f32 {
        let pairs = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
        let twos = _mm_add_ps(pairs, _mm_movehl_ps(pairs, pairs));
        _mm_cvtss_f32(_mm_add_ss(twos, _mm_shuffle_ps::<1>(twos, twos)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OneThread;
    use crate::misbehaving::{Overlapping, SkipsOne};

    /// Deterministic pseudo-random bytes and values.
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self) -> u32 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 33) as u32
        }
        fn value(&mut self) -> f32 {
            (self.next() % 20_001) as f32 / 10_000.0 - 1.0
        }
    }

    /// A random matrix in `encoding` with sensible scales (f16 scales of small magnitude).
    fn random_weights(
        encoding: WeightEncoding,
        rows: usize,
        cols: usize,
        rng: &mut Lcg,
    ) -> Vec<u8> {
        let mut bytes: Vec<u8> =
            (0..rows * encoding.row_bytes(cols)).map(|_| rng.next() as u8).collect();
        let scale =
            |rng: &mut Lcg| f16::from_f32(0.001 + (rng.next() % 1000) as f32 * 1e-5).to_le_bytes();
        let (block_bytes, scale_at): (usize, &[usize]) = match encoding {
            WeightEncoding::Q5_0 => (Q5_0_BLOCK_BYTES, &[0]),
            WeightEncoding::Q8_0 => (Q8_0_BLOCK_BYTES, &[0]),
            WeightEncoding::Q4K => (Q4_K_BLOCK_BYTES, &[0, 2]),
            WeightEncoding::Q6K => (Q6_K_BLOCK_BYTES, &[208]),
        };
        for block in bytes.chunks_exact_mut(block_bytes) {
            for &at in scale_at {
                block[at..at + 2].copy_from_slice(&scale(rng));
            }
        }
        bytes
    }

    /// Value `i` of a row as the file means it, from the unpacked form.
    fn dequantized(encoding: WeightEncoding, row: &[u8], cols: usize) -> Vec<f32> {
        let (mut u, mut s, mut o) =
            (vec![0u8; cols], vec![0f32; cols / SUB], vec![0f32; cols / SUB]);
        unpack_row(encoding, row, &mut u, &mut s, &mut o);
        (0..cols).map(|i| s[i / SUB] * f32::from(u[i]) + o[i / SUB]).collect()
    }

    /// The layout stores every value once, and each lane of a block keeps one group of 16
    /// through all the block's steps, for widths of every mix of blocks.
    #[test]
    fn each_lane_keeps_one_group_through_its_block() {
        for cols in [64, 128, 192, 256, 448, 896, 960, 1024, 3072] {
            let layout = Layout::new(cols);
            let mut seen = vec![false; cols];
            for &i in &layout.order {
                assert!(!std::mem::replace(&mut seen[i as usize], true), "width {cols}: {i} twice");
            }
            assert!(seen.iter().all(|&s| s), "width {cols}: a value missing");
            for (b, &(start, steps)) in layout.blocks.iter().enumerate() {
                for step in 0..steps {
                    for lane in 0..LANES {
                        let group = layout.lane_groups[b * LANES + lane] as usize;
                        for byte in 0..LANE {
                            let stored = start + step * GROUP + lane * LANE + byte;
                            assert_eq!(layout.order[stored] as usize / SUB, group, "width {cols}");
                        }
                    }
                }
            }
        }
    }

    /// Unpacking gives the values the decode kernels multiply: each encoding's unpacked row,
    /// dotted with one-hot activations quantized as the decode path does, matches the decode
    /// kernel's product, for every value of two K-quant blocks (every sub-block and quarter).
    #[test]
    fn unpacked_rows_hold_the_files_values() {
        let mut rng = Lcg(7);
        let cols = 512;
        for encoding in
            [WeightEncoding::Q5_0, WeightEncoding::Q8_0, WeightEncoding::Q4K, WeightEncoding::Q6K]
        {
            let row = random_weights(encoding, 1, cols, &mut rng);
            let values = dequantized(encoding, &row, cols);
            for i in 0..cols {
                let mut x = vec![0f32; cols];
                x[i] = 1.0;
                let acts = crate::Activations::quantize(&x, cols, &[encoding]).unwrap();
                let mut out = [0f32];
                let product = crate::Product { encoding, weights: &row, rows: 1, out: &mut out };
                crate::matmul_many(&mut [product], &acts, &OneThread).unwrap();
                assert!(
                    (out[0] - values[i]).abs() <= 1e-6 + 1e-4 * values[i].abs(),
                    "{encoding:?} value {i}: unpacked {} against the decode kernel's {}",
                    values[i],
                    out[0]
                );
            }
        }
    }

    /// Both paths of the prompt kernel (the vector path where this CPU has it) against the
    /// f32 product of the file's values and the prompt's values, for every encoding, with
    /// tiles of 4 and odd rows and tokens left over, through several threads' items.
    #[test]
    fn prompt_products_match_the_float_product() {
        let mut rng = Lcg(11);
        let (cols, tokens, rows) = (512, 70, 37);
        let x: Vec<f32> = (0..tokens * cols).map(|_| rng.value()).collect();
        let acts = PromptActivations::quantize(&x, cols).unwrap();
        for encoding in
            [WeightEncoding::Q5_0, WeightEncoding::Q8_0, WeightEncoding::Q4K, WeightEncoding::Q6K]
        {
            let weights = random_weights(encoding, rows, cols, &mut rng);
            let row_bytes = encoding.row_bytes(cols);
            let dense: Vec<Vec<f32>> =
                weights.chunks_exact(row_bytes).map(|r| dequantized(encoding, r, cols)).collect();
            let mut want = vec![0f32; tokens * rows];
            for t in 0..tokens {
                for (r, w) in dense.iter().enumerate() {
                    want[t * rows + r] =
                        w.iter().zip(&x[t * cols..(t + 1) * cols]).map(|(a, b)| a * b).sum();
                }
            }
            let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
            for path in TilePath::available() {
                let mut got = vec![0f32; tokens * rows];
                let mut products =
                    [PromptProduct { encoding, weights: &weights, rows, out: &mut got }];
                run_with(&mut products, &acts, path);
                for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                    // Activations kept to 8 bits: about 1 % of the largest product.
                    assert!(
                        (g - w).abs() <= 0.01 * scale,
                        "{encoding:?} ({path:?}) token {} row {}: {g} against {w}",
                        i / rows,
                        i % rows
                    );
                }
            }
        }
    }

    /// The vector paths the CPU has agree closely with the plain one (they differ only in the
    /// order of float sums), on widths whose offsets end in a step of 4 groups of 16 (960, for
    /// the AVX-VNNI path's half step) or 8 (1024), with odd rows and tokens left over.
    #[test]
    fn the_vector_paths_match_the_plain_path() {
        let paths = TilePath::available();
        println!("paths on this CPU: {paths:?}");
        let mut rng = Lcg(3);
        for (cols, tokens, rows) in [(960, 9, 21), (1024, 6, 7)] {
            let x: Vec<f32> = (0..tokens * cols).map(|_| rng.value()).collect();
            let acts = PromptActivations::quantize(&x, cols).unwrap();
            for encoding in [
                WeightEncoding::Q5_0,
                WeightEncoding::Q8_0,
                WeightEncoding::Q4K,
                WeightEncoding::Q6K,
            ] {
                if !cols.is_multiple_of(encoding.block_len()) {
                    continue;
                }
                let weights = random_weights(encoding, rows, cols, &mut rng);
                let mut plain = vec![0f32; tokens * rows];
                run_with(
                    &mut [PromptProduct { encoding, weights: &weights, rows, out: &mut plain }],
                    &acts,
                    TilePath::Plain,
                );
                for &path in &paths {
                    let mut vector = vec![0f32; tokens * rows];
                    run_with(
                        &mut [PromptProduct {
                            encoding,
                            weights: &weights,
                            rows,
                            out: &mut vector,
                        }],
                        &acts,
                        path,
                    );
                    for (p, v) in plain.iter().zip(&vector) {
                        assert!(
                            (p - v).abs() <= 1e-4 * (1.0 + p.abs()),
                            "{encoding:?} {path:?} width {cols}: {p} against {v}"
                        );
                    }
                }
            }
        }
    }

    /// [`matmul_prompt`] on `path`, through an executor that hands out items in uneven ranges
    /// as several threads would.
    fn run_with(products: &mut [PromptProduct<'_>], acts: &PromptActivations, path: TilePath) {
        struct Uneven;
        impl Executor for Uneven {
            fn run(&self, items: usize, work: &(dyn Fn(std::ops::Range<usize>) + Sync)) {
                let mut at = 0;
                let mut step = 1;
                while at < items {
                    work(at..(at + step).min(items));
                    at += step;
                    step = step % 3 + 1;
                }
            }
        }
        matmul_prompt_on(products, acts, &Uneven, path).unwrap();
    }

    /// Items handed out twice, on two threads at once, and past the end change nothing;
    /// items left undone are an error.
    #[test]
    fn a_misbehaving_executor_cannot_corrupt_or_skip_prompt_outputs() {
        let mut rng = Lcg(5);
        let (cols, tokens, rows) = (256, 6, 40);
        let x: Vec<f32> = (0..tokens * cols).map(|_| rng.value()).collect();
        let acts = PromptActivations::quantize(&x, cols).unwrap();
        let weights = random_weights(WeightEncoding::Q4K, rows, cols, &mut rng);
        let encoding = WeightEncoding::Q4K;
        let mut good = vec![0f32; tokens * rows];
        let mut products = [PromptProduct { encoding, weights: &weights, rows, out: &mut good }];
        matmul_prompt(&mut products, &acts, &OneThread).unwrap();
        let mut out = vec![0f32; tokens * rows];
        let mut products = [PromptProduct { encoding, weights: &weights, rows, out: &mut out }];
        matmul_prompt(&mut products, &acts, &Overlapping).unwrap();
        assert_eq!(out, good);
        let mut products = [PromptProduct { encoding, weights: &weights, rows, out: &mut out }];
        assert!(matmul_prompt(&mut products, &acts, &SkipsOne).is_err());
    }

    #[test]
    fn shapes_that_do_not_fit_are_refused() {
        assert!(PromptActivations::quantize(&[0.0; 96], 96).is_err());
        let acts = PromptActivations::quantize(&[0.5; 128], 64).unwrap();
        let mut out = vec![0f32; 2];
        let weights = vec![0u8; 10];
        let mut products = [PromptProduct {
            encoding: WeightEncoding::Q5_0,
            weights: &weights,
            rows: 1,
            out: &mut out,
        }];
        assert!(matmul_prompt(&mut products, &acts, &OneThread).is_err());
    }
}

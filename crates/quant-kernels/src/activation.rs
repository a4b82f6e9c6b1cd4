//! Element-wise functions of the embedder (exact GELU, softmax) and of the generator's decode
//! step (RMS norm, SiLU-gated product, residual sums), written as branch-free loops that the
//! compiler vectorises. candle evaluates exp and erf with libm's scalar `expf` and `erff`,
//! which took a fifth of sentence-embedding time at 2 threads; and for one token, candle's
//! per-op costs (a tensor allocated per op) outweighed the arithmetic.

/// erf(x) as a rational function of x (Eigen's and XLA's single-precision approximation:
/// x·P(x²)/Q(x²) on [-4, 4], where erf is ±1 to float precision outside). Absolute error
/// below 1e-6 against libm.
#[inline(always)]
#[allow(clippy::excessive_precision)] // the coefficients as published
pub fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = -2.726_142_3e-10_f32;
    p = p.mul_add(x2, 2.770_681_4e-8);
    p = p.mul_add(x2, -2.101_024e-6);
    p = p.mul_add(x2, -5.692_506_4e-5);
    p = p.mul_add(x2, -7.349_906_3e-4);
    p = p.mul_add(x2, -2.954_599_8e-3);
    p = p.mul_add(x2, -1.609_603_3e-2);
    let mut q = -1.456_607_2e-5_f32;
    q = q.mul_add(x2, -2.133_740_6e-4);
    q = q.mul_add(x2, -1.682_827e-3);
    q = q.mul_add(x2, -7.373_329e-3);
    q = q.mul_add(x2, -1.426_473_9e-2);
    x * p / q
}

/// e^x by Cephes' method: x = n·ln 2 + r with |r| ≤ ln 2 / 2, a degree-6 polynomial for e^r,
/// and 2^n put into the exponent bits. Relative error about 1e-7; inputs below -87.3 give
/// e^-87.3 (≈ 1e-38) instead of a denormal, which no softmax can tell from zero.
#[inline(always)]
#[allow(clippy::excessive_precision)] // the coefficients as published
pub fn exp(x: f32) -> f32 {
    const LOG2_E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split so that n·LN2_HI is exact.
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let x = x.clamp(-87.3, 88.3);
    let n = (x * LOG2_E + 0.5).floor();
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4_f32;
    p = p.mul_add(r, 1.398_199_9e-3);
    p = p.mul_add(r, 8.333_452e-3);
    p = p.mul_add(r, 4.166_579_6e-2);
    p = p.mul_add(r, 1.666_666_5e-1);
    p = p.mul_add(r, 5.000_000_1e-1);
    let y = (p * r).mul_add(r, r) + 1.0;
    // n lies in [-126, 127] after the clamp, so the biased exponent n + 127 is a normal one.
    // Adding 2^23 puts that integer in the low mantissa bits, which the shift moves into the
    // exponent (the bits of 2^23 itself leave the word); a float-to-int cast would do the same
    // but, saturating in Rust, keeps the loop from being vectorised.
    let scale = f32::from_bits((n + (127.0 + 8_388_608.0)).to_bits() << 23);
    y * scale
}

/// Exact GELU, x·Φ(x) = x/2·(1 + erf(x/√2)), in place (BERT's `gelu`, not the tanh form).
pub fn gelu_erf_in_place(xs: &mut [f32]) {
    for x in xs {
        let v = *x;
        *x = 0.5 * v * (1.0 + erf(v * std::f32::consts::FRAC_1_SQRT_2));
    }
}

/// Sum of the elementwise products of `a` and `b` (over the shorter of the two).
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(all(target_arch = "x86_64", target_feature = "avx2", target_feature = "fma"))]
    {
        // SAFETY: compiled only where the target has AVX2 and FMA.
        unsafe { dot_avx2(a, b) }
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "avx2", target_feature = "fma")))]
    {
        dot_lanes(a, b)
    }
}

/// [`dot`] in eight independent lanes, for targets without AVX2 (and the reference in tests).
#[inline(always)]
pub fn dot_lanes(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut lanes = [0f32; 8];
    let mut a8 = a.chunks_exact(8);
    let mut b8 = b.chunks_exact(8);
    for (x, y) in (&mut a8).zip(&mut b8) {
        for l in 0..8 {
            lanes[l] = x[l].mul_add(y[l], lanes[l]);
        }
    }
    let mut sum: f32 = lanes.iter().sum();
    for (x, y) in a8.remainder().iter().zip(b8.remainder()) {
        sum = x.mul_add(*y, sum);
    }
    sum
}

/// [`dot`] sixteen values a step in two 8-lane FMA accumulators (the compiler made 2- and
/// 4-value loads of [`dot_lanes`] for the attention's 64-value heads).
#[cfg(all(target_arch = "x86_64", target_feature = "avx2", target_feature = "fma"))]
#[target_feature(enable = "avx2,fma")]
fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
    use std::arch::x86_64::*;
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let (mut acc0, mut acc1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
    let mut i = 0;
    // SAFETY: every load reads 8 values at `i` with `i + 8 <= n`, inside both slices.
    unsafe {
        while i + 16 <= n {
            acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), acc0);
            let (x, y) = (_mm256_loadu_ps(pa.add(i + 8)), _mm256_loadu_ps(pb.add(i + 8)));
            acc1 = _mm256_fmadd_ps(x, y, acc1);
            i += 16;
        }
        if i + 8 <= n {
            acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), acc0);
            i += 8;
        }
    }
    let acc = _mm256_add_ps(acc0, acc1);
    let half = _mm_add_ps(_mm256_extractf128_ps(acc, 1), _mm256_castps256_ps128(acc));
    let quarter = _mm_add_ps(half, _mm_movehl_ps(half, half));
    let mut sum = _mm_cvtss_f32(_mm_add_ss(quarter, _mm_movehdup_ps(quarter)));
    for j in i..n {
        sum = a[j].mul_add(b[j], sum);
    }
    sum
}

/// RMS norm as candle's `RmsNorm`: `out = x / sqrt(mean(x²) + eps) · weight`. `out`, `x` and
/// `weight` have one length.
pub fn rms_norm(x: &[f32], weight: &[f32], eps: f32, out: &mut [f32]) {
    let m = (dot(x, x) / x.len().max(1) as f32 + eps).sqrt();
    for ((o, v), w) in out.iter_mut().zip(x).zip(weight) {
        *o = v / m * w;
    }
}

/// `gate = silu(gate) · up` (the gated feed-forward of Llama-family models), in place; SiLU is
/// `x / (1 + e^-x)`.
pub fn silu_mul_in_place(gate: &mut [f32], up: &[f32]) {
    for (g, u) in gate.iter_mut().zip(up) {
        let v = *g;
        *g = v / (1.0 + exp(-v)) * u;
    }
}

/// `x += y`, elementwise.
pub fn add_in_place(x: &mut [f32], y: &[f32]) {
    for (a, b) in x.iter_mut().zip(y) {
        *a += b;
    }
}

/// Softmax over each run of `row_len` values, in place. A trailing partial row is treated as
/// a row of its own. Rows whose values are all -inf become uniform rather than NaN.
pub fn softmax_rows_in_place(xs: &mut [f32], row_len: usize) {
    if row_len == 0 {
        return;
    }
    for row in xs.chunks_mut(row_len) {
        let max = max_lanes(row);
        let max = if max.is_finite() { max } else { 0.0 };
        // The exponentials apart from their sum, and the sum in lanes, so both loops are
        // vectorised (a running float sum is not: its order of additions is fixed).
        for v in row.iter_mut() {
            *v = exp(*v - max);
        }
        let inv = 1.0 / sum_lanes(row);
        for v in row.iter_mut() {
            *v *= inv;
        }
    }
}

/// The largest value (-inf for none), in eight lanes so the loop is vectorised.
#[inline(always)]
fn max_lanes(xs: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; 8];
    let mut chunks = xs.chunks_exact(8);
    for c in &mut chunks {
        for l in 0..8 {
            lanes[l] = if c[l] > lanes[l] { c[l] } else { lanes[l] };
        }
    }
    let tail = chunks.remainder().iter().copied().fold(f32::NEG_INFINITY, f32::max);
    lanes.iter().copied().fold(tail, f32::max)
}

/// The sum, in eight lanes so the loop is vectorised.
#[inline(always)]
fn sum_lanes(xs: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let mut chunks = xs.chunks_exact(8);
    for c in &mut chunks {
        for l in 0..8 {
            lanes[l] += c[l];
        }
    }
    lanes.iter().sum::<f32>() + chunks.remainder().iter().sum::<f32>()
}

/// `row` plus each of `addends` (each as long as `row`), then layer normalisation with
/// `gamma`, `beta` and `eps`, in place: BERT's residual sum and LayerNorm in one pass over
/// the row (mean, then the variance about it, each summed in lanes; candle sums x and x² in
/// one pass, which differs from this in the last bits).
pub fn add_layer_norm(row: &mut [f32], addends: &[&[f32]], gamma: &[f32], beta: &[f32], eps: f32) {
    let n = row.len();
    for add in addends {
        for (x, a) in row.iter_mut().zip(&add[..n]) {
            *x += a;
        }
    }
    if n == 0 {
        return;
    }
    let mean = sum_lanes(row) / n as f32;
    for x in row.iter_mut() {
        *x -= mean;
    }
    let inv = 1.0 / (dot(row, row) / n as f32 + eps).sqrt();
    for ((x, g), b) in row.iter_mut().zip(&gamma[..n]).zip(&beta[..n]) {
        *x = (*x * inv).mul_add(*g, *b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn libm_erf(x: f64) -> f64 {
        // erf by its Taylor series (exact enough for |x| ≤ 3) and the continued fraction
        // of erfc beyond; the test needs a reference independent of the code under test.
        if x.abs() <= 3.0 {
            let mut sum = 0.0;
            let mut term = x;
            let mut n = 0.0;
            while term.abs() > 1e-17 || n < 5.0 {
                sum += term / (2.0 * n + 1.0);
                n += 1.0;
                term *= -x * x / n;
            }
            sum * 2.0 / std::f64::consts::PI.sqrt()
        } else {
            let z = x.abs();
            let mut f = 0.0;
            for k in (1..60).rev() {
                f = (k as f64 / 2.0) / (z + f);
            }
            let erfc = (-z * z).exp() / std::f64::consts::PI.sqrt() / (z + f);
            (1.0 - erfc).copysign(x)
        }
    }

    #[test]
    fn erf_matches_the_series_within_a_millionth() {
        let mut worst = 0.0f64;
        for i in -6000..=6000 {
            let x = i as f64 / 1000.0;
            worst = worst.max((erf(x as f32) as f64 - libm_erf(x)).abs());
        }
        assert!(worst < 1e-6, "max |erf error| {worst}");
        assert!((erf(9.0) - 1.0).abs() < 1e-6 && (erf(-9.0) + 1.0).abs() < 1e-6);
    }

    #[test]
    fn decode_step_functions_agree_with_their_definitions() {
        let x: Vec<f32> = (0..37).map(|i| (i as f32 * 0.37).sin() * 3.0).collect();
        let w: Vec<f32> = (0..37).map(|i| 0.5 + i as f32 / 37.0).collect();
        let mut out = vec![0f32; 37];
        rms_norm(&x, &w, 1e-6, &mut out);
        let mean: f64 = x.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>() / 37.0;
        for i in 0..37 {
            let want = f64::from(x[i]) / (mean + 1e-6).sqrt() * f64::from(w[i]);
            assert!((f64::from(out[i]) - want).abs() < 1e-5, "norm {i}: {} vs {want}", out[i]);
        }
        let mut gate = x.clone();
        silu_mul_in_place(&mut gate, &w);
        for i in 0..37 {
            let v = f64::from(x[i]);
            let want = v / (1.0 + (-v).exp()) * f64::from(w[i]);
            assert!((f64::from(gate[i]) - want).abs() < 1e-5, "silu {i}: {} vs {want}", gate[i]);
        }
        let mut sum = x.clone();
        add_in_place(&mut sum, &w);
        assert!(sum.iter().zip(&x).zip(&w).all(|((s, a), b)| *s == a + b));
        let want: f64 = x.iter().zip(&w).map(|(a, b)| f64::from(*a) * f64::from(*b)).sum();
        for n in [0, 7, 8, 15, 16, 24, 37] {
            let want_n: f64 =
                x[..n].iter().zip(&w).map(|(a, b)| f64::from(*a) * f64::from(*b)).sum();
            for got in [dot(&x[..n], &w), dot_lanes(&x[..n], &w)] {
                assert!((f64::from(got) - want_n).abs() < 1e-4, "dot of {n}: {got} vs {want_n}");
            }
        }
        assert!((f64::from(dot(&x, &w)) - want).abs() < 1e-4);
    }

    #[test]
    fn exp_matches_std_within_relative_2e_7() {
        let mut worst = 0.0f64;
        for i in -87_000..=88_000 {
            let x = i as f32 / 1000.0;
            let want = (x as f64).exp();
            worst = worst.max(((exp(x) as f64 - want) / want).abs());
        }
        assert!(worst < 2e-7, "max relative exp error {worst}");
        assert_eq!(exp(0.0), 1.0);
        assert!(exp(f32::NEG_INFINITY) < 1e-37);
    }

    #[test]
    fn gelu_and_softmax_agree_with_their_definitions() {
        let mut xs = vec![-3.0f32, -1.0, 0.0, 0.5, 2.0];
        let want: Vec<f64> = xs
            .iter()
            .map(|&x| {
                let x = x as f64;
                0.5 * x * (1.0 + libm_erf(x / 2f64.sqrt()))
            })
            .collect();
        gelu_erf_in_place(&mut xs);
        for (got, want) in xs.iter().zip(&want) {
            assert!((*got as f64 - want).abs() < 1e-6, "{got} vs {want}");
        }

        let mut rows = vec![1.0f32, 2.0, 3.0, f32::NEG_INFINITY, 1000.0, 1000.0];
        softmax_rows_in_place(&mut rows, 4);
        let e = [1f64.exp(), 2f64.exp(), 3f64.exp()];
        let total: f64 = e.iter().sum();
        for (got, want) in rows[..3].iter().zip(e.iter().map(|v| v / total)) {
            assert!((*got as f64 - want).abs() < 1e-7, "{got} vs {want}");
        }
        assert!(rows[3] < 1e-30);
        assert_eq!(&rows[4..], &[0.5, 0.5]);

        // Rows long enough for the lanes and a tail: against a plain f64 softmax.
        let values: Vec<f32> = (0..2 * 45).map(|i| ((i * 37 % 19) as f32 - 9.0) / 3.0).collect();
        let mut rows = values.clone();
        softmax_rows_in_place(&mut rows, 45);
        for (got, row) in rows.chunks(45).zip(values.chunks(45)) {
            let max = row.iter().fold(f64::NEG_INFINITY, |m, &x| m.max(f64::from(x)));
            let total: f64 = row.iter().map(|&x| (f64::from(x) - max).exp()).sum();
            for (g, &x) in got.iter().zip(row) {
                let want = (f64::from(x) - max).exp() / total;
                assert!((f64::from(*g) - want).abs() < 1e-7, "{g} vs {want}");
            }
        }
    }

    #[test]
    fn add_layer_norm_is_the_residual_sum_normalised() {
        let n = 45;
        let x: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin() * 3.0 + 1.0).collect();
        let a: Vec<f32> = (0..n).map(|i| (i as f32 * 0.11).cos()).collect();
        let b: Vec<f32> = (0..n).map(|i| i as f32 / 100.0).collect();
        let gamma: Vec<f32> = (0..n).map(|i| 1.0 + i as f32 / 50.0).collect();
        let beta: Vec<f32> = (0..n).map(|i| -(i as f32) / 70.0).collect();
        let sum: Vec<f64> =
            (0..n).map(|i| f64::from(x[i]) + f64::from(a[i]) + f64::from(b[i])).collect();
        let mean = sum.iter().sum::<f64>() / n as f64;
        let var = sum.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n as f64;
        let mut row = x.clone();
        add_layer_norm(&mut row, &[&a, &b], &gamma, &beta, 1e-12);
        for i in 0..n {
            let want =
                (sum[i] - mean) / (var + 1e-12).sqrt() * f64::from(gamma[i]) + f64::from(beta[i]);
            assert!((f64::from(row[i]) - want).abs() < 1e-5, "{i}: {} vs {want}", row[i]);
        }
    }
}

//! Attention over a layer's cache on plain slices: one new token's for the generator's decode
//! step ([`attend_one`]), a prompt chunk's, causal ([`attend_causal`]), and the sentence
//! embedder's, bidirectional over inputs packed row after row ([`attend_packed`]). In candle the
//! decode step is about twenty small ops per layer (biases, rotary embedding, cache append,
//! grouped products, scale, softmax, transposes), whose fixed costs were a large part of decode
//! time on small models, and a prompt chunk materialises, masks and normalises a score matrix
//! per head (megabytes per layer, half of it hidden by the mask); here each is one pass.

use crate::activation::{dot, exp};
use crate::{Claims, Executor, ShapeError, SharedOut};

/// Geometry of one layer's attention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttentionShape {
    /// Query heads.
    pub n_head: usize,
    /// Key/value heads; each serves `n_head / n_kv_head` consecutive query heads.
    pub n_kv_head: usize,
    /// Values per head.
    pub head_dim: usize,
}

/// Rotates every head of `x` (heads × `head_dim`) in place by the angles whose cosines and
/// sines are `cos` and `sin` (`head_dim / 2` each): NeoX style pairs value `i` with `i + half`,
/// Llama style pairs `2i` with `2i + 1`. The arithmetic is candle's `rope` / `rope_i`.
pub fn rope_in_place(
    x: &mut [f32],
    head_dim: usize,
    cos: &[f32],
    sin: &[f32],
    neox: bool,
) -> Result<(), ShapeError> {
    let half = head_dim / 2;
    if head_dim == 0 || !head_dim.is_multiple_of(2) || !x.len().is_multiple_of(head_dim) {
        return Err(ShapeError(format!("{} values are not heads of {head_dim}", x.len())));
    }
    if cos.len() < half || sin.len() < half {
        return Err(ShapeError(format!("rotary tables shorter than {half}")));
    }
    for head in x.chunks_exact_mut(head_dim) {
        if neox {
            let (a, b) = head.split_at_mut(half);
            for i in 0..half {
                let (x0, x1) = (a[i], b[i]);
                a[i] = x0 * cos[i] - x1 * sin[i];
                b[i] = x0 * sin[i] + x1 * cos[i];
            }
        } else {
            for (i, pair) in head.chunks_exact_mut(2).enumerate() {
                let (x0, x1) = (pair[0], pair[1]);
                pair[0] = x0 * cos[i] - x1 * sin[i];
                pair[1] = x0 * sin[i] + x1 * cos[i];
            }
        }
    }
    Ok(())
}

/// Softmax attention of one query position `q` (`n_head × head_dim`) over `len` cached
/// positions of `keys` and `values`, stored position-major (`len × n_kv_head × head_dim`, as
/// tokens are appended), scaled by `scale`. Writes `n_head × head_dim` values to `out`; the
/// query heads are shared out by `executor`.
pub fn attend_one(
    q: &[f32],
    keys: &[f32],
    values: &[f32],
    shape: AttentionShape,
    scale: f32,
    out: &mut [f32],
    executor: &dyn Executor,
) -> Result<(), ShapeError> {
    let AttentionShape { n_head, n_kv_head, head_dim } = shape;
    if n_kv_head == 0 || head_dim == 0 || !n_head.is_multiple_of(n_kv_head) {
        return Err(ShapeError(format!("{n_head} query heads over {n_kv_head} key/value heads")));
    }
    let width = n_kv_head * head_dim;
    let len = keys.len() / width;
    if q.len() != n_head * head_dim
        || out.len() != q.len()
        || keys.len() != len * width
        || values.len() != keys.len()
        || len == 0
    {
        return Err(ShapeError(format!(
            "query {}, keys {}, values {}, output {} for {shape:?}",
            q.len(),
            keys.len(),
            values.len(),
            out.len()
        )));
    }
    let groups = n_head / n_kv_head;
    let out_ptr = SharedOut(out.as_mut_ptr());
    let claims = Claims::new(n_head);
    // One query head per item, so more threads than key/value heads all get work.
    let work = |heads: std::ops::Range<usize>| {
        let mut scores = vec![0f32; len];
        for head in claims.take(heads) {
            // SAFETY: `claims` gives each query head (`head < n_head`) to one worker only, and
            // the head owns the output range `head * head_dim..(head + 1) * head_dim`, inside
            // `out` because `out.len() == n_head * head_dim`; `out` is borrowed mutably for
            // this whole call.
            let o = unsafe {
                std::slice::from_raw_parts_mut(out_ptr.get().add(head * head_dim), head_dim)
            };
            let qh = &q[head * head_dim..(head + 1) * head_dim];
            let kv = KvHead { keys, values, width, offset: head / groups * head_dim, head_dim };
            attend_head(qh, kv, scale, &mut scores, o);
        }
    };
    executor.run(n_head, &work);
    claims.check_all_done()
}

/// One key/value head in a position-major cache: position `t`'s values are at
/// `t * width + offset..` (`head_dim` of them).
#[derive(Clone, Copy)]
struct KvHead<'a> {
    keys: &'a [f32],
    values: &'a [f32],
    width: usize,
    offset: usize,
    head_dim: usize,
}

/// One query head `qh` over the first `scores.len()` positions of `kv`, into `o`.
#[inline]
fn attend_head(qh: &[f32], kv: KvHead<'_>, scale: f32, scores: &mut [f32], o: &mut [f32]) {
    let KvHead { keys, values, width, offset, head_dim } = kv;
    let mut max = f32::NEG_INFINITY;
    for (t, s) in scores.iter_mut().enumerate() {
        let k = &keys[t * width + offset..][..head_dim];
        *s = dot(qh, k) * scale;
        max = max.max(*s);
    }
    // Apart from the sum, so this loop is vectorised.
    for s in scores.iter_mut() {
        *s = exp(*s - max);
    }
    let inv = 1.0 / scores.iter().sum::<f32>();
    o.fill(0.0);
    for (t, s) in scores.iter().enumerate() {
        let p = s * inv;
        let v = &values[t * width + offset..][..head_dim];
        for (o, v) in o.iter_mut().zip(v) {
            *o = p.mul_add(*v, *o);
        }
    }
}

/// Causal softmax attention of a prompt chunk: `q` holds `seq` query positions (`seq ×
/// n_head × head_dim`, position-major) sitting at positions `first..first + seq`, and the
/// cache `keys`/`values` holds positions `0..first + seq` (position-major, `n_kv_head ×
/// head_dim` each, the chunk's own already appended); each query sees the positions up to its
/// own, and with a `window`, only the last `window` of them (keys at `p - window` and before
/// are hidden from a query at `p`, as llama.cpp's sliding window). Writes `seq × n_head ×
/// head_dim` values to `out`. Work is handed out in blocks of
/// [`QUERY_BLOCK`] query positions per key/value head, the latest (longest) blocks first: a
/// block's queries (all the heads that share the key/value head) times the keys its last
/// position sees, then the softmax of each row over its own visible keys (the few hidden ones
/// inside the block zeroed), then the values; unlike a masked product of the whole chunk, no
/// scores are computed for keys after the block, and no mask or whole score matrix is kept.
#[allow(clippy::too_many_arguments)]
pub fn attend_causal(
    q: &[f32],
    keys: &[f32],
    values: &[f32],
    shape: AttentionShape,
    scale: f32,
    window: Option<usize>,
    out: &mut [f32],
    executor: &dyn Executor,
) -> Result<(), ShapeError> {
    let AttentionShape { n_head, n_kv_head, head_dim } = shape;
    if n_head == 0 || n_kv_head == 0 || head_dim == 0 || !n_head.is_multiple_of(n_kv_head) {
        return Err(ShapeError(format!("{n_head} query heads over {n_kv_head} key/value heads")));
    }
    let (q_width, width) = (n_head * head_dim, n_kv_head * head_dim);
    let seq = q.len() / q_width;
    let len = keys.len() / width;
    if seq == 0
        || q.len() != seq * q_width
        || out.len() != q.len()
        || keys.len() != len * width
        || values.len() != keys.len()
        || len < seq
        || window == Some(0)
    {
        return Err(ShapeError(format!(
            "query {}, keys {}, values {}, output {} for {shape:?}",
            q.len(),
            keys.len(),
            values.len(),
            out.len()
        )));
    }
    let first = len - seq;
    let groups = n_head / n_kv_head;
    let out_ptr = SharedOut(out.as_mut_ptr());
    let blocks = seq.div_ceil(QUERY_BLOCK);
    let items = blocks * n_kv_head;
    let claims = Claims::new(items);
    let work = |range: std::ops::Range<usize>| {
        let mut buffers = CausalBuffers::default();
        for item in claims.take(range) {
            // The latest (longest) blocks first, so the last items handed out are short.
            let (block, g) = (blocks - 1 - item / n_kv_head, item % n_kv_head);
            let (start, end) = (block * QUERY_BLOCK, ((block + 1) * QUERY_BLOCK).min(seq));
            let rows = (end - start) * groups;
            let visible = first + end;
            // The earliest key a query at `p` sees, and so the block's first row.
            let earliest = |p: usize| window.map_or(0, |w| (p + 1).saturating_sub(w));
            let lo = earliest(first + start);
            let span = visible - lo;
            // Query rows (position, head of the group), gathered contiguous.
            buffers.queries.clear();
            for i in start..end {
                let at = i * q_width + g * groups * head_dim;
                buffers.queries.extend_from_slice(&q[at..at + groups * head_dim]);
            }
            // Scores: the rows times keys `lo..visible` of head `g` (key `t`, value `d` at
            // `t * width + g * head_dim + d`).
            buffers.scores.resize(rows * span, 0.0);
            let keys_g = &keys[lo * width + g * head_dim..];
            let scores = &mut buffers.scores[..rows * span];
            let product = Strided { values: &buffers.queries, row_step: head_dim, col_step: 1 };
            let keys_t = Strided { values: keys_g, row_step: 1, col_step: width };
            matmul_strided(rows, span, head_dim, product, keys_t, scores)?;
            for (r, row) in scores.chunks_exact_mut(span).enumerate() {
                // Row `r` is a query at `p`: it sees keys `earliest(p)..=p`.
                let p = first + start + r / groups;
                let (before, rest) = row.split_at_mut(earliest(p) - lo);
                let (shown, after) = rest.split_at_mut(p + 1 - earliest(p));
                before.fill(0.0);
                softmax_scaled(shown, scale);
                after.fill(0.0);
            }
            buffers.outputs.resize(rows * head_dim, 0.0);
            let probs = Strided { values: scores, row_step: span, col_step: 1 };
            let values_g = Strided {
                values: &values[lo * width + g * head_dim..],
                row_step: width,
                col_step: 1,
            };
            matmul_strided(rows, head_dim, span, probs, values_g, &mut buffers.outputs)?;
            for (r, o) in buffers.outputs.chunks_exact(head_dim).enumerate() {
                let (i, h) = (start + r / groups, g * groups + r % groups);
                let at = i * q_width + h * head_dim;
                // SAFETY: `claims` gives each item (`item < blocks * n_kv_head`) to one worker
                // only; the item owns the outputs of query positions `start..end` for the heads
                // of key/value head `g`, `at..at + head_dim` with `at + head_dim <= seq *
                // q_width == out.len()`, which no other item writes; `out` is borrowed mutably
                // for this whole call.
                let dst =
                    unsafe { std::slice::from_raw_parts_mut(out_ptr.get().add(at), head_dim) };
                dst.copy_from_slice(o);
            }
        }
        Ok::<(), ShapeError>(())
    };
    run_fallible(executor, items, &work)?;
    claims.check_all_done()
}

/// Bidirectional softmax attention of several inputs packed row after row, as a sentence
/// encoder runs it: `qkv` holds each row's queries, keys and values of all `n_head` heads
/// (`3 × n_head × head_dim` values per row, queries already scaled), `spans` each input's
/// first row and length; every input's rows attend over that input's rows only, so inputs of
/// different lengths need neither padding nor a mask. Writes `n_head × head_dim` values per row
/// of the spans into `out` (rows × `n_head × head_dim`); rows outside every span are left as
/// they are. One work item per input and head.
pub fn attend_packed(
    qkv: &[f32],
    spans: &[(usize, usize)],
    n_head: usize,
    head_dim: usize,
    out: &mut [f32],
    executor: &dyn Executor,
) -> Result<(), ShapeError> {
    let Some((hidden, width)) =
        n_head.checked_mul(head_dim).and_then(|h| Some((h, h.checked_mul(3)?)))
    else {
        return Err(ShapeError(format!("{n_head} heads of {head_dim} values overflow")));
    };
    if hidden == 0 || !qkv.len().is_multiple_of(width) {
        return Err(ShapeError(format!(
            "{} values are not rows of {n_head} heads of q, k, v",
            qkv.len()
        )));
    }
    let rows = qkv.len() / width;
    if out.len() != rows * hidden {
        return Err(ShapeError(format!("an output of {} values for {rows} rows", out.len())));
    }
    // Spans must lie inside the rows and not overlap, so no two items write one output row.
    let mut sorted: Vec<(usize, usize)> = spans.to_vec();
    sorted.sort_unstable();
    let mut next_free = 0;
    for &(start, len) in &sorted {
        if len == 0 || start < next_free || start.checked_add(len).is_none_or(|end| end > rows) {
            return Err(ShapeError(format!(
                "input rows {start}+{len} overlap or pass {rows} rows"
            )));
        }
        next_free = start + len;
    }
    let items = spans.len() * n_head;
    let claims = Claims::new(items);
    let out_ptr = SharedOut(out.as_mut_ptr());
    let work = |range: std::ops::Range<usize>| {
        let (mut scores, mut result) = (Vec::new(), Vec::new());
        for item in claims.take(range) {
            let ((start, len), head) = (spans[item / n_head], item % n_head);
            let base = start * width + head * head_dim;
            let q = Strided { values: &qkv[base..], row_step: width, col_step: 1 };
            let keys = Strided { values: &qkv[base + hidden..], row_step: 1, col_step: width };
            scores.resize(len * len, 0.0);
            matmul_strided(len, len, head_dim, q, keys, &mut scores)?;
            crate::activation::softmax_rows_in_place(&mut scores, len);
            let probs = Strided { values: &scores, row_step: len, col_step: 1 };
            let v = Strided { values: &qkv[base + 2 * hidden..], row_step: width, col_step: 1 };
            result.resize(len * head_dim, 0.0);
            matmul_strided(len, head_dim, len, probs, v, &mut result)?;
            for (r, row) in result.chunks_exact(head_dim).enumerate() {
                let at = (start + r) * hidden + head * head_dim;
                assert!(at + head_dim <= rows * hidden, "an output row outside the output");
                // SAFETY: `claims` gives each item (input, head) to one worker only; the item
                // owns values `head * head_dim..(head + 1) * head_dim` of its input's rows
                // `start..start + len`, which lie inside `out` (`start + len <= rows` and
                // `out.len() == rows * hidden`, checked above) and which no other item writes
                // (spans do not overlap, checked above); `out` is borrowed mutably for this
                // whole call.
                let dst =
                    unsafe { std::slice::from_raw_parts_mut(out_ptr.get().add(at), head_dim) };
                dst.copy_from_slice(row);
            }
        }
        Ok::<(), ShapeError>(())
    };
    run_fallible(executor, items, &work)?;
    claims.check_all_done()
}

/// Runs `work` over `items` on `executor` and returns the first error any range met.
fn run_fallible(
    executor: &dyn Executor,
    items: usize,
    work: &(dyn Fn(std::ops::Range<usize>) -> Result<(), ShapeError> + Sync),
) -> Result<(), ShapeError> {
    let failed = std::sync::Mutex::new(None);
    executor.run(items, &|range| {
        if let Err(e) = work(range)
            && let Ok(mut slot) = failed.lock()
        {
            *slot = Some(e);
        }
    });
    match failed.into_inner().ok().flatten() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Query positions per unit of work of [`attend_causal`].
const QUERY_BLOCK: usize = 32;

/// A worker's buffers for [`attend_causal`], kept across its items.
#[derive(Default)]
struct CausalBuffers {
    queries: Vec<f32>,
    scores: Vec<f32>,
    outputs: Vec<f32>,
}

/// `xs · scale`, then softmax, in place.
fn softmax_scaled(xs: &mut [f32], scale: f32) {
    let mut max = f32::NEG_INFINITY;
    for x in xs.iter_mut() {
        *x *= scale;
        max = max.max(*x);
    }
    for x in xs.iter_mut() {
        *x = exp(*x - max);
    }
    let inv = 1.0 / xs.iter().sum::<f32>();
    for x in xs.iter_mut() {
        *x *= inv;
    }
}

/// A matrix read from a slice: element (i, j) at `i * row_step + j * col_step`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Strided<'a> {
    /// The slice holding the elements.
    pub(crate) values: &'a [f32],
    /// Distance between rows.
    pub(crate) row_step: usize,
    /// Distance between columns.
    pub(crate) col_step: usize,
}

impl Strided<'_> {
    /// Whether a (rows × cols) matrix lies inside the slice.
    fn holds(&self, rows: usize, cols: usize) -> bool {
        if rows == 0 || cols == 0 {
            return true;
        }
        let last = (rows - 1)
            .checked_mul(self.row_step)
            .zip((cols - 1).checked_mul(self.col_step))
            .and_then(|(a, b)| a.checked_add(b));
        last.is_some_and(|last| last < self.values.len())
    }
}

/// `out` (m × n, row-major) = `a` (m × k) · `b` (k × n), with gemm's f32 kernels on the
/// calling thread.
pub(crate) fn matmul_strided(
    m: usize,
    n: usize,
    k: usize,
    a: Strided<'_>,
    b: Strided<'_>,
    out: &mut [f32],
) -> Result<(), ShapeError> {
    if !a.holds(m, k) || !b.holds(k, n) || m.checked_mul(n) != Some(out.len()) {
        return Err(ShapeError(format!(
            "a {m} × {k} by {k} × {n} product does not fit its slices"
        )));
    }
    if m == 0 || n == 0 {
        return Ok(());
    }
    if k == 0 {
        out.fill(0.0);
        return Ok(());
    }
    // SAFETY: every element gemm reads, (i, j) at `i * row_step + j * col_step` for i < rows
    // and j < cols, lies inside its slice (checked by `holds`), and it writes the m × n
    // elements of `out` (row-major, `out.len() == m * n`), which is borrowed mutably here;
    // `read_dst` is false, so `out`'s old values are not read. The steps fit in isize as
    // offsets inside slices do.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            out.as_mut_ptr(),
            1,
            n as isize,
            false,
            a.values.as_ptr(),
            a.col_step as isize,
            a.row_step as isize,
            b.values.as_ptr(),
            b.col_step as isize,
            b.row_step as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OneThread;
    use crate::misbehaving::{Overlapping, SkipsOne};

    fn values(n: usize, seed: u32) -> Vec<f32> {
        (0..n)
            .map(|i| (((i as u32).wrapping_mul(2_654_435_761) ^ seed) % 2001) as f32 / 1000.0 - 1.0)
            .collect()
    }

    #[test]
    fn attention_equals_the_textbook_formula() {
        let shape = AttentionShape { n_head: 6, n_kv_head: 2, head_dim: 12 };
        let len = 37;
        let q = values(6 * 12, 1);
        let keys = values(len * 2 * 12, 2);
        let vals = values(len * 2 * 12, 3);
        let scale = 1.0 / 12f32.sqrt();
        let mut out = vec![0f32; 6 * 12];
        attend_one(&q, &keys, &vals, shape, scale, &mut out, &OneThread).unwrap();
        for h in 0..6 {
            let g = h / 3;
            let scores: Vec<f64> = (0..len)
                .map(|t| {
                    (0..12)
                        .map(|j| q[h * 12 + j] as f64 * keys[(t * 2 + g) * 12 + j] as f64)
                        .sum::<f64>()
                        * scale as f64
                })
                .collect();
            let max = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let total: f64 = scores.iter().map(|s| (s - max).exp()).sum();
            for j in 0..12 {
                let want: f64 = (0..len)
                    .map(|t| (scores[t] - max).exp() / total * vals[(t * 2 + g) * 12 + j] as f64)
                    .sum();
                let got = out[h * 12 + j] as f64;
                assert!((got - want).abs() < 1e-5, "head {h} value {j}: {got} vs {want}");
            }
        }
        let mut short = vec![0f32; 5];
        assert!(attend_one(&q, &keys, &vals, shape, scale, &mut short, &OneThread).is_err());
    }

    /// A chunk's causal attention equals, position by position, one token's attention over
    /// the cache up to that position (or over its last `window` positions), also behind
    /// earlier positions, over more positions than one block, and with item ranges handed out
    /// twice.
    #[test]
    fn causal_attention_equals_one_token_at_a_time() {
        let shape = AttentionShape { n_head: 6, n_kv_head: 2, head_dim: 16 };
        let (first, seq) = (5, QUERY_BLOCK + 9);
        let len = first + seq;
        let q = values(seq * 6 * 16, 7);
        let keys = values(len * 2 * 16, 8);
        let vals = values(len * 2 * 16, 9);
        let scale = 0.25;
        for window in [None, Some(1), Some(7), Some(QUERY_BLOCK + 3)] {
            let mut out = vec![0f32; seq * 6 * 16];
            attend_causal(&q, &keys, &vals, shape, scale, window, &mut out, &Overlapping).unwrap();
            for i in 0..seq {
                let p = first + i;
                let lo = window.map_or(0, |w| (p + 1).saturating_sub(w)) * 2 * 16;
                let visible = (p + 1) * 2 * 16;
                let mut want = vec![0f32; 6 * 16];
                let qi = &q[i * 96..(i + 1) * 96];
                let (k, v) = (&keys[lo..visible], &vals[lo..visible]);
                attend_one(qi, k, v, shape, scale, &mut want, &OneThread).unwrap();
                for (j, (got, want)) in out[i * 96..(i + 1) * 96].iter().zip(&want).enumerate() {
                    assert!(
                        (got - want).abs() < 1e-5,
                        "window {window:?} position {i} value {j}: {got} vs {want}"
                    );
                }
            }
        }
        let mut out = vec![0f32; seq * 6 * 16];
        let (k, v) = (&keys[..32], &vals[..32]);
        assert!(attend_causal(&q, k, v, shape, scale, None, &mut out, &OneThread).is_err());
        assert!(
            attend_causal(&q, &keys, &vals, shape, scale, Some(0), &mut out, &OneThread).is_err()
        );
        assert!(attend_causal(&q, &keys, &vals, shape, scale, None, &mut out, &SkipsOne).is_err());
    }

    /// Packed inputs attend over their own rows only: each row equals one token's attention
    /// over its input's keys and values, whatever the other inputs hold; rows outside the
    /// spans stay untouched.
    #[test]
    fn packed_attention_keeps_inputs_apart() {
        let (n_head, head_dim) = (3, 8);
        let (hidden, width) = (n_head * head_dim, 3 * n_head * head_dim);
        let spans = [(0, 5), (7, 1), (5, 2), (8, 40)];
        let rows = 50;
        let qkv = values(rows * width, 11);
        let mut out = vec![7f32; rows * hidden];
        attend_packed(&qkv, &spans, n_head, head_dim, &mut out, &Overlapping).unwrap();
        let shape = AttentionShape { n_head, n_kv_head: n_head, head_dim };
        for &(start, len) in &spans {
            let part = |offset: usize| -> Vec<f32> {
                (start..start + len)
                    .flat_map(|r| qkv[r * width + offset..r * width + offset + hidden].to_vec())
                    .collect()
            };
            let (keys, vals) = (part(hidden), part(2 * hidden));
            for r in start..start + len {
                let mut want = vec![0f32; hidden];
                let q = &qkv[r * width..r * width + hidden];
                attend_one(q, &keys, &vals, shape, 1.0, &mut want, &OneThread).unwrap();
                for (j, (got, want)) in
                    out[r * hidden..(r + 1) * hidden].iter().zip(&want).enumerate()
                {
                    assert!((got - want).abs() < 1e-5, "row {r} value {j}: {got} vs {want}");
                }
            }
        }
        assert!(out[48 * hidden..].iter().all(|&v| v == 7.0), "rows outside the spans");
        for bad in [&[(0, 5), (4, 2)][..], &[(45, 6)][..], &[(3, 0)][..]] {
            assert!(attend_packed(&qkv, bad, n_head, head_dim, &mut out, &OneThread).is_err());
        }
        assert!(attend_packed(&qkv, &spans, n_head, head_dim, &mut out, &SkipsOne).is_err());
        // Head counts whose products wrap are refused, not written past the output.
        let (wrapping, mut small) = ((1usize << 62) + 1, vec![0f32; 20]);
        let four = [(3, 1), (0, 1), (1, 1), (2, 1)];
        assert!(attend_packed(&[0.0; 60], &four, wrapping, 4, &mut small, &OneThread).is_err());
        assert!(attend_packed(&qkv, &spans, n_head, head_dim, &mut out[1..], &OneThread).is_err());
    }

    #[test]
    fn bad_head_indices_are_refused_and_undone_heads_reported() {
        let shape = AttentionShape { n_head: 4, n_kv_head: 2, head_dim: 8 };
        let len = 5;
        let q = values(4 * 8, 4);
        let keys = values(len * 2 * 8, 5);
        let vals = values(len * 2 * 8, 6);
        let mut good = vec![0f32; 4 * 8];
        attend_one(&q, &keys, &vals, shape, 0.3, &mut good, &OneThread).unwrap();
        let mut out = vec![0f32; 4 * 8];
        attend_one(&q, &keys, &vals, shape, 0.3, &mut out, &Overlapping).unwrap();
        assert_eq!(out, good);
        assert!(attend_one(&q, &keys, &vals, shape, 0.3, &mut out, &SkipsOne).is_err());
    }

    #[test]
    fn rope_rotates_the_documented_pairs() {
        let cos = [0.6f32, 1.0];
        let sin = [0.8f32, 0.0];
        let mut neox = vec![1.0f32, 2.0, 3.0, 4.0];
        rope_in_place(&mut neox, 4, &cos, &sin, true).unwrap();
        // Pairs (0, 2) and (1, 3); the second angle is zero.
        assert_eq!(neox, [1.0 * 0.6 - 3.0 * 0.8, 2.0, 1.0 * 0.8 + 3.0 * 0.6, 4.0]);
        let mut llama = vec![1.0f32, 2.0, 3.0, 4.0];
        rope_in_place(&mut llama, 4, &cos, &sin, false).unwrap();
        // Pairs (0, 1) and (2, 3).
        assert_eq!(llama, [1.0 * 0.6 - 2.0 * 0.8, 1.0 * 0.8 + 2.0 * 0.6, 3.0, 4.0]);
        assert!(rope_in_place(&mut llama, 3, &cos, &sin, false).is_err());
    }
}

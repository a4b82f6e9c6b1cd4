//! Dense f32 layers of the sentence embedder: `x · Wᵀ + b` straight into a caller's buffer on
//! gemm's kernels (on the calling thread, or split by gemm over the rayon pool). candle's `Linear`
//! computes the same product into a fresh tensor, then adds the bias into another one, and a
//! BERT layer's tensors are megabytes each: on fresh memory every time, page faults and the
//! extra passes took a sixth of embedding time at 2 threads.

use crate::ShapeError;

/// `out` (rows × outputs) = `x` (rows × inputs) · `weight`ᵀ + `bias`, where `weight` is
/// (outputs × inputs) row-major as checkpoints store it and `bias` has `outputs` values. The
/// product runs on `threads` threads of the current rayon pool (1: the calling thread only).
pub fn linear(
    x: &[f32],
    weight: &[f32],
    bias: &[f32],
    out: &mut [f32],
    threads: usize,
) -> Result<(), ShapeError> {
    let outputs = bias.len();
    if outputs == 0 || !weight.len().is_multiple_of(outputs) {
        return Err(ShapeError(format!("{} weights for {outputs} outputs", weight.len())));
    }
    let inputs = weight.len() / outputs;
    if inputs == 0 || !x.len().is_multiple_of(inputs) {
        return Err(ShapeError(format!("{} values are not rows of {inputs}", x.len())));
    }
    let rows = x.len() / inputs;
    if rows.checked_mul(outputs) != Some(out.len()) {
        return Err(ShapeError(format!(
            "an output of {} values for {rows} rows of {outputs}",
            out.len()
        )));
    }
    if rows == 0 {
        return Ok(());
    }
    for row in out.chunks_exact_mut(outputs) {
        row.copy_from_slice(bias);
    }
    let parallelism =
        if threads > 1 { gemm::Parallelism::Rayon(threads) } else { gemm::Parallelism::None };
    // SAFETY: gemm reads `x` as rows × inputs (element (i, j) at i * inputs + j, inside `x`,
    // whose length is rows * inputs), `weight` as its transpose, inputs × outputs (element
    // (j, o) at o * inputs + j, inside `weight`, of length outputs * inputs), and reads and
    // writes `out` as rows × outputs row-major (length rows * outputs, checked above), which
    // is borrowed mutably for this call; no two of the slices overlap, as `out` is the only
    // mutable borrow. `read_dst` adds the product to the bias rows written above.
    unsafe {
        gemm::gemm(
            rows,
            outputs,
            inputs,
            out.as_mut_ptr(),
            1,
            outputs as isize,
            true,
            x.as_ptr(),
            1,
            inputs as isize,
            weight.as_ptr(),
            inputs as isize,
            1,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(x: &[f32], w: &[f32], b: &[f32]) -> Vec<f32> {
        let (outputs, inputs) = (b.len(), w.len() / b.len());
        let rows = x.len() / inputs;
        let mut out = vec![0f32; rows * outputs];
        for r in 0..rows {
            for o in 0..outputs {
                let dot: f64 = (0..inputs)
                    .map(|j| f64::from(x[r * inputs + j]) * f64::from(w[o * inputs + j]))
                    .sum();
                out[r * outputs + o] = (dot + f64::from(b[o])) as f32;
            }
        }
        out
    }

    #[test]
    fn linear_matches_the_plain_product_on_one_and_several_threads() {
        let (rows, inputs, outputs) = (37, 70, 45);
        let value = |i: usize| ((i * 7919 % 1000) as f32 / 500.0) - 1.0;
        let x: Vec<f32> = (0..rows * inputs).map(value).collect();
        let w: Vec<f32> = (0..outputs * inputs).map(|i| value(i + 13)).collect();
        let b: Vec<f32> = (0..outputs).map(|i| value(i + 101)).collect();
        let want = reference(&x, &w, &b);
        for threads in [1, 3] {
            let mut out = vec![f32::NAN; rows * outputs];
            linear(&x, &w, &b, &mut out, threads).unwrap();
            for (got, want) in out.iter().zip(&want) {
                assert!((got - want).abs() < 1e-4, "{got} vs {want} at {threads} threads");
            }
        }
    }

    #[test]
    fn linear_refuses_shapes_that_do_not_fit() {
        // Two rows of three inputs, two outputs.
        let mut out = vec![0f32; 4];
        assert!(linear(&[0.0; 6], &[0.0; 6], &[0.0; 2], &mut out, 1).is_ok());
        assert!(linear(&[0.0; 6], &[0.0; 6], &[0.0; 4], &mut out, 1).is_err());
        assert!(linear(&[0.0; 5], &[0.0; 6], &[0.0; 2], &mut out, 1).is_err());
        assert!(linear(&[0.0; 6], &[0.0; 6], &[0.0; 2], &mut out[..3], 1).is_err());
        assert!(linear(&[0.0; 6], &[0.0; 6], &[], &mut out, 1).is_err());
    }
}

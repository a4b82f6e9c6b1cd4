//! Times each path of the prompt kernel this CPU has, and gemm's f32 product, on a product the
//! size of a Qwen2.5-0.5B feed-forward layer (1024 → 4864 rows, 512 tokens, one thread):
//! `cargo run --release -p quarry-quant-kernels --example prompt_paths`. Figures to compare
//! paths on one CPU (a laptop with AVX-VNNI but no AVX-512, say), never an assertion.

use quarry_quant_kernels::prompt_gemm::{
    PromptActivations, PromptProduct, TilePath, matmul_prompt_on,
};
use quarry_quant_kernels::{OneThread, WeightEncoding, dense};

/// A small deterministic generator (no dependency for random numbers).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u32 {
        self.0 =
            self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) as u32
    }

    fn value(&mut self) -> f32 {
        self.next() as f32 / u32::MAX as f32 * 2.0 - 1.0
    }
}

/// Rows of random bytes whose blocks have small positive f16 scales where the encoding keeps
/// them (Q8_0 and Q5_0 at the start of each block of 32, Q4_K at 0 and 2 of each of 256,
/// Q6_K at 208).
fn weights(encoding: WeightEncoding, rows: usize, cols: usize, rng: &mut Lcg) -> Vec<u8> {
    let (block_values, scales_at): (usize, &[usize]) = match encoding {
        WeightEncoding::Q8_0 | WeightEncoding::Q5_0 => (32, &[0]),
        WeightEncoding::Q4K => (256, &[0, 2]),
        WeightEncoding::Q6K => (256, &[208]),
    };
    let block_bytes = encoding.row_bytes(block_values);
    let mut bytes: Vec<u8> =
        (0..rows * encoding.row_bytes(cols)).map(|_| rng.next() as u8).collect();
    for block in bytes.chunks_exact_mut(block_bytes) {
        for &at in scales_at {
            block[at..at + 2].copy_from_slice(&half::f16::from_f32(0.01).to_le_bytes());
        }
    }
    bytes
}

fn best_of_three(mut run: impl FnMut()) -> f64 {
    (0..3)
        .map(|_| {
            let started = std::time::Instant::now();
            run();
            started.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (cols, tokens, rows) = (1024, 512, 4864);
    let macs = (cols * tokens * rows) as f64;
    let mut rng = Lcg(9);
    let x: Vec<f32> = (0..tokens * cols).map(|_| rng.value()).collect();
    let acts = PromptActivations::quantize(&x, cols)?;
    let mut out = vec![0f32; tokens * rows];
    for encoding in
        [WeightEncoding::Q5_0, WeightEncoding::Q8_0, WeightEncoding::Q4K, WeightEncoding::Q6K]
    {
        let w = weights(encoding, rows, cols, &mut rng);
        for path in TilePath::available() {
            let mut failed = None;
            let seconds = best_of_three(|| {
                let mut products = [PromptProduct { encoding, weights: &w, rows, out: &mut out }];
                if let Err(e) = matmul_prompt_on(&mut products, &acts, &OneThread, path) {
                    failed = Some(e);
                }
            });
            if let Some(e) = failed {
                return Err(e.into());
            }
            println!(
                "{encoding:?} {path:?}: {:.1} ms, {:.1} GMAC/s",
                seconds * 1e3,
                macs / seconds / 1e9
            );
        }
    }
    // The float alternative: the same product on f32 weights (expanded beforehand, so the
    // expansion the generator's f32 path pays per chunk is not timed), gemm on one thread
    // (`dense::linear` with a zero bias).
    let dense: Vec<f32> = (0..rows * cols).map(|_| rng.value()).collect();
    let zero_bias = vec![0f32; rows];
    let mut failed = None;
    let seconds = best_of_three(|| {
        if let Err(e) = dense::linear(&x, &dense, &zero_bias, &mut out, 1) {
            failed = Some(e);
        }
    });
    if let Some(e) = failed {
        return Err(e.into());
    }
    println!("f32 gemm (widest SIMD): {:.1} ms, {:.1} GMAC/s", seconds * 1e3, macs / seconds / 1e9);
    Ok(())
}

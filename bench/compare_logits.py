"""Logits of Quarry's candle generators against llama.cpp on the same random-weight GGUF.

For each shape, `quarry bench checkpoint` writes a GGUF with random weights (scaled like a
trained model's), both implementations read the same token ids with teacher forcing, and the
logits are compared per position: cosine similarity and top-1 agreement (bars: cosine >= 0.999
and top-1 agreement >= 0.95). llama.cpp runs through llama-cpp-python in a throwaway
virtualenv; it is never a project dependency:

    python3 -m venv /tmp/ref && /tmp/ref/bin/pip install numpy llama-cpp-python
    /tmp/ref/bin/python bench/compare_logits.py --quarry ~/.cache/quarry/target/debug/quarry \
        --tokenizer ../shared/data/models/smollm2-135m-instruct-tokenizer/tokenizer.json \
        --shapes smollm2-135m,qwen2.5-0.5b,qwen3-0.6b,gemma3-1b,tiny-phi3 --quant q8_0,q4_k_m

Prints one JSON document with per-shape results.
"""
import argparse
import json
import pathlib
import subprocess
import sys
import tempfile
import time

import numpy as np


def quarry_logits(quarry, model, tokens, work):
    tok_file = work / "tokens.json"
    tok_file.write_text(json.dumps(tokens))
    out = work / "quarry.f32"
    res = subprocess.run([quarry, "bench", "logits", "--model", model, "--tokens", tok_file, "--out", out],
                         capture_output=True, text=True, check=True)
    info = json.loads(res.stdout.strip().splitlines()[-1])
    return np.fromfile(out, dtype="<f4").reshape(info["positions"], info["vocab"])


def llama_cpp_logits(model, tokens, threads, f32_cache):
    from llama_cpp import Llama

    # GGML_TYPE_F32 = 0: the attention cache in f32 like candle's (llama.cpp's default is f16).
    cache = {"type_k": 0, "type_v": 0} if f32_cache else {}
    llm = Llama(model_path=str(model), n_ctx=max(256, len(tokens) + 8), n_batch=512, logits_all=True,
                n_threads=threads, verbose=False, seed=1, **cache)
    llm.eval(tokens)
    scores = np.array(llm.scores[: len(tokens)], dtype=np.float32)
    del llm
    return scores


def compare(a, b):
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    top1 = (a.argmax(1) == b.argmax(1)).mean()
    return {
        "cosine_min": float(cos.min()),
        "cosine_mean": float(cos.mean()),
        "top1_agreement": float(top1),
        "max_abs_diff": float(np.abs(a - b).max()),
        "logit_std": float(b.std()),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quarry", required=True)
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--shapes", default="tiny-llama,tiny-qwen2,tiny-qwen3,tiny-phi3,tiny-gemma3")
    ap.add_argument("--quant", default="q8_0")
    ap.add_argument("--positions", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=20261121)
    args = ap.parse_args()

    rng = np.random.default_rng(args.seed)
    # Ordinary tokens of the SmolLM2 vocabulary (ids below 17 are special).
    tokens = [int(t) for t in rng.integers(17, 49152, size=args.positions)]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        work = pathlib.Path(tmp)
        for shape in args.shapes.split(","):
            for quant in args.quant.split(","):
                model = work / f"{shape}-{quant}.gguf"
                t0 = time.time()
                subprocess.run([args.quarry, "bench", "checkpoint", "--shape", shape, "--quant", quant,
                                "--tokenizer", args.tokenizer, "--out", model],
                               check=True, capture_output=True)
                made = time.time() - t0
                q = quarry_logits(args.quarry, model, tokens, work)
                r = llama_cpp_logits(model, tokens, args.threads, f32_cache=True)
                r16 = llama_cpp_logits(model, tokens, args.threads, f32_cache=False)
                row = {"shape": shape, "quant": quant, "positions": len(tokens), "file_mb": model.stat().st_size / 1e6,
                       "write_s": round(made, 1), **compare(q, r),
                       "vs_llama_cpp_f16_cache": compare(q, r16), "llama_cpp_f16_vs_f32_cache": compare(r16, r)}
                row["pass"] = row["cosine_min"] >= 0.999 and row["top1_agreement"] >= 0.95
                print(json.dumps(row), file=sys.stderr)
                results.append(row)
                model.unlink()
    print(json.dumps({"tokens_seed": args.seed, "results": results}, indent=2))


if __name__ == "__main__":
    main()

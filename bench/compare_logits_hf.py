"""Logits of Quarry against transformers on the same random-weight Hugging Face checkpoint.

For each shape, `quarry bench checkpoint --format safetensors` writes a folder (config.json,
model.safetensors in f32 or bf16, tokenizer.json) with random weights scaled like a trained
model's; Quarry (`quarry bench logits`, one token at a time through its decode path) and
transformers (one teacher-forced pass, f32) read the same token ids, and the logits are compared
per position (bars as for llama.cpp: cosine >= 0.999 and top-1 agreement >= 0.95). transformers
runs in a throwaway virtualenv; it is never a project dependency:

    python3 -m venv /tmp/ref && /tmp/ref/bin/pip install numpy torch transformers
    /tmp/ref/bin/python bench/compare_logits_hf.py --quarry ~/.cache/quarry/target/debug/quarry \
        --tokenizer ../shared/data/models/smollm2-135m-instruct-tokenizer/tokenizer.json \
        --shapes tiny-llama,tiny-qwen2,tiny-qwen3,smollm2-135m --dtype f32,bf16

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

from compare_logits import compare, quarry_logits


def transformers_logits(folder, tokens):
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    model.eval()
    with torch.no_grad():
        out = model(torch.tensor([tokens]))
    return out.logits[0].float().numpy()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quarry", required=True)
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--shapes", default="tiny-llama,tiny-qwen2,tiny-qwen3")
    ap.add_argument("--dtype", default="f32,bf16")
    ap.add_argument("--positions", type=int, default=64)
    ap.add_argument("--seed", type=int, default=20261121)
    args = ap.parse_args()

    rng = np.random.default_rng(args.seed)
    # Ordinary tokens of the SmolLM2 vocabulary (ids below 17 are special).
    tokens = [int(t) for t in rng.integers(17, 49152, size=args.positions)]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        work = pathlib.Path(tmp)
        for shape in args.shapes.split(","):
            for dtype in args.dtype.split(","):
                folder = work / f"{shape}-{dtype}"
                t0 = time.time()
                subprocess.run([args.quarry, "bench", "checkpoint", "--shape", shape, "--quant", dtype,
                                "--format", "safetensors", "--tokenizer", args.tokenizer, "--out", folder],
                               check=True, capture_output=True)
                made = time.time() - t0
                q = quarry_logits(args.quarry, folder, tokens, work)
                r = transformers_logits(folder, tokens)
                row = {"shape": shape, "dtype": dtype, "positions": len(tokens), "write_s": round(made, 1),
                       **compare(q, r)}
                row["pass"] = row["cosine_min"] >= 0.999 and row["top1_agreement"] >= 0.95
                print(json.dumps(row), file=sys.stderr)
                results.append(row)
    print(json.dumps({"tokens_seed": args.seed, "reference": "transformers", "results": results}, indent=2))


if __name__ == "__main__":
    main()

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

With `--real-model` (repeatable) it compares real GGUF files on real text instead: each text is
tokenized by llama.cpp's own tokenizer (BOS added where the file's `add_bos_token` says so),
cut to `--positions` tokens (default 256 here) and teacher-forced through both. Real weights give
peaked distributions, so the bars are top-1 agreement >= 0.99 and cosine >= 0.999 at every
position; the report adds max |Δlogit|, the positions whose top-1 differs (with llama.cpp's top-2
margin there, to tell near-ties from real disagreement) and the cosine per quarter of the text.
`prompt_path` checks the prompt path as well (the per-position run reads one token at a time):
Quarry's logits after reading the first quarter, half and all of the tokens as one prompt
(`quarry bench logits --after-prompt`), against llama.cpp's batched row at that position.
Noise floors: llama.cpp with an f16 against an f32 attention cache, and llama.cpp one token per
call (as `quarry bench logits` runs) against its batched run.
`--f64-reference` also compares Quarry and llama.cpp (both caches) with a float64 forward pass
over the dequantized weights (`gguf_reference.py`), which tells which side is nearer the model:

    /work/refvenv/bin/python bench/compare_logits.py --quarry ~/.cache/quarry/target/debug/quarry \
        --real-model ~/.cache/quarry/real-models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf \
        --text squad=../shared/data/squad2/squad2_dev_shared_paragraphs.jsonl:Normans#1 \
        --text xquad-de=../shared/data/xquad/xquad_de_dev_paragraphs.jsonl:Super_Bowl_50#0 --f64-reference

`--text LABEL=PATH` reads a plain text file; `LABEL=PATH:PID[+PID...]` joins the `context` of the
paragraphs with those `pid`s from a JSON-lines file (SQuAD/XQuAD paragraph files).
"""
import argparse
import json
import pathlib
import subprocess
import sys
import tempfile
import time

import numpy as np


def quarry_logits(quarry, model, tokens, work, after_prompt=False):
    tok_file = work / "tokens.json"
    tok_file.write_text(json.dumps(tokens))
    out = work / "quarry.f32"
    extra = ["--after-prompt"] if after_prompt else []
    res = subprocess.run([quarry, "bench", "logits", "--model", model, "--tokens", tok_file, "--out", out, *extra],
                         capture_output=True, text=True, check=True)
    info = json.loads(res.stdout.strip().splitlines()[-1])
    return np.fromfile(out, dtype="<f4").reshape(info["positions"], info["vocab"])


def llama_cpp_logits(model, tokens, threads, f32_cache, n_batch=512):
    from llama_cpp import Llama

    # GGML_TYPE_F32 = 0: the attention cache in f32 like candle's (llama.cpp's default is f16).
    cache = {"type_k": 0, "type_v": 0} if f32_cache else {}
    llm = Llama(model_path=str(model), n_ctx=max(256, len(tokens) + 8), n_batch=n_batch, logits_all=True,
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


def read_text(spec):
    """`LABEL=PATH` (a text file) or `LABEL=PATH:PID[+PID...]` (paragraphs of a JSON-lines file)."""
    label, _, rest = spec.partition("=")
    path, _, pids = rest.partition(":")
    if not pids:
        return label, {"file": path}, pathlib.Path(path).read_text(encoding="utf-8")
    wanted = pids.split("+")
    found = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            if row.get("pid") in wanted:
                found[row["pid"]] = row["context"]
    missing = [p for p in wanted if p not in found]
    if missing:
        sys.exit(f"{path}: no paragraph {missing}")
    return label, {"file": path, "pids": wanted}, "\n\n".join(found[p] for p in wanted)


def tokenize_llama_cpp(model, text):
    """Token ids as llama.cpp reads the text: its own tokenizer, BOS where the file asks for it."""
    from llama_cpp import Llama

    vocab = Llama(model_path=str(model), vocab_only=True, verbose=False)
    # add_bos=True means "add the special tokens the file's metadata asks for" (llama_tokenize's
    # add_special): Gemma 3 gets BOS, Qwen2 (add_bos_token false) none.
    ids = vocab.tokenize(text.encode("utf-8"), add_bos=True)
    meta = {"add_bos_token": vocab.metadata.get("tokenizer.ggml.add_bos_token"), "bos_id": vocab.token_bos(),
            "arch": vocab.metadata.get("general.architecture")}
    del vocab
    return ids, meta


def position_detail(q, r, r16):
    """Where Quarry and llama.cpp (f32 cache) part: the positions whose top-1 differs, llama.cpp's
    top-2 margin there (a near-tie if small) and the cosine per quarter of the positions."""
    cos = (q * r).sum(1) / (np.linalg.norm(q, axis=1) * np.linalg.norm(r, axis=1))
    top2 = np.argsort(-r, axis=1)[:, :2]
    rows = np.arange(len(r))
    margin = r[rows, top2[:, 0]] - r[rows, top2[:, 1]]
    qa, ra, r16a = q.argmax(1), r.argmax(1), r16.argmax(1)
    diff = np.abs(q - r).max(1)
    disagree = [
        {"pos": int(i), "cosine": float(cos[i]), "max_abs_diff": float(diff[i]),
         "quarry_top1": int(qa[i]), "llama_cpp_top1": int(ra[i]), "llama_cpp_f16_top1": int(r16a[i]),
         "llama_cpp_top2_margin": float(margin[i]),
         "quarry_margin_same_pair": float(q[i, qa[i]] - q[i, ra[i]])}
        for i in np.nonzero(qa != ra)[0]
    ]
    quarters = np.array_split(np.arange(len(r)), 4)
    return {
        "first_position_cosine": float(cos[0]),
        "first_position_max_abs_diff": float(diff[0]),
        "worst_positions": [{"pos": int(i), "cosine": float(cos[i]), "max_abs_diff": float(diff[i])}
                            for i in np.argsort(cos)[:5]],
        "cosine_min_by_quarter": [float(cos[ix].min()) for ix in quarters],
        "max_abs_diff_by_quarter": [float(diff[ix].max()) for ix in quarters],
        "positions_below_0.999": int((cos < 0.999).sum()),
        "llama_cpp_top2_margin_median": float(np.median(margin)),
        "llama_cpp_near_ties_below_0.1": int((margin < 0.1).sum()),
        "top1_disagreements": disagree,
    }


def run_real(args):
    results = []
    texts = [read_text(t) for t in args.text]
    positions = args.positions or 256
    with tempfile.TemporaryDirectory() as tmp:
        work = pathlib.Path(tmp)
        for model in args.real_model:
            model = pathlib.Path(model).expanduser()
            for label, source, text in texts:
                ids, meta = tokenize_llama_cpp(model, text)
                ids = ids[:positions]
                t0 = time.time()
                q = quarry_logits(args.quarry, model, ids, work)
                quarry_s = time.time() - t0
                r = llama_cpp_logits(model, ids, args.threads, f32_cache=True)
                r16 = llama_cpp_logits(model, ids, args.threads, f32_cache=False)
                # One token per llama_decode, as `quarry bench logits` runs: llama.cpp against itself
                # with only the batching changed (other kernels, other summation order).
                r1 = llama_cpp_logits(model, ids, args.threads, f32_cache=True, n_batch=1)
                row = {"model": model.name, **meta, "text": label, "source": source, "positions": len(ids),
                       "first_ids": ids[:8], "file_mb": round(model.stat().st_size / 1e6, 1),
                       "quarry_s": round(quarry_s, 1), **compare(q, r),
                       "vs_llama_cpp_f16_cache": compare(q, r16), "llama_cpp_f16_vs_f32_cache": compare(r16, r),
                       "vs_llama_cpp_token_by_token": compare(q, r1),
                       "llama_cpp_token_by_token_vs_batch": compare(r1, r)}
                cos = (q * r).sum(1) / (np.linalg.norm(q, axis=1) * np.linalg.norm(r, axis=1))
                row["pass"] = bool(cos.min() >= 0.999 and row["top1_agreement"] >= 0.99)
                # The prompt path (chunked prefill, Quarry's prompt kernels): the logits after the
                # first L tokens read as one prompt, against llama.cpp's batched run at L - 1 and
                # against Quarry's own token-by-token row there.
                row["prompt_path"] = []
                for length in sorted({min(len(ids), max(8, len(ids) // k)) for k in (4, 2, 1)}):
                    p = quarry_logits(args.quarry, model, ids[:length], work, after_prompt=True)
                    row["prompt_path"].append({"tokens": length, "vs_llama_cpp": compare(p, r[length - 1:length]),
                                               "vs_quarry_token_by_token": compare(p, q[length - 1:length])})
                row["prompt_path_pass"] = all(c["vs_llama_cpp"]["cosine_min"] >= 0.999
                                              and c["vs_llama_cpp"]["top1_agreement"] == 1.0
                                              for c in row["prompt_path"])
                row["detail"] = position_detail(q, r, r16)
                if args.f64_reference:
                    import gguf_reference

                    t0 = time.time()
                    ref = gguf_reference.logits(model, ids).astype(np.float32)
                    row["f64_reference"] = {"seconds": round(time.time() - t0, 1), "quarry": compare(q, ref),
                                            "llama_cpp_f32_cache": compare(r, ref),
                                            "llama_cpp_f16_cache": compare(r16, ref),
                                            "llama_cpp_token_by_token": compare(r1, ref)}
                    del ref
                print(json.dumps({k: v for k, v in row.items() if k != "detail"}), file=sys.stderr)
                results.append(row)
                del q, r, r16, r1
    print(json.dumps({"mode": "real", "bars": {"cosine_min": 0.999, "top1_agreement": 0.99},
                      "llama_cpp": "llama-cpp-python 0.3.36", "threads": args.threads, "results": results},
                     indent=2))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quarry", required=True)
    ap.add_argument("--tokenizer", help="tokenizer.json for the random-weight checkpoints")
    ap.add_argument("--shapes", default="tiny-llama,tiny-qwen2,tiny-qwen3,tiny-phi3,tiny-gemma3")
    ap.add_argument("--quant", default="q8_0")
    ap.add_argument("--positions", type=int, help="positions (default 64 random-weight, 256 real)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=20261121)
    ap.add_argument("--real-model", action="append", default=[], help="a real GGUF file (repeatable)")
    ap.add_argument("--text", action="append", default=[],
                    help="LABEL=PATH or LABEL=PATH:PID[+PID...] (JSON lines with pid/context); repeatable")
    ap.add_argument("--f64-reference", action="store_true",
                    help="also compare both with a float64 forward pass over the dequantized weights "
                         "(gguf_reference.py; qwen2 and gemma3 only; needs gguf-py)")
    args = ap.parse_args()
    if args.real_model:
        if not args.text:
            ap.error("--real-model needs at least one --text")
        return run_real(args)
    if not args.tokenizer:
        ap.error("--tokenizer is required for random-weight checkpoints")
    args.positions = args.positions or 64

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

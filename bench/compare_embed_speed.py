"""Embedding throughput of Quarry (candle) against ONNX Runtime, side by side, on
sentence-transformers BERT models (default: all-MiniLM-L6-v2 and multilingual-e5-small-q4dq):
chunks of 256 tokens, batches of 32, at 1 and 2 threads (intra-op; inter-op 1), each thread
count in its own process, best of the rounds, JSON on stdout.

No PyTorch: ONNX Runtime runs a graph that bench/ort_bert_graph.py builds with numpy straight
from the model folder's config.json + model.safetensors, in two variants:
  - fused: com.microsoft contrib ops as ONNX Runtime's transformer optimizer would leave a BERT
    graph (EmbedLayerNormalization, Attention with packed QKV, SkipLayerNormalization, BiasGelu);
  - plain: standard ops only (MatMul/Add/LayerNormalization/Softmax/Erf), ORT_ENABLE_ALL.
Both are timed; the faster one (per thread count) is the ORT figure compared with Quarry.
Tokenizing (the folder's tokenizer.json, HF `tokenizers`, single-threaded), padding to the
batch's longest, mean pooling over the attention mask and L2 normalisation (numpy) are inside the
timed region, as Quarry's `embed_documents` does them. Before timing, every ORT child embeds the
folder's reference_embeddings.json sentences (computed by transformers BertModel) in one padded
batch and asserts max abs diff < 1e-4 or min cosine >= 0.99999.

Chunks: the prose below repeated, rotated by 7 words per chunk, 300 words, truncated at 256
tokens by the tokenizer (no `passage: ` prefix, as Quarry's bench uses none). Quarry runs
`QUARRY --data-dir TMP --models-dir PARENT --embedder NAME bench embed --threads T --chunks N
--rounds R` (NAME/PARENT: the model folder's name and parent). Quarry decides its own chunk
length; where tokens_per_chunk differs between the two sides, compare tokens_per_s (both are
reported, and the ratio on tokens/s).

--alternate K runs quarry and ORT alternately K times (q, ort, q, ort, ...: each a fresh
process with its own --rounds) after the variant-selection pass, and reports the per-round
ratios and the best-of ratio (best quarry / best ORT over all the rounds).

Setup (a throwaway virtualenv, never a project dependency; no torch, ~200 MB):

    python3 -m venv /tmp/ortref && /tmp/ortref/bin/pip install onnx onnxruntime numpy tokenizers safetensors
    mkdir -p /tmp/qbase-embed && cp ~/.cache/quarry/target/debug/quarry /tmp/qbase-embed/
    /tmp/ortref/bin/python bench/compare_embed_speed.py --quarry /tmp/qbase-embed/quarry \
        --model-dir /work/shared/data/models/all-MiniLM-L6-v2 \
        --model-dir ~/.cache/quarry/real-models/multilingual-e5-small-q4dq \
        --threads 1,2 --chunks 64 --rounds 3 --alternate 3 --out bench/results/NAME.json

The graphs are written to a temporary folder (about 2x the model.safetensors size) and
removed at the end (--keep-graphs keeps them). --sentence-transformers adds the PyTorch peer
(needs torch + sentence-transformers in the same venv; off by default).
"""
import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_MODELS = ["/work/shared/data/models/all-MiniLM-L6-v2",
                  "~/.cache/quarry/real-models/multilingual-e5-small-q4dq"]

COMMON = r"""
prose = ("The tenant shall give notice of termination in writing no later than three months before the end "
         "of the lease. Rent is due on the third working day of each month and is paid into the account named "
         "in section four. Repairs below two hundred euros are the tenant's responsibility; larger repairs must "
         "be reported to the landlord without delay. ").split()
def make_chunks(n):
    return [" ".join((prose * 12)[i * 7 % len(prose):][:300]) for i in range(n)]
"""

ORT_CHILD = COMMON + r"""
import json, os, sys, time
os.environ["TOKENIZERS_PARALLELISM"] = "false"  # tokenizing must not use more threads than ORT
import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer
threads, model_dir, onnx_path, n, rounds, max_tokens, variant = (
    int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), sys.argv[7])
opts = ort.SessionOptions()
opts.intra_op_num_threads = threads
opts.inter_op_num_threads = 1
opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
session = ort.InferenceSession(onnx_path, opts, providers=["CPUExecutionProvider"])
with open(os.path.join(model_dir, "config.json")) as f:
    pad_id = json.load(f).get("pad_token_id") or 0
tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
tok.no_padding()  # some tokenizer.json files pad to a fixed 128; pad to the batch's longest here

def batch_arrays(encs):
    longest = max(len(e.ids) for e in encs)
    ids = np.full((len(encs), longest), pad_id, dtype=np.int64)
    mask = np.zeros((len(encs), longest), dtype=np.int64)
    for i, e in enumerate(encs):
        ids[i, :len(e.ids)] = e.ids
        mask[i, :len(e.ids)] = 1
    return ids, mask

def embed(encs):
    ids, mask = batch_arrays(encs)
    hidden = session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
    m = mask[..., None].astype(np.float32)
    pooled = (hidden * m).sum(1) / np.clip(m.sum(1), 1e-9, None)
    return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)

# Correctness first: the graph must reproduce transformers' embeddings of the reference sentences.
with open(os.path.join(model_dir, "reference_embeddings.json")) as f:
    ref = json.load(f)["sentences"]
tok.enable_truncation(512)
encs = tok.encode_batch([s["text"] for s in ref])
ids_match = all(e.ids == s["input_ids"] for e, s in zip(encs, ref))
assert ids_match, "token ids differ from reference_embeddings.json"
got = embed(encs)
want = np.array([s["embedding"] for s in ref], dtype=np.float32)
max_diff = float(np.abs(got - want).max())
min_cos = float((got * want).sum(1).min())
assert max_diff < 1e-4 or min_cos >= 0.99999, (max_diff, min_cos)

tok.enable_truncation(max_tokens)
chunks = make_chunks(n)
lengths = [len(e.ids) for e in tok.encode_batch(chunks)]
def encode(texts):
    out = []
    for i in range(0, len(texts), 32):
        out.append(embed(tok.encode_batch(texts[i:i + 32])))
    return np.concatenate(out)
encode(chunks[:8])  # warm-up
rounds_s = []
for _ in range(rounds):
    t0 = time.perf_counter()
    encode(chunks)
    rounds_s.append(time.perf_counter() - t0)
best = min(rounds_s)
print(json.dumps({"threads": threads, "chunks": n, "variant": variant, "tokens_per_chunk": min(lengths),
                  "tokens_per_chunk_mean": sum(lengths) / n, "chunks_per_s": n / best,
                  "tokens_per_s": sum(lengths) / best, "rounds_s": rounds_s,
                  "max_abs_diff_vs_reference": max_diff, "min_cosine_vs_reference": min_cos,
                  "reference_sentences": len(ref), "token_ids_match_reference": ids_match,
                  "onnxruntime": ort.__version__}))
"""

ST_CHILD = COMMON + r"""
import json, sys, time
import torch
threads, model_dir, n, rounds, max_tokens = (int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4]),
                                             int(sys.argv[5]))
torch.set_num_threads(threads)
from sentence_transformers import SentenceTransformer
model = SentenceTransformer(model_dir, device="cpu")
model.max_seq_length = max_tokens
chunks = make_chunks(n)
lengths = [len(model.tokenizer(c, truncation=True, max_length=max_tokens)["input_ids"]) for c in chunks]
model.encode(chunks[:8], batch_size=32)
rounds_s = []
for _ in range(rounds):
    t0 = time.perf_counter()
    model.encode(chunks, batch_size=32, normalize_embeddings=True)
    rounds_s.append(time.perf_counter() - t0)
best = min(rounds_s)
print(json.dumps({"threads": threads, "chunks": n, "tokens_per_chunk": min(lengths), "chunks_per_s": n / best,
                  "tokens_per_s": sum(lengths) / best, "rounds_s": rounds_s}))
"""


def child(code, *argv):
    res = subprocess.run([sys.executable, "-c", code, *map(str, argv)], capture_output=True, text=True)
    if res.returncode != 0:
        sys.exit(f"child failed ({res.returncode}):\n{res.stderr[-4000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def run_quarry(args, model_dir, data_dir):
    name, parent = os.path.basename(model_dir), os.path.dirname(model_dir)
    cmd = [args.quarry, "--data-dir", data_dir, "--models-dir", parent, "--embedder", name, "bench", "embed",
           "--threads", args.threads, "--chunks", str(args.chunks), "--rounds", str(args.rounds)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        sys.exit(f"quarry failed ({res.returncode}): {' '.join(cmd)}\n{res.stderr[-4000:]}")
    runs = json.loads(res.stdout)["embed"]
    for r in runs:
        if r.get("model", name) != name:
            sys.exit(f"quarry benchmarked {r['model']!r}, not {name!r}")
    return {r["threads"]: r for r in runs}, cmd


def build_graphs(model_dir, work):
    name = os.path.basename(model_dir)
    paths = {}
    for variant in ("fused", "plain"):
        path = os.path.join(work, f"{name}-{variant}.onnx")
        cmd = [sys.executable, os.path.join(HERE, "ort_bert_graph.py"), model_dir, path]
        subprocess.run(cmd + (["--plain"] if variant == "plain" else []), check=True, capture_output=True)
        paths[variant] = path
    free_gb = shutil.disk_usage(work).free / 2**30
    print(f"[{name}] graphs built; {free_gb:.1f} GiB free on {work}", file=sys.stderr)
    if free_gb < 6:
        print(f"warning: only {free_gb:.1f} GiB free", file=sys.stderr)
    return paths


def ratios(q, o):
    """Quarry / ORT on chunks/s and on tokens/s."""
    return {"chunks_per_s": q["chunks_per_s"] / o["chunks_per_s"], "tokens_per_s": q["tokens_per_s"] / o["tokens_per_s"]}


def bench_model(args, model_dir, threads, work, data_dir):
    name = os.path.basename(model_dir)
    log = lambda msg: print(f"[{name}] {msg}", file=sys.stderr, flush=True)  # noqa: E731
    graphs = build_graphs(model_dir, work)

    # Variant selection: both graphs at every thread count, each in its own process.
    variants = {v: {} for v in graphs}
    for t in threads:
        for v, path in graphs.items():
            variants[v][t] = child(ORT_CHILD, t, model_dir, path, args.chunks, args.rounds, args.tokens, v)
            log(f"ORT {v} t={t}: {variants[v][t]['chunks_per_s']:.2f} chunks/s "
                f"(max diff {variants[v][t]['max_abs_diff_vs_reference']:.2e})")
    chosen = {t: max(variants, key=lambda v: variants[v][t]["chunks_per_s"]) for t in threads}

    # Quarry and ORT (the faster variant), alternately when asked.
    rounds = []
    for k in range(max(args.alternate, 1)):
        q, qcmd = run_quarry(args, model_dir, data_dir)
        log(f"round {k + 1}: quarry " + ", ".join(f"t={t} {q[t]['chunks_per_s']:.2f}" for t in threads))
        if args.alternate:
            o = {t: child(ORT_CHILD, t, model_dir, graphs[chosen[t]], args.chunks, args.rounds, args.tokens, chosen[t])
                 for t in threads}
            log(f"round {k + 1}: ORT " + ", ".join(f"t={t} {o[t]['chunks_per_s']:.2f}" for t in threads))
        else:  # a single pass: the selection runs are the ORT figures
            o = {t: variants[chosen[t]][t] for t in threads}
        rounds.append({"quarry": q, "onnxruntime": o})

    st = {t: child(ST_CHILD, t, model_dir, args.chunks, args.rounds, args.tokens) for t in threads} \
        if args.sentence_transformers else None

    rows = []
    for t in threads:
        qs = [r["quarry"][t] for r in rounds]
        os_ = [r["onnxruntime"][t] for r in rounds]
        qb, ob = max(qs, key=lambda r: r["chunks_per_s"]), max(os_, key=lambda r: r["chunks_per_s"])
        f, p = variants["fused"][t], variants["plain"][t]
        row = {
            "threads": t,
            "ort_variant": chosen[t],
            "tokens_per_chunk": {"quarry": qb["tokens_per_chunk"], "onnxruntime": ob["tokens_per_chunk"]},
            "quarry_chunks_per_s": qb["chunks_per_s"], "onnxruntime_chunks_per_s": ob["chunks_per_s"],
            "quarry_tokens_per_s": qb["tokens_per_s"], "onnxruntime_tokens_per_s": ob["tokens_per_s"],
            "ratio_to_onnxruntime": qb["chunks_per_s"] / ob["chunks_per_s"],
            "ratio_to_onnxruntime_tokens_per_s": qb["tokens_per_s"] / ob["tokens_per_s"],
            "per_round": [{"quarry_chunks_per_s": q["chunks_per_s"], "onnxruntime_chunks_per_s": o["chunks_per_s"],
                           "quarry_tokens_per_s": q["tokens_per_s"], "onnxruntime_tokens_per_s": o["tokens_per_s"],
                           "ratio": ratios(q, o)} for q, o in zip(qs, os_)],
            "variants": {"fused_chunks_per_s": f["chunks_per_s"], "plain_chunks_per_s": p["chunks_per_s"],
                         "fused_over_plain": f["chunks_per_s"] / p["chunks_per_s"]},
        }
        if qb["tokens_per_chunk"] != ob["tokens_per_chunk"]:
            row["note"] = (f"chunk lengths differ (quarry {qb['tokens_per_chunk']}, ORT {ob['tokens_per_chunk']} "
                           "tokens): compare ratio_to_onnxruntime_tokens_per_s")
        if st is not None:
            row["sentence_transformers_chunks_per_s"] = st[t]["chunks_per_s"]
            row["ratio_to_sentence_transformers"] = qb["chunks_per_s"] / st[t]["chunks_per_s"]
            row["tokens_per_chunk"]["sentence_transformers"] = st[t]["tokens_per_chunk"]
        rows.append(row)
    f1 = variants["fused"][threads[0]]
    return {
        "model": name, "model_dir": model_dir, "quarry_command": " ".join(qcmd),
        "correctness": {v: {"max_abs_diff_vs_reference": variants[v][threads[0]]["max_abs_diff_vs_reference"],
                            "min_cosine_vs_reference": variants[v][threads[0]]["min_cosine_vs_reference"],
                            "sentences": f1["reference_sentences"]} for v in variants},
        "runs": rows,
        "variant_runs": variants,
        "rounds": rounds,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-dir", action="append",
                    help="sentence-transformers BERT folder (repeatable or comma-separated; default: both models)")
    ap.add_argument("--quarry", default="/tmp/qbase-embed/quarry")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--chunks", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3, help="measured rounds inside each process (best counts)")
    ap.add_argument("--alternate", type=int, default=0, metavar="K",
                    help="K alternating quarry / ORT process pairs after the variant selection")
    ap.add_argument("--tokens", type=int, default=256, help="ORT chunk length (truncation)")
    ap.add_argument("--sentence-transformers", action="store_true", help="add the PyTorch peer (needs torch)")
    ap.add_argument("--work-dir", default=None, help="where the ONNX graphs go (default: a temp folder)")
    ap.add_argument("--keep-graphs", action="store_true")
    ap.add_argument("--what", default="", help="free text put in the output's `what`")
    ap.add_argument("--out", help="also write the JSON here")
    args = ap.parse_args()
    model_dirs = [os.path.abspath(os.path.expanduser(m.strip())) for arg in (args.model_dir or DEFAULT_MODELS)
                  for m in arg.split(",") if m.strip()]
    threads = [int(t) for t in args.threads.split(",")]
    if args.sentence_transformers:
        try:
            import torch  # noqa: F401
        except ImportError:
            sys.exit("--sentence-transformers needs torch and sentence-transformers in this python")
    import onnxruntime
    work = args.work_dir or tempfile.mkdtemp(prefix="quarry-ort-graphs-")
    os.makedirs(work, exist_ok=True)
    data_dir = tempfile.mkdtemp(prefix="quarry-bench-data-")
    started = time.time()
    try:
        models = [bench_model(args, m, threads, work, data_dir) for m in model_dirs]
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
        if not args.keep_graphs:
            for m in model_dirs:
                for v in ("fused", "plain"):
                    p = os.path.join(work, f"{os.path.basename(m)}-{v}.onnx")
                    if os.path.exists(p):
                        os.remove(p)
            if not args.work_dir:
                shutil.rmtree(work, ignore_errors=True)
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor()) if os.path.exists("/proc/cpuinfo") else platform.processor()
    used = sorted({r["ort_variant"] for m in models for r in m["runs"]})
    what = (f"compare_embed_speed.py on {cpu}, {os.cpu_count()} logical CPUs ({platform.platform()}); "
            f"onnxruntime {onnxruntime.__version__} CPUExecutionProvider, graphs from ort_bert_graph.py "
            f"(fused contrib-op and plain standard-op variants both timed; ORT figures from: {', '.join(used)}); "
            f"command: {' '.join(sys.argv)}; {time.time() - started:.0f} s")
    if args.what:
        what += "; " + args.what
    out = {"what": what, "onnxruntime": onnxruntime.__version__, "quarry": args.quarry, "threads": threads,
           "chunks": args.chunks, "rounds": args.rounds, "alternate": args.alternate, "ort_tokens": args.tokens,
           "models": models}
    text = json.dumps(out, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()

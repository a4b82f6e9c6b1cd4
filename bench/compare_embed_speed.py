"""Embedding throughput of Quarry (candle), sentence-transformers (PyTorch) and ONNX Runtime
side by side: all-MiniLM-L6-v2, chunks of exactly 256 tokens, batches of 32, at 1 and 2
threads, each in its own process, best of the rounds. ONNX Runtime runs the same model exported
from PyTorch (opset 17, dynamic batch and length), with mean pooling and normalisation in numpy.
The peers run in a throwaway virtualenv, never a project dependency:

    python3 -m venv /tmp/ref && /tmp/ref/bin/pip install sentence-transformers onnxruntime onnx
    /tmp/ref/bin/python bench/compare_embed_speed.py --quarry ~/.cache/quarry/target/debug/quarry \
        --models-dir ../shared/data/models
"""
import argparse
import json
import subprocess
import sys

ST_CHILD = r"""
import json, sys, time
import torch
threads, model_dir, n, rounds = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(threads)
from sentence_transformers import SentenceTransformer
model = SentenceTransformer(model_dir, device="cpu")
model.max_seq_length = 256
prose = ("The tenant shall give notice of termination in writing no later than three months before the end "
         "of the lease. Rent is due on the third working day of each month and is paid into the account named "
         "in section four. Repairs below two hundred euros are the tenant's responsibility; larger repairs must "
         "be reported to the landlord without delay. ").split()
chunks = [" ".join((prose * 12)[i * 7 % len(prose):][:300]) for i in range(n)]
lengths = [len(model.tokenizer(c, truncation=True, max_length=256)["input_ids"]) for c in chunks]
model.encode(chunks[:8], batch_size=32)
best = 0.0
for _ in range(rounds):
    t0 = time.time()
    model.encode(chunks, batch_size=32, normalize_embeddings=True)
    best = max(best, n / (time.time() - t0))
print(json.dumps({"threads": threads, "chunks": n, "tokens_per_chunk": min(lengths), "chunks_per_s": best,
                  "tokens_per_s": best * min(lengths)}))
"""

ORT_CHILD = r"""
import json, os, sys, tempfile, time
import numpy as np, torch
threads, model_dir, n, rounds = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(threads)
import onnxruntime as ort
from transformers import AutoModel, AutoTokenizer
tok = AutoTokenizer.from_pretrained(model_dir)
path = os.path.join(tempfile.mkdtemp(), "minilm.onnx")
class Encoder(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.bert = AutoModel.from_pretrained(model_dir).eval()
    def forward(self, input_ids, attention_mask, token_type_ids):
        return self.bert(input_ids=input_ids, attention_mask=attention_mask,
                         token_type_ids=token_type_ids).last_hidden_state
model = Encoder().eval()
dummy = tok(["export"] * 2, return_tensors="pt", padding=True)
names = ["input_ids", "attention_mask", "token_type_ids"]
torch.onnx.export(model, tuple(dummy[k] for k in names), path, input_names=names,
                  output_names=["last_hidden_state"], opset_version=17, dynamo=False,
                  dynamic_axes={k: {0: "batch", 1: "seq"} for k in names + ["last_hidden_state"]})
opts = ort.SessionOptions()
opts.intra_op_num_threads = threads
opts.inter_op_num_threads = 1
opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
session = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
prose = ("The tenant shall give notice of termination in writing no later than three months before the end "
         "of the lease. Rent is due on the third working day of each month and is paid into the account named "
         "in section four. Repairs below two hundred euros are the tenant's responsibility; larger repairs must "
         "be reported to the landlord without delay. ").split()
chunks = [" ".join((prose * 12)[i * 7 % len(prose):][:300]) for i in range(n)]
def encode(texts):
    out = []
    for i in range(0, len(texts), 32):
        enc = tok(texts[i:i + 32], truncation=True, max_length=256, padding=True, return_tensors="np")
        hidden = session.run(None, {k: enc[k].astype(np.int64) for k in names})[0]
        mask = enc["attention_mask"][..., None].astype(np.float32)
        pooled = (hidden * mask).sum(1) / np.clip(mask.sum(1), 1e-9, None)
        out.append(pooled / np.linalg.norm(pooled, axis=1, keepdims=True))
    return np.concatenate(out)
lengths = [len(tok(c, truncation=True, max_length=256)["input_ids"]) for c in chunks]
# The exported graph must compute what PyTorch does.
check = tok(chunks[:4], truncation=True, max_length=256, padding=True, return_tensors="pt")
with torch.no_grad():
    hidden = model(*(check[k] for k in names))
mask = check["attention_mask"][..., None].float()
pooled = ((hidden * mask).sum(1) / mask.sum(1)).numpy()
pooled /= np.linalg.norm(pooled, axis=1, keepdims=True)
max_diff = float(np.abs(encode(chunks[:4]) - pooled).max())
assert max_diff < 1e-4, max_diff
best = 0.0
for _ in range(rounds):
    t0 = time.time()
    encode(chunks)
    best = max(best, n / (time.time() - t0))
print(json.dumps({"threads": threads, "chunks": n, "tokens_per_chunk": min(lengths), "chunks_per_s": best,
                  "tokens_per_s": best * min(lengths), "max_abs_diff_vs_pytorch": max_diff}))
"""


def peer(child, threads, args):
    res = subprocess.run([sys.executable, "-c", child, str(threads), f"{args.models_dir}/all-MiniLM-L6-v2",
                          str(args.chunks), str(args.rounds)], capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quarry", required=True)
    ap.add_argument("--models-dir", required=True)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--chunks", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--no-onnx", action="store_true", help="skip ONNX Runtime")
    args = ap.parse_args()
    threads = [int(t) for t in args.threads.split(",")]
    out = subprocess.run([args.quarry, "--models-dir", args.models_dir, "bench", "embed", "--threads", args.threads,
                          "--chunks", str(args.chunks), "--rounds", str(args.rounds)],
                         capture_output=True, text=True, check=True)
    quarry = json.loads(out.stdout)["embed"]
    st = [peer(ST_CHILD, t, args) for t in threads]
    onnx = [peer(ORT_CHILD, t, args) for t in threads] if not args.no_onnx else [None] * len(threads)
    rows = []
    for q, s, o in zip(quarry, st, onnx):
        row = {"threads": q["threads"], "quarry_chunks_per_s": q["chunks_per_s"],
               "sentence_transformers_chunks_per_s": s["chunks_per_s"],
               "ratio": q["chunks_per_s"] / s["chunks_per_s"],
               "tokens_per_chunk": {"quarry": q["tokens_per_chunk"], "sentence_transformers": s["tokens_per_chunk"]}}
        if o is not None:
            row["onnxruntime_chunks_per_s"] = o["chunks_per_s"]
            row["ratio_to_onnxruntime"] = q["chunks_per_s"] / o["chunks_per_s"]
            row["tokens_per_chunk"]["onnxruntime"] = o["tokens_per_chunk"]
        rows.append(row)
    print(json.dumps({"model": "all-MiniLM-L6-v2", "runs": rows}, indent=2))


if __name__ == "__main__":
    main()

"""Embedding throughput of Quarry (candle) and sentence-transformers (PyTorch) side by side:
all-MiniLM-L6-v2, chunks of exactly 256 tokens, batches of 32, at 1 and 2 threads, each in
its own process, best of the rounds. sentence-transformers runs in a throwaway virtualenv,
never a project dependency:

    python3 -m venv /tmp/ref && /tmp/ref/bin/pip install sentence-transformers
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quarry", required=True)
    ap.add_argument("--models-dir", required=True)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--chunks", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    threads = [int(t) for t in args.threads.split(",")]
    out = subprocess.run([args.quarry, "--models-dir", args.models_dir, "bench", "embed", "--threads", args.threads,
                          "--chunks", str(args.chunks), "--rounds", str(args.rounds)],
                         capture_output=True, text=True, check=True)
    quarry = json.loads(out.stdout)["embed"]
    st = []
    for t in threads:
        res = subprocess.run([sys.executable, "-c", ST_CHILD, str(t), f"{args.models_dir}/all-MiniLM-L6-v2",
                              str(args.chunks), str(args.rounds)], capture_output=True, text=True, check=True)
        st.append(json.loads(res.stdout.strip().splitlines()[-1]))
    rows = []
    for q, s in zip(quarry, st):
        rows.append({"threads": q["threads"], "quarry_chunks_per_s": q["chunks_per_s"],
                     "sentence_transformers_chunks_per_s": s["chunks_per_s"],
                     "ratio": q["chunks_per_s"] / s["chunks_per_s"],
                     "tokens_per_chunk": {"quarry": q["tokens_per_chunk"], "sentence_transformers": s["tokens_per_chunk"]}})
    print(json.dumps({"model": "all-MiniLM-L6-v2", "runs": rows}, indent=2))


if __name__ == "__main__":
    main()

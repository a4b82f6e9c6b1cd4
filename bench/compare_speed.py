"""Generation speed of Quarry (candle) and llama.cpp side by side on the same GGUF file and
thread count: prompt processing tokens/s, decode tokens/s, time to first token, peak RSS.

Quarry runs `quarry bench generate`; llama.cpp runs through llama-cpp-python in a throwaway
virtualenv (never a project dependency), each in its own process, alternating rounds so that
machine noise hits both alike:

    /tmp/ref/bin/python bench/compare_speed.py --quarry ~/.cache/quarry/target/debug/quarry \
        --model /tmp/qwen2.5-0.5b-q4_k_m.gguf --threads 2 --prompt-tokens 512 --gen-tokens 128

Build llama-cpp-python for this CPU (`CMAKE_ARGS="-DGGML_NATIVE=ON" pip install
llama-cpp-python==0.3.36`): the portable build `make test` installs for the server test
(`-DGGML_NATIVE=OFF`) has no AVX-512 and runs prompts at about two thirds of the native
build's speed on an AVX-512 machine. The result records the build's feature list.
"""
import argparse
import json
import resource
import subprocess
import sys
import time

LLAMA_CHILD = r"""
import json, resource, sys, time
import numpy as np
from llama_cpp import Llama
model, threads, n_prompt, n_gen = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
t0 = time.time()
llm = Llama(model_path=model, n_ctx=n_prompt + n_gen + 8, n_batch=n_prompt + n_gen + 8, n_ubatch=512, n_threads=threads,
            n_threads_batch=threads, verbose=False, seed=1)
load_ms = (time.time() - t0) * 1000
rng = np.random.default_rng(1)
prompt = [int(t) for t in rng.integers(17, 49152, size=n_prompt)]
llm.eval(prompt[:16]); llm.reset()  # warm-up, as Quarry does
t0 = time.time()
llm.eval(prompt)
pp = time.time() - t0
tok = int(np.argmax(llm.scores[llm.n_tokens - 1]))
ttft = (time.time() - t0) * 1000
t1 = time.time()
for _ in range(n_gen):
    llm.eval([tok])
    tok = int(np.argmax(llm.scores[llm.n_tokens - 1]))
tg = time.time() - t1
print(json.dumps({"prompt_tokens_per_s": n_prompt / pp, "decode_tokens_per_s": n_gen / tg, "ttft_ms": ttft,
                  "load_ms": load_ms, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run_quarry(args, binary=None):
    out = subprocess.run([binary or args.quarry, "bench", "generate", "--model", args.model, "--threads", str(args.threads),
                          "--prompt-tokens", str(args.prompt_tokens), "--gen-tokens", str(args.gen_tokens),
                          "--rounds", "1"], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)["generate"][0]


def run_llama(args):
    out = subprocess.run([sys.executable, "-c", LLAMA_CHILD, args.model, str(args.threads), str(args.prompt_tokens),
                          str(args.gen_tokens)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quarry", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--prompt-tokens", type=int, default=512)
    ap.add_argument("--gen-tokens", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--baseline", help="another quarry binary (e.g. before a change), run in the same rounds")
    args = ap.parse_args()
    q_runs, l_runs, b_runs = [], [], []
    for _ in range(args.rounds):
        if args.baseline:
            b_runs.append(run_quarry(args, args.baseline))
        q_runs.append(run_quarry(args))
        l_runs.append(run_llama(args))
        print(json.dumps({"quarry": q_runs[-1], "llama_cpp": l_runs[-1], "baseline": b_runs[-1] if b_runs else None}),
              file=sys.stderr)
    best = lambda runs, key: max(r[key] for r in runs)
    least = lambda runs, key: min(r[key] for r in runs)
    most = lambda runs, key: max(r[key] for r in runs)
    res = {
        "model": args.model,
        "threads": args.threads,
        "prompt_tokens": args.prompt_tokens,
        "gen_tokens": args.gen_tokens,
        "quarry": {k: best(q_runs, k) for k in ("prompt_tokens_per_s", "decode_tokens_per_s")}
        | {"ttft_ms": least(q_runs, "ttft_ms"), "peak_rss_mb": most(q_runs, "peak_rss_mb")},
        "llama_cpp": {k: best(l_runs, k) for k in ("prompt_tokens_per_s", "decode_tokens_per_s")}
        | {"ttft_ms": least(l_runs, "ttft_ms"), "peak_rss_mb": most(l_runs, "peak_rss_mb")},
    }
    res["rounds"] = [{"quarry_decode": q["decode_tokens_per_s"], "llama_cpp_decode": l["decode_tokens_per_s"],
                      "decode_ratio": q["decode_tokens_per_s"] / l["decode_tokens_per_s"],
                      "quarry_prompt": q["prompt_tokens_per_s"], "llama_cpp_prompt": l["prompt_tokens_per_s"],
                      "prompt_ratio": q["prompt_tokens_per_s"] / l["prompt_tokens_per_s"]}
                     for q, l in zip(q_runs, l_runs)]
    import llama_cpp
    res["llama_cpp_build"] = {"version": llama_cpp.__version__,
                              "system_info": llama_cpp.llama_print_system_info().decode().strip()}
    res["ratio"] = {
        "prompt_processing": res["quarry"]["prompt_tokens_per_s"] / res["llama_cpp"]["prompt_tokens_per_s"],
        "decode": res["quarry"]["decode_tokens_per_s"] / res["llama_cpp"]["decode_tokens_per_s"],
    }
    if b_runs:
        res["baseline"] = {k: best(b_runs, k) for k in ("prompt_tokens_per_s", "decode_tokens_per_s")}
        res["ratio"]["decode_vs_baseline"] = res["quarry"]["decode_tokens_per_s"] / res["baseline"]["decode_tokens_per_s"]
        res["ratio"]["prompt_vs_baseline"] = (res["quarry"]["prompt_tokens_per_s"]
                                              / res["baseline"]["prompt_tokens_per_s"])
        for r, b in zip(res["rounds"], b_runs):
            r["baseline_decode"] = b["decode_tokens_per_s"]
            r["baseline_prompt"] = b["prompt_tokens_per_s"]
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()

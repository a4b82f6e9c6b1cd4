"""Time to first token of a grounded answer, stage by stage, and the generation part of the same
questions through llama.cpp. Runs `quarry bench ask` (SQuAD-layout questions over a library
built from their paragraphs; retrieval, evidence scoring, prompt and decode times, p50/p95, and
the answers' metrics), then replays every prompt Quarry gave its model through llama.cpp
(llama-cpp-python, the same GGUF file, the same chat messages rendered by the file's own
template, greedy, as many answer tokens as Quarry wrote, the system prompt's prefix reused
between questions as Quarry does) and reports llama.cpp's prompt and decode times beside
Quarry's. Rounds alternate: Quarry, llama.cpp, Quarry, llama.cpp, ...

llama-cpp-python lives in a throwaway virtualenv, never a project dependency. Build it for this
CPU, or it runs without AVX-512 and the comparison flatters Quarry:

    python3 -m venv /tmp/llama-native
    CMAKE_ARGS="-DGGML_NATIVE=ON" /tmp/llama-native/bin/pip install llama-cpp-python==0.3.36
    /tmp/llama-native/bin/python bench/bench_ask.py --quarry ~/.cache/quarry/target/debug/quarry \
        --model ~/.cache/quarry/real-models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf \
        --squad ../shared/data/squad2/squad2_dev_shared_questions.jsonl --limit 40 --rounds 2
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time


def percentile(values, share):
    if not values:
        return 0.0
    values = sorted(values)
    rank = min(max(int(-(-share * len(values) // 1)), 1), len(values))
    return values[rank - 1]


def spread(values):
    return {"p50": percentile(values, 0.5), "p95": percentile(values, 0.95)}


def run_quarry(args, prompts_path):
    # A data folder of its own, so no library settings of the user's choose the embedder.
    data_dir = os.path.join(os.path.dirname(prompts_path), "data")
    cmd = [args.quarry, "--data-dir", data_dir, "--models-dir", args.models_dir]
    if args.embedder:
        cmd += ["--embedder", args.embedder]
    cmd += ["bench", "ask", "--model", args.model, "--squad", args.squad, "--limit", str(args.limit),
            "--prompts", prompts_path]
    if args.passages:
        cmd += ["--passages", str(args.passages)]
    env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads))
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        sys.exit(f"quarry bench ask failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return json.loads(out.stdout)["ask"]


def replay_llama(args, records):
    from llama_cpp import Llama, StoppingCriteriaList, llama_print_system_info

    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    llm = Llama(model_path=args.model, n_ctx=4096, n_threads=args.threads, n_threads_batch=args.threads,
                n_batch=512, verbose=False)
    # The file's own chat template, as llama-cpp-python's chat completion renders it (that call
    # takes no stopping criteria, which tell the prompt's length and the time it was read).
    token_text = lambda t: llm.detokenize([t]).decode("utf-8", errors="ignore") if t >= 0 else ""
    formatter = Jinja2ChatFormatter(template=llm.metadata["tokenizer.chat_template"],
                                    eos_token=token_text(llm.token_eos()), bos_token=token_text(llm.token_bos()),
                                    add_generation_prompt=True)
    render = lambda messages: formatter(messages=messages).prompt
    prompt_ms, decode_ms, prompt_tokens, cached, written = [], [], [], [], []
    for rec in records:
        want = max(int(rec["timings"]["tokens"]), 1)
        before = llm.n_tokens
        history = list(llm._input_ids[:before])
        # llama.cpp asks the stopping criteria once per sampled token, with every token so far:
        # the first call sees the prompt (its length and the time it was read), the count of
        # calls is the number of tokens written.
        seen = []

        def watch(input_ids, _logits):
            if not seen:
                seen.append((len(input_ids), list(input_ids), time.perf_counter()))
            else:
                seen.append(None)
            return False

        prompt = render(rec["messages"])
        started = time.perf_counter()
        for _ in llm.create_completion(prompt, max_tokens=want, temperature=0.0, top_k=1, repeat_penalty=1.0,
                                       stream=True, stopping_criteria=StoppingCriteriaList([watch])):
            pass
        done = time.perf_counter()
        if not seen:
            continue
        prompt_len, tokens, first = seen[0]
        n = len(seen)
        reused = 0
        for a, b in zip(history, tokens):
            if a != b:
                break
            reused += 1
        prompt_ms.append((first - started) * 1000.0)
        decode_ms.append((done - first) * 1000.0)
        prompt_tokens.append(prompt_len)
        cached.append(reused)
        written.append(n)
    info = llama_print_system_info()
    return {
        "stages": {"first_token_ms": spread(prompt_ms), "decode_ms": spread(decode_ms),
                   "prompt_tokens": spread(prompt_tokens), "cached_prompt_tokens": spread(cached),
                   "answer_tokens": spread(written)},
        "prompt_tokens_per_s_p50": (percentile(prompt_tokens, 0.5) - percentile(cached, 0.5)) * 1000.0
        / max(percentile(prompt_ms, 0.5), 1e-9),
        "decode_tokens_per_s_p50": max(percentile(written, 0.5) - 1, 0) * 1000.0 / max(percentile(decode_ms, 0.5), 1e-9),
        "replayed": len(prompt_ms),
        "system_info": info.decode() if isinstance(info, bytes) else str(info),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quarry", required=True)
    ap.add_argument("--model", required=True, help="the GGUF file both engines run")
    ap.add_argument("--squad", required=True)
    ap.add_argument("--models-dir", default="../shared/data/models", help="where the embedder is")
    ap.add_argument("--embedder", help="the embedder's id in --models-dir [default: Quarry's choice]")
    ap.add_argument("--limit", type=int, default=40)
    ap.add_argument("--passages", type=int)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--no-llama", action="store_true", help="Quarry only")
    args = ap.parse_args()
    rounds = []
    with tempfile.TemporaryDirectory() as work:
        for r in range(args.rounds):
            prompts = os.path.join(work, f"prompts-{r}.jsonl")
            quarry = run_quarry(args, prompts)
            records = [json.loads(line) for line in open(prompts)]
            records = [rec for rec in records if rec.get("messages")]
            row = {"quarry": quarry}
            if not args.no_llama:
                row["llama_cpp"] = replay_llama(args, records)
                q, l = quarry["stages"], row["llama_cpp"]["stages"]
                row["prompt_ms_p50_ratio_llama_over_quarry"] = l["first_token_ms"]["p50"] / max(q["prompt_ms"]["p50"], 1e-9)
                row["prompt_speed_ratio"] = quarry["prompt_tokens_per_s_p50"] / max(row["llama_cpp"]["prompt_tokens_per_s_p50"], 1e-9)
                row["decode_speed_ratio"] = quarry["decode_tokens_per_s_p50"] / max(row["llama_cpp"]["decode_tokens_per_s_p50"], 1e-9)
            rounds.append(row)
            print(json.dumps({"round": r, "quarry_first_token_ms_p50": quarry["stages"]["first_token_ms"]["p50"],
                              "llama_first_token_ms_p50": row.get("llama_cpp", {}).get("stages", {}).get("first_token_ms", {}).get("p50")}),
                  file=sys.stderr)
    print(json.dumps({"what": "quarry bench ask + the same prompts through llama.cpp", "threads": args.threads,
                      "limit": args.limit, "passages": args.passages, "model": os.path.basename(args.model),
                      "rounds": rounds}, indent=1))


if __name__ == "__main__":
    main()

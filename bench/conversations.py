"""Follow-up rewriting on the ten two-turn conversations of tests/fixtures/conversations.json,
through the `quarry` binary: each first question asked in a new thread, its follow-up in the
same thread, then the question the follow-up was searched as (and the follow-up as typed) sent
to `quarry search`; a hit is the expected document and page holding the expected phrase among
the first three. With `--model` the generator rewrites follow-ups (and writes the answers);
without it, evidence mode and the rules. Prints one line per conversation and a JSON summary.

    python3 bench/conversations.py --bin target/debug/quarry --data-dir LIB --models-dir M \
        [--model ~/.cache/quarry/real-models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf]
"""

import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def norm(text):
    return " ".join(text.split()).replace("- ", "-").lower()


def run(args, cmd):
    base = [args.bin, "--data-dir", args.data_dir, "--models-dir", args.models_dir]
    out = subprocess.run(base + cmd, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def found(args, query, turn):
    hits = run(args, ["search", "--json", "-k", "3", query])
    hits = hits["hits"] if isinstance(hits, dict) else hits
    phrase = norm(turn["contains"])
    return any(
        os.path.basename(h["doc_path"]) == turn["doc"]
        and h["page"] <= turn["page"] <= h["page_end"]
        and phrase in norm(h["text"])
        for h in hits[:3]
    )


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bin", required=True)
    p.add_argument("--data-dir", required=True)
    p.add_argument("--models-dir", required=True)
    p.add_argument("--model")
    args = p.parse_args()
    with open(os.path.join(ROOT, "tests/fixtures/conversations.json")) as f:
        conversations = json.load(f)["conversations"]
    mode = ["--model", args.model] if args.model else ["--evidence"]
    rows, by = [], {}
    for c in conversations:
        first, follow = c["turns"]
        one = run(args, ["ask", "--json", "--thread", "new", *mode, first["question"]])
        thread = one["conversation"]["thread_id"]
        started = time.time()
        two = run(args, ["ask", "--json", "--thread", thread, *mode, follow["question"]])
        seconds = time.time() - started
        rewritten = two["question"]
        how = two["conversation"]["rewritten_by"]
        by[how] = by.get(how, 0) + 1
        ok = found(args, rewritten, follow)
        typed = found(args, follow["question"], follow)
        rows.append({"name": c["name"], "asked": follow["question"], "searched": rewritten,
                     "rewritten_by": how, "found": ok, "typed_found": typed,
                     "follow_up_seconds": round(seconds, 1)})
        print(f"{c['name']:<42} {how:<9} {'ok' if ok else 'MISSED':<6} (typed {'ok' if typed else 'missed'}) "
              f"{follow['question']!r} -> {rewritten!r}", file=sys.stderr)
    summary = {"model": args.model, "rewritten_found": sum(r["found"] for r in rows),
               "typed_found": sum(r["typed_found"] for r in rows), "rewritten_by": by,
               "conversations": rows}
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()

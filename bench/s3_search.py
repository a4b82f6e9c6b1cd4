#!/usr/bin/env python3
"""Hybrid search latency on a library on S3-compatible storage next to the same library in a
local folder: `quarry bench search` (synthetic chunks, query embedding excluded) run in
alternating rounds, locally and against moto's S3 server on 127.0.0.1, best p50 of each.

Run with the S3 virtualenv's interpreter (`make s3-server` installs it):
    ~/.cache/quarry/venvs/s3/bin/python bench/s3_search.py --quarry target/release/quarry \
        --sizes 10000 --rounds 3 --out bench/results/DATE-s3-search.json
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import time

import boto3


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quarry", required=True)
    ap.add_argument("--sizes", default="10000")
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out")
    args = ap.parse_args()

    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    env = dict(
        os.environ,
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench-secret",
        AWS_REGION="us-east-1",
    )
    env.pop("QUARRY_LOG", None)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                     aws_access_key_id="bench", aws_secret_access_key="bench-secret"
                     ).create_bucket(Bucket="quarry-bench")
        rounds = []
        for r in range(args.rounds):
            for where in ("local", "s3"):
                cmd = [args.quarry]
                if where == "s3":
                    cmd += ["--data-dir", f"s3://quarry-bench/round{r}"]
                cmd += ["bench", "search", "--sizes", args.sizes, "--queries", str(args.queries)]
                out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
                for run in json.loads(out.stdout)["search"]:
                    run["where"] = where
                    run["round"] = r
                    rounds.append(run)
                    print(f"round {r} {where:5} {run['chunks']:>7} chunks: p50 {run['p50_ms']:.1f} ms "
                          f"(vector {run['vector_p50_ms']:.1f}, text {run['text_p50_ms']:.1f}), "
                          f"p95 {run['p95_ms']:.1f} ms, build {run['build_s']:.1f} s", flush=True)
        best = {}
        for run in rounds:
            key = f"{run['where']}-{run['chunks']}"
            if key not in best or run["p50_ms"] < best[key]["p50_ms"]:
                best[key] = run
        result = {"server": "moto 5.2.6 (Python, in memory) on 127.0.0.1", "rounds": rounds, "best": best}
        print(json.dumps(best, indent=2))
        if args.out:
            with open(args.out, "w") as f:
                json.dump(result, f, indent=2)
    finally:
        server.kill()


if __name__ == "__main__":
    main()

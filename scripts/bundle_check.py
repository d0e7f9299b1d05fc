#!/usr/bin/env python3
"""Measure an edge bundle as its users meet it: Optimum and transformers.js against predict.py on the test queries,
predict.py's own cost over the model's at batch 1, and batch mode on a large file (throughput, peak memory).
Writes a JSON report (the README's figures for the bundle come from it).

    python scripts/bundle_check.py artifacts/cpu/edge --data-file data/clinc150/data_oos_plus.json.gz \\
        --lines 1000000 --out results/cpu/bundle_check.json

Takes about 10-15 minutes for the reference bundle and a million lines on 2 cores; run it with nothing else running.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import web_check  # noqa: E402


def optimum_agreement(bundle, queries, clf):
    """Optimum's ORTModelForSequenceClassification + transformers.pipeline: its top label against predict.py's."""
    from optimum.onnxruntime import ORTModelForSequenceClassification
    from transformers import AutoTokenizer, pipeline

    name = json.loads((Path(bundle) / "config.json").read_text())["edge"]["model_file"].split("/")[-1]
    model = ORTModelForSequenceClassification.from_pretrained(bundle, subfolder="onnx", file_name=name)
    classifier = pipeline("text-classification", model=model, tokenizer=AutoTokenizer.from_pretrained(bundle))
    theirs = [classifier(q, truncation=True)[0]["label"] for q in queries]
    ours = [clf.classify([q])[0]["top_label"] for q in queries]
    differ = [(q, a, b) for q, a, b in zip(queries, theirs, ours) if a != b]
    return {
        "queries": len(queries),
        "top_label_agree": len(queries) - len(differ),
        "first_disagreements": [dict(zip(("query", "optimum", "predict.py"), d)) for d in differ[:5]],
    }


def overhead(clf, queries, warmup=20):
    """predict.py end to end (cleaning, tokenising, the nothing-to-classify check, softmax) against the bare ONNX
    Runtime session on the same pre-tokenised query, batch 1, the session's threads: mean and p95 in ms."""
    feeds = []
    for q in queries:
        enc = clf.tokenizer.encode(clf.prepare(q))
        ids = np.array([enc.ids], dtype=np.int64)
        full = {
            "input_ids": ids,
            "attention_mask": np.array([enc.attention_mask], dtype=np.int64),
            "token_type_ids": np.zeros_like(ids),
        }
        feeds.append({k: full[k] for k in clf.input_names})

    def timed(fn, items):
        for item in items[:warmup]:
            fn(item)
        out = []
        for item in items:
            t0 = time.perf_counter()
            fn(item)
            out.append(1000 * (time.perf_counter() - t0))
        return {"mean_ms": round(statistics.mean(out), 3), "p95_ms": round(float(np.percentile(out, 95)), 3)}

    model = timed(lambda f: clf.session.run(None, f), feeds)
    end_to_end = timed(lambda q: clf.predict([q]), queries)
    return {
        "model_only": model,
        "predict_py": end_to_end,
        "overhead_ms": round(end_to_end["mean_ms"] - model["mean_ms"], 3),
        "queries": len(queries),
    }


def batch_mode(bundle, queries, lines, threads, work):
    """predict.py --input/--output on `lines` queries (the test queries repeated): wall time and peak memory."""
    src = work / f"queries-{lines}.txt"
    with open(src, "w", encoding="utf-8") as f:
        for i in range(lines):
            f.write(queries[i % len(queries)] + "\n")
    code = (
        "import resource, subprocess, sys, time; t0 = time.perf_counter(); "
        f"p = subprocess.run([sys.executable, {str(Path(bundle) / 'predict.py')!r}, '--input', {str(src)!r}, "
        f"'--output', {str(work / 'answers.jsonl')!r}, '--threads', '{threads}'], capture_output=True, text=True); "
        "print(p.returncode, time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, "
        "p.stderr.strip().splitlines()[-1] if p.stderr.strip() else '')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split(" ", 3)
    rc, seconds, rss_kb, last = int(out[0]), float(out[1]), int(out[2]), out[3].strip()
    rows = sum(1 for _ in open(work / "answers.jsonl"))
    return {
        "lines": lines,
        "threads": threads,
        "exit_code": rc,
        "rows_written": rows,
        "wall_s": round(seconds, 1),
        "texts_per_s": round(lines / seconds),
        "peak_rss_mb": round(rss_kb / 1024),
        "predict_py_said": last,
    }


def sorting_pays(predict, bundle, queries, threads, n=20_480):
    """Batch mode's length sort inside a chunk against none: texts per second over `n` queries, in process."""
    clf = predict.TextClassifier(bundle, threads=threads)
    rows = [(i, q, None) for i, q in enumerate((queries * (n // len(queries) + 1))[:n])]
    chunks = list(predict.chunks(rows, predict.CHUNK))
    rates = {}
    for name in ("sorted", "unsorted", "sorted again"):
        if name == "unsorted":
            predict.sorted = lambda items, key=None: list(items)  # classify_chunk's sort, switched off
        t0 = time.perf_counter()
        for chunk in chunks:
            predict.classify_chunk(clf, chunk, None)
        rates[name] = round(n / (time.perf_counter() - t0))
        vars(predict).pop("sorted", None)
    return {"texts_per_s": rates, "queries": n, "threads": threads}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundle")
    ap.add_argument("--data-file", required=True, help="a CLINC150-format file; its test queries are used")
    ap.add_argument("--lines", type=int, default=1_000_000, help="lines of the batch-mode file")
    ap.add_argument("--threads", type=int, default=2, help="threads of the batch-mode run")
    ap.add_argument("--skip-browser", action="store_true")
    ap.add_argument(
        "--parts",
        default="timing,agreement",
        help="timing (batch 1, length sort, batch mode; needs a quiet "
        "machine) and/or agreement (Optimum, transformers.js); an existing --out file is updated",
    )
    ap.add_argument("--out", help="write the JSON report here")
    args = ap.parse_args(argv)
    bundle = Path(args.bundle).resolve()
    queries = web_check.test_queries(args.data_file, 10**6)
    predict = web_check.load_predict(bundle)
    clf = predict.TextClassifier(bundle, threads=1)
    parts = set(args.parts.split(","))
    old = json.loads(Path(args.out).read_text()) if args.out and Path(args.out).is_file() else {}
    report = {
        **old,
        "bundle": str(bundle),
        "model_file": json.loads((bundle / "config.json").read_text())["edge"]["model_file"],
        "machine": {
            "cpu": next(
                (l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")),
                platform.processor(),
            ),
            "cores": os.cpu_count(),
        },
        "versions": {m: __import__(m).__version__ for m in ("onnxruntime", "tokenizers", "numpy")},
    }
    if "agreement" in parts:
        report["optimum"] = optimum_agreement(bundle, queries, clf)
        print(json.dumps(report["optimum"])[:300], flush=True)
        if not args.skip_browser:
            report["transformers_js"] = web_check.transformers_js(bundle, queries)
            print(json.dumps(report["transformers_js"])[:300], flush=True)
    if "timing" in parts:
        timing(report, bundle, predict, clf, queries, args)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    return 0


def timing(report, bundle, predict, clf, queries, args):
    """predict.py's cost over the model's at batch 1, the length sort, and batch mode on args.lines lines."""
    rng = np.random.default_rng(42)
    bench = [queries[i] for i in rng.permutation(len(queries))[:200]]
    report["batch_1_one_thread"] = overhead(clf, bench)
    single_rate = 1000 / report["batch_1_one_thread"]["predict_py"]["mean_ms"]
    print(json.dumps(report["batch_1_one_thread"]), flush=True)
    report["length_sort"] = sorting_pays(predict, bundle, queries, args.threads)
    print(json.dumps(report["length_sort"]), flush=True)
    with tempfile.TemporaryDirectory() as work:
        report["batch_mode"] = batch_mode(bundle, queries, args.lines, args.threads, Path(work))
        report["batch_mode"]["vs_one_at_a_time_1_thread"] = round(report["batch_mode"]["texts_per_s"] / single_rate, 2)
        small = batch_mode(bundle, queries, min(args.lines, 20_000), args.threads, Path(work))
        report["batch_mode"]["peak_rss_mb_at_20000_lines"] = small["peak_rss_mb"]
    print(json.dumps(report["batch_mode"]), flush=True)


if __name__ == "__main__":
    sys.exit(main())

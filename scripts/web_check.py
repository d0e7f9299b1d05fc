#!/usr/bin/env python3
"""Open an edge bundle's web page (edge/web/) in headless Chromium and check it against predict.py.

Serves the bundle folder on 127.0.0.1, drives Debian's chromium through Playwright (the system browser: nothing is
downloaded), types a query, and compares the page with the bundle's own Python code on real queries: token ids equal,
logits within 1e-4, the same answers for texts with nothing to classify, and no console error. Prints a JSON report.

    python scripts/web_check.py artifacts/cpu/edge --data-file data/clinc150/data_oos_plus.json.gz --queries 200
    python scripts/web_check.py artifacts/cpu/edge --screenshot results/cpu/web_page.png
"""

import argparse
import functools
import gzip
import http.server
import importlib.util
import json
import shutil
import statistics
import sys
import threading
import time
from pathlib import Path

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
BAD_INPUTS = {
    "empty": "",
    "blank": "   \t ",
    "emoji only": "\U0001f600\U0001f680",
    "100,000 characters": "a" * 100_000,
    "control characters only": "\x00\x07\x1b\u200b",
}


REPO = Path(__file__).resolve().parents[1]
NODE_MODULES = REPO / "web" / "node_modules"
VENDOR_FILES = [
    "onnxruntime-web/dist/ort.wasm.min.mjs",
    "onnxruntime-web/dist/ort-wasm-simd-threaded.mjs",
    "onnxruntime-web/dist/ort-wasm-simd-threaded.wasm",
    "@huggingface/tokenizers/dist/tokenizers.min.mjs",
]


def copy_vendor(bundle):
    """Copy the page's libraries from web/node_modules (npm ci of web/package.json) into <bundle>/web/vendor/."""
    missing = [f for f in VENDOR_FILES if not (NODE_MODULES / f).is_file()]
    if missing:
        raise SystemExit(f"{NODE_MODULES} lacks {missing[0]}: run `cd web && npm ci` (make web does it).")
    if not (Path(bundle) / "web" / "index.html").is_file():
        raise SystemExit(f"{bundle}/web/index.html is missing: run notebook 2 first (make run), which writes the page.")
    vendor = Path(bundle) / "web" / "vendor"
    vendor.mkdir(exist_ok=True)
    for f in VENDOR_FILES:
        shutil.copy2(NODE_MODULES / f, vendor / Path(f).name)
    return vendor


def launch(playwright, chromium=None):
    """The system's chromium, headless, with the flags a machine without network needs (no browser download)."""
    return playwright.chromium.launch(executable_path=chromium or find_chromium(), args=CHROMIUM_ARGS)


def file_url_message(bundle, chromium=None):
    """What the page says when opened as a file (file://), where browsers block loading the model."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = launch(p, chromium)
        page = browser.new_page()
        page.goto((Path(bundle).resolve() / "web" / "index.html").as_uri())
        page.wait_for_function("document.getElementById('status').textContent.length > 0", timeout=30_000)
        text = page.text_content("#status")
        browser.close()
    return text


def load_message(bundle, chromium=None, timeout_ms=90_000):
    """What the page at <bundle>/web/ says once it has loaded or given up: '' when it is ready for queries, else the
    error it shows (a bundle whose files disagree, libraries that cannot be loaded)."""
    from playwright.sync_api import sync_playwright

    server = serve(Path(bundle).resolve())
    try:
        with sync_playwright() as p:
            browser = launch(p, chromium)
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{server.server_port}/web/")
            page.wait_for_function(
                "!document.getElementById('query').disabled || "
                "document.getElementById('status').textContent.length > 0",
                timeout=timeout_ms,
            )
            text = page.text_content("#status")
            browser.close()
    finally:
        server.shutdown()
    return text


def find_chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def test_queries(data_file, n):
    """The first `n` test queries of a CLINC150-format file (in-scope and out-of-scope interleaved, then the rest of the
    in-scope ones), or None."""
    if not data_file:
        return None
    raw = json.loads(
        gzip.decompress(Path(data_file).read_bytes()) if str(data_file).endswith(".gz") else Path(data_file).read_text()
    )
    oos = raw.get("oos_test", [])
    rows = [t for pair in zip(raw["test"], oos) for t, _ in pair] + [t for t, _ in raw["test"][len(oos) :]]
    return rows[:n]


def serve(folder):
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def load_predict(bundle):
    """A bundle's own predict.py, imported as a module (its TextClassifier, clean, BundleError)."""
    spec = importlib.util.spec_from_file_location(f"predict_{Path(bundle).name}", Path(bundle) / "predict.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def check(bundle, queries, query="book a flight to paris", screenshot=None, chromium=None):
    from playwright.sync_api import sync_playwright

    bundle = Path(bundle).resolve()
    predict = load_predict(bundle)
    clf = predict.TextClassifier(bundle, threads=1)
    server = serve(bundle)
    url = f"http://127.0.0.1:{server.server_port}/web/"
    report, errors = {"bundle": str(bundle), "url": url}, []
    try:
        with sync_playwright() as p:
            browser = launch(p, chromium)
            page = browser.new_page(viewport={"width": 900, "height": 640})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            t0 = time.perf_counter()
            page.goto(url)
            page.fill("#query", query)
            page.click("#go")
            page.wait_for_function("document.getElementById('answer').textContent.length > 0", timeout=60_000)
            report["load_to_first_answer_s"] = round(time.perf_counter() - t0, 3)
            report["answer"] = page.text_content("#answer")
            report["expected"] = clf.predict([query])[0]
            report["about"], report["libraries"] = page.text_content("#about"), page.text_content("#libs")
            if screenshot:
                Path(screenshot).parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(screenshot), full_page=True)
            report["bad_inputs"] = {}
            for name, text in BAD_INPUTS.items():
                shown = page.evaluate(
                    "async (t) => { const api = await window.fdq; try { return await api.predict(t); }"
                    " catch (e) { return {error: e.message}; } }",
                    text,
                )
                try:
                    expected = clf.predict([text])[0]
                except predict.BundleError as err:
                    expected = {"error": str(err)}
                report["bad_inputs"][name] = {
                    "page": {k: shown.get(k) for k in ("label", "confidence", "error")},
                    "predict.py": {k: expected.get(k) for k in ("label", "confidence", "error")},
                }
            if queries:
                out = page.evaluate(
                    """async (qs) => { const api = await window.fdq; const rows = [];
                    for (const q of qs) { const ids = api.encode(q); rows.push({ids, logits: await api.logits(ids)}); }
                    const times = [], labels = [];
                    for (const q of qs) { const t0 = performance.now(); const r = await api.predict(q);
                                          times.push(performance.now() - t0); labels.push(r.label); }
                    return {rows, times, labels}; }""",
                    queries,
                )
                import numpy as np

                first_ids, first_logits, worst = None, None, 0.0
                py_times, python_labels = [], []
                for q, row in zip(queries, out["rows"]):
                    enc = clf.tokenizer.encode(clf.prepare(q))
                    ids = [i for i, m in zip(enc.ids, enc.attention_mask) if m]
                    if ids != row["ids"] and first_ids is None:
                        first_ids = {"query": q, "page": row["ids"], "python": ids}
                    ref = clf.logits([q])[0]
                    diff = float(np.abs(np.asarray(row["logits"]) - ref).max())
                    worst = max(worst, diff)
                    if diff > 1e-4 and first_logits is None:
                        first_logits = {"query": q, "max_abs_diff": diff}
                for q in queries[:20]:
                    clf.predict([q])
                for q in queries:
                    t1 = time.perf_counter()
                    python_labels.append(clf.predict([q])[0]["label"])
                    py_times.append(1000 * (time.perf_counter() - t1))
                differ = [(q, a, b) for q, a, b in zip(queries, out["labels"], python_labels) if a != b]
                report["parity"] = {
                    "queries": len(queries),
                    "first_token_id_mismatch": first_ids,
                    "first_logit_mismatch": first_logits,
                    "max_abs_logit_diff": worst,
                    "answers_differ": len(differ),
                    "first_answer_mismatch": dict(zip(("query", "page", "predict.py"), differ[0])) if differ else None,
                }
                page_ms, py_ms = statistics.mean(out["times"]), statistics.mean(py_times)
                report["per_query_ms"] = {
                    "page_wasm_1_thread": round(page_ms, 3),
                    "predict_py_1_thread": round(py_ms, 3),
                    "ratio": round(page_ms / py_ms, 2),
                    "page_p95": round(sorted(out["times"])[int(0.95 * len(out["times"])) - 1], 3),
                }
            browser.close()
    finally:
        server.shutdown()
    report["console_errors"] = errors
    return report


TRANSFORMERS_JS = NODE_MODULES / "@huggingface" / "transformers" / "dist" / "transformers.min.js"
TRANSFORMERS_JS_PAGE = """<!doctype html><meta charset="utf-8"><script type="module">
import { pipeline, env, AutoTokenizer, AutoModelForSequenceClassification } from "./lib/transformers.min.js";
env.allowLocalModels = true; env.allowRemoteModels = false; env.localModelPath = "./";
env.backends.onnx.wasm.wasmPaths = new URL("./lib/ort/", location.href).href;
env.backends.onnx.wasm.numThreads = 1;
window.run = async (queries, dtype) => {
  const classify = await pipeline("text-classification", "model", { dtype });
  const labels = [];
  for (const q of queries) labels.push((await classify(q))[0].label);
  const tokenizer = await AutoTokenizer.from_pretrained("model");
  const model = await AutoModelForSequenceClassification.from_pretrained("model", { dtype });
  const logits = [];
  for (const q of queries) logits.push(Array.from((await model(await tokenizer(q, { truncation: true }))).logits.data));
  return { labels, logits };
};
window.ready = true;
</script>"""


def transformers_js(bundle, queries, chromium=None):
    """The bundle loaded as a model folder by transformers.js (web/package.json's @huggingface/transformers, its own
    onnxruntime-web WASM files, served on 127.0.0.1, nothing remote): its pipeline's top label and its model's
    logits for each query, beside predict.py's (the model file and dtype the bundle's config.json names)."""
    import tempfile

    import numpy as np
    from playwright.sync_api import sync_playwright

    bundle = Path(bundle).resolve()
    predict = load_predict(bundle)
    clf = predict.TextClassifier(bundle, threads=1)
    model_file = json.loads((bundle / "config.json").read_text())["edge"]["model_file"]
    dtype = {"model_quantized.onnx": "q8", "model_q4.onnx": "q4", "model.onnx": "fp32"}[Path(model_file).name]
    ort_dist = TRANSFORMERS_JS.parents[1] / "node_modules" / "onnxruntime-web" / "dist"
    if not ort_dist.is_dir():
        ort_dist = NODE_MODULES / "onnxruntime-web" / "dist"
    with tempfile.TemporaryDirectory() as root:
        root = Path(root)
        (root / "lib").mkdir()
        shutil.copy(TRANSFORMERS_JS, root / "lib")
        (root / "lib" / "ort").symlink_to(ort_dist)
        (root / "model").symlink_to(bundle)
        (root / "index.html").write_text(TRANSFORMERS_JS_PAGE)
        server, errors = serve(root), []
        try:
            with sync_playwright() as p:
                browser = launch(p, chromium)
                page = browser.new_page()
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.goto(f"http://127.0.0.1:{server.server_port}/index.html")
                page.wait_for_function("window.ready === true", timeout=60_000)
                out = page.evaluate("([qs, dtype]) => window.run(qs, dtype)", [queries, dtype])
                browser.close()
        finally:
            server.shutdown()
    python = [clf.classify([q])[0] for q in queries]  # one at a time, as the page runs them (int8 kernels
    reference = [clf.logits([q])[0] for q in queries]  # quantize each batch's activations as a whole)
    # transformers.js 4.3's truncation cuts the closing [SEP] off a text longer than max_length tokens (Python's
    # tokenizers keep it): such texts are counted apart
    truncated = [bool(clf.tokenizer.encode(clf.prepare(q)).overflowing) for q in queries]
    diffs = [
        float(np.abs(np.asarray(js) - ref).max())
        for js, ref, cut in zip(out["logits"], reference, truncated)
        if not cut
    ]
    differ = [
        (q, a, b["top_label"], cut)
        for q, a, b, cut in zip(queries, out["labels"], python, truncated)
        if a != b["top_label"]
    ]
    return {
        "queries": len(queries),
        "dtype": dtype,
        "model_file": model_file,
        "page_errors": errors,
        "top_label_agree": len(queries) - len(differ),
        "truncated": sum(truncated),
        "top_label_differ_untruncated": sum(not d[3] for d in differ),
        "max_abs_logit_diff_untruncated": max(diffs),
        "first_disagreement": dict(zip(("query", "transformers.js", "predict.py", "truncated"), differ[0]))
        if differ
        else None,
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundle", help="the edge bundle folder (artifacts/<run>/edge), with web/ inside")
    ap.add_argument(
        "--data-file", help="a CLINC150-format file whose test queries are checked (e.g. data/clinc150/...)"
    )
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--query", default="book a flight to paris", help="the query typed into the page")
    ap.add_argument("--screenshot", help="save a screenshot of the page here (PNG)")
    ap.add_argument(
        "--vendor",
        action="store_true",
        help="only copy the libraries into <bundle>/web/vendor/ and say how to serve the page (make web)",
    )
    args = ap.parse_args(argv)
    if args.vendor:
        vendor = copy_vendor(args.bundle)
        print(
            f"Copied {len(VENDOR_FILES)} library files to {vendor}. Serve the page:\n  cd {args.bundle} && "
            "python3 -m http.server 8000\nthen open http://localhost:8000/web/"
        )
        return 0
    if not (Path(args.bundle) / "web" / "vendor").is_dir():
        print(
            f"{args.bundle}/web/vendor/ is missing: run `make web RUN=<run>` first (it copies the pinned libraries).",
            file=sys.stderr,
        )
        return 2
    report = check(args.bundle, test_queries(args.data_file, args.queries), args.query, args.screenshot)
    print(json.dumps(report, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())

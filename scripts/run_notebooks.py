#!/usr/bin/env python3
"""Run both notebooks end to end with papermill for one profile and run name.

The executed copies go to results/<run>/ (never over the committed notebooks); everything the notebooks
write goes to artifacts/<run>/ and results/<run>/. Each knob can also come from the environment (FDQ_*),
e.g. offline: FDQ_DATA_FILE=../shared/data/clinc150/data_oos_plus.json FDQ_TEACHER_BASE=/path/to/minilm.

    python scripts/run_notebooks.py --profile cpu
    python scripts/run_notebooks.py --profile smoke --run try1 --only finetuning -p teacher_epochs 2
"""
import argparse
import json
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = {"finetuning": "finetuning.ipynb", "distill_quantize_ort": "distill_quantize_ort.ipynb"}


def parse_value(text):
    """papermill-style value: int, float, bool, or the string itself."""
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default=os.environ.get("FDQ_PROFILE", "cpu"), choices=["default", "cpu", "smoke"])
    ap.add_argument("--run", default=None, help="run name (default: the profile's name)")
    ap.add_argument("--only", choices=list(NOTEBOOKS), action="append", help="run only this notebook (repeatable)")
    ap.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                    help="a knob of the parameters cell, as papermill's -p")
    ap.add_argument("--results-dir", default=os.environ.get("FDQ_RESULTS_DIR", "results"))
    args = ap.parse_args(argv)

    import papermill as pm

    run = args.run or os.environ.get("FDQ_RUN_NAME") or args.profile
    params = {"profile": args.profile, "run_name": run, "results_dir": args.results_dir}
    params.update({k: parse_value(v) for k, v in args.parameter})
    out_dir = (ROOT / args.results_dir / run) if not Path(args.results_dir).is_absolute() else Path(args.results_dir) / run
    out_dir.mkdir(parents=True, exist_ok=True)
    log_path = out_dir / "run_log.json"
    log = json.loads(log_path.read_text()) if log_path.is_file() else {}
    for key in args.only or list(NOTEBOOKS):
        src = ROOT / NOTEBOOKS[key]
        dst = out_dir / NOTEBOOKS[key]
        print(f"[{datetime.now():%H:%M:%S}] {src.name} -> {dst} (profile {args.profile}, run {run})", flush=True)
        t0 = time.perf_counter()
        try:
            pm.execute_notebook(str(src), str(dst), parameters=params, cwd=str(ROOT), kernel_name="python3",
                                log_output=False, progress_bar=True)
        finally:
            seconds = time.perf_counter() - t0
            log[key] = {"wall_time_s": round(seconds, 1), "finished": datetime.now(timezone.utc).isoformat(),
                        "profile": args.profile, "parameters": params,
                        "status": "ok" if sys.exc_info()[0] is None else "failed"}
            log_path.write_text(json.dumps(log, indent=2) + "\n")
            print(f"[{datetime.now():%H:%M:%S}] {src.name}: {seconds / 60:.1f} min", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

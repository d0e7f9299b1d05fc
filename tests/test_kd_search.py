"""The parallel Optuna search (scripts/kd_search.py) runs the notebook's training on validation only."""

import json
import subprocess
import sys

import pytest
from conftest import REPO


@pytest.mark.slow  # trains students
def test_kd_search_runs_trials_and_reports_them(assets, tiny_teacher, tmp_path):
    storage = tmp_path / "search.db"
    common = [sys.executable, str(REPO / "scripts" / "kd_search.py"), "--storage", str(storage)]
    setting = [
        "--teacher",
        str(tiny_teacher),
        "--data-file",
        str(assets["data"]),
        "--layers",
        "1",
        "--base-epochs",
        "1",
        "--limit",
        "64",
        "--max-length",
        "16",
    ]

    def search(*extra, storage_args=common):
        return subprocess.run(
            storage_args + setting + list(extra), capture_output=True, text=True, timeout=300, cwd=tmp_path
        )

    for worker in (0, 1):  # two workers, one study
        proc = search("--worker", str(worker), "--trials", "1")
        assert proc.returncode == 0, proc.stderr[-3000:]
    proc = search("--worker", "2", "--trials", "1", "--freeze-embeddings")
    assert proc.returncode != 0 and "started with other settings (freeze_embeddings False -> True)" in proc.stderr
    proc = search("--worker", "2", "--trials", "1", "--warmup-ratio", "0.1")
    assert proc.returncode != 0 and "started with other settings (warmup_ratio None -> 0.1)" in proc.stderr
    other = [sys.executable, str(REPO / "scripts" / "kd_search.py"), "--storage", str(tmp_path / "other.db")]
    for extra in (["--warmup-ratio", "0.1"], []):  # started with a warm-up, resumed without one
        proc = search("--trials", "0", *extra, storage_args=other)
    assert proc.returncode != 0 and "started with other settings (warmup_ratio 0.1 -> None)" in proc.stderr
    proc = subprocess.run(common + ["--report"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads(storage.with_suffix(".json").read_text())
    assert sorted(r["trial"] for r in rows) == [0, 1]
    for r in rows:
        assert 0 <= r["kd_alpha"] <= 1 and 1 <= r["kd_temperature"] <= 10 and r["student_epochs"] in (1, 2)
        assert len(r["val_history"]) == r["student_epochs"] and r["best_val_accuracy"] == max(r["val_history"])

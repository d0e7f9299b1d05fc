"""The README's result tables say what the committed runs measured: every figure of the reference table and of the
two baselines tables is recomputed from results/<run>/metrics.csv and metrics.json (a rerun that changes them
without the README, or a typo, fails here)."""

import json
import re

import pandas as pd
import pytest
from nbcode import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")


def table_after(header_start):
    """The rows (lists of cells) of the README table whose header line starts with `header_start`."""
    lines = README.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith(header_start)]
    assert len(starts) == 1, f"{len(starts)} tables starting {header_start!r} in README.md, not one"
    rows = []
    for line in lines[starts[0] + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def stage_of(cell):
    """'**ort_int8_dynamic** (final)' or 'ort_pruned_int8 (`predict.py`)' -> the stage's name."""
    return re.sub(r"[*`]", "", cell).split()[0]


def run(name):
    metrics = pd.read_csv(REPO / "results" / name / "metrics.csv").set_index("stage")
    info = json.loads((REPO / "results" / name / "metrics.json").read_text())
    return metrics, info


def pct(x):
    return f"{100 * x:.2f} %"


def gap_cell(cell):
    """'-1.67 (-2.53 to -0.84)' -> (gap, low, high) as floats."""
    return tuple(float(v) for v in re.findall(r"[-+]?\d+\.\d+", cell))


def close(cell, value, digits):
    assert float(cell) == pytest.approx(round(value, digits), abs=10**-digits / 2 + 1e-9), (cell, value)


def test_the_reference_table_is_results_cpu():
    metrics, _ = run("cpu")
    rows = table_after("| stage | accuracy | in-scope")
    assert [stage_of(r[0]) for r in rows] == [s for s in metrics.index if not metrics.loc[s, "baseline"]]
    teacher = metrics.loc["teacher"]
    for cells in rows:
        m = metrics.loc[stage_of(cells[0])]
        assert cells[1:5] == [pct(m.accuracy), pct(m.in_scope_accuracy), pct(m.oos_recall), pct(m.accuracy_thr)]
        assert cells[5] == f"{m.latency_mean_ms:.2f} / {m.latency_p95_ms:.2f}"
        assert cells[6] == f"{m.size_mb:.1f}"
        speed, small = teacher.latency_mean_ms / m.latency_mean_ms, teacher.size_mb / m.size_mb
        assert cells[7] == f"×{speed:.1f} / ×{small:.1f}"
        assert ("(final)" in cells[0]) == bool(m.final)


@pytest.mark.parametrize(
    ("name", "header", "with_threshold"),
    [
        ("cpu", "| model | accuracy | with OOS threshold", True),
        ("domains", "| model | accuracy | vs `distilled`", False),
    ],
)
def test_the_baselines_tables_are_their_runs(name, header, with_threshold):
    metrics, info = run(name)
    rows = table_after(header)
    edge, *baselines = rows
    assert stage_of(edge[0]) == info["edge"]["stage"] and "predict.py" in edge[0]
    assert [stage_of(r[0]) for r in baselines] == [s for s in metrics.index if metrics.loc[s, "baseline"]]
    for cells in rows:
        stage = stage_of(cells[0])
        m = metrics.loc[stage]
        expected = [pct(m.accuracy)] + ([pct(m.accuracy_thr)] if with_threshold else [])
        assert cells[1 : len(expected) + 1] == expected, stage
        g, ms, mib = cells[len(expected) + 1 : len(expected) + 4]
        want = info["vs_distilled"]["test"][stage]
        assert gap_cell(g) == pytest.approx((want["gap_pt"], want["ci95_low_pt"], want["ci95_high_pt"])), stage
        # the edge model end to end, as predict.py runs it; a baseline is end to end anyway
        latency = info["edge"]["end_to_end_latency_ms"]["latency_mean_ms"] if cells is edge else m.latency_mean_ms
        close(ms, latency, len(ms.split(".")[1]))
        close(mib, m.size_mb, 1)
        if cells is not edge:
            assert cells[-1] == f"{m.train_s:.0f} s", stage

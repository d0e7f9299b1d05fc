import json
import os
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import tiny  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HUB_OFFLINE", "1")          # never wait on the Hub in tests
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


@pytest.fixture(scope="session")
def assets(tmp_path_factory):
    """The tiny offline world: a CLINC-format data file and a 2-layer BERT (hidden 32) with its tokenizer."""
    root = tmp_path_factory.mktemp("assets")
    data = tiny.make_clinc_file(root / "clinc_tiny.json")
    base = tiny.make_tiny_bert(root / "tiny-bert", data)
    return {"root": root, "data": data, "base": base}


@pytest.fixture(scope="session")
def tiny_teacher(assets):
    """A (random, untrained) CLINC teacher folder: tiny BERT classifier with the Hub's label order."""
    from transformers import AutoTokenizer, BertForSequenceClassification

    labels = tiny.hub_labels()
    folder = assets["root"] / "tiny-teacher"
    model = BertForSequenceClassification.from_pretrained(
        assets["base"], num_labels=151, id2label=dict(enumerate(labels)),
        label2id={n: i for i, n in enumerate(labels)})
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(assets["base"]).save_pretrained(folder)
    return folder


def smoke_env(assets, out):
    """Environment of a smoke run writing under `out`."""
    return {**os.environ, "FDQ_PROFILE": "smoke", "FDQ_DATA_FILE": str(assets["data"]),
            "FDQ_TEACHER_BASE": str(assets["base"]), "FDQ_ARTIFACTS_DIR": str(out / "artifacts"),
            "FDQ_RESULTS_DIR": str(out / "results"), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def run_notebook(name, env, parameters=None, out=None):
    """Execute a notebook with papermill in `env`; returns None on success, else the error's 'Name: message'."""
    import papermill as pm

    old = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        pm.execute_notebook(str(REPO / name), str(out or "/dev/null"), parameters=parameters or {},
                            kernel_name="python3", progress_bar=False, cwd=str(REPO))
        return None
    except pm.PapermillExecutionError as err:
        return f"{err.ename}: {err.evalue}"
    finally:
        os.environ.clear()
        os.environ.update(old)

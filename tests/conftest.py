import json
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import tiny  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never wait on the Hub in tests
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
        assets["base"], num_labels=151, id2label=dict(enumerate(labels)), label2id={n: i for i, n in enumerate(labels)}
    )
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(assets["base"]).save_pretrained(folder)
    return folder


def smoke_env(assets, out):
    """Environment of a smoke run writing under `out`."""
    return {
        **os.environ,
        "FDQ_PROFILE": "smoke",
        "FDQ_DATA_FILE": str(assets["data"]),
        "FDQ_TEACHER_BASE": str(assets["base"]),
        "FDQ_ARTIFACTS_DIR": str(out / "artifacts"),
        "FDQ_RESULTS_DIR": str(out / "results"),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
    }


def run_notebook(name, env, parameters=None, out=None):
    """Execute a notebook with papermill in `env`; returns None on success, else the error's 'Name: message'."""
    import papermill as pm

    old = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        pm.execute_notebook(
            str(REPO / name),
            str(out or "/dev/null"),
            parameters=parameters or {},
            kernel_name="python3",
            progress_bar=False,
            cwd=str(REPO),
        )
        return None
    except pm.PapermillExecutionError as err:
        return f"{err.ename}: {err.evalue}"
    finally:
        os.environ.clear()
        os.environ.update(old)


@pytest.fixture(scope="session")
def notebook_lib():
    """The functions of notebook 2's shared and lib cells (write_bundle, model_card, ...), executed once."""
    from nbcode import namespace

    return namespace("distill", fp16=False, max_length=32)


@pytest.fixture(scope="session")
def bundles(assets, notebook_lib, tmp_path_factory):
    """Edge bundles built in seconds from the tiny tokenizer: CLINC's 151 labels with `oos` at threshold 0.05, int8
    and fp32, and a 3-label task without an out-of-scope label."""
    root = tmp_path_factory.mktemp("bundles")
    labels = tiny.hub_labels()
    rows = json.loads(assets["data"].read_text())
    train = [(t, label) for key in ("train", "oos_train") for t, label in rows[key][::3]]
    csv_train = [
        (f"{w} please", label) for label, w in (("3", "card"), ("7", "flight"), ("10", "song")) for _ in range(3)
    ]
    return {
        "int8": tiny.make_bundle(notebook_lib, root / "int8", assets["base"], labels, train, "oos", 0.05),
        "fp32": tiny.make_bundle(notebook_lib, root / "fp32", assets["base"], labels, train, "oos", 0.05, int8=False),
        "no_oos": tiny.make_bundle(notebook_lib, root / "no_oos", assets["base"], ["3", "7", "10"], csv_train),
    }


def browser_ready():
    """None when the browser tests can run here (web/node_modules, Debian's chromium, playwright); else a skip, or in
    CI a failure, naming what is missing."""
    import web_check

    problems = [
        p
        for p, ok in (
            (
                "web/node_modules (cd web && npm ci --ignore-scripts; make test does it)",
                (web_check.NODE_MODULES / "onnxruntime-web").is_dir(),
            ),
            (
                "Debian's chromium (apt install chromium; make test does it as root)",
                web_check.find_chromium() is not None,
            ),
        )
        if not ok
    ]
    try:
        import playwright  # noqa: F401
    except ImportError:
        problems.append("playwright (requirements-test.txt)")
    if problems:
        if os.environ.get("CI"):
            pytest.fail("CI must run the browser tests; missing: " + "; ".join(problems))
        pytest.skip("browser test needs " + "; ".join(problems))

"""The CLINC150 loader: label order, split sizes, oos handling, and the errors for bad files."""
import json
from pathlib import Path

import pytest

from nbcode import namespace

SHARED_ORDER = Path(__file__).resolve().parents[2] / "shared" / "data" / "clinc150" / "hub_label_order.json"


@pytest.fixture(scope="module")
def nb():
    return namespace("finetuning", tags=("shared",))


def test_label_order_is_the_hubs(nb):
    assert len(nb["CLINC_LABELS"]) == 151 and nb["OOS_LABEL"] == 42 and nb["CLINC_LABELS"][42] == "oos"
    assert nb["CLINC_LABELS"][:3] == ["restaurant_reviews", "nutrition_info", "account_blocked"]
    if SHARED_ORDER.is_file():   # the project's shared copy of the Hub's ClassLabel order
        assert nb["CLINC_LABELS"] == json.loads(SHARED_ORDER.read_text())


def test_splits_join_in_scope_and_oos_rows(nb, assets):
    ds = nb["load_clinc"]("clinc/clinc_oos", "plus", str(assets["data"]))
    raw = json.loads(assets["data"].read_text())
    for split, (a, b) in {"train": ("train", "oos_train"), "validation": ("val", "oos_val"),
                          "test": ("test", "oos_test")}.items():
        assert len(ds[split]) == len(raw[a]) + len(raw[b])
        names = ds[split].features["intent"].names
        assert names == nb["CLINC_LABELS"]
        intents = [names[i] for i in ds[split]["intent"]]
        assert intents.count("oos") == len(raw[b])
        assert intents[: len(raw[a])] == [i for _, i in raw[a]]
        assert list(ds[split]["text"][: 2]) == [t for t, _ in raw[a][:2]]


def test_metrics_follow_the_contract(nb):
    m = nb["clinc_metrics"]([42, 42, 1, 2, 3], [42, 1, 1, 2, 42])
    assert m == {"accuracy": 3 / 5, "in_scope_accuracy": 2 / 3, "oos_recall": 1 / 2}


@pytest.mark.parametrize("content, message", [
    (None, "does not exist"),
    ("{not json", "is not valid JSON"),
    (json.dumps({"train": [], "val": []}), "missing ['test']"),
    (json.dumps({"train": [["hi"]], "val": [], "test": []}), "rows must be [text, intent]"),
    (json.dumps({"train": [["hi", "say_hello"]], "val": [], "test": []}), "not CLINC150 labels: ['say_hello']"),
])
def test_bad_files_get_clear_errors(nb, tmp_path, content, message):
    path = tmp_path / "data.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(nb["ConfigError"], match=r"(?s)" + __import__("re").escape(message) + ".*FDQ_DATA_FILE"):
        nb["load_clinc_file"](path)


def test_parameters_resolve_explicit_then_env_then_profile(nb, monkeypatch):
    profiles = {"default": {"run_name": "", "epochs": 3, "lr": 1e-4, "flag": False, "name": "x"},
                "smoke": {"run_name": "", "epochs": 1, "lr": 1e-3, "flag": False, "name": "y"}}
    monkeypatch.setenv("FDQ_PROFILE", "smoke")
    monkeypatch.setenv("FDQ_EPOCHS", "7")
    monkeypatch.setenv("FDQ_FLAG", "true")
    monkeypatch.setenv("FDQ_LR", "0.5")
    ns = {"profile": None, "epochs": None, "lr": 2e-5, "flag": None, "name": None}
    params = nb["resolve_params"](ns, profiles)
    assert params == {"profile": "smoke", "run_name": "smoke", "epochs": 7, "lr": 2e-5, "flag": True, "name": "y"}
    assert ns["epochs"] == 7
    monkeypatch.setenv("FDQ_EPOCHS", "seven")
    with pytest.raises(nb["ConfigError"], match="epochs = 'seven' .*FDQ_EPOCHS.* not a valid int"):
        nb["resolve_params"]({"profile": None}, profiles)
    with pytest.raises(nb["ConfigError"], match="Unknown profile 'gpu'"):
        nb["resolve_params"]({"profile": "gpu"}, profiles)

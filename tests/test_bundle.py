"""The edge bundle's own files (edge/predict.py, edge/web/) on bundles built in seconds (conftest's `bundles`): the
Hugging Face model folder and its card, predict.py's answers, batch mode, careless input, damaged files, Optimum,
transformers.js and the page. None of these waits for a notebook run."""

import gzip
import json
import re
import shutil
import subprocess
import sys

import pytest
from conftest import REPO, browser_ready
from nbcode import NOTEBOOKS
from web_check import load_predict

TEST_FILE = REPO / "data" / "clinc150" / "data_oos_plus.json.gz"


def real_queries(n):
    """The first `n` CLINC150 test queries (in scope and out of scope interleaved)."""
    raw = json.loads(gzip.decompress(TEST_FILE.read_bytes()))
    return [t for pair in zip(raw["test"], raw["oos_test"]) for t, _ in pair][:n]


def cli(bundle, *args, stdin=None, env=None, timeout=120):
    """predict.py in a fresh process in the bundle folder; stdin as bytes."""
    return subprocess.run(
        [sys.executable, str(bundle / "predict.py"), *args],
        input=stdin,
        capture_output=True,
        cwd=bundle,
        timeout=timeout,
        env=env,
    )


def copy_bundle(bundle, tmp_path, **config_changes):
    """A copy of a bundle whose config.json has `config_changes` (edge__x sets edge.x; None deletes)."""
    folder = tmp_path / bundle.name
    shutil.copytree(bundle, folder, ignore=shutil.ignore_patterns("__pycache__"))
    config = json.loads((folder / "config.json").read_text())
    for key, value in config_changes.items():
        target, key = (config["edge"], key[6:]) if key.startswith("edge__") else (config, key)
        if value is None:
            target.pop(key, None)
        else:
            target[key] = value
    (folder / "config.json").write_text(json.dumps(config))
    return folder


# The files: real files of the repository, carried verbatim by notebook 2


def test_notebook_carries_the_bundle_files_verbatim():
    nb = json.loads(NOTEBOOKS["distill"].read_text())
    written = {}
    for cell in nb["cells"]:
        src = "".join(cell["source"])
        m = re.match(r'%%writefile "\{EDGE\}/([^"]+)"\n', src)
        if cell["cell_type"] == "code" and m:
            written[m.group(1)] = src[m.end() :]
    assert set(written) == {"predict.py", "web/index.html", "web/app.js"}
    for name, text in written.items():
        assert text == (REPO / "edge" / name).read_text(), (
            f"notebook 2's copy of edge/{name} differs: run python scripts/sync_edge_files.py"
        )


def test_web_libraries_are_pinned_in_one_place():
    """The page's CDN versions and the notebook's are web/package.json's, which its lock pins."""
    import ast

    pkg = json.loads((REPO / "web" / "package.json").read_text())["dependencies"]
    lock = json.loads((REPO / "web" / "package-lock.json").read_text())["packages"]
    page = {k: v for k, v in pkg.items() if k != "@huggingface/transformers"}
    (app,) = re.findall(r"const VERSIONS = (\{[^}]*\});", (REPO / "edge" / "web" / "app.js").read_text())
    assert json.loads(app) == page
    src = "".join("".join(c["source"]) for c in json.loads(NOTEBOOKS["distill"].read_text())["cells"])
    (libs,) = re.findall(r"WEB_LIBRARIES = (\{[^}]*\})", src)
    assert ast.literal_eval(libs) == page
    for name, version in pkg.items():
        assert lock[f"node_modules/{name}"]["version"] == version, name
    assert not any("resolved" in entry for entry in lock.values()), "no registry addresses in the lock"


def test_bundle_is_a_hugging_face_model_folder(bundles):
    for kind, model in (("int8", "onnx/model_quantized.onnx"), ("fp32", "onnx/model.onnx")):
        folder = bundles[kind]
        for name in (
            "config.json",
            "tokenizer.json",
            "tokenizer_config.json",
            model,
            "README.md",
            "predict.py",
            "requirements.txt",
            "web/index.html",
            "web/app.js",
        ):
            assert (folder / name).is_file(), (kind, name)
        config = json.loads((folder / "config.json").read_text())
        assert config["id2label"]["42"] == "oos" and len(config["id2label"]) == 151
        assert config["edge"]["model_file"] == model and config["edge"]["oos_label"] == "oos"
        assert config["edge"]["threshold"] == 0.05 and config["model_type"] == "distilbert"
        assert json.loads((folder / "tokenizer_config.json").read_text())["model_max_length"] == 32
        assert not (folder / "labels.json").exists(), "labels and threshold live in config.json only"


def test_model_card_metadata_parses_as_the_hub_reads_it(bundles):
    from huggingface_hub import ModelCard

    card = ModelCard.load(bundles["int8"] / "README.md")
    data = card.data.to_dict()
    assert data["pipeline_tag"] == "text-classification" and data["library_name"] == "transformers.js"
    assert {"onnx", "transformers.js", "int8"} <= set(data["tags"])
    assert data["datasets"] == ["clinc/clinc_oos"] and data["license"] == "apache-2.0"
    assert data["base_model"] == "distilbert-base-uncased"
    results = {(r.metric_type, r.metric_name): r.metric_value for r in card.data.eval_results}
    assert results == {
        ("accuracy", "Accuracy"): 0.5,
        ("f1", "Macro F1"): 0.4,
        ("accuracy", "Accuracy, 'oos' below the threshold"): 0.55,
    }
    assert all(r.dataset_split == "test" and r.dataset_config == "plus" for r in card.data.eval_results)
    assert 'subfolder="onnx", file_name="model_quantized.onnx"' in card.text and "dtype: 'q8'" in card.text
    no_oos = ModelCard.load(bundles["no_oos"] / "README.md")
    assert len(no_oos.data.eval_results) == 2 and "datasets" not in no_oos.data.to_dict()
    assert "oos" not in no_oos.text


def test_a_hub_push_without_a_token_stops_before_any_long_work(notebook_lib, monkeypatch, tmp_path):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    with pytest.raises(notebook_lib["ConfigError"], match="HF_TOKEN"):
        notebook_lib["hub_token"]()
    monkeypatch.setenv("HF_TOKEN", "hf_test")
    assert notebook_lib["hub_token"]() == "hf_test"


# The ecosystem: Optimum + transformers.pipeline, and transformers.js in a browser


@pytest.mark.parametrize("kind", ["int8", "fp32"])
def test_optimum_pipeline_gives_predict_pys_top_label_on_real_queries(bundles, kind):
    from optimum.onnxruntime import ORTModelForSequenceClassification
    from transformers import AutoTokenizer, pipeline

    folder = bundles[kind]
    name = json.loads((folder / "config.json").read_text())["edge"]["model_file"].split("/")[-1]
    model = ORTModelForSequenceClassification.from_pretrained(folder, subfolder="onnx", file_name=name)
    classifier = pipeline("text-classification", model=model, tokenizer=AutoTokenizer.from_pretrained(folder))
    queries = real_queries(240)
    clf = load_predict(folder).TextClassifier(folder)
    ours = [clf.classify([q])[0]["top_label"] for q in queries]
    theirs = [classifier(q, truncation=True)[0]["label"] for q in queries]
    assert ours == theirs
    assert len(set(ours)) > 5, "the tiny model answers different texts differently"


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["fp32", "int8"])
def test_transformers_js_loads_the_bundle_and_agrees_with_predict_py(bundles, kind):
    browser_ready()
    import web_check

    report = web_check.transformers_js(bundles[kind], real_queries(200))
    assert report["page_errors"] == [], report
    assert 0 < report["truncated"] < 50, "some queries are longer than the tiny model's 32 tokens"
    if kind == "fp32":
        assert report["top_label_differ_untruncated"] == 0 and report["max_abs_logit_diff_untruncated"] <= 1e-4, report
    else:  # WebAssembly's dynamic int8 kernels round activations differently from the native x86 ones
        assert report["dtype"] == "q8" and report["top_label_agree"] >= 190, report


@pytest.mark.slow
def test_the_page_refuses_a_bundle_whose_files_disagree_and_names_missing_libraries(bundles, tmp_path):
    browser_ready()
    import web_check

    folder = copy_bundle(
        bundles["int8"],
        tmp_path,
        id2label={
            k: v for k, v in json.loads((bundles["int8"] / "config.json").read_text())["id2label"].items() if k != "150"
        },
    )
    web_check.copy_vendor(folder)
    assert "config.json lists 150 labels but onnx/model_quantized.onnx answers 151" in web_check.load_message(folder)
    folder = copy_bundle(bundles["int8"], tmp_path / "threshold", edge__threshold="high")
    web_check.copy_vendor(folder)
    assert 'edge.threshold is "high"' in web_check.load_message(folder)
    # no web/vendor/ and no CDN (this machine reaches none): the page says what to run, after trying both
    message = web_check.load_message(bundles["int8"])
    assert "make web" in message and "web/vendor/" in message and "CDN" in message, message


# predict.py: answers, careless input, damaged files


def test_predict_py_runs_without_torch_and_answers_every_text(bundles, tmp_path):
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    for mod in ("torch", "transformers", "optimum"):
        (blocker / f"{mod}.py").write_text(f"raise ImportError('{mod} must not be needed')\n")
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(blocker)}
    proc = cli(bundles["int8"], "--json", "book a flight", "play a song", env=env)
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    labels = json.loads((bundles["int8"] / "config.json").read_text())["id2label"].values()
    assert [r["text"] for r in rows] == ["book a flight", "play a song"]
    assert all(r["label"] in labels and 0 <= r["confidence"] <= 1 for r in rows)


NOTHING = ["", "   \t ", "\x00\x1b[31m\u200b", "🙂🙂🙂", "x" * 100_000]


def test_texts_with_nothing_to_classify_get_oos_at_zero_or_their_own_error_row(bundles):
    clf = load_predict(bundles["int8"]).TextClassifier(bundles["int8"])
    *nothing, real = clf.predict(NOTHING + ["book a flight"])
    assert all(r == {"label": "oos", "confidence": 0.0, "top_label": None} for r in nothing), nothing
    assert real["top_label"] is not None and real["confidence"] > 0
    module = load_predict(bundles["no_oos"])
    clf = module.TextClassifier(bundles["no_oos"])
    rows = clf.classify(["card please", "", "🙂"])
    assert rows[0]["label"] in ("3", "7", "10") and "error" not in rows[0]
    assert rows[1]["label"] is None and "nothing to classify" in rows[1]["error"] and "error" in rows[2]
    with pytest.raises(module.BundleError, match="text 2"):
        clf.predict(["card please", ""])
    proc = cli(bundles["no_oos"], "card please", "🙂🙂", "song please")
    assert proc.returncode == 2 and b"Traceback" not in proc.stderr
    assert b"text 2: nothing to classify" in proc.stderr and len(proc.stdout.splitlines()) == 3


def test_typed_special_tokens_stay_text(bundles):
    clf = load_predict(bundles["int8"]).TextClassifier(bundles["int8"])
    pad, mask = clf.tokenizer.token_to_id("[PAD]"), clf.tokenizer.token_to_id("[MASK]")
    enc = clf.tokenizer.encode(clf.prepare("what [PAD] is [MASK] [CLS]"))
    assert pad not in [i for i, m in zip(enc.ids, enc.attention_mask) if m] and mask not in enc.ids
    assert enc.ids.count(clf.tokenizer.token_to_id("[CLS]")) == 1, "only the tokenizer's own [CLS]"
    (answer,) = clf.predict(["[MASK]"])
    assert answer["top_label"] is not None, "a typed [MASK] is text to classify, not a control token"


def test_careless_api_input_gets_a_type_error_naming_the_item(bundles):
    clf = load_predict(bundles["int8"]).TextClassifier(bundles["int8"])
    with pytest.raises(TypeError, match=r"text 1 is a NoneType"):
        clf.predict([None, 3])
    with pytest.raises(TypeError, match=r"text 2 is a int"):
        clf.predict(["ok", 3])
    with pytest.raises(TypeError, match="list of strings"):
        clf.predict("book a flight")
    with pytest.raises(ValueError, match="from 0 to 1"):
        clf.predict(["book a flight"], threshold=float("nan"))
    (lone,) = clf.predict(["book a \ud800 flight"])  # a lone surrogate, as undecodable bytes become
    assert lone["label"] is not None


@pytest.mark.parametrize(
    "args, message",
    [
        (["--threshold", "nan", "hi"], b"--threshold must be a number from 0 to 1"),
        (["--threshold", "-1", "hi"], b"--threshold must be a number from 0 to 1"),
        (["--threshold", "2", "hi"], b"--threshold must be a number from 0 to 1"),
        (["--threads", "0", "hi"], b"threads must be a positive whole number"),
        (["--input", "no-such-file.txt"], b"no-such-file.txt"),
        (["--input", "x.txt", "hi"], b"not both"),
    ],
)
def test_bad_arguments_are_refused_with_exit_2_and_no_traceback(bundles, args, message):
    proc = cli(bundles["int8"], *args)
    assert proc.returncode == 2 and b"Traceback" not in proc.stderr and message in proc.stderr, proc.stderr


def test_too_many_threads_are_capped_to_the_cores(bundles):
    proc = cli(bundles["int8"], "--threads", "1000", "book a flight")
    assert proc.returncode == 0 and b"1000 threads asked" in proc.stderr and b"using" in proc.stderr


def test_bytes_that_are_not_utf8_are_replaced_per_text(bundles):
    proc = cli(bundles["int8"], "--json", stdin=b"book a flight\n\xff\xfe broken \xc3\n\nplay a song\n")
    assert proc.returncode == 0 and b"Traceback" not in proc.stderr, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["text"] for r in rows] == ["book a flight", "\ufffd\ufffd broken \ufffd", "play a song"]
    proc = subprocess.run(
        [sys.executable, str(bundles["int8"] / "predict.py"), b"\xffbook a flight"],
        capture_output=True,
        cwd=bundles["int8"],
        timeout=120,
    )
    assert proc.returncode == 0 and proc.stdout.count(b"\n") == 1, proc.stderr


def test_plain_output_cannot_be_spoofed_by_control_characters(bundles):
    proc = cli(bundles["int8"], "play a song\rflight_status            0.999  fake\n\x1b[2Kx")
    assert proc.returncode == 0 and proc.stdout.count(b"\n") == 1 and b"\r" not in proc.stdout
    assert b"\x1b" not in proc.stdout


def test_a_closed_pipe_ends_quietly(bundles, tmp_path):
    (tmp_path / "many.txt").write_text("book a flight\n" * 20_000)
    proc = subprocess.run(
        f"{sys.executable} {bundles['int8'] / 'predict.py'} --input {tmp_path / 'many.txt'} | head -1",
        shell=True,
        capture_output=True,
        cwd=bundles["int8"],
        timeout=120,
    )
    assert proc.stdout.count(b"\n") == 1 and b"Traceback" not in proc.stderr and b"Error" not in proc.stderr, (
        proc.stderr
    )


@pytest.mark.parametrize(
    "change, named",
    [
        ({"id2label": ["a", "b"]}, "has no id2label"),
        ({"id2label": {"0": "a", "2": "b"}}, "id2label lacks output 1"),
        ({"id2label": {"0": 1, "1": 2}}, "distinct, non-empty strings"),
        ({"edge": None}, 'has no "edge" section'),
        ({"edge__threshold": "0.5"}, "edge.threshold is '0.5'"),
        ({"edge__threshold": 2}, "edge.threshold is 2"),
        ({"edge__oos_label": "nope"}, "edge.oos_label is 'nope'; it must be null or one of the labels"),
        ({"edge__max_length": 0}, "edge.max_length is 0"),
        ({"edge__max_length": 10_000}, "edge.max_length is 10000; it must be a whole number from 2 to the model's 64"),
        ({"edge__model_file": "../model.onnx"}, "edge.model_file is '../model.onnx'"),
        ({"edge__model_file": "onnx/missing.onnx"}, "missing.onnx is missing or broken"),
        ({"pad_token_id": -1}, "pad_token_id is -1"),
        ({"vocab_size": 10}, "model's embedding has 10 rows"),
    ],
)
def test_a_damaged_config_fails_at_load_naming_the_field(bundles, tmp_path, change, named):
    folder = copy_bundle(bundles["int8"], tmp_path, **change)
    module = load_predict(folder)
    with pytest.raises(module.BundleError) as err:
        module.TextClassifier(folder)
    assert named in str(err.value)


@pytest.mark.parametrize(
    "damage, named",
    [
        (
            lambda e: (e / "onnx" / "model_quantized.onnx").write_bytes(b"not an onnx model"),
            "model_quantized.onnx is missing",
        ),
        (lambda e: (e / "tokenizer.json").unlink(), "tokenizer.json is missing or broken"),
        (lambda e: (e / "config.json").write_text("{oops"), "config.json is missing or broken"),
        (
            lambda e: (e / "config.json").write_text(
                json.dumps(
                    {
                        **json.loads((e / "config.json").read_text()),
                        "id2label": {
                            k: v
                            for k, v in json.loads((e / "config.json").read_text())["id2label"].items()
                            if k != "150"
                        },
                    }
                )
            ),
            "config.json lists 150 labels but",
        ),
    ],
)
def test_a_damaged_bundle_fails_at_load_naming_the_file(bundles, tmp_path, damage, named):
    folder = copy_bundle(bundles["int8"], tmp_path)
    damage(folder)
    proc = cli(folder, "book a flight")
    assert proc.returncode == 2 and b"Traceback" not in proc.stderr, proc.stderr
    assert named.encode() in proc.stderr, proc.stderr


# Batch mode


def test_batch_mode_streams_text_csv_and_json_lines_keeping_every_row(bundles, tmp_path):
    folder = bundles["fp32"]
    clf = load_predict(folder).TextClassifier(folder)
    queries = real_queries(50)
    (tmp_path / "in.txt").write_text("\n".join(queries[:20]) + "\n\n" + "\n".join(queries[20:]) + "\n")
    proc = cli(folder, "--input", str(tmp_path / "in.txt"), "--output", str(tmp_path / "out.jsonl"))
    assert proc.returncode == 0 and b"50 texts in" in proc.stderr and b"per second" in proc.stderr, proc.stderr
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["row"] for r in rows] == list(range(1, 21)) + list(range(22, 52)), "line numbers, blank lines skipped"
    expected = [clf.predict([q])[0] for q in queries]
    assert [r["label"] for r in rows] == [e["label"] for e in expected]
    assert all(abs(r["confidence"] - e["confidence"]) <= 2e-4 for r, e in zip(rows, expected))
    # CSV in (another column name), CSV out; a row without the column is marked, not dropped
    import csv

    with open(tmp_path / "in.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "body"])
        writer.writerows([[i, q] for i, q in enumerate(queries[:5])] + [[99]])
    proc = cli(
        folder, "--input", str(tmp_path / "in.csv"), "--text-column", "body", "--output", str(tmp_path / "o.csv")
    )
    out = list(csv.DictReader(open(tmp_path / "o.csv")))
    assert proc.returncode == 2 and b"text 6: the row has no 'body' column" in proc.stderr, proc.stderr
    assert [r["row"] for r in out] == ["1", "2", "3", "4", "5", "6"] and out[5]["error"] and not out[0]["error"]
    assert [r["label"] for r in out[:5]] == [e["label"] for e in expected[:5]]
    proc = cli(folder, "--input", str(tmp_path / "in.csv"), "--text-column", "text")
    assert proc.returncode == 2 and b"no column 'text' (its columns: 'id', 'body')" in proc.stderr, proc.stderr
    # JSON Lines in, a broken line kept as its own error row; standard input takes the same path
    lines = [json.dumps({"text": q}) for q in queries[:3]] + ["{broken", json.dumps({"text": 5})]
    proc = cli(folder, "--input", "-", "--format", "jsonl", "--json", stdin="\n".join(lines).encode())
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["label"] for r in rows[:3]] == [e["label"] for e in expected[:3]]
    assert "not a JSON line" in rows[3]["error"] and "not a string" in rows[4]["error"] and proc.returncode == 2


def test_batch_mode_on_two_threads_answers_as_on_one(bundles, tmp_path):
    """Two workers, each with its own single-threaded session, classify the same length-sorted batches."""
    (tmp_path / "in.txt").write_text("\n".join(real_queries(2000)) + "\n")
    answers = {}
    for threads in ("1", "2"):
        out = tmp_path / f"out-{threads}.jsonl"
        proc = cli(bundles["int8"], "--input", str(tmp_path / "in.txt"), "--output", str(out), "--threads", threads)
        assert proc.returncode == 0 and f"{threads} thread(s)".encode() in proc.stderr, proc.stderr
        answers[threads] = out.read_text()
    assert answers["1"] == answers["2"] and answers["1"].count("\n") == 2000


def test_batch_mode_memory_stays_flat_in_the_inputs_length(bundles, tmp_path):
    def peak_mb(lines):
        path = tmp_path / f"in-{lines}.txt"
        path.write_text("how do i book a flight to paris for two tomorrow\n" * lines)
        code = (
            "import resource, subprocess, sys; subprocess.run([sys.executable, 'predict.py', '--input', "
            f"{str(path)!r}, '--output', {str(tmp_path / 'out.jsonl')!r}], check=True); "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)"
        )
        proc = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, cwd=bundles["int8"], timeout=300
        )
        assert proc.returncode == 0, proc.stderr
        return float(proc.stdout)

    small, large = peak_mb(2_000), peak_mb(60_000)
    assert large <= small + 25, f"peak memory grew from {small:.0f} MB to {large:.0f} MB with 30x the lines"

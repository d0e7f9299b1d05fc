"""Section 14's baselines: each one learns the tiny task and is measured like a stage, end to end; a baseline that
cannot be built (a missing library, an error) is a printed, skipped row, never the end of the run."""

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import tiny
from nbcode import namespace

NAMES = ["tfidf_lr", "fasttext", "model2vec_lr", "static_student"]


@pytest.fixture(scope="module")
def nb():
    return namespace("distill", fp16=False, max_length=32)


@pytest.fixture(scope="module")
def task(assets):
    labels = tiny.hub_labels()
    rows = json.loads(assets["data"].read_text())

    def split(*keys):
        pairs = [pair for key in keys for pair in rows[key]]
        return [t for t, _ in pairs], np.array([labels.index(label) for _, label in pairs])

    return labels, split("train", "oos_train"), split("val", "oos_val"), split("test", "oos_test")


@pytest.fixture(scope="module")
def inputs(nb, assets, task, tmp_path_factory):
    labels, (texts, y), _, _ = task
    logits = np.random.default_rng(0).normal(size=(len(texts), len(labels))).astype(np.float32)
    logits[np.arange(len(y)), y] += 6  # a teacher that knows the training labels
    return nb["BaselineInputs"](
        texts=texts,
        y=y,
        n_labels=len(labels),
        teacher_logits=logits,
        kd={"kd_alpha": 0.5, "kd_temperature": 2.0},
        static_base=str(assets["base"]),
        static_dims=16,
        folder=tmp_path_factory.mktemp("baselines"),
        seed=0,
        static_steps=300,  # the notebook's 2,000 take 20-40 s on 2 cores
    )


@pytest.mark.parametrize("name", NAMES)
def test_each_baseline_learns_the_tiny_task_and_is_measured_end_to_end(nb, task, inputs, name):
    labels, (texts, y), (val_texts, val_y), (test_texts, test_y) = task
    model = nb["build_baseline"](name, inputs)
    scores = model.predict(texts[:5])
    assert scores.shape == (5, len(labels)) and scores.dtype == np.float32 and np.isfinite(scores).all()
    train_accuracy = (model.predict(texts).argmax(-1) == y).mean()
    assert train_accuracy > 0.3, train_accuracy  # chance: 1 in 151
    bench = SimpleNamespace(  # what measure_baseline uses of the notebook's Benchmark
        queries=test_texts[:8],
        warmup=2,
        batch=4,
        threads=1,
        val_y=val_y,
        test_y=test_y,
        oos_id=labels.index("oos"),
        logits={},
        rows={},
        report=lambda row, seconds: None,
    )
    row = nb["measure_baseline"](model, bench, val_texts, test_texts, 0.5)
    assert row["stage"] == name and row["baseline"] is True and row["latency_scope"] == "end to end"
    assert row["latency_e2e_ms"] == row["latency_mean_ms"] > 0 and row["latency_p95_ms"] >= row["latency_p50_ms"]
    assert row["size_mb"] > 0 and row["params"] > 0 and row["train_s"] >= 0 and row["threads"] == 1
    val_logits, test_logits = bench.logits[name]
    assert test_logits.shape == (len(test_texts), len(labels)) and bench.rows[name] is row
    assert row["accuracy"] == pytest.approx((test_logits.argmax(-1) == test_y).mean())
    assert row["val_accuracy"] == pytest.approx((val_logits.argmax(-1) == val_y).mean())
    assert 0 <= row["threshold"] <= 1 and 0 <= row["accuracy_thr"] <= 1  # its own out-of-scope threshold
    if name in ("model2vec_lr", "static_student"):  # the static embeddings count in its size, parameters and time
        assert any(p.name == "model.safetensors" for p in model.files) and model.train_s >= inputs.static["seconds"]


def test_the_static_student_learns_from_the_teacher_not_only_the_labels(nb, task, inputs):
    """With alpha 0 only the teacher teaches: a teacher that says 'label 0' for everything is what it learns."""
    labels, (texts, y), _, _ = task
    teacher = np.zeros((len(texts), len(labels)), dtype=np.float32)
    teacher[:, 0] = 10
    static = inputs.model2vec()
    model = nb["train_static_student"](
        static, texts, y, teacher, inputs.folder, {"kd_alpha": 0.0, "kd_temperature": 1.0}, 0, steps=300
    )
    assert (model.predict(texts).argmax(-1) == 0).mean() > 0.9  # the labels would give 3 in 456


def test_a_baseline_that_cannot_be_built_or_measured_is_a_printed_skipped_row(nb, capsys):
    def build(name):
        if name == "fasttext":
            raise ModuleNotFoundError("No module named 'fasttext'", name="fasttext")
        if name == "model2vec_lr":
            raise RuntimeError("the base model has no vocabulary")
        return name

    def measure(model):
        if model == "static_student":
            raise ValueError("answers are not finite")
        measured.append(model)

    measured = []
    libraries = {"fasttext": ("fasttext", "fasttext-numpy2"), "model2vec_lr": ("model2vec", "model2vec[distill]")}
    names = ["tfidf_lr", "fasttext", "model2vec_lr", "static_student"]
    skipped = nb["run_baselines"](names, build, measure, libraries)
    assert measured == ["tfidf_lr"]
    assert skipped == {
        "fasttext": "fasttext is not installed (pip install 'fasttext-numpy2')",
        "model2vec_lr": "RuntimeError: the base model has no vocabulary",
        "static_student": "ValueError: answers are not finite",
    }
    out = capsys.readouterr().out
    assert "fasttext: skipped, fasttext is not installed (pip install 'fasttext-numpy2')" in out
    assert "model2vec_lr: skipped, RuntimeError" in out


def test_the_plot_draws_baselines_as_diamonds_and_the_edge_model_end_to_end_as_a_star(nb):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.markers import MarkerStyle

    metrics = pd.DataFrame(
        [
            {"stage": "teacher", "accuracy": 0.9, "latency_mean_ms": 10.0, "size_mb": 80.0, "final": False},
            {"stage": "ort_int8", "accuracy": 0.88, "latency_mean_ms": 1.0, "size_mb": 20.0, "final": True},
            {"stage": "tfidf_lr", "accuracy": 0.85, "latency_mean_ms": 2.0, "size_mb": 30.0, "final": False},
        ]
    ).assign(baseline=[False, False, True])
    fig, ax = nb["tradeoff_plot"](metrics, ("ort_int8", 1.3, 0.88), 1, "tiny")

    def shape(marker):
        style = MarkerStyle(marker)
        return style.get_path().transformed(style.get_transform()).vertices

    drawn = [c.get_paths()[0].vertices for c in ax.collections]
    assert len(drawn) == 4  # three rows and the edge model end to end
    assert np.allclose(drawn[0], shape("o")) and np.allclose(drawn[1], shape("o"))
    assert np.allclose(drawn[2], shape("D")) and np.allclose(drawn[3], shape("*"))
    assert ax.collections[3].get_offsets()[0].tolist() == [1.3, 88.0]
    assert "baseline" in ax.get_legend().get_texts()[2].get_text()


def test_model2vec_distils_the_teachers_base_where_it_exists_here_else_the_teacher(nb, assets, tmp_path):
    source = nb["static_source"]
    assert source("bert-base-uncased", "teacher") == "bert-base-uncased"  # a Hub id
    assert source(str(assets["base"]), "teacher") == str(assets["base"])
    assert source(str(tmp_path / "gone"), "teacher") == "teacher"  # another machine's folder
    assert source(None, "teacher") == "teacher"


def drawn_labels(fig, ax):
    """{text: its box in pixels} of the plot's labels, and each collection's (centre, reach in pixels), measured
    on what matplotlib drew (a marker's reach from its path: a diamond's corners, a circle's radius)."""
    from matplotlib.text import Text

    renderer = fig.canvas.get_renderer()
    boxes = {}
    for note in ax.texts:
        note.update_positions(renderer)
        boxes[note.get_text()] = Text.get_window_extent(note, renderer)
    bubbles = []
    for c in ax.collections:
        path = c.get_paths()[0]
        reach = np.hypot(*path.vertices.T).max() * np.sqrt(c.get_sizes()[0]) * fig.dpi / 72
        bubbles.append((ax.transData.transform(c.get_offsets()[0]), reach))
    return boxes, bubbles


def gap(box, centre, reach):
    dx = max(box.x0 - centre[0], centre[0] - box.x1, 0)
    dy = max(box.y0 - centre[1], centre[1] - box.y1, 0)
    return np.hypot(dx, dy) - reach


@pytest.mark.parametrize("crowd", [14, 1])
def test_the_plot_labels_sit_clear_of_each_other_and_of_other_bubbles_and_name_the_final_model(nb, crowd):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(0)
    n = crowd  # 14: most points within a factor of 3 in latency and 1 pt in accuracy, as in a real run
    final = n // 3
    metrics = pd.DataFrame(
        {
            "stage": [f"stage_{i}" for i in range(n)],
            "accuracy": 0.86 + rng.uniform(0, 0.01, n),
            "latency_mean_ms": rng.uniform(0.8, 2.5, n),
            "size_mb": rng.uniform(5, 90, n),
            "final": [i == final for i in range(n)],
            "baseline": [i % 2 == 1 for i in range(n)],  # half of them diamonds
        }
    )
    fig, ax = nb["tradeoff_plot"](metrics, (f"stage_{final}", 1.0, metrics["accuracy"][final]), 1, "crowd")
    boxes, bubbles = drawn_labels(fig, ax)
    final_label = f"stage_{final} (final)"
    assert final_label in boxes  # the final model is always named, in bold
    assert [t.get_fontweight() for t in ax.texts if t.get_text() == final_label] == ["bold"]
    inside = ax.get_window_extent()
    for name, box in boxes.items():
        assert inside.contains(box.x0, box.y0) and inside.contains(box.x1, box.y1), name
        for other, box2 in boxes.items():
            assert other == name or not box.overlaps(box2), (name, other)
        own = n if name == "predict.py" else int(name.split()[0].split("_")[1])
        assert gap(box, *bubbles[own]) > -1, name  # beside its own bubble, not on it (a diamond reaches further)
        if name != final_label:  # only the final's may cover other bubbles
            covered = [j for j, b in enumerate(bubbles) if j != own and gap(box, *b) < 0]
            assert not covered, (name, covered)
    assert len(boxes) >= min(n, n // 2 + 1)  # most points get a label; the legend names them all
    assert len(ax.get_legend().get_texts()) == n + 1
    plt.close(fig)


def test_the_plot_survives_a_row_without_numbers(nb):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = pd.DataFrame(
        [
            {"stage": "teacher", "accuracy": 0.9, "latency_mean_ms": 10.0, "size_mb": 80.0, "final": False},
            {"stage": "ort_int8", "accuracy": 0.88, "latency_mean_ms": 1.0, "size_mb": 20.0, "final": True},
            {"stage": "broken", "accuracy": np.nan, "latency_mean_ms": np.nan, "size_mb": 0.0, "final": False},
        ]
    ).assign(baseline=False)
    fig, ax = nb["tradeoff_plot"](metrics, ("ort_int8", 1.3, 0.88), 1, "tiny")
    boxes, _ = drawn_labels(fig, ax)
    assert {"teacher", "ort_int8 (final)", "predict.py"} <= set(boxes)
    plt.close(fig)

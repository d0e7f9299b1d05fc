"""Benchmark arithmetic, sizes (external data included), the OOS threshold and ONNX export parity."""

import numpy as np
import onnx
import pytest
import torch
from nbcode import namespace
from onnx import TensorProto, helper, numpy_helper


@pytest.fixture(scope="module")
def nb(tiny_teacher):
    from transformers import AutoTokenizer

    return namespace("distill", fp16=False, max_length=32, tokenizer=AutoTokenizer.from_pretrained(tiny_teacher))


def test_latency_stats_in_milliseconds(nb):
    stats = nb["latency_stats"]([0.001, 0.002, 0.003, 0.004, 0.010])
    assert stats["latency_mean_ms"] == pytest.approx(4.0)
    assert stats["latency_p50_ms"] == pytest.approx(3.0)
    assert stats["latency_p95_ms"] == pytest.approx(8.8)  # linear interpolation between 4 and 10 ms
    assert stats["latency_std_ms"] == pytest.approx(np.std([1, 2, 3, 4, 10]))


def test_size_counts_external_data(nb, tmp_path):
    weight = numpy_helper.from_array(np.ones((256, 256), dtype=np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 256])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 256])],
        [weight],
    )
    model = helper.make_model(graph)
    inline, external = tmp_path / "inline.onnx", tmp_path / "external.onnx"
    onnx.save(model, str(inline))
    onnx.save(
        model,
        str(external),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="external.onnx.data",
        size_threshold=0,
    )
    assert external.stat().st_size < 10_000 < (tmp_path / "external.onnx.data").stat().st_size
    mib = 256 * 256 * 4 / 2**20
    assert nb["file_size_mb"]([inline]) == pytest.approx(mib, rel=0.01)
    assert nb["file_size_mb"]([external]) == pytest.approx(mib, rel=0.01)
    pt = tmp_path / "w.pt"
    pt.write_bytes(b"x" * 2**20)
    assert nb["file_size_mb"]([pt]) == 1.0


def test_threshold_turns_unsure_answers_into_oos(nb):
    logits = np.log(np.array([[0.9, 0.1] + [1e-9] * 149, [0.4, 0.35] + [0.25 / 149] * 149]))
    assert list(nb["apply_threshold"](logits, 0.5)) == [0, 42]
    assert list(nb["apply_threshold"](logits, 0.0)) == [0, 0]


def test_paired_gap_counts_the_queries_only_one_model_gets_right(nb):
    labels = np.zeros(1000, int)
    reference, other = labels.copy(), labels.copy()
    reference[:10], other[10:40] = 1, 1  # 10 queries only `other` gets right, 30 only `reference`
    gap = nb["paired_gap"](labels, reference, other)
    assert (gap["gap_pt"], gap["only_reference_right"], gap["only_other_right"], gap["queries"]) == (-2.0, 30, 10, 1000)
    assert gap["ci95_low_pt"] < -2.0 < gap["ci95_high_pt"] < 0
    assert nb["paired_gap"](labels, reference, other) == gap  # seeded: the same interval again
    named = nb["paired_gap"](labels, reference, other, names=("teacher", "stage"))
    assert (named["only_teacher_right"], named["only_stage_right"]) == (30, 10)
    same = nb["paired_gap"](labels, reference, reference)
    assert (same["gap_pt"], same["ci95_low_pt"], same["ci95_high_pt"], same["only_other_right"]) == (0, 0, 0, 0)


def test_paired_gap_interval_has_the_width_of_the_normal_approximation(nb):
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 151, 4000)
    reference = np.where(rng.random(4000) < 0.9, labels, (labels + 1) % 151)
    other = np.where(rng.random(4000) < 0.88, labels, (labels + 2) % 151)
    gap = nb["paired_gap"](labels, reference, other)
    diff = (other == labels).astype(float) - (reference == labels)
    half = 100 * 1.96 * diff.std() / np.sqrt(len(diff))  # about 1.4 pt here
    assert gap["gap_pt"] == pytest.approx(100 * diff.mean(), abs=0.005)
    assert (gap["ci95_high_pt"] - gap["ci95_low_pt"]) / 2 == pytest.approx(half, rel=0.1)
    assert gap["ci95_low_pt"] < gap["gap_pt"] < gap["ci95_high_pt"]


def test_paired_gap_is_paired_two_similar_models_get_a_narrow_interval(nb):
    # two models that answer alike except on 240 of 5,500 queries (as a student and its teacher do): the interval
    # follows those 240, far narrower than two independent samples of ~87 % accuracy would allow
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 151, 5500)
    reference = np.where(rng.random(5500) < 0.87, labels, (labels + 1) % 151)
    other = reference.copy()
    flip = rng.choice(5500, 240, replace=False)
    other[flip] = np.where(reference[flip] == labels[flip], (labels[flip] + 2) % 151, labels[flip])
    gap = nb["paired_gap"](labels, reference, other)
    diff = (other == labels).astype(float) - (reference == labels)
    p1, p2 = (reference == labels).mean(), (other == labels).mean()
    half = (gap["ci95_high_pt"] - gap["ci95_low_pt"]) / 2
    assert gap["only_reference_right"] + gap["only_other_right"] == 240
    assert half == pytest.approx(100 * 1.96 * diff.std() / np.sqrt(5500), rel=0.1)  # ~0.54 pt
    assert half < 0.6 * 100 * 1.96 * np.sqrt((p1 * (1 - p1) + p2 * (1 - p2)) / 5500)  # unpaired: ~1.3 pt


def test_paired_gap_agrees_with_scipys_paired_bootstrap(nb):
    # the notebook keeps its own 15-line resampler (seeded, memory-bounded, and the research records' intervals were
    # made with it); scipy's paired percentile bootstrap of the same accuracy difference gives the same interval
    from scipy.stats import bootstrap

    rng = np.random.default_rng(11)
    labels = rng.integers(0, 151, 5500)
    reference = np.where(rng.random(5500) < 0.87, labels, (labels + 1) % 151)
    other = np.where(rng.random(5500) < 0.86, labels, (labels + 3) % 151)
    gap = nb["paired_gap"](labels, reference, other)
    res = bootstrap(
        (reference, other, labels),
        lambda r, o, y, axis=-1: 100 * ((o == y).mean(axis) - (r == y).mean(axis)),
        paired=True,
        vectorized=True,
        n_resamples=2000,
        method="percentile",
        random_state=0,
    )
    assert gap["ci95_low_pt"] == pytest.approx(res.confidence_interval.low, abs=0.1)
    assert gap["ci95_high_pt"] == pytest.approx(res.confidence_interval.high, abs=0.1)


def test_paired_gap_needs_one_prediction_per_query_from_both_and_some_rounds(nb):
    with pytest.raises(ValueError, match="one prediction per query from both models"):
        nb["paired_gap"](np.zeros(5, int), np.zeros(5, int), np.zeros(4, int))
    with pytest.raises(ValueError, match="rounds=0; give at least 1"):
        nb["paired_gap"](np.zeros(5, int), np.zeros(5, int), np.zeros(5, int), rounds=0)


def top_probs(conf, top):
    """Probabilities over the 151 labels: `conf[i]` on label `top[i]`, the rest spread evenly."""
    conf = np.asarray(conf, dtype=float)
    probs = np.repeat(((1 - conf) / 150)[:, None], 151, axis=1)
    probs[np.arange(len(conf)), top] = conf
    return probs


def test_threshold_is_chosen_for_the_objective(nb):
    # in-scope queries are confident (p ~ 0.9), out-of-scope ones are not (p ~ 0.3)
    y = np.array([1] * 8 + [42] * 2)
    probs = top_probs([0.9] * 8 + [0.3] * 2, [1] * 10)
    thr = nb["choose_threshold"](np.log(probs), y, 0.5)
    assert 0.3 <= thr < 0.9
    assert nb["task_metrics"](y, nb["apply_threshold"](np.log(probs), thr), 42)["accuracy"] == 1.0


def test_threshold_grid_reaches_above_0_99(nb):
    # an over-confident model: in-scope answers at p 0.9995, out-of-scope ones at 0.993, both above a 0.01 grid
    # that stops at 0.99; only a cut between 0.993 and 0.9995 gets both groups right
    y = np.array([1] * 6 + [42] * 4)
    probs = top_probs([0.9995] * 6 + [0.993] * 4, [1] * 10)
    thr = nb["choose_threshold"](np.log(probs), y, 0.5)
    assert 0.993 < thr <= 0.9995
    assert nb["task_metrics"](y, nb["apply_threshold"](np.log(probs), thr), 42)["accuracy"] == 1.0
    # every answer already right (out-of-scope queries predicted `oos` outright): the lowest cut, 0, wins the tie
    probs = top_probs([0.9995] * 6 + [0.993] * 4, [1] * 6 + [42] * 4)
    assert nb["choose_threshold"](np.log(probs), y, 0.5) == 0.0


def test_onnx_export_matches_pytorch(nb, tiny_teacher, tmp_path):
    from optimum.onnxruntime import ORTModelForSequenceClassification
    from transformers import AutoModelForSequenceClassification

    teacher = AutoModelForSequenceClassification.from_pretrained(tiny_teacher)
    student = nb["student_from_teacher"](teacher, [0, 1]).eval()
    student.save_pretrained(tmp_path / "student")
    ORTModelForSequenceClassification.from_pretrained(tmp_path / "student", export=True).save_pretrained(
        tmp_path / "onnx"
    )
    ref = nb["pytorch_stage"]("distilled", student, [])
    ort_stage = nb["onnx_stage"]("ort_fp32", tmp_path / "onnx" / "model.onnx", 0, 1)
    texts = ["book a flight", "what is the weather like in paris tomorrow", "hi"]
    assert nb["check_parity"](ort_stage, ref, texts, 1e-4) <= 1e-4
    nb["STUDENT_DIR"] = tmp_path / "student"
    with pytest.raises(
        RuntimeError, match=r"ONNX parity failed for ort_fp32: max \|logit difference\| = .* > parity_tol"
    ):
        nb["check_parity"](ort_stage, ref, texts, -1.0)


def test_time_stage_uses_the_thread_count_and_restores_it(nb):
    seen = []
    stage = nb["Stage"]("probe", "pytorch", lambda batch: seen.append(torch.get_num_threads()) or np.zeros((1, 151)))
    before = torch.get_num_threads()
    row = nb["time_stage"](stage, ["a query", "another query", "third"], 1, 2, 1)
    assert set(seen) == {1} and torch.get_num_threads() == before
    assert row["threads"] == 1 and row["throughput_b32_qps"] > 0 and len(seen) == 1 + 3 + 1 + 2

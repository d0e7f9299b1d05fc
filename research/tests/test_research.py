"""The research scripts (kd_variants.py, kwfree_fold.py) behind research/experiments.md, on tiny offline data."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO / "tests"), str(REPO / "scripts"), str(REPO / "research")]
from conftest import assets, tiny_teacher  # noqa: E402,F401  (the product's fixtures: tiny data and teacher)


@pytest.fixture(scope="module")
def nb():
    """distill_quantize_ort.ipynb's own functions (cells tagged shared and lib)."""
    from kd_common import clinc_namespace

    return clinc_namespace(fp16=False)


@pytest.mark.slow  # trains students
def test_kd_variants_trains_a_variant_and_reports_validation_unless_asked_for_test(assets, tiny_teacher, tmp_path):
    script = [
        sys.executable,
        str(REPO / "research" / "kd_variants.py"),
        "--teacher",
        str(tiny_teacher),
        "--data-file",
        str(assets["data"]),
        "--max-length",
        "16",
    ]
    for loss in ("oosreg", "kl"):  # same seed: only the loss differs
        proc = subprocess.run(
            script
            + [
                "--loss",
                loss,
                "--alpha",
                "0.5",
                "--epochs",
                "2",
                "--label-epochs",
                "1",
                "--layers",
                "1",
                "--out",
                str(tmp_path / "runs" / loss),
                "--warmup-ratio",
                "0.1",
                "--layer-decay",
                "0.8",
                "--teacher-dropout-passes",
                "2",
            ],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=tmp_path,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
    logits = {loss: np.load(tmp_path / "runs" / loss / "logits.npz")["val"] for loss in ("oosreg", "kl")}
    assert not np.allclose(logits["oosreg"], logits["kl"]), "the swapped loss was not used"
    run = json.loads((tmp_path / "runs" / "oosreg" / "run.json").read_text())
    assert run["loss"] == "oosreg" and run["label_epochs"] == 1 and len(run["val_history"]) == 2
    assert (run["warmup_ratio"], run["layer_decay"], run["teacher_dropout_passes"]) == (0.1, 0.8, 2)
    assert not (tmp_path / "runs" / "oosreg" / "partial").exists()

    def report(*extra):
        proc = subprocess.run(
            script + ["--report", str(tmp_path / "runs"), *extra],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=tmp_path,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        return {r["run"]: r for r in map(json.loads, (l for l in proc.stdout.splitlines() if l.startswith("{")))}

    rows = report()
    assert sorted(rows) == ["kl", "oosreg", "teacher"]  # the teacher is scored beside the runs
    assert rows["oosreg"]["val_accuracy"] == max(run["val_history"])  # the best epoch's logits were kept
    assert not any(k.startswith("test_") for r in rows.values() for k in r)
    tested = report("--test", "--oos-match")
    data = json.loads(assets["data"].read_text())
    N_IN_SCOPE = {"val": len(data["val"]), "test": len(data["test"])}
    assert all(0 <= r["test_oos_auroc"] <= 1 for r in tested.values())
    for r in tested.values():  # the keyword split covers every in-scope query once
        for split in ("val", "test"):
            n, n_free = N_IN_SCOPE[split], r[f"{split}_n_kwfree"]  # right answers, from 4-decimal rates
            right = [
                round(r[f"{split}_in_scope_{k}"] * m)
                for k, m in (("accuracy", n), ("kwfree", n_free), ("kw", n - n_free))
            ]
            assert 0 < n_free < n and right[0] == right[1] + right[2]
    for r in (tested["kl"], tested["oosreg"]):  # each run's gap to the teacher: accuracies apart, inside its interval
        gap = round(100 * (r["test_accuracy"] - tested["teacher"]["test_accuracy"]), 2)
        assert (
            abs(r["test_gap_pt"] - gap) <= 0.02 and r["test_gap_ci95"][0] <= r["test_gap_pt"] <= r["test_gap_ci95"][1]
        )
    assert not any("oos_match" in k for k in tested["teacher"])
    from kd_variants import bias_at_teacher_oos_recall, match_oos_bias, with_oos_bias
    from tiny import hub_labels

    names = hub_labels()
    y_test = np.array([names.index(i) for _, i in data["test"] + data["oos_test"]])
    saved = {run: np.load(tmp_path / "runs" / run / "logits.npz") for run in ("kl", "oosreg", "teacher")}
    assert round(float((saved["teacher"]["test"].argmax(-1) == y_test).mean()), 4) == tested["teacher"]["test_accuracy"]
    for run in ("kl", "oosreg"):  # --oos-match: the shift is fitted on validation, its test gap is its accuracy's
        r, z, zt = tested[run], saved[run], saved["teacher"]
        assert r["oos_match_bias"] == round(match_oos_bias(z["val"], zt["val"]), 4)
        m = r["test_oos_match"]
        assert m["accuracy"] == round(
            float((with_oos_bias(z["test"], match_oos_bias(z["val"], zt["val"])).argmax(-1) == y_test).mean()), 4
        )
        gap = round(100 * (m["accuracy"] - tested["teacher"]["test_accuracy"]), 2)
        assert abs(m["gap_pt"] - gap) <= 0.02 and m["gap_ci95"][0] <= m["gap_pt"] <= m["gap_ci95"][1]
        assert set(r["val_oos_match_delta_pt"]) == {"accuracy", "in_scope_accuracy", "oos_recall", "test_mix_accuracy"}
        at = with_oos_bias(z["test"], bias_at_teacher_oos_recall(z["test"], zt["test"], y_test)).argmax(-1)
        assert r["test_accuracy_at_teacher_oos_recall"] == round(float((at == y_test).mean()), 4)
    proc = subprocess.run(
        script + ["--report", str(tmp_path / "runs"), "--test", "--pool"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode != 0 and "runs 'kl' and 'oosreg' differ in {'loss': ('kl', 'oosreg')" in proc.stderr
    shutil.move(tmp_path / "runs" / "oosreg", tmp_path / "oosreg")  # the kl run and a copy of it as another seed
    shutil.copytree(tmp_path / "runs" / "kl", tmp_path / "runs" / "kl_copy")
    copy = json.loads((tmp_path / "runs" / "kl_copy" / "run.json").read_text())
    (tmp_path / "runs" / "kl_copy" / "run.json").write_text(json.dumps({**copy, "seed": 7, "out": "elsewhere"}))
    pooled_rows = report("--test", "--pool", "--oos-match")
    pooled = pooled_rows["pooled"]
    assert pooled["of"] == ["kl", "kl_copy"] and pooled["gap_pt"] == tested["kl"]["test_gap_pt"]
    assert pooled_rows["pooled_oos_match"]["gap_pt"] == tested["kl"]["test_oos_match"]["gap_pt"]
    at_recall = pooled_rows["pooled_at_teacher_oos_recall"]
    assert (
        at_recall["of"] == ["kl", "kl_copy"]
        and abs(
            at_recall["gap_pt"]
            - round(100 * (tested["kl"]["test_accuracy_at_teacher_oos_recall"] - tested["teacher"]["test_accuracy"]), 2)
        )
        <= 0.02
    )
    assert [pooled["ci95_low_pt"], pooled["ci95_high_pt"]] == tested["kl"]["test_gap_ci95"] and pooled[
        "seed_sd_pt"
    ] == 0.0
    proc = subprocess.run(
        script + ["--report", str(tmp_path / "runs"), "--pool"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode != 0 and "--pool goes with --report FOLDER --test" in proc.stderr
    proc = subprocess.run(
        script + ["--oos-match", "--out", str(tmp_path / "runs" / "x")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == 2 and "--oos-match goes with --report FOLDER" in proc.stderr
    assert not (tmp_path / "runs" / "x").exists()
    proc = subprocess.run(
        script + ["--report", str(tmp_path / "runs"), "--limit", "50"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode != 0 and "with the --data-file and --limit it was trained with" in proc.stderr


def test_kd_variants_group_by_length_reaches_the_trainer(assets, tiny_teacher, tmp_path, monkeypatch):
    import kd_variants
    import torch

    threads = torch.get_num_threads()
    made = []
    real = kd_variants.training_args
    monkeypatch.setattr(kd_variants, "training_args", lambda *a: made.append(real(*a)) or made[-1])
    assert (
        kd_variants.main(
            [
                "--teacher",
                str(tiny_teacher),
                "--data-file",
                str(assets["data"]),
                "--max-length",
                "16",
                "--epochs",
                "1",
                "--layers",
                "1",
                "--group-by-length",
                "--out",
                str(tmp_path / "g"),
            ]
        )
        == 0
    )
    torch.set_num_threads(threads)  # main() set its --threads for this process
    assert len(made) == 1 and made[0].group_by_length  # and the length-grouped sampler ran on these columns


def test_kd_variants_training_args_follow_the_options(tmp_path):
    import argparse

    from kd_variants import training_args

    base = dict(epochs=3, lr=1e-3, warmup_ratio=0.1, batch_size=8, seed=7)
    for grouped in (False, True):
        targs = training_args(argparse.Namespace(**base, group_by_length=grouped), tmp_path)
        assert targs.group_by_length is grouped
        assert (
            targs.num_train_epochs,
            targs.learning_rate,
            targs.warmup_ratio,
            targs.per_device_train_batch_size,
            targs.seed,
        ) == (3, 1e-3, 0.1, 8, 7)


def test_kd_variants_set_dropout_reaches_every_dropout(tiny_teacher):
    import torch
    from kd_variants import set_dropout
    from nbcode import namespace
    from transformers import AutoModelForSequenceClassification

    ns = namespace("distill", fp16=False)
    teacher = AutoModelForSequenceClassification.from_pretrained(tiny_teacher)
    student = set_dropout(ns["student_from_teacher"](teacher, [0, 1]), 0.3)
    rates = [m.p for m in student.modules() if isinstance(m, torch.nn.Dropout)]
    assert len(rates) >= 5 and set(rates) == {0.3}
    assert (student.config.dropout, student.config.attention_dropout, student.config.seq_classif_dropout) == (0.3,) * 3
    sdpa = [m.dropout_prob for m in student.modules() if hasattr(m, "dropout_prob")]  # the attention in use
    assert len(sdpa) == 2 and set(sdpa) == {0.3}
    student.train()
    x = torch.tensor([[2, 5, 6, 7, 3]])
    assert not torch.equal(student(input_ids=x).logits, student(input_ids=x).logits)  # dropout is on


def test_kd_variants_needs_an_epoch_with_the_teacher(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "research" / "kd_variants.py"),
            "--epochs",
            "3",
            "--label-epochs",
            "3",
            "--out",
            str(tmp_path / "run"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "--label-epochs 3 must be at least 0 and below --epochs 3" in proc.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--kw-substitute", "1.5"], "--kw-substitute 1.5 is a probability"),
        (["--kw-substitute", "-0.1"], "--kw-substitute -0.1 is a probability"),
        (["--kw-substitute", "0.5", "--group-by-length"], "does not combine with --group-by-length"),
        (["--kw-substitute", "0.5", "--teacher-dropout-passes", "2"], "or --teacher-dropout-passes"),
    ],
)
def test_kd_variants_refuses_keyword_substitution_it_cannot_do(tmp_path, extra, message):
    proc = subprocess.run(
        [sys.executable, str(REPO / "research" / "kd_variants.py"), *extra, "--out", str(tmp_path / "run")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and message in proc.stderr
    assert not (tmp_path / "run").exists()


def test_oos_auroc_and_ranking_score():
    import numpy as np
    from kd_variants import OOS, auroc, ranking_score

    assert auroc([3, 2, 1, 0], [True, True, False, False]) == 1.0
    assert auroc([0, 1, 2, 3], [True, True, False, False]) == 0.0
    assert auroc([1, 1, 1, 1], [True, False, True, False]) == 0.5
    rng = np.random.default_rng(0)
    score, pos = rng.integers(0, 5, 200), rng.random(200) < 0.3  # many ties
    pairs = [(1.0 if a > b else 0.5 if a == b else 0.0) for a in score[pos] for b in score[~pos]]
    assert abs(auroc(score, pos) - np.mean(pairs)) < 1e-12
    logits = rng.normal(size=(1, 151))
    logits[0, OOS], logits[0, 7] = 9.0, 8.0  # oos wins, intent 7 is the best in-scope one
    p = np.exp(logits[0] - logits[0].max())
    p /= p.sum()
    assert abs(ranking_score(logits)[0] - np.log(p[7] / (1 - p[7]))) < 1e-9


def test_oos_bias_matches_the_teachers_oos_count_and_touches_nothing_else():
    from kd_variants import OOS, bias_for_oos_count, match_oos_bias, oos_margin, with_oos_bias

    rng = np.random.default_rng(0)
    margins = rng.normal(size=50)
    for k in (0, 1, 17, 49, 50):
        assert (margins + bias_for_oos_count(margins, k) > 0).sum() == k
    for k in (-1, 51):
        with pytest.raises(ValueError, match=f"k={k} of 50 margins"):
            bias_for_oos_count(margins, k)
    with pytest.raises(ValueError, match="k=0 of 0 margins"):
        bias_for_oos_count([], 0)
    teacher, student = rng.normal(size=(2, 400, 151))
    teacher[:60, OOS] += 4  # the teacher answers oos on about 60 queries, the student on few
    k = int((teacher.argmax(-1) == OOS).sum())
    assert 40 < k < 80 and (student.argmax(-1) == OOS).sum() < 10
    z = student.copy()
    b = match_oos_bias(student, teacher)
    assert np.array_equal(student, z)  # the logits given are not changed
    shifted = with_oos_bias(student, b)
    assert (shifted.argmax(-1) == OOS).sum() == k
    kept = shifted.argmax(-1) != OOS  # elsewhere the in-scope answer is the student's own
    assert np.array_equal(shifted.argmax(-1)[kept], student.argmax(-1)[kept])
    assert np.allclose(oos_margin(shifted), oos_margin(student) + b)


def test_bias_at_teacher_oos_recall_and_the_reports_refusal_of_too_few_oos_queries(nb):
    from kd_variants import OOS, bias_at_teacher_oos_recall, oos_match_rows, with_oos_bias

    rng = np.random.default_rng(2)
    y = np.array([OOS] * 30 + list(rng.integers(0, 40, 170)))
    teacher, student = rng.normal(size=(2, 200, 151))
    teacher[:12, OOS] += 5  # the teacher finds about 12 of the 30 out-of-scope queries
    hits = int((teacher[:30].argmax(-1) == OOS).sum())
    shifted = with_oos_bias(student, bias_at_teacher_oos_recall(student, teacher, y)).argmax(-1)
    assert (shifted[:30] == OOS).sum() == hits and hits >= 10
    with pytest.raises(ValueError, match="no out-of-scope one"):
        bias_at_teacher_oos_recall(student[30:], teacher[30:], y[30:])
    one_oos = {"val": y[29:], "test": y}  # validation with a single out-of-scope query
    logits = {"val": student[29:], "test": student}
    with pytest.raises(SystemExit, match="the validation split holds 1 out-of-scope and 170 in-scope queries"):
        oos_match_rows(logits, {"val": teacher[29:], "test": teacher}, one_oos, nb["clinc_metrics"], test=True)
    with pytest.raises(SystemExit, match="the validation split holds 30 out-of-scope and 1 in-scope queries"):
        oos_match_rows(
            {"val": student[:31], "test": student},
            {"val": teacher[:31], "test": teacher},
            {"val": y[:31], "test": y},
            nb["clinc_metrics"],
            test=False,
        )
    with pytest.raises(SystemExit, match="the test split holds 0 out-of-scope"):
        oos_match_rows(
            {"val": student, "test": student[30:]},
            {"val": teacher, "test": teacher[30:]},
            {"val": y, "test": y[30:]},
            nb["clinc_metrics"],
            test=True,
        )


def test_crossfit_oos_match_scores_the_shift_on_queries_it_was_not_fitted_on(nb):
    from kd_variants import OOS, crossfit_oos_match, match_oos_bias, test_mix_accuracy, with_oos_bias

    assert test_mix_accuracy(0.9, 0.5) == (4500 * 0.9 + 1000 * 0.5) / 5500
    y = np.array([OOS] * 40 + [0] * 60 + [1] * 60)
    teacher = np.zeros((len(y), 151))
    teacher[np.arange(len(y)), y] = 5.0  # right on every query, by a margin of 5
    zero = {"accuracy": 0.0, "in_scope_accuracy": 0.0, "oos_recall": 0.0, "test_mix_accuracy": 0.0}
    assert crossfit_oos_match(teacher, teacher, y, nb["clinc_metrics"], splits=20) == zero
    student = teacher.copy()
    student[:, OOS] -= 6.0  # the same ranking, but it never answers oos: the fitted shift of +6 restores it
    d = crossfit_oos_match(student, teacher, y, nb["clinc_metrics"], splits=20)
    assert d == {
        "accuracy": round(100 * 40 / 160, 3),
        "in_scope_accuracy": 0.0,
        "oos_recall": 100.0,
        "test_mix_accuracy": round(100 * 1000 / 5500, 3),
    }
    assert crossfit_oos_match(student, teacher, y, nb["clinc_metrics"], splits=3, seed=1) == d
    # one split by hand, on noisy logits where fitting and scoring the same half would differ: the shift is fitted
    # on one stratified half and scored on the other, both ways
    rng = np.random.default_rng(3)
    noisy_s, noisy_t = student + 3 * rng.normal(size=student.shape), teacher + 3 * rng.normal(size=teacher.shape)
    draw = np.random.default_rng(7)
    half = np.zeros(len(y), bool)
    half[draw.permutation(np.flatnonzero(y == OOS))[:20]] = True
    half[draw.permutation(np.flatnonzero(y != OOS))[:60]] = True

    def oos_recall(z, rows):
        return nb["clinc_metrics"](y[rows], z[rows].argmax(-1))["oos_recall"]

    by_hand = np.mean(
        [
            oos_recall(with_oos_bias(noisy_s, match_oos_bias(noisy_s[fit], noisy_t[fit])), held)
            - oos_recall(noisy_s, held)
            for fit, held in ((half, ~half), (~half, half))
        ]
    )
    in_sample = np.mean(
        [
            oos_recall(with_oos_bias(noisy_s, match_oos_bias(noisy_s[h], noisy_t[h])), h) - oos_recall(noisy_s, h)
            for h in (half, ~half)
        ]
    )
    mine = crossfit_oos_match(noisy_s, noisy_t, y, nb["clinc_metrics"], splits=1, seed=7)["oos_recall"]
    assert mine == round(100 * by_hand, 3) and mine != round(100 * in_sample, 3)
    with pytest.raises(ValueError, match="at least 2 in-scope and 2 out-of-scope"):
        crossfit_oos_match(student[40:], teacher[40:], y[40:], nb["clinc_metrics"])


def test_pooled_gap_averages_the_runs_and_resamples_queries_like_paired_gap(nb):
    from kd_variants import check_poolable, pooled_gap

    labels = np.zeros(1000, int)
    teacher, run_a, run_b = np.zeros(1000, int), np.zeros(1000, int), np.zeros(1000, int)
    teacher[:10], run_a[10:40], run_b[10:30] = 1, 1, 1  # a wrong answer is 1: teacher 99.0 %, runs 97.0 / 98.0 %
    one = pooled_gap(labels, teacher, run_a)
    assert (one["runs"], one["gap_pt"], one["seed_sd_pt"]) == (1, -2.0, None)
    rng = np.random.default_rng(1)  # one run: the notebook's paired interval, resample for resample (fine-grained
    y, t, s = (rng.integers(0, 3, 5500) for _ in range(3))  # enough that another seed shows at 0.01 pt)
    keys = ("gap_pt", "ci95_low_pt", "ci95_high_pt")
    for seed in (0, 5):
        mine, same = pooled_gap(y, t, s, seed=seed), nb["paired_gap"](y, t, s, seed=seed)
        assert [mine[k] for k in keys] == [same[k] for k in keys]
    assert [pooled_gap(y, t, s, seed=0)[k] for k in keys] != [pooled_gap(y, t, s, seed=5)[k] for k in keys]
    both = pooled_gap(labels, teacher, np.stack([run_a, run_b]))
    assert both["gap_pt"] == -1.5 and both["runs"] == 2 and both["seed_sd_pt"] == round(np.std([-2.0, -1.0], ddof=1), 2)
    assert both["ci95_low_pt"] < -1.5 < both["ci95_high_pt"]
    # averaging runs shrinks the per-query noise they do not share: run_b's 20 misses are run_a's too, so the pooled
    # interval is narrower than run_a's own
    assert both["ci95_high_pt"] - both["ci95_low_pt"] < one["ci95_high_pt"] - one["ci95_low_pt"]
    assert pooled_gap(labels, teacher, np.stack([teacher, teacher]))["ci95_low_pt"] == 0.0
    with pytest.raises(ValueError, match="one prediction per query from the teacher and each run"):
        pooled_gap(labels, teacher, np.stack([run_a, run_b])[:, :999])
    with pytest.raises(ValueError, match="one prediction per query from the teacher and each run"):
        pooled_gap(labels, teacher, np.zeros((0, 1000), int))
    with pytest.raises(ValueError, match="rounds=0"):
        pooled_gap(labels, teacher, run_a, rounds=0)
    base = {"alpha": 0.07, "seed": 42, "threads": 1, "out": "a", "val_history": [0.9], "teacher": "t"}
    check_poolable({"a": base, "b": {**base, "seed": 1, "out": "b", "threads": 2, "val_history": [0.8]}})
    with pytest.raises(SystemExit, match="differ in {'alpha': \\(0.07, 0.5\\)}"):
        check_poolable({"a": base, "b": {**base, "alpha": 0.5, "seed": 1}})
    newer = {**base, "kw_substitute": 0.0}  # an option added after run a: its default counts for a
    check_poolable({"a": base, "b": newer}, defaults={"kw_substitute": 0.0})
    with pytest.raises(SystemExit, match="kw_substitute"):
        check_poolable({"a": base, "b": {**newer, "kw_substitute": 0.5}}, defaults={"kw_substitute": 0.0})
    check_poolable({"a": base, "b": {**base, "teacher": str(Path("t").resolve())}})  # the same folder, spelled out


def test_keyword_split_counts_in_scope_queries_without_their_intents_keywords(nb):
    from kd_variants import OOS, keyword_free, keyword_split

    intent_keywords = nb["intent_keywords"]

    texts = [
        "who is your boss",
        "tell me your boss",
        "name your boss",
        "is it going to rain",
        "rain today",
        "weather please",
        "tell me a joke",
        "please play a song",
    ]
    labels = [0, 0, 0, 1, 1, 1, OOS, OOS]
    kw = intent_keywords(texts, labels, cover=0.5, purity=0.5)
    # "your" and "boss" are in every intent-0 query and nowhere else; "tell" and "please" are in 1 of 3 queries of
    # their intent (below cover); the out-of-scope queries are skipped, so their "please" does not count
    assert kw == {0: {"your", "boss"}, 1: {"rain"}}
    # thresholds are inclusive, and a word counts once per query: "rain" is in exactly 2 of 3 queries of intent 1
    # and in exactly 2 of 4 queries overall once a 4th (intent 0) query repeats it
    assert "rain" in intent_keywords(texts, labels, cover=2 / 3, purity=1.0)[1]
    more = (texts + ["boss rain rain rain"], labels + [0])
    assert "rain" in intent_keywords(*more, cover=0.5, purity=2 / 3)[1]
    assert "rain" not in intent_keywords(*more, cover=0.5, purity=0.7)[1]
    assert intent_keywords(texts, labels, cover=0.5, purity=0.9)[0] == {"your", "boss"}
    assert intent_keywords(texts + ["your rain"], labels + [1], cover=0.5, purity=0.9)[0] == {"boss"}
    assert intent_keywords(texts + ["rain man is a film"], labels + [OOS], cover=0.5, purity=0.9)[1] == {"rain"}
    assert OOS not in kw
    test_texts = ["who employs you", "your Boss, please", "will it pour", "rain?", "bye"]
    test_labels = [0, 0, 1, 1, OOS]
    assert keyword_free(test_texts, test_labels, kw, nb["query_words"]).tolist() == [True, False, True, False, False]
    logits = np.zeros((5, 151))
    for i, pred in enumerate([0, 1, 3, 1, OOS]):  # right, wrong, wrong, right, right
        logits[i, pred] = 1.0
    free = keyword_free(test_texts, test_labels, kw, nb["query_words"])
    split = keyword_split(logits, test_labels, free)
    assert split == {"in_scope_kwfree": 0.5, "in_scope_kw": 0.5, "n_kwfree": 2}
    logits[2, 1] = 2.0  # the keyword-free weather query now right
    assert keyword_split(logits, test_labels, free)["in_scope_kwfree"] == 1.0
    only_kw = keyword_split(logits[[1, 3]], [0, 1], free[[1, 3]])  # no keyword-free query
    assert np.isnan(only_kw["in_scope_kwfree"]) and only_kw["in_scope_kw"] == 0.5 and only_kw["n_kwfree"] == 0


def test_kd_variants_losses_reduce_to_cross_entropy_on_the_labels():
    import torch
    import torch.nn.functional as F
    from kd_variants import OOS, make_loss

    torch.manual_seed(0)
    s, t = torch.randn(8, 151), torch.randn(8, 151)
    y = torch.randint(0, 151, (8,))
    ce = F.cross_entropy(s, y)
    assert torch.allclose(make_loss("mse", None)(s, t, y, 1.0, 2.0), ce)
    assert torch.allclose(make_loss("lskd", None)(s, t, y, 1.0, 2.0), ce)
    oos = torch.full((8,), OOS)
    assert torch.allclose(make_loss("oosce", None)(s, t, oos, 0.0, 2.0), F.cross_entropy(s, oos))
    assert not torch.allclose(make_loss("oosce", None)(s, t, y, 0.0, 2.0), ce)
    assert torch.allclose(make_loss("lskd", None)(s, s * 3 + 1, y, 0.0, 2.0), torch.tensor(0.0), atol=1e-6)


def test_kd_variants_layer_decay_gives_every_weight_once_lower_rates_further_down():
    from kd_variants import layer_decay_groups
    from transformers import DistilBertConfig, DistilBertForSequenceClassification

    model = DistilBertForSequenceClassification(
        DistilBertConfig(
            n_layers=3, dim=16, hidden_dim=32, n_heads=2, vocab_size=50, max_position_embeddings=16, num_labels=4
        )
    )
    groups = layer_decay_groups(model, 1e-3, 0.5)
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids)) and set(ids) == {id(p) for p in model.parameters()}
    assert [g["lr"] for g in groups] == [1e-3 * 0.5**k for k in (4, 3, 2, 1, 0)]  # embeddings .. head
    assert {id(p) for p in groups[0]["params"]} == {id(p) for p in model.distilbert.embeddings.parameters()}
    assert {id(p) for p in groups[3]["params"]} == {id(p) for p in model.distilbert.transformer.layer[2].parameters()}


def test_kd_variants_dropout_logits_average_stochastic_passes_and_restore_eval_mode():
    import torch
    from kd_variants import dropout_logits
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    teacher = BertForSequenceClassification(
        BertConfig(
            vocab_size=50,
            hidden_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=32,
            max_position_embeddings=16,
            num_labels=3,
            hidden_dropout_prob=0.3,
        )
    ).eval()
    ids = torch.randint(0, 50, (4, 8))

    def logits(model, dataset, device="cpu"):  # what the notebook's compute_logits does with the mode
        with torch.no_grad():
            return model.to(device).eval()(input_ids=dataset).logits.numpy()

    plain = logits(teacher, ids)
    one, again = dropout_logits(logits, teacher, ids, 3, seed=1), dropout_logits(logits, teacher, ids, 3, seed=1)
    assert (one == again).all() and not (one == plain).all()
    assert not teacher.training and "eval" not in vars(teacher) and (logits(teacher, ids) == plain).all()
    torch.manual_seed(1)
    teacher.train()
    with torch.no_grad():
        by_hand = [teacher(input_ids=ids).logits.numpy() for _ in range(3)]
    teacher.eval()
    assert np.allclose(one, sum(by_hand) / 3, atol=1e-6) and not np.allclose(one, by_hand[0])

    def always_eval(model, dataset, device="cpu"):  # a compute_logits that switches modes another way
        with torch.no_grad():
            return model.to(device).train(False)(input_ids=dataset).logits.numpy()

    with pytest.raises(RuntimeError, match="two dropout passes gave identical logits"):
        dropout_logits(always_eval, teacher, ids, 2, seed=1)


def test_new_student_can_start_from_a_pretrained_model_instead_of_the_teacher(assets, tiny_teacher):
    import argparse

    import torch
    from kd_common import new_student
    from nbcode import namespace
    from transformers import AutoModelForSequenceClassification

    ns = namespace("distill", fp16=False)
    teacher = AutoModelForSequenceClassification.from_pretrained(tiny_teacher)
    with torch.no_grad():  # a "fine-tuned" teacher: every weight moved away from its base
        for w in teacher.parameters():
            w.add_(0.01)
    base = AutoModelForSequenceClassification.from_pretrained(assets["base"], num_labels=151)
    args = argparse.Namespace(seed=3, layers="1", freeze_embeddings=False)

    def q(model):
        return (
            model.distilbert.transformer.layer[0].attention.q_lin.weight
            if hasattr(model, "distilbert")
            else model.bert.encoder.layer[1].attention.self.query.weight
        )

    from_teacher = new_student(ns, teacher, args)
    assert torch.equal(q(from_teacher), q(teacher)) and torch.equal(
        from_teacher.classifier.weight, teacher.classifier.weight
    )
    from_base = new_student(ns, teacher, argparse.Namespace(**vars(args), init_from=str(assets["base"])))
    assert torch.equal(q(from_base), q(base)) and not torch.equal(q(from_base), q(teacher))
    assert torch.equal(
        from_base.distilbert.embeddings.position_embeddings.weight, base.bert.embeddings.position_embeddings.weight
    )
    assert torch.equal(from_base.pre_classifier.weight, base.bert.pooler.dense.weight)
    assert not torch.equal(from_base.classifier.weight, teacher.classifier.weight)  # a new head
    assert from_base.config.id2label == teacher.config.id2label
    again = new_student(ns, teacher, argparse.Namespace(**vars(args), init_from=str(assets["base"])))
    assert torch.equal(again.classifier.weight, from_base.classifier.weight)  # seeded
    other = new_student(ns, teacher, argparse.Namespace(**{**vars(args), "seed": 4}, init_from=str(assets["base"])))
    assert not torch.equal(other.classifier.weight, from_base.classifier.weight)


def test_new_student_refuses_a_pretrained_model_with_another_vocabulary(assets, tiny_teacher, tmp_path):
    import argparse

    from kd_common import new_student
    from nbcode import namespace
    from transformers import AutoModelForSequenceClassification, BertConfig, BertModel

    teacher = AutoModelForSequenceClassification.from_pretrained(tiny_teacher)
    config = BertConfig.from_pretrained(assets["base"])
    config.vocab_size += 7
    BertModel(config).save_pretrained(tmp_path / "other-vocab")
    args = argparse.Namespace(seed=3, layers="1", freeze_embeddings=False, init_from=str(tmp_path / "other-vocab"))
    with pytest.raises(SystemExit, match="give a BERT with the teacher's vocabulary"):
        new_student(namespace("distill", fp16=False), teacher, args)


def test_keyword_neighbours_are_near_words_that_are_no_keyword_and_no_form_of_it(nb):
    import torch

    keyword_neighbours = nb["keyword_neighbours"]

    vocab = ["boss", "bosses", "employer", "manager", "chief", "banana", "rain", "drizzle", "##x", "[UNK]", "me"]
    vec = {
        "boss": [1, 0, 0],
        "bosses": [1, 0.01, 0],  # a form of boss: left out (same 4-letter prefix)
        "employer": [1, 0.02, 0],  # nearer than manager, but another intent's keyword
        "manager": [0.9, 0.2, 0],
        "chief": [0.8, 0.45, 0],
        "banana": [0, 0, 1],
        "rain": [0, 1, 0],
        "drizzle": [0.1, 1, 0],
        "##x": [1, 0, 0.001],  # a word piece: never a neighbour
        "[UNK]": [1, 0, 0.002],
        "me": [0, 0.1, 1],
    }  # not a whole lowercase word / too short

    class Tok:
        def get_vocab(self):
            return {w: i for i, w in enumerate(vocab)}

        def __call__(self, text, add_special_tokens=False):  # "bossx" = the pieces boss + ##x
            return {"input_ids": [vocab.index("boss"), vocab.index("##x")] if text == "bossx" else [vocab.index(text)]}

    class Teacher:
        def get_input_embeddings(self):
            return torch.nn.Embedding.from_pretrained(torch.tensor([vec[w] for w in vocab], dtype=torch.float))

    near = keyword_neighbours(Teacher(), Tok(), {0: {"boss"}, 1: {"rain"}, 2: {"employer"}, 3: {"bossx"}}, k=2)
    assert near["boss"] == ["manager", "chief"]
    assert near["rain"] == ["drizzle", "chief"]
    assert near["employer"] == ["bosses", "manager"]  # boss is a keyword; bosses is a form of boss, not of employer
    assert near["bossx"][0] == "manager" and set(near) == {"boss", "rain", "employer", "bossx"}


def test_keyword_variants_replace_whole_keywords_of_the_querys_own_intent(nb):
    from kd_variants import OOS

    keyword_variants = nb["keyword_variants"]

    keywords = {0: {"boss"}, 1: {"rain", "weather"}}
    near = {"boss": ["manager"], "rain": ["drizzle"], "weather": ["climate", "forecast"]}
    texts = ["who is your boss", "Boss? your BOSS's name", "bossy weather", "is it raining", "rain", "rain or weather"]
    labels = [0, 0, 0, 1, OOS, 1]
    variants = keyword_variants(texts, labels, keywords, near, seed=0)
    # "bossy" is not "boss", weather is not intent 0's keyword, "raining" is not "rain", out-of-scope has none
    assert sorted(variants) == [0, 1, 5]
    # a word as intent_keywords counts it: BOSS's is the word boss's, not boss, and stays
    assert variants[0] == "who is your manager" and variants[1] == "manager? your BOSS's name"
    assert variants[5] in ("drizzle or climate", "drizzle or forecast")
    assert {keyword_variants(texts, labels, keywords, near, seed=s)[5] for s in range(20)} == {
        "drizzle or climate",
        "drizzle or forecast",
    }  # the seed picks among the neighbours


def test_variant_dataset_serves_variants_only_while_active_and_restarts_its_draws(nb):
    VariantDataset = nb["VariantDataset"]

    base = [{"idx": i} for i in range(10)]
    variants = [{"idx": 10 + j} for j in range(5)]
    ds = VariantDataset(base, variants, rows=[0, 2, 4, 6, 8], p=1.0, seed=0)
    assert len(ds) == 10 and [ds[i]["idx"] for i in range(10)] == [10, 1, 11, 3, 12, 5, 13, 7, 14, 9]
    ds.active = False
    assert [ds[i]["idx"] for i in range(10)] == list(range(10))
    half = VariantDataset(base, variants, rows=[0, 2, 4, 6, 8], p=0.5, seed=0)
    served = [half[i]["idx"] >= 10 for _ in range(200) for i in (0, 2, 4, 6, 8)]
    assert 400 < sum(served) < 600
    half.restart(0)  # each training starts the same draws (the notebook's train_student restarts them)
    assert [half[i]["idx"] >= 10 for _ in range(200) for i in (0, 2, 4, 6, 8)] == served


def test_variant_phase_serves_variants_in_the_distillation_epochs_only(nb):
    from types import SimpleNamespace

    ds = nb["VariantDataset"]([{"idx": 0}], [{"idx": 1}], rows=[0], p=1.0, seed=0)
    phase = nb["VariantPhase"](ds, kd_epochs=2)
    seen = []
    for epoch in (0.0, 1.0, 2.0, 3.0):  # state.epoch at the start of each of 4 epochs, the last 2 on the labels
        phase.on_epoch_begin(None, SimpleNamespace(epoch=epoch), None)
        seen.append(ds[0]["idx"])
    assert seen == [1, 1, 0, 0]


def test_kd_variants_keyword_substitution_serves_variants_with_teacher_targets_in_the_distillation_epochs(
    assets, tiny_teacher, tmp_path, monkeypatch
):
    import kd_variants
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    threads = torch.get_num_threads()
    served, caches = [], []
    real_load, real_loss = kd_variants.load_teacher_and_data, kd_variants.make_loss

    def load(args):  # the notebook's VariantDataset, watched
        ns, *rest = real_load(args)
        real_get = ns["VariantDataset"].__getitem__

        def get(self, i):
            row = real_get(self, i)
            variant = row["idx"] >= len(self.base)
            # a variant's cache row: after the training queries', in the order of the rows that have one
            assert not variant or row["idx"] == len(self.base) + self.where[int(i)]
            served.append((self.active, variant))
            return row

        monkeypatch.setattr(ns["VariantDataset"], "__getitem__", get)
        return (ns, *rest)

    monkeypatch.setattr(kd_variants, "load_teacher_and_data", load)
    monkeypatch.setattr(
        kd_variants,
        "make_loss",
        lambda name, base, logits, beta: caches.append(logits) or real_loss(name, base, logits, beta),
    )
    out = tmp_path / "kw"
    assert (
        kd_variants.main(
            [
                "--teacher",
                str(tiny_teacher),
                "--data-file",
                str(assets["data"]),
                "--max-length",
                "16",
                "--epochs",
                "2",
                "--label-epochs",
                "1",
                "--layers",
                "1",
                "--kw-substitute",
                "1",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    torch.set_num_threads(threads)
    made = json.loads((out / "variants.json").read_text())
    data = json.loads(assets["data"].read_text())
    n_train = len(data["train"]) + len(data["oos_train"])
    assert made["n"] > 0 and len(served) == 2 * n_train  # one fetch per query and epoch
    # epoch 1 (distilling): every query with a variant is served as it; epoch 2 (labels alone): none is
    assert [a for a, _ in served] == [True] * n_train + [False] * n_train
    assert sum(v for _, v in served[:n_train]) == made["n"] and not any(v for _, v in served[n_train:])
    # the cache holds the teacher's logits of the training queries, then of their variants, in order
    (cache,) = caches
    assert cache.shape == (n_train + made["n"], 151)
    tokenizer = AutoTokenizer.from_pretrained(tiny_teacher)
    teacher = AutoModelForSequenceClassification.from_pretrained(tiny_teacher).eval()
    variant_texts = [v for _, v in made["examples"]]
    with torch.no_grad():
        for j, text in enumerate(variant_texts[:5]):
            z = teacher(**tokenizer(text, truncation=True, max_length=16, return_tensors="pt")).logits[0].numpy()
            assert np.allclose(cache[n_train + j], z, atol=1e-4)


def test_kwfree_fold_holds_out_keyword_free_training_queries_only(assets, nb, tmp_path):
    import kwfree_fold

    data = json.loads(assets["data"].read_text())
    out = tmp_path / "fold.json"
    assert kwfree_fold.main([str(assets["data"]), str(out), "--per-intent", "2", "--oos", "3"]) == 0
    fold = json.loads(out.read_text())
    assert fold["test"] == data["test"] and fold["oos_test"] == data["oos_test"]
    assert sorted(map(tuple, fold["train"] + fold["val"])) == sorted(map(tuple, data["train"]))
    assert sorted(map(tuple, fold["oos_train"] + fold["oos_val"])) == sorted(map(tuple, data["oos_train"]))
    assert len(fold["oos_val"]) == min(3, len(data["oos_train"])) and fold["val"]
    # the notebook's own keyword rule, on the whole training set, by intent name
    keywords = nb["intent_keywords"]([t for t, _ in data["train"]], [n for _, n in data["train"]])
    from collections import Counter

    per = Counter(n for _, n in fold["val"])
    assert max(per.values()) <= 2
    for text, name in fold["val"]:
        assert not nb["query_words"](text) & keywords.get(name, set()), (text, name)
    assert kwfree_fold.make_fold(data, 2, 3, seed=1) != kwfree_fold.make_fold(data, 2, 3, seed=0)


def test_kwfree_fold_by_novel_holds_out_each_intents_most_novel_wordings(assets, nb, tmp_path):
    import kwfree_fold

    data = json.loads(assets["data"].read_text())
    out = tmp_path / "fold.json"
    assert kwfree_fold.main([str(assets["data"]), str(out), "--per-intent", "2", "--oos", "3", "--by", "novel"]) == 0
    fold = json.loads(out.read_text())
    assert sorted(map(tuple, fold["train"] + fold["val"])) == sorted(map(tuple, data["train"]))
    assert len(fold["oos_val"]) == min(3, len(data["oos_train"])) and fold["val"]
    texts, names = [t for t, _ in data["train"]], [n for _, n in data["train"]]
    share = dict(zip(zip(texts, names), kwfree_fold.novel_share(texts, names, nb["query_words"])))
    from collections import Counter

    held, novel = Counter(n for _, n in fold["val"]), Counter(n for (_, n), v in share.items() if v > 0)
    assert held == {name: min(2, k) for name, k in novel.items()}  # 2 per intent, fewer if it has fewer
    for text, name in fold["val"]:
        # a held-out query uses a word no other query of its intent uses, and no query it leaves in training is
        # more novel
        assert share[text, name] > 0
        assert all(share[t, n] <= share[text, name] for t, n in fold["train"] if n == name)
    # the share by hand: "b" and "c" are only in the first query of intent x, "a" is in both
    assert kwfree_fold.novel_share(["a b c", "a d", "z"], ["x", "x", "oos"], lambda t: set(t.split())) == [
        2 / 3,
        0.5,
        0.0,
    ]
    with pytest.raises(ValueError, match="choose 'kwfree' or 'novel'"):
        kwfree_fold.make_fold(data, 2, 3, by="rare")

#!/usr/bin/env python3
"""The experiments behind research/experiments.md ("How the cpu defaults were chosen"), parts 4 and 5:
one student per call.

The student, schedule and KD Trainer are distill_quantize_ort.ipynb's own (cells tagged `shared`/`lib`, as in
scripts/kd_search.py); only the loss can be swapped (--loss). Each run keeps its best epoch by VALIDATION accuracy,
as the notebook does, prints validation metrics only, and saves that epoch's validation and test logits to
<out>/logits.npz. The test split is scored only by `--report --test`, meant to be run once, after every choice:

    for s in 42 1; do python scripts/kd_variants.py --seed $s --label-epochs 3 --out runs/label3_s$s \\
        --data-file data/clinc150/data_oos_plus.json.gz & done; wait
    python scripts/kd_variants.py --report runs --data-file data/clinc150/data_oos_plus.json.gz

Besides accuracy, in-scope accuracy and OOS recall, the report gives the OOS AUROC: how well a model ranks in-scope
above out-of-scope queries by the log-odds of its most likely in-scope intent (threshold-free; `oos` is a trained
class, so the plain max-softmax would rank by it), and in-scope accuracy split into the queries that hold none of
their intent's training keywords (`in_scope_kwfree`, see the notebook's `intent_keywords`) and the others
(`in_scope_kw`): the student's test gap sits in the first. `--kw-substitute P` aims at that gap: while distilling,
a query holding its intent's keywords is served with probability P as a variant in which they are replaced by near
words, the teacher's logits on it as soft targets and its label kept (the notebook's `kd_keyword_substitute`:
`keyword_neighbours`, `keyword_variants`, `VariantDataset`). On one core of the reference machine an 11-epoch run
takes about 20 minutes (two side by side on a 2-core CPU, --threads 1 each).

With --test each run's row also gets its test gap to the teacher with a paired-bootstrap 95 % interval over the
test queries (the notebook's `paired_gap`); with --pool, when the runs under FOLDER are seeds of one setting, one
more row gives their mean gap and its interval (`pooled_gap`, research/experiments.md part 8):

    python scripts/kd_variants.py --report runs --test --pool --data-file data/clinc150/data_oos_plus.json.gz

--oos-match (part 9) adds, per student, one shift of its `oos` logit fitted without labels on validation, so that it
predicts `oos` as often as the teacher there (`match_oos_bias`), that shift's cross-fitted effect on validation
(`crossfit_oos_match`) and, with --test, its test metrics and gap, and the accuracy at the teacher's own test OOS
recall (a threshold set on test: a measurement, not a lever).
"""

import argparse
import json
import sys
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1] / "scripts")]
from kd_common import add_student_options, load_teacher_and_data, new_student, resolved  # noqa: E402

OOS = 42  # the `oos` label in the Hub's order (the notebook's OOS_ID for CLINC150)
LOSSES = {
    "kl": "the notebook's: alpha CE + (1 - alpha) T^2 KL",
    "mse": "alpha CE + (1 - alpha) MSE between the logits (Kim et al., 2021)",
    "oosreg": "kl + beta MSE on the out-of-scope log-odds (z_oos - logsumexp of the others), over its variance",
    "oosce": "labels alone (CE) for out-of-scope queries, kl for the rest",
    "lskd": "KL between z-scored logits (logit standardization, Sun et al., 2024)",
}


def oos_logodds(z):
    """z_oos - logsumexp(other logits), per row (torch)."""
    import torch

    z = z.float()
    return z[:, OOS] - torch.logsumexp(torch.cat([z[:, :OOS], z[:, OOS + 1 :]], dim=-1), dim=-1)


def make_loss(name, base, teacher_train_logits=None, beta=1.0):
    """A loss with the notebook's kd_loss signature (student, teacher, labels, alpha, temperature)."""
    import torch
    import torch.nn.functional as F

    if name == "kl":
        return base
    if name == "mse":
        return lambda s, t, y, a, T: a * F.cross_entropy(s.float(), y) + (1 - a) * F.mse_loss(s.float(), t.float())
    if name == "oosreg":
        var = float(oos_logodds(torch.as_tensor(teacher_train_logits)).var())
        return lambda s, t, y, a, T: base(s, t, y, a, T) + beta * F.mse_loss(oos_logodds(s), oos_logodds(t)) / var

    def kl_rows(s, t, T):
        return F.kl_div(F.log_softmax(s / T, -1), F.log_softmax(t / T, -1), reduction="none", log_target=True).sum(-1)

    if name == "oosce":

        def oosce(s, t, y, a, T):
            s, t = s.float(), t.float()
            ce = F.cross_entropy(s, y, reduction="none")
            return torch.where(y == OOS, ce, a * ce + (1 - a) * T**2 * kl_rows(s, t, T)).mean()

        return oosce
    if name == "lskd":

        def zscore(z):
            return (z - z.mean(-1, keepdim=True)) / (z.std(-1, keepdim=True) + 1e-7)

        def lskd(s, t, y, a, T):
            s, t = s.float(), t.float()
            return a * F.cross_entropy(s, y) + (1 - a) * T**2 * kl_rows(zscore(s), zscore(t), T).mean()

        return lskd
    raise ValueError(f"unknown loss {name!r}; choose one of {sorted(LOSSES)}")


def layer_decay_groups(model, lr, decay):
    """AdamW parameter groups with layer-wise learning-rate decay: the head trains at `lr`, the top transformer
    layer at lr * decay, each layer below at one more factor of `decay`, the embeddings at the lowest rate."""
    base = model.base_model
    layers = list(base.transformer.layer)
    n = len(layers)
    groups = [(list(base.embeddings.parameters()), decay ** (n + 1))]
    groups += [(list(layer.parameters()), decay ** (n - i)) for i, layer in enumerate(layers)]
    seen = {id(p) for params, _ in groups for p in params}
    groups.append(([p for p in model.parameters() if id(p) not in seen], 1.0))  # pre_classifier, classifier
    return [{"params": [p for p in params if p.requires_grad], "lr": lr * factor} for params, factor in groups]


def layer_decay_optimizer(model, training_args, decay):
    """The optimizer the Trainer would build from `training_args` (AdamW, fused where the Trainer fuses it), over
    layer_decay_groups; weight decay `training_args.weight_decay` on every weight (0 here, as in every run)."""
    from transformers import Trainer

    cls, kwargs = Trainer.get_optimizer_cls_and_kwargs(training_args, model)
    return cls(
        layer_decay_groups(model, training_args.learning_rate, decay),
        **{**kwargs, "weight_decay": training_args.weight_decay},
    )


def dropout_logits(compute_logits, teacher, dataset, passes, seed):
    """The teacher's logits averaged over `passes` forward passes with its dropout on (the logits, not the
    probabilities, are averaged)."""
    import numpy as np
    import torch

    torch.manual_seed(seed)
    teacher.eval = lambda: teacher.train(True)  # compute_logits switches to eval mode: keep dropout on
    try:
        runs = [compute_logits(teacher, dataset, device="cpu") for _ in range(passes)]
    finally:
        del teacher.eval
        teacher.train(False)
    if passes > 1 and np.array_equal(runs[0], runs[1]):
        raise RuntimeError(
            "two dropout passes gave identical logits: compute_logits no longer leaves dropout on "
            "(it must switch modes with model.eval()), or the teacher has no dropout"
        )
    return sum(runs) / passes


def ranking_score(logits):
    """Log-odds of the most likely in-scope intent: high = in scope (numpy, float64)."""
    import numpy as np

    z = np.asarray(logits, dtype=np.float64).copy()
    rows = np.arange(len(z))
    inscope = z.copy()
    inscope[:, OOS] = -np.inf
    best = inscope.argmax(-1)
    top = z[rows, best]
    z[rows, best] = -np.inf
    m = z.max(-1)
    return top - (m + np.log(np.exp(z - m[:, None]).sum(-1)))


def auroc(score, positive):
    """P(score of a positive > score of a negative), ties counted half (Mann-Whitney U)."""
    import numpy as np

    score, positive = np.asarray(score, dtype=np.float64), np.asarray(positive, dtype=bool)
    n1, n0 = int(positive.sum()), int((~positive).sum())
    if not n1 or not n0:
        raise ValueError("AUROC needs both in-scope and out-of-scope queries")
    ranks = np.empty(len(score))
    ranks[np.argsort(score, kind="mergesort")] = np.arange(1, len(score) + 1)
    _, group = np.unique(score, return_inverse=True)  # tied scores share their mean rank
    ranks = (np.bincount(group, ranks) / np.bincount(group))[group]
    return float((ranks[positive].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def oos_margin(logits):
    """z_oos - the largest in-scope logit, per row: the query is predicted `oos` when it is above 0."""
    import numpy as np

    z = np.asarray(logits, dtype=np.float64)
    return z[:, OOS] - np.delete(z, OOS, axis=1).max(-1)


def bias_for_oos_count(margins, k):
    """The bias on the `oos` logit that turns exactly the k largest of these margins (`oos_margin`) positive: halfway
    between the k-th and the (k+1)-th largest. If those two are equal (a tie, not seen on real logits) both land on
    0, fewer than k turn positive, and argmax breaks the tie by label index."""
    import numpy as np

    s = np.sort(np.asarray(margins, dtype=np.float64))[::-1]
    if not 0 <= k <= len(s) or not len(s):
        raise ValueError(f"bias_for_oos_count: k={k} of {len(s)} margins; give 0 <= k <= their number (at least one)")
    if k == 0:
        return float(-s[0] - 1e-3)
    if k == len(s):
        return float(-s[-1] + 1e-3)
    return float(-(s[k - 1] + s[k]) / 2)


def match_oos_bias(student_logits, teacher_logits):
    """No labels: the bias on the student's `oos` logit that makes it predict `oos` on exactly as many of these
    queries as the teacher does (research/experiments.md part 9, a lever that was not adopted)."""
    import numpy as np

    k = int((np.asarray(teacher_logits).argmax(-1) == OOS).sum())
    return bias_for_oos_count(oos_margin(student_logits), k)


def bias_at_teacher_oos_recall(student_logits, teacher_logits, labels):
    """A measurement, not a lever (it reads the labels of the split it is fitted on): the bias on the student's `oos`
    logit that makes its OOS recall on these queries equal the teacher's (as many out-of-scope queries answered
    `oos`)."""
    import numpy as np

    oos = np.asarray(labels) == OOS
    if not oos.any():
        raise ValueError("bias_at_teacher_oos_recall: these queries hold no out-of-scope one")
    return match_oos_bias(np.asarray(student_logits)[oos], np.asarray(teacher_logits)[oos])  # on those queries only


def with_oos_bias(logits, bias):
    import numpy as np

    z = np.array(logits, dtype=np.float64)
    z[:, OOS] += bias
    return z


def test_mix_accuracy(in_scope_accuracy, oos_recall, n_in_scope=4500, n_oos=1000):
    """Accuracy at the test split's documented mix (4,500 in-scope, 1,000 out-of-scope queries); validation weighs
    out-of-scope queries at 3 %, test at 18 %."""
    return (n_in_scope * in_scope_accuracy + n_oos * oos_recall) / (n_in_scope + n_oos)


def crossfit_oos_match(student_logits, teacher_logits, labels, clinc_metrics, splits=500, seed=0):
    """What `match_oos_bias` does to queries it was not fitted on: `splits` random halvings (stratified by in-scope /
    out-of-scope), the bias fitted on one half and scored on the other, both ways; the mean change (biased - plain)
    of accuracy, in-scope accuracy, OOS recall and `test_mix_accuracy`, in points."""
    import numpy as np

    zs, zt, y = np.asarray(student_logits), np.asarray(teacher_logits), np.asarray(labels)

    def score(z, rows):
        m = clinc_metrics(y[rows], z[rows].argmax(-1))
        return np.array(
            [
                m["accuracy"],
                m["in_scope_accuracy"],
                m["oos_recall"],
                test_mix_accuracy(m["in_scope_accuracy"], m["oos_recall"]),
            ]
        )

    rng = np.random.default_rng(seed)
    oos, ins = np.flatnonzero(y == OOS), np.flatnonzero(y != OOS)
    if len(oos) < 2 or len(ins) < 2:
        raise ValueError("crossfit_oos_match needs at least 2 in-scope and 2 out-of-scope queries")
    deltas = []
    for _ in range(splits):
        half = np.zeros(len(y), bool)
        half[rng.permutation(oos)[: len(oos) // 2]] = True
        half[rng.permutation(ins)[: len(ins) // 2]] = True
        for fit, held in ((half, ~half), (~half, half)):
            biased = with_oos_bias(zs, match_oos_bias(zs[fit], zt[fit]))
            deltas.append(score(biased, held) - score(zs, held))
    d = 100 * np.mean(deltas, axis=0)
    return {
        k: round(float(v), 3) for k, v in zip(("accuracy", "in_scope_accuracy", "oos_recall", "test_mix_accuracy"), d)
    }


def metrics(logits, labels, clinc_metrics):
    """The notebook's `clinc_metrics` (accuracy, in-scope accuracy, OOS recall) plus the OOS AUROC."""
    import numpy as np

    labels = np.asarray(labels)
    ins = labels != OOS
    both = ins.any() and (~ins).any()  # a small --limit subset may lack one kind: the AUROC is then NaN
    return {
        **clinc_metrics(labels, np.asarray(logits).argmax(-1)),
        "oos_auroc": auroc(ranking_score(logits), ins) if both else float("nan"),
    }


def pooled_gap(labels, teacher_pred, student_preds, rounds=2000, seed=0):
    """Mean test accuracy of several students (one row of predictions per run) minus the teacher's, in points, with a
    95 % paired-bootstrap interval over the queries: every resample scores the teacher and each student on the same
    queries, so the interval is the split's noise for this set of runs (their seed spread is printed beside it).
    With one run it is the notebook's `paired_gap` (the same resamples)."""
    import numpy as np

    labels, teacher_pred, student_preds = np.asarray(labels), np.asarray(teacher_pred), np.asarray(student_preds)
    if student_preds.ndim == 1:
        student_preds = student_preds[None]
    if (
        labels.ndim != 1
        or not len(labels)
        or teacher_pred.shape != labels.shape
        or not len(student_preds)
        or student_preds.shape[1:] != labels.shape
    ):
        raise ValueError(
            f"pooled_gap needs one prediction per query from the teacher and each run: labels "
            f"{labels.shape}, teacher {teacher_pred.shape}, runs {student_preds.shape}"
        )
    if rounds < 1:
        raise ValueError(f"pooled_gap: rounds={rounds}; give at least 1 (2,000 is usual)")
    right, teacher_right = student_preds == labels, teacher_pred == labels
    diff = right.mean(0) - teacher_right  # per query, in [-1, 1]
    rng = np.random.default_rng(seed)
    chunk = max(1, 1_000_000 // len(diff))  # as paired_gap draws them
    means = np.concatenate(
        [diff[rng.integers(0, len(diff), (min(chunk, rounds - i), len(diff)))].mean(1) for i in range(0, rounds, chunk)]
    )
    low, high = np.quantile(means, [0.025, 0.975])
    gaps = 100 * (right.mean(1) - teacher_right.mean())
    return {
        "runs": len(student_preds),
        "gap_pt": round(100 * float(diff.mean()), 2),
        "ci95_low_pt": round(100 * float(low), 2),
        "ci95_high_pt": round(100 * float(high), 2),
        "seed_sd_pt": round(float(gaps.std(ddof=1)), 2) if len(gaps) > 1 else None,
        "queries": len(diff),
    }


PER_RUN = {
    "seed",
    "threads",
    "out",
    "report",
    "test",
    "pool",
    "oos_match",
    "val_history",
    "best_epoch",
    "seconds",
}  # not the setting


def check_poolable(runs, defaults=None):
    """Raise SystemExit unless the runs ({name: run.json}) share one setting, i.e. differ only in PER_RUN keys. An
    option a run.json lacks (written before the option existed) counts as its default from `defaults`; the teacher
    and data file are compared as absolute paths."""

    def setting(run):
        run = {**(defaults or {}), **run}
        return {k: resolved(v) if k in ("teacher", "data_file") else v for k, v in run.items() if k not in PER_RUN}

    names = sorted(runs)
    first = setting(runs[names[0]])
    for name in names[1:]:
        other = setting(runs[name])
        differ = {
            k: (first.get(k), other.get(k)) for k in sorted(set(first) | set(other)) if first.get(k) != other.get(k)
        }
        if differ:
            raise SystemExit(
                f"--pool averages seeds of one setting, but runs {names[0]!r} and {name!r} differ in "
                f"{differ}: move the other settings' runs out of the folder, or report without --pool."
            )


def keyword_free(texts, labels, keywords, words):
    """True for the in-scope queries that hold none of their intent's training keywords (out-of-scope: False).

    `keywords`: the notebook's `intent_keywords`; `words`: its `query_words`."""
    import numpy as np

    return np.array(
        [label != OOS and not (words(text) & keywords.get(label, set())) for text, label in zip(texts, labels)],
        dtype=bool,
    )


def keyword_split(logits, labels, free):
    """In-scope accuracy on the keyword-free queries (`free`, from `keyword_free`) and on the others: where a
    paraphrase shift would show."""
    import numpy as np

    labels = np.asarray(labels)
    right = np.asarray(logits).argmax(-1) == labels
    rest = (labels != OOS) & ~free
    return {
        "in_scope_kwfree": float(right[free].mean()) if free.any() else float("nan"),
        "in_scope_kw": float(right[rest].mean()) if rest.any() else float("nan"),
        "n_kwfree": int(free.sum()),
    }


def set_dropout(model, p):
    """Every dropout of a DistilBERT student at `p`: hidden, attention (eager and SDPA paths) and the head's."""
    import torch

    for key in ("dropout", "attention_dropout", "seq_classif_dropout"):
        setattr(model.config, key, p)
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = p
        if hasattr(m, "dropout_prob"):  # the SDPA attention keeps its own copy
            m.dropout_prob = p
    return model


def training_args(args, out):
    """The run's TrainingArguments: the notebook's train_student settings, on the CPU, checkpoints in <out>/partial."""
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=str(Path(out) / "partial"),
        num_train_epochs=args.epochs,
        learning_rate=args.lr,
        warmup_ratio=args.warmup_ratio,
        per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=128,
        eval_strategy="epoch",
        save_strategy="epoch",
        save_total_limit=1,
        load_best_model_at_end=True,
        metric_for_best_model="accuracy",
        remove_unused_columns=False,
        report_to="none",
        disable_tqdm=True,
        seed=args.seed,
        logging_steps=1000,
        use_cpu=True,
        group_by_length=args.group_by_length,
    )


def oos_match_rows(z, teacher_z, y, clinc_metrics, test):
    """--oos-match: the student's `match_oos_bias` fitted on the whole validation split, its cross-fitted effect there
    (`crossfit_oos_match`) and, with --test, its test metrics with that bias; also, as a measurement that sets a
    threshold on test and so is no result a notebook could produce, the student's test accuracy at the teacher's own
    test OOS recall (`test_accuracy_at_teacher_oos_recall`). Returns the row's fields and, with `test`, the two sets
    of test predictions ({"oos_match": ..., "at_teacher_oos_recall": ...}) for the gaps, else None."""
    for split in ("val", "test") if test else ("val",):
        n_oos = int((y[split] == OOS).sum())
        if n_oos < 2 or len(y[split]) - n_oos < 2:
            raise SystemExit(
                f"--oos-match: the {'validation' if split == 'val' else 'test'} split holds {n_oos} "
                f"out-of-scope and {len(y[split]) - n_oos} in-scope queries; the shift needs at least 2 "
                "of each (a --limit too small?): report without --oos-match, or with a larger --limit."
            )
    bias = match_oos_bias(z["val"], teacher_z["val"])
    out = {
        "oos_match_bias": round(bias, 4),
        "val_oos_match_delta_pt": crossfit_oos_match(z["val"], teacher_z["val"], y["val"], clinc_metrics),
    }
    if not test:
        return out, None
    preds = {
        "oos_match": with_oos_bias(z["test"], bias).argmax(-1),
        "at_teacher_oos_recall": with_oos_bias(
            z["test"], bias_at_teacher_oos_recall(z["test"], teacher_z["test"], y["test"])
        ).argmax(-1),
    }
    out["test_oos_match"] = {k: round(v, 4) for k, v in clinc_metrics(y["test"], preds["oos_match"]).items()}
    out["test_accuracy_at_teacher_oos_recall"] = round(float((preds["at_teacher_oos_recall"] == y["test"]).mean()), 4)
    return out, preds


def report(folder, clinc, ns, test=False, pool=False, defaults=None, oos_match=False):
    import numpy as np

    clinc_metrics = ns["clinc_metrics"]
    y = {"val": np.asarray(clinc["validation"]["intent"]), "test": np.asarray(clinc["test"]["intent"])}
    keywords = ns["intent_keywords"](clinc["train"]["text"], clinc["train"]["intent"])
    free = {
        split: keyword_free(clinc[name]["text"], y[split], keywords, ns["query_words"])  # the same for every run
        for split, name in (("val", "validation"), ("test", "test"))
    }

    def scores(z, split):
        both = {**metrics(z[split], y[split], clinc_metrics), **keyword_split(z[split], y[split], free[split])}
        return {f"{split}_{k}": round(v, 4) for k, v in both.items()}

    rows, runs, test_preds, shifted_preds = [], {}, {}, {}
    teacher_z = np.load(Path(folder) / "teacher" / "logits.npz") if oos_match else None
    for f in sorted(Path(folder).glob("*/logits.npz")):
        z = np.load(f)
        run = json.loads((f.parent / "run.json").read_text())
        if (len(z["val"]), len(z["test"])) != (len(y["val"]), len(y["test"])):
            raise SystemExit(
                f"{f.parent}: its logits cover {len(z['val'])} validation and {len(z['test'])} test "
                f"queries, these data {len(y['val'])} and {len(y['test'])}: report it with the "
                f"--data-file and --limit it was trained with (run.json: {run.get('data_file')!r}, "
                f"limit {run.get('limit')})."
            )
        history = run.get("val_history") or []
        row = {
            "run": f.parent.name,
            "best_epoch": run.get("best_epoch") or (1 + history.index(max(history)) if history else None),
            **scores(z, "val"),
        }
        if test:
            row.update(scores(z, "test"))
            test_preds[f.parent.name] = z["test"].argmax(-1)
        if f.parent.name != "teacher":
            runs[f.parent.name] = run
            if oos_match:
                fields, shifted_preds[f.parent.name] = oos_match_rows(z, teacher_z, y, clinc_metrics, test)
                row.update(fields)
        rows.append(row)
    if test:  # each run's paired gap to the teacher (written by main before the runs are read)
        for row in rows:
            if row["run"] != "teacher":
                gap = ns["paired_gap"](y["test"], test_preds["teacher"], test_preds[row["run"]])
                row["test_gap_pt"], row["test_gap_ci95"] = gap["gap_pt"], [gap["ci95_low_pt"], gap["ci95_high_pt"]]
                if oos_match:
                    gap = ns["paired_gap"](y["test"], test_preds["teacher"], shifted_preds[row["run"]]["oos_match"])
                    row["test_oos_match"].update(
                        gap_pt=gap["gap_pt"], gap_ci95=[gap["ci95_low_pt"], gap["ci95_high_pt"]]
                    )
    for row in rows:
        print(json.dumps(row), flush=True)
    if pool:
        if not runs:
            raise SystemExit(f"--pool: {folder} holds no student run")
        check_poolable(runs, defaults)
        names = sorted(runs)
        pooled = {
            "run": "pooled",
            "of": names,
            **pooled_gap(y["test"], test_preds["teacher"], np.stack([test_preds[n] for n in names])),
        }
        rows.append(pooled)
        print(json.dumps(pooled), flush=True)
        if oos_match:  # the shift fitted on validation; and, a measurement, each at the teacher's test OOS recall
            for kind in ("oos_match", "at_teacher_oos_recall"):
                pooled = {
                    "run": f"pooled_{kind}",
                    "of": names,
                    **pooled_gap(y["test"], test_preds["teacher"], np.stack([shifted_preds[n][kind] for n in names])),
                }
                rows.append(pooled)
                print(json.dumps(pooled), flush=True)
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_student_options(ap)
    ap.add_argument(
        "--loss", choices=sorted(LOSSES), default="kl", help="; ".join(f"{k}: {v}" for k, v in LOSSES.items())
    )
    ap.add_argument("--alpha", type=float, default=0.07, help="weight of the labels (1 = student_ce, no teacher)")
    ap.add_argument("--temperature", type=float, default=1.85)
    ap.add_argument("--beta", type=float, default=1.0, help="weight of the out-of-scope log-odds term (--loss oosreg)")
    ap.add_argument("--epochs", type=int, default=11)
    ap.add_argument(
        "--teacher-dropout-passes",
        type=int,
        default=0,
        help="average the teacher's training-set logits over this many passes with dropout on (0 = off)",
    )
    ap.add_argument(
        "--layer-decay",
        type=float,
        default=1.0,
        help="layer-wise learning-rate decay (1 = off: every weight at --lr, the notebook's way)",
    )
    ap.add_argument(
        "--dropout",
        type=float,
        default=None,
        help="every dropout of the student at this rate (default: the teacher's, 0.1 for MiniLM)",
    )
    ap.add_argument(
        "--group-by-length",
        action="store_true",
        help="batches of queries of similar length (the Trainer's group_by_length): less padding",
    )
    ap.add_argument(
        "--init-from",
        metavar="MODEL",
        help="copy the student's layers from this pretrained BERT with the teacher's vocabulary (folder or Hub "
        "id; its classifier is new) instead of from the fine-tuned teacher",
    )
    ap.add_argument(
        "--kw-substitute",
        type=float,
        default=0.0,
        metavar="P",
        help="in each distillation epoch serve a query holding its intent's keywords as a variant with them "
        "replaced by near words (keyword_variants; the teacher's logits on it as targets, its label "
        "kept), with probability P (0 = off)",
    )
    ap.add_argument("--limit", type=int, default=0, help="use only this many rows of each split (a dry run)")
    ap.add_argument("--out", help="folder of this run")
    ap.add_argument(
        "--report",
        metavar="FOLDER",
        help="print the metrics of every run under FOLDER (validation only, unless --test)",
    )
    ap.add_argument(
        "--test",
        action="store_true",
        help="with --report: also score the test split (once, after every choice), "
        "with each run's paired-bootstrap gap to the teacher",
    )
    ap.add_argument(
        "--pool",
        action="store_true",
        help="with --report --test: the runs under FOLDER are seeds of one "
        "setting; also print their mean gap to the teacher with a paired-bootstrap interval (pooled_gap)",
    )
    ap.add_argument(
        "--oos-match",
        action="store_true",
        help="with --report: each student's `oos` logit shifted so "
        "that it predicts oos on as many validation queries as the teacher (match_oos_bias) and that "
        "shift's effect, cross-fitted on validation; with --test also its test metrics and gap, and "
        "(a measurement with a threshold set on test) the accuracy at the teacher's test OOS recall "
        "(experiments.md part 9)",
    )
    args = ap.parse_args(argv)
    if not args.report and not args.out:
        ap.error("give --out FOLDER for a run, or --report FOLDER")
    if args.out and Path(args.out).name == "teacher":
        ap.error("--out: the name 'teacher' is kept for the teacher's row of --report; choose another")
    if args.oos_match and not args.report:
        ap.error("--oos-match goes with --report FOLDER: it shifts the reported students' oos logit")
    if args.pool and not (args.report and args.test):
        ap.error("--pool goes with --report FOLDER --test: it averages the runs' test gaps to the teacher")
    if not 0 <= args.kw_substitute <= 1:
        ap.error(f"--kw-substitute {args.kw_substitute} is a probability: give a value in [0, 1] (0 = off)")
    if args.kw_substitute and (args.group_by_length or args.teacher_dropout_passes):
        ap.error(
            "--kw-substitute does not combine with --group-by-length (the sampler would measure, and draw, "
            "variants) or --teacher-dropout-passes (the variants' logits are single passes)"
        )
    if not 0 <= args.label_epochs < args.epochs:
        ap.error(
            f"--label-epochs {args.label_epochs} must be at least 0 and below --epochs {args.epochs}: at least "
            "one epoch has to learn from the teacher"
        )

    import numpy as np
    import torch

    ns, tokenizer, teacher, clinc = load_teacher_and_data(args)
    if args.limit:  # a random subset (it usually holds out-of-scope queries too; if not, the AUROC is NaN)
        clinc = {
            s: clinc[s].shuffle(seed=0).select(range(min(args.limit, len(clinc[s]))))
            for s in ("train", "validation", "test")
        }

    def encode(ds):
        ds = ds.map(lambda b: tokenizer(b["text"], truncation=True, max_length=args.max_length), batched=True)
        return ds.rename_column("intent", "labels")

    train, val, test = (encode(clinc[s]) for s in ("train", "validation", "test"))
    if args.report:
        mine = Path(args.report) / "teacher"  # the teacher is a row of the report too, scored once per setting
        key = {
            "teacher": resolved(args.teacher),
            "data_file": resolved(args.data_file),
            "limit": args.limit,
            "max_length": args.max_length,
        }
        saved = json.loads((mine / "run.json").read_text()) if (mine / "run.json").is_file() else None
        if saved is not None and "val_history" in saved:
            raise SystemExit(f"{mine} holds a student run; the report keeps the teacher's logits there: move it.")
        if saved != key or not (mine / "logits.npz").is_file():
            mine.mkdir(parents=True, exist_ok=True)
            np.savez(
                mine / "logits.npz",
                val=ns["compute_logits"](teacher, val, device="cpu"),
                test=ns["compute_logits"](teacher, test, device="cpu"),
            )
            (mine / "run.json").write_text(json.dumps(key) + "\n")
        report(
            args.report,
            clinc,
            ns,
            test=args.test,
            pool=args.pool,
            defaults=vars(ap.parse_args([])),
            oos_match=args.oos_match,
        )
        return 0

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    logits = (
        dropout_logits(ns["compute_logits"], teacher, train, args.teacher_dropout_passes, args.seed)
        if args.teacher_dropout_passes
        else ns["compute_logits"](teacher, train, device="cpu")
    )
    train = ns["student_inputs"](train).add_column("idx", list(range(len(train))))
    callbacks = []
    if args.kw_substitute:
        texts, labels = clinc["train"]["text"], clinc["train"]["intent"]
        keywords = ns["intent_keywords"](texts, labels)
        near = ns["keyword_neighbours"](teacher, tokenizer, keywords)
        variants = ns["keyword_variants"](texts, labels, keywords, near, args.seed)
        rows = sorted(variants)
        vds = clinc["train"].select(rows).remove_columns("text").add_column("text", [variants[r] for r in rows])
        vds = encode(vds)
        logits = np.concatenate([logits, ns["compute_logits"](teacher, vds, device="cpu")])
        vds = ns["student_inputs"](vds).add_column("idx", list(range(len(train), len(train) + len(rows))))
        (out / "variants.json").write_text(
            json.dumps(
                {"neighbours": near, "examples": [[texts[r], variants[r]] for r in rows[:40]], "n": len(rows)}, indent=1
            )
        )
        print(
            f"{len(rows)} of {len(train)} training queries get a keyword variant; e.g. "
            + "; ".join(f"{texts[r]!r} -> {variants[r]!r}" for r in rows[:3]),
            flush=True,
        )
        train = ns["VariantDataset"](train, vds, rows, args.kw_substitute, args.seed)
        callbacks.append(ns["VariantPhase"](train, args.epochs - args.label_epochs))  # never in the label epochs
    ns["kd_loss"] = make_loss(args.loss, ns["kd_loss"], logits, args.beta)  # the Trainer looks it up here
    student = new_student(ns, teacher, args)
    if args.dropout is not None:
        set_dropout(student, args.dropout)
    targs = training_args(args, out)
    trainer = ns["DistillationTrainer"](
        model=student,
        args=targs,
        train_dataset=train,
        eval_dataset=ns["student_inputs"](val),
        processing_class=tokenizer,
        data_collator=ns["DataCollatorWithPadding"](tokenizer),
        compute_metrics=ns["trainer_metrics"],
        alpha=args.alpha,
        temperature=args.temperature,
        label_epochs=args.label_epochs,
        teacher_logits=torch.from_numpy(logits) if args.alpha < 1 else None,
        callbacks=callbacks,
        optimizers=(layer_decay_optimizer(student, targs, args.layer_decay), None)
        if args.layer_decay != 1
        else (None, None),
    )
    t0 = time.perf_counter()
    trainer.train()
    seconds = round(time.perf_counter() - t0)
    history = [round(l["eval_accuracy"], 4) for l in trainer.state.log_history if "eval_accuracy" in l]
    model = trainer.model.eval()
    np.savez(
        out / "logits.npz",
        val=ns["compute_logits"](model, val, device="cpu"),
        test=ns["compute_logits"](model, test, device="cpu"),
    )
    import shutil

    shutil.rmtree(out / "partial", ignore_errors=True)
    run = {**vars(args), "val_history": history, "best_epoch": 1 + history.index(max(history)), "seconds": seconds}
    (out / "run.json").write_text(json.dumps(run, indent=1) + "\n")
    val_metrics = metrics(np.load(out / "logits.npz")["val"], clinc["validation"]["intent"], ns["clinc_metrics"])
    print(
        json.dumps(
            {
                "run": out.name,
                "val_history": history,
                **{f"val_{k}": round(v, 4) for k, v in val_metrics.items()},
                "seconds": seconds,
            }
        ),
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""The Optuna search behind the `cpu` profile's kd_alpha, kd_temperature and student_epochs, in parallel workers.

It is the search of distill_quantize_ort.ipynb (`optuna_trials`): the same ranges (alpha in [0, 1], T in [1, 10],
epochs from half to twice --base-epochs), the same student (layers copied from the teacher), schedule and KD
Trainer (the notebook's own cells tagged `shared`/`lib`), scored by the best epoch's VALIDATION accuracy. The
test split is never read. Workers share one SQLite study, so on a 2-core CPU two of them (1 thread each) run
side by side:

    for w in 0 1; do python scripts/kd_search.py --worker $w --trials 5 \\
        --teacher artifacts/cpu/teacher --data-file data/clinc150/data_oos_plus.json.gz & done; wait
    python scripts/kd_search.py --report          # table of finished trials, best first

Each trial is a full training: about 2 minutes per epoch on one core of the reference machine. The `cpu`
profile's values came from 9 trials with --base-epochs 6 (epochs 3 to 12), see research/experiments.md (part 2)
and results/cpu/kd_search.json; a run with more threads gives close but not bit-identical accuracies.
"""

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))
from kd_common import add_student_options, load_teacher_and_data, new_student, resolve_max_length, resolved  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_student_options(ap)
    ap.add_argument(
        "--storage", default=str(ROOT / "artifacts" / "cpu" / "kd_search.db"), help="SQLite file of the study"
    )
    ap.add_argument("--study", default="cpu")
    ap.add_argument("--worker", type=int, default=0, help="worker number (seeds its sampler)")
    ap.add_argument("--trials", type=int, default=5, help="trials this worker runs")
    ap.add_argument("--base-epochs", type=int, default=6, help="epochs range: half to twice this")
    ap.add_argument("--limit", type=int, default=0, help="use only this many training/validation rows (a dry run)")
    ap.add_argument(
        "--report", action="store_true", help="print the finished trials, best first, and write them to --out"
    )
    ap.add_argument("--out", help="JSON file of --report (default: <storage> with .json)")
    args = ap.parse_args(argv)

    import optuna

    storage = f"sqlite:///{Path(args.storage).resolve()}"
    if args.report:
        study = optuna.load_study(study_name=args.study, storage=storage)
        done = sorted((t for t in study.trials if t.state.name == "COMPLETE"), key=lambda t: -t.value)
        rows = [{"trial": t.number, **t.params, "best_val_accuracy": t.value, **t.user_attrs} for t in done]
        Path(args.out or Path(args.storage).with_suffix(".json")).write_text(json.dumps(rows, indent=1) + "\n")
        for r in rows:
            print(json.dumps(r))
        return 0

    import torch
    from transformers import TrainingArguments

    resolve_max_length(args)
    # the study first: a mismatch stops here, before the teacher's logits
    Path(args.storage).parent.mkdir(parents=True, exist_ok=True)
    sampler = optuna.samplers.TPESampler(seed=args.seed + args.worker, n_startup_trials=4)
    for attempt in range(5):  # workers started together may race to create the study
        try:
            study = optuna.create_study(
                study_name=args.study, storage=storage, direction="maximize", load_if_exists=True, sampler=sampler
            )
            break
        except Exception:
            if attempt == 4:
                raise
            time.sleep(1 + args.worker)
    setting = {
        "teacher": resolved(args.teacher),
        "layers": args.layers,
        "base_epochs": args.base_epochs,
        "label_epochs": args.label_epochs,
        "freeze_embeddings": args.freeze_embeddings,
        "lr": args.lr,
        "batch_size": args.batch_size,
        "max_length": args.max_length,
        "seed": args.seed,
        "limit": args.limit,
        "data_file": resolved(args.data_file),
    }
    if args.warmup_ratio:  # recorded only when used, so studies started before the option stay resumable
        setting["warmup_ratio"] = args.warmup_ratio
    saved = study.user_attrs.get("setting")
    if saved is None:
        study.set_user_attr("setting", setting)
    elif saved != setting:  # trials of different settings must not share one study
        keys = list(setting) + [k for k in saved if k not in setting]  # a setting dropped since counts too
        diff = ", ".join(f"{k} {saved.get(k)!r} -> {setting.get(k)!r}" for k in keys if saved.get(k) != setting.get(k))
        raise SystemExit(
            f"Study {args.study!r} in {args.storage} was started with other settings ({diff}): "
            "give another --study or --storage, or the same settings."
        )
    ns, tokenizer, teacher, clinc = load_teacher_and_data(args)

    def encode(split):
        ds = clinc[split].select(range(min(args.limit, len(clinc[split])))) if args.limit else clinc[split]
        ds = ds.map(lambda b: tokenizer(b["text"], truncation=True, max_length=args.max_length), batched=True)
        return ds.rename_column("intent", "labels")

    train, val = encode("train"), encode("validation")
    logits = ns["compute_logits"](teacher, train, device="cpu")  # once, reused by every trial of this worker
    train = ns["student_inputs"](train).add_column("idx", list(range(len(train))))
    val = ns["student_inputs"](val)
    low, high = max(1, args.base_epochs // 2), args.base_epochs * 2

    def objective(trial):
        alpha = trial.suggest_float("kd_alpha", 0.0, 1.0)
        temperature = trial.suggest_float("kd_temperature", 1.0, 10.0)
        epochs = trial.suggest_int("student_epochs", low, high)
        student = new_student(ns, teacher, args)
        targs = TrainingArguments(
            output_dir=str(Path(args.storage).parent / f"kd_search-{args.worker}.partial"),
            num_train_epochs=epochs,
            learning_rate=args.lr,
            warmup_ratio=args.warmup_ratio,
            per_device_train_batch_size=args.batch_size,
            per_device_eval_batch_size=128,
            eval_strategy="epoch",
            save_strategy="no",
            remove_unused_columns=False,
            report_to="none",
            disable_tqdm=True,
            seed=args.seed,
            logging_steps=1000,
            use_cpu=True,
        )
        trainer = ns["DistillationTrainer"](
            model=student,
            args=targs,
            train_dataset=train,
            eval_dataset=val,
            processing_class=tokenizer,
            data_collator=ns["DataCollatorWithPadding"](tokenizer),
            compute_metrics=ns["trainer_metrics"],
            alpha=alpha,
            temperature=temperature,
            label_epochs=args.label_epochs,
            teacher_logits=torch.from_numpy(logits) if alpha < 1 else None,
        )
        t0 = time.perf_counter()
        trainer.train()
        history = [round(l["eval_accuracy"], 4) for l in trainer.state.log_history if "eval_accuracy" in l]
        trial.set_user_attr("val_history", history)
        trial.set_user_attr("freeze_embeddings", args.freeze_embeddings)
        trial.set_user_attr("seconds", round(time.perf_counter() - t0))
        print(
            json.dumps({"worker": args.worker, "trial": trial.number, **trial.params, "val_history": history}),
            flush=True,
        )
        return max(history)  # the best epoch, as the notebook's final training keeps it

    study.optimize(objective, n_trials=args.trials)
    print(f"best so far: {study.best_value:.4f} with {study.best_params}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

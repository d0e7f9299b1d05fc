#!/usr/bin/env python3
"""An edge bundle built from a saved student folder the way notebook 2 builds ort_int8_dynamic's (Optimum export,
ORTOptimizer at level 99, ONNX Runtime's dynamic int8 with the CPU's preset, the notebook's write_bundle and
model_card, the repository's edge/ files), for measuring a bundle of a trained model without a whole run of
notebook 2. Accuracy and threshold in the card are measured here on the test split (threshold: the notebook's
balanced rule on validation).

    python research/bundle_from_student.py artifacts/cpu/student_ce /tmp/edge \\
        --data-file data/clinc150/data_oos_plus.json.gz
"""

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
from nbcode import namespace  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("student", help="a saved student folder (model + tokenizer), e.g. artifacts/cpu/student_ce")
    ap.add_argument("out", help="the bundle folder to write")
    ap.add_argument("--data-file", required=True)
    ap.add_argument("--max-length", type=int, default=64)
    ap.add_argument("--fp32", action="store_true", help="ship the optimised fp32 graph (ort_opt) instead of int8")
    args = ap.parse_args(argv)
    from onnxruntime.quantization import quantize_dynamic
    from optimum.onnxruntime import ORTModelForSequenceClassification, ORTOptimizer
    from optimum.onnxruntime.configuration import AutoQuantizationConfig, OptimizationConfig
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    student, out = Path(args.student), Path(args.out)
    work = out.parent / (out.name + ".work")
    tok = AutoTokenizer.from_pretrained(student)
    ns = namespace("distill", fp16=False, max_length=args.max_length, tokenizer=tok)
    data, task = ns["load_task"](data_file=args.data_file)
    labels, oos_id = task["labels"], task["oos_id"]
    ORTModelForSequenceClassification.from_pretrained(student, export=True).save_pretrained(work / "fp32")
    ORTOptimizer.from_pretrained(work / "fp32").optimize(
        save_dir=work / "opt", optimization_config=OptimizationConfig(optimization_level=99, optimize_for_gpu=False)
    )
    isa = ns["cpu_description"]()["isa"]
    preset = getattr(AutoQuantizationConfig, isa)(is_static=False, per_channel=True)
    model_file = work / "int8" / "model.onnx"
    model_file.parent.mkdir(parents=True)
    quantize_dynamic(
        next((work / "opt").glob("*.onnx")),
        model_file,
        per_channel=True,
        reduce_range=preset.reduce_range,
        weight_type=preset.weights_dtype,
        op_types_to_quantize=list(preset.operators_to_quantize),
        extra_options={"DefaultTensorType": 1},
    )
    name = "ort_opt" if args.fp32 else "ort_int8_dynamic"
    model_file = next((work / "opt").glob("*.onnx")) if args.fp32 else model_file
    stage = ns["onnx_stage"](name, model_file, 0, 1)
    val_batches = ns["length_batches"](list(data["validation"]["text"]), 64, tok)
    test_batches = ns["length_batches"](list(data["test"]["text"]), 64, tok)
    ns["LABELS"] = labels
    val = ns["predict_all"](stage, val_batches, len(data["validation"]))
    test = ns["predict_all"](stage, test_batches, len(data["test"]))
    y_val, y_test = np.array(data["validation"]["label"]), np.array(data["test"]["label"])
    metrics = ns["task_metrics"](y_test, test.argmax(-1), oos_id)
    ns["OOS_ID"] = oos_id
    threshold = ns["choose_threshold"](val, y_val, 0.5) if oos_id is not None else None  # the "balanced" objective
    thr = ns["task_metrics"](y_test, ns["apply_threshold"](test, threshold), oos_id) if oos_id is not None else metrics
    config = AutoModelForSequenceClassification.from_pretrained(student).config
    facts = {
        "name": f"{task['name']} {student.name} {name}",
        "task": task["name"],
        "labels": len(labels),
        "stage": name,
        "run_name": student.parent.name,
        "model_file": "onnx/" + ns["onnx_file_name"](name),
        "size_mb": ns["file_size_mb"]([model_file]),
        "accuracy": metrics["accuracy"],
        "macro_f1": metrics["macro_f1"],
        "accuracy_thr": thr["accuracy"],
        "oos_label": task["oos_label"],
        "threshold": threshold,
        "latency_ms": float("nan"),
        "threads": 1,
        "cpu": ns["cpu_description"]()["cpu"],
        "dataset_id": "clinc/clinc_oos" if task["clinc"] else None,
        "dataset_config": "plus" if task["clinc"] else None,
        "language": "en" if task["clinc"] else None,
        "base_model": None,
        "license": "apache-2.0",
        "repo": ".",
        "pruned_tokens": 0,
    }
    ns["write_bundle"](
        out,
        model_file,
        tok,
        config,
        {
            "oos_label": task["oos_label"],
            "threshold": threshold,
            "max_length": args.max_length,
            "stage": name,
            "run_name": student.parent.name,
            "oos_objective": "balanced",
        },
        ns["model_card"](facts),
    )
    shutil.copy(REPO / "edge" / "predict.py", out / "predict.py")
    for name in ("index.html", "app.js"):
        shutil.copy(REPO / "edge" / "web" / name, out / "web" / name)
    (out / "metrics.json").write_text(
        json.dumps(
            {
                "stage": name,
                "run_name": student.parent.name,
                "task": task["name"],
                "test_accuracy": metrics["accuracy"],
                "test_accuracy_thr": thr["accuracy"],
            }
        )
    )
    shutil.rmtree(work)
    print(json.dumps({"bundle": str(out), "isa": isa, "test": metrics, "threshold": threshold, "test_thr": thr}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

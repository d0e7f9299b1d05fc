#!/usr/bin/env python3
"""Write CLINC150's 10 domains as a plain CSV task: one file, columns `text` and `label` (the domain's name), no
out-of-scope rows, no split column (the notebooks split validation and test off it, stratified).

It is the "someone else's CSV" example of the README: the authors' data_full.json (every in-scope query of
train, val and test, 22,500 in all) and domains.json (which intents make up each domain). The CSV is not committed.

    # DATA: the authors' data folder (github.com/clinc/oos-eval)
    python scripts/make_domains_csv.py DATA /tmp/clinc_domains.csv
    make run DATA=/tmp/clinc_domains.csv RUN=domains ARGS="-p validation_share 0.1333 -p test_share 0.2"
"""

import argparse
import csv
import json
from pathlib import Path


def domain_rows(folder):
    """[(text, domain)] for every in-scope query of data_full.json, in the file's order (train, val, test)."""
    folder = Path(folder)
    full = json.loads((folder / "data_full.json").read_text())
    domain_of = {
        intent: domain
        for domain, intents in json.loads((folder / "domains.json").read_text()).items()
        for intent in intents
    }
    return [(text, domain_of[intent]) for key in ("train", "val", "test") for text, intent in full[key]]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("clinc_folder", help="folder with the authors' data_full.json and domains.json")
    ap.add_argument("out", help="the CSV to write")
    args = ap.parse_args(argv)
    rows = domain_rows(args.clinc_folder)
    with open(args.out, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    print(f"{len(rows)} rows, {len({d for _, d in rows})} domains -> {args.out}")


if __name__ == "__main__":
    main()

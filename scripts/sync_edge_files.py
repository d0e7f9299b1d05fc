#!/usr/bin/env python3
"""Copy the edge bundle's files (edge/predict.py, edge/web/index.html, edge/web/app.js) into notebook 2's
`%%writefile "{EDGE}/..."` cells, so that the notebook stands alone in Colab and carries them verbatim.

Edit the files in edge/ (where ruff and the unit tests read them), then run this; tests/test_bundle.py fails while a
copy differs.

    python scripts/sync_edge_files.py
"""

import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "distill_quantize_ort.ipynb"
HEADER = re.compile(r'%%writefile "\{EDGE\}/([^"]+)"\n')


def main():
    nb = json.loads(NOTEBOOK.read_text())
    changed = []
    for cell in nb["cells"]:
        src = "".join(cell["source"])
        m = HEADER.match(src)
        if cell["cell_type"] != "code" or not m:
            continue
        text = m.group(0) + (REPO / "edge" / m.group(1)).read_text()
        if text != src:
            lines = text.split("\n")
            cell["source"] = [line + "\n" for line in lines[:-1]] + ([lines[-1]] if lines[-1] else [])
            changed.append(m.group(1))
    if changed:
        NOTEBOOK.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    print(f"{NOTEBOOK.name}: updated {', '.join(changed)}" if changed else f"{NOTEBOOK.name}: already in step")
    return 0


if __name__ == "__main__":
    sys.exit(main())

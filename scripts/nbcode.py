"""Load code cells of the notebooks by tag, so that tests and scripts use the notebooks' own functions."""

import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = {"finetuning": REPO / "finetuning.ipynb", "distill": REPO / "distill_quantize_ort.ipynb"}


def cells(notebook, tag=None):
    nb = json.loads(Path(NOTEBOOKS.get(notebook, notebook)).read_text())
    out = [c for c in nb["cells"] if c["cell_type"] == "code"]
    if tag:
        out = [c for c in out if tag in c.get("metadata", {}).get("tags", [])]
    return ["".join(c["source"]) for c in out]


def namespace(notebook, tags=("shared", "lib"), **globals_):
    """Execute, in order, the cells carrying any of `tags`, in a namespace pre-filled with `globals_`."""
    ns = {"__name__": "notebook_under_test", **globals_}
    nb = json.loads(Path(NOTEBOOKS.get(notebook, notebook)).read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code" and set(tags) & set(cell.get("metadata", {}).get("tags", [])):
            exec(compile("".join(cell["source"]), f"<{notebook} cell>", "exec"), ns)
            ns.update(globals_)  # a cell must not undo what the test pinned
    return ns

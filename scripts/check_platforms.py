#!/usr/bin/env python3
"""Check the notebooks' setup-cell install on a simulated Colab or Kaggle image. Not part of CI: it needs the
package index, 7-18 minutes a platform on 2 shared cores (measured: colab 7 and 18, kaggle 9 and 11, smoke runs and
the venvs' deletion included) and 8-12 GB of disk while it runs (torch's CUDA libraries from PyPI are half of it).

A venv with the platform's Python gets, with --no-deps at the versions of the platform's published `pip freeze`,
the packages that matter: those the setup cell's pip line touches, the image's packages that require one of CORE
(DEPENDENTS), and from the freeze whatever these require or the pip line would add (pip's --dry-run report).
torch is PyPI's wheel of the freeze's version (the +cuXXX build is not on PyPI); that wheel cannot import without
its CUDA libraries, so these are then added, and the run says so. Kaggle: the lines of its requirements file that
name an installed package or one of the pip line's are installed over the freeze (the image's tensorflow, keras,
torch and jax kept, as its Dockerfile does; unpinned ones such as onnx and optuna come at today's versions), then
protobuf is forced back (--force). Then, as on the platform, the setup cell's `python -m pip install -q
*REQUIREMENTS` (REQUIREMENTS and stale_modules() are read from finetuning.ipynb's first `shared` code cell) runs
from a Python that imported numpy and pandas, and again in a copy of the venv from one that imported nothing;
stale_modules() then tells whether a restart would be asked. Recorded: pip's dependency conflict lines, every
version change, the time, failing imports of the libraries the notebooks use (USE_TF=0 as the setup cell sets it)
and, unless --no-smoke, both notebooks' `smoke` profile run with papermill on the tests' tiny offline data and
model (papermill and ipykernel are added for it: see added_for_smoke). Findings go to results/platforms/<name>.json;
the venvs are deleted unless --keep. pip runs without this machine's pip settings (PIP_CONFIG_FILE=os.devnull), so
versions come from the package index as on the platforms. Standard library only.

    python scripts/check_platforms.py --platform colab --freeze PATH/colab-gpu-pip-freeze-2026-08-19.txt
    python scripts/check_platforms.py --platform kaggle --freeze PATH/colab-gpu-pip-freeze-2026-05-11.txt \\
        --kaggle-requirements PATH/kaggle-requirements-2026-08-12.txt
    python scripts/check_platforms.py --freeze my-pip-freeze.txt --python python3.12 --name mine --no-smoke
"""

import argparse
import ast
import datetime
import glob
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PRESETS = {
    "colab": {"python": "3.13", "freeze": "colab-gpu-pip-freeze-2026-08-19.txt", "force": []},
    "kaggle": {
        "python": "3.12",
        "freeze": "colab-gpu-pip-freeze-2026-05-11.txt",
        "force": ["protobuf==5.29.5"],
        "kaggle_requirements": "kaggle-requirements-2026-08-12.txt",
    },
}
CORE = {"numpy", "pandas", "pyarrow", "protobuf", "huggingface-hub", "fsspec", "transformers", "datasets"}
TOUCHED = CORE | set(
    "tokenizers accelerate safetensors torchao sentencepiece gradio gradio-client grpcio-status "
    "google-ai-generativelanguage ydf pip setuptools wheel".split()
)
# The images' packages whose metadata requires one of CORE (most of them numpy); a run lists any that does not.
DEPENDENTS = set(
    """access albucore albumentations ale-py arviz astropy autograd bigframes bigquery-magics blis blosc2
bokeh bottleneck bqplot clarabel cmdstanpy contourpy cvxpy dask db-dtypes diffusers dm-tree dopamine-rl esda fastai
flax folium gcsfs geemap geopandas google-api-core google-cloud-bigquery-connection google-cloud-bigquery-storage
google-cloud-datastore google-cloud-dataproc google-cloud-firestore google-cloud-functions google-cloud-language
google-cloud-monitoring google-cloud-resource-manager google-cloud-spanner google-cloud-translate google-generativeai
googleapis-common-protos grain grpc-google-iam-v1 gspread-dataframe gymnasium h5py hdbscan highspy holoviews hyperopt
imageio imbalanced-learn inequality kaggle kagglesdk keras keras-hub libpysal librosa lightgbm mapclassify matplotlib
mgwr missingno mizani ml-dtypes mlxtend momepy nibabel numba numexpr optax orbax-checkpoint osqp pandas-datareader
pandas-gbq pandas-stubs patsy peft plotnine pointpats prophet proto-plus pycocotools pyerfa pyiceberg pymc pyogrio
pysal pytensor pywavelets quantecon rasterio rasterstats scikit-image scikit-learn scipy scs seaborn segregation
sentence-transformers shap shapely sklearn-pandas soundfile soxr spaghetti spglm spint splot spopt spreg stanio
statsmodels stumpy tables tensorboard tensorflow-datasets tensorflow-hub tensorflow-metadata tensorflow-probability
tensorstore thinc tifffile timm tobler torchtune torchvision treelite tsfresh umap-learn vega-datasets wandb wordcloud
xarray xarray-einstats yellowbrick yfinance""".split()
)
# Never installed from the freeze: TensorFlow, JAX and the GPU stack (torch comes on its own), and numpy-only
# dependents over 80 MB (opencv, spacy, music21, xgboost, panel, plotly), to stay under ~8 GB.
SKIP = re.compile(
    r"^(tensorflow|tensorflow-text|tf-keras|ydf-tf|jax|jaxlib|jax-cuda.*|nvidia-.*|cuda-.*|cupy-.*|"
    r".*-cu12|triton|torch|pyspark|mkl|tbb|intel-.*|onemkl-license|tcmlib|umf|opencv-.*|spacy|"
    r"music21|xgboost|panel|plotly)$"
)
IMPORTS = """import transformers; from transformers import Trainer, TrainingArguments
import datasets
import accelerate
from optimum.onnxruntime import ORTModelForSequenceClassification, ORTOptimizer
import onnx
import onnxruntime
from onnxruntime.quantization import quantize_dynamic, quantize_static, QuantFormat, QuantType
from onnxruntime.quantization.matmul_nbits_quantizer import DefaultWeightOnlyQuantConfig, MatMulNBitsQuantizer
import onnx_ir
import torchao; from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_
import optuna
import matplotlib.pyplot
import pandas
import sklearn.metrics
from huggingface_hub import ModelCard, ModelCardData, EvalResult
from model2vec.distill import distill
import fasttext""".splitlines()
# Runs in the venv: {name: [version, [requirements that apply here, extras left out]]}, with pip's own packaging.
META = r"""import json, re, sys
from importlib.metadata import distributions
from pip._vendor.packaging.requirements import Requirement
canon = lambda n: re.sub(r"[-_.]+", "-", n).lower()
out = {}
for d in distributions():
    reqs = [Requirement(r) for r in d.requires or []]
    ok = [canon(r.name) for r in reqs if r.marker is None or r.marker.evaluate({"extra": ""})]
    out[canon(d.metadata["Name"])] = [d.version, sorted(set(ok))]
json.dump(out, open(sys.argv[1], "w"))
"""
# Runs in the venv: the setup cell's install from a session that imported {imports}, then its stale_modules().
SESSION = r"""import json, subprocess, sys, time
{imports}
requirements = json.loads(sys.argv[1])
t0 = time.perf_counter()
proc = subprocess.run([sys.executable, "-m", "pip", "install", "-q", *requirements], capture_output=True, text=True)
seconds = round(time.perf_counter() - t0, 1)
{stale_modules}
json.dump({{"rc": proc.returncode, "stderr": proc.stderr, "seconds": seconds, "stale": stale_modules()}},
          open(sys.argv[2], "w"))
"""
PIP_ENV = {k: v for k, v in os.environ.items() if not k.startswith("PIP_") or k == "PIP_CERT"}
PIP_ENV.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_CACHE_DIR="1")


def canon(requirement):
    """The normalized project name of a requirement or name: 'Foo_Bar[x]>=1' -> 'foo-bar'."""
    return re.sub(r"[-_.]+", "-", re.split(r"[\[<>=!~ ;@]", requirement.strip())[0]).lower()


def run(cmd, check=True, **kwargs):
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kwargs)
    if check and proc.returncode:
        raise SystemExit(f"{' '.join(map(str, cmd))[:300]} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    return proc


def pip(py, *args, check=True):
    return run([py, "-m", "pip", *args], check=check, env=PIP_ENV)


def metadata(py, work):
    run([py, "-c", META, work / "meta.json"])
    return json.loads((work / "meta.json").read_text())


def diff(before, after):
    old, new = ({n: v[0] for n, v in m.items()} for m in (before, after))
    return {n: [old.get(n), new.get(n)] for n in sorted(set(old) | set(new)) if old.get(n) != new.get(n)}


def read_freeze(path):
    """{name: version} of the `name==version` lines of a pip freeze (URL and file installs are left out)."""
    lines = Path(path).read_text().splitlines()
    return {canon(m[1]): m[2] for m in (re.match(r"([A-Za-z0-9._-]+)==(\S+)$", ln.strip()) for ln in lines) if m}


def install_pins(py, pins):
    """pip install --no-deps name==version (local versions such as +cu128 dropped); returns {name: pip's reason}
    for those without a wheel on the index, which are left out."""
    failed = {}
    while pins:
        reqs = [f"{n}=={v.split('+')[0]}" for n, v in sorted(pins.items())]
        proc = pip(py, "install", "-q", "--no-deps", "--only-binary", ":all:", *reqs, check=False)
        if proc.returncode == 0:
            break
        m = re.search(r"No matching distribution found for (\S+)==\S+", proc.stderr)
        if not m or canon(m.group(1)) not in pins:
            raise SystemExit(f"pip install --no-deps failed:\n{proc.stderr[-3000:]}")
        failed[canon(m.group(1))] = m.group(0)
        del pins[canon(m.group(1))]
    return failed


def setup_cell():
    """REQUIREMENTS and the source of stale_modules() from finetuning.ipynb's first code cell tagged `shared`."""
    cells = json.loads((REPO / "finetuning.ipynb").read_text())["cells"]
    shared = [c for c in cells if c["cell_type"] == "code" and "shared" in c["metadata"].get("tags", [])]
    src = "".join(shared[0]["source"])
    body = ast.parse(src).body
    assigned = {getattr(n.targets[0], "id", ""): n.value for n in body if isinstance(n, ast.Assign)}
    reqs = ast.literal_eval(assigned["REQUIREMENTS"])
    stale = next(ast.get_source_segment(src, n) for n in body if getattr(n, "name", "") == "stale_modules")
    return reqs, stale


def session(py, work, tag, imports, requirements, stale_src):
    (work / f"{tag}.py").write_text(SESSION.format(imports=imports, stale_modules=stale_src))
    run([py, work / f"{tag}.py", json.dumps(requirements), work / f"{tag}.json"], env=PIP_ENV)
    return json.loads((work / f"{tag}.json").read_text())


def find_python(version):
    """The first working python{version}: on PATH, else pyenv's (PYENV_ROOT or ~/.pyenv), newest first."""
    root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    pyenv = sorted(glob.glob(f"{root}/versions/{version}.*/bin/python3"), reverse=True)
    candidates = [shutil.which(f"python{version}"), *pyenv]
    for found in filter(None, candidates):
        if run([found, "-c", "import venv"], check=False).returncode == 0:
            return found
    raise SystemExit(f"No working Python {version} found: pass --python PATH")


def smoke(py, work, timeout):
    """Both notebooks' smoke profile with papermill, on the tests' tiny offline data and model (tests/tiny.py)."""
    world, env = work / "smoke", {**os.environ, "USE_TF": "0", "OMP_NUM_THREADS": "1"}
    data, base = world / "clinc.json", world / "tiny-bert"
    code = "import sys, tiny; tiny.make_tiny_bert(sys.argv[1], tiny.make_clinc_file(sys.argv[2]))"
    world.mkdir()
    proc = run([py, "-c", code, base, data], check=False, cwd=REPO, env={**env, "PYTHONPATH": str(REPO / "tests")})
    if proc.returncode:
        return {"passed": False, "error": "tiny world: " + "\n".join(proc.stderr.splitlines()[-8:])}
    env.update(FDQ_PROFILE="smoke", FDQ_DATA_FILE=str(data), FDQ_TEACHER_BASE=str(base), HF_HUB_OFFLINE="1")
    env.update(FDQ_ARTIFACTS_DIR=f"{world}/artifacts", FDQ_RESULTS_DIR=f"{world}/results", HF_DATASETS_OFFLINE="1")
    result = {"passed": True, "seconds": {}}
    for i, notebook in enumerate(["finetuning.ipynb", "distill_quantize_ort.ipynb"], 1):
        t0, cmd = time.time(), [py, "-m", "papermill", notebook, world / f"out{i}.ipynb", "-k", "python3"]
        try:
            proc = run(cmd + ["--cwd", REPO], check=False, env=env, timeout=timeout, cwd=REPO)
            error = proc.returncode and "\n".join(proc.stderr.strip().splitlines()[-12:])
        except subprocess.TimeoutExpired:
            error = f"timed out after {timeout} s"
        result["seconds"][notebook] = round(time.time() - t0)
        if error:
            return {**result, "passed": False, "failed": notebook, "error": error}
    return result


def build(py, pins, requirements, work, report):
    """The image's packages that matter, at the freeze's versions, in the venv of `py`."""
    pip(py, "install", "-q", f"pip=={pins['pip']}")
    torch = pins["torch"].split("+")[0]
    pip(py, "install", "-q", "--no-deps", f"torch=={torch}")
    pins = {n: v for n, v in pins.items() if not SKIP.match(n)}
    todo, failed = (TOUCHED | DEPENDENTS | {canon(r) for r in requirements}) & set(pins), {}
    while todo:  # then what the installed packages require from the freeze, or else what the pip line would add
        failed.update(install_pins(py, {n: pins[n] for n in todo}))
        meta = metadata(py, work)
        todo = {r for n in meta for r in meta[n][1]} & set(pins) - set(meta) - set(failed)
        if not todo:
            pip(py, "install", "-q", "--dry-run", "--report", work / "dry.json", *requirements)
            todo = {canon(p["metadata"]["name"]) for p in json.loads((work / "dry.json").read_text())["install"]}
            todo = todo & set(pins) - set(meta) - set(failed)
    report["from_freeze"] = {n: meta[n][0] for n in sorted(meta)}
    report["no_wheel"] = failed
    no_core = [n for n in DEPENDENTS & set(meta) if not CORE & set(meta[n][1])]
    report["dependents_without_core_requirement"] = sorted(no_core)
    probe = run([py, "-c", "import torch"], check=False)
    error = probe.returncode and probe.stderr.strip().splitlines()[-1]
    report["torch"] = {"version": torch, "no_deps_import_error": error}
    if probe.returncode:  # PyPI's wheel is a CUDA build: it needs its CUDA libraries just to import
        pip(py, "install", "-q", f"torch=={torch}")
        report["torch"]["added_with_its_requirements"] = diff(meta, metadata(py, work))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--platform", choices=sorted(PRESETS), help="defaults for the options below")
    ap.add_argument(
        "--lists",
        help="a folder holding the platform's published lists under their preset names "
        "(googlecolab/backend-info's pip-freeze.gpu.txt, Kaggle/docker-python's kaggle_requirements.txt)",
    )
    ap.add_argument("--freeze", help="the platform's pip freeze file")
    ap.add_argument("--kaggle-requirements", help="Kaggle's kaggle_requirements.txt, installed over the freeze")
    ap.add_argument("--force", action="append", help="requirement force-reinstalled with --no-deps after (repeat)")
    ap.add_argument("--python", help="interpreter of the venv (default: the platform's Python version)")
    ap.add_argument("--name", help="name of the results file (default: the platform)")
    ap.add_argument("--workdir", help="where the venvs go (default: a new temporary folder)")
    ap.add_argument("--keep", action="store_true", help="keep the venvs")
    ap.add_argument("--no-smoke", dest="smoke", action="store_false", help="skip the notebooks' smoke runs")
    ap.add_argument("--smoke-timeout", type=int, default=1800, help="seconds per notebook (default 1800)")
    a = ap.parse_args()
    preset = PRESETS.get(a.platform, {})
    if not a.freeze and not preset:
        ap.error("pass --freeze PATH (and --python), or --platform colab|kaggle")
    files = {"freeze": a.freeze, "kaggle_requirements": a.kaggle_requirements}
    for key in [k for k in files if files[k] is None and k in preset]:
        files[key] = Path(a.lists or ".") / preset[key]
        if not files[key].is_file():
            raise SystemExit(f"{files[key]} is missing: pass --{key.replace('_', '-')} PATH, or --lists DIR")
    python = a.python or find_python(preset.get("python", "3"))
    force, name = a.force or preset.get("force", []), a.name or a.platform or "custom"
    t_start, work = time.time(), Path(a.workdir or tempfile.mkdtemp(prefix="check_platforms_")) / name
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    py, fresh = work / "venv" / "bin" / "python", work / "venv_fresh"
    report = {
        "platform": name,
        "date": datetime.date.today().isoformat(),
        "freeze": Path(files["freeze"]).name,
        "kaggle_requirements": files["kaggle_requirements"] and Path(files["kaggle_requirements"]).name,
    }
    try:
        requirements, stale_src = setup_cell()
        print(f"[{name}] venv of {python}; the setup cell's pip line: {' '.join(requirements)}", flush=True)
        run([python, "-m", "venv", work / "venv"])
        report["python"] = run([py, "-c", "import platform; print(platform.python_version())"]).stdout.strip()
        pins = read_freeze(files["freeze"])
        build(py, pins, requirements, work, report)
        before = metadata(py, work)
        if files["kaggle_requirements"]:  # as Kaggle's Dockerfile: the image's tensorflow, keras, torch, jax are kept
            names = set(before) | {canon(r) for r in requirements}
            lines = [
                line.strip()
                for line in Path(files["kaggle_requirements"]).read_text().splitlines()
                if re.match(r"[A-Za-z0-9]", line) and canon(line) in names
            ]
            keep = [f"{n}=={v.split('+')[0]}" for n, v in pins.items() if re.search("tensorflow|keras|torch|jax", n)]
            (work / "keep.txt").write_text("\n".join(keep) + "\n")
            pip(py, "install", "-q", "-c", work / "keep.txt", *lines)
            report["kaggle_lines_installed"] = lines
        if force:
            pip(py, "install", "-q", "--force-reinstall", "--no-deps", *force)
        report["image_changes_after_freeze"], report["forced"] = diff(before, metadata(py, work)), force
        before = metadata(py, work)
        report["venv_mb"] = round(sum(f.stat().st_size for f in (work / "venv").rglob("*") if f.is_file()) / 2**20)
        run(["cp", "-al", work / "venv", fresh])  # the same state for the fresh session (hard links: no copy)

        print(f"[{name}] the pip line from a session that imported numpy and pandas ...", flush=True)
        main_run = session(py, work, "imported", "import numpy, pandas", requirements, stale_src)
        report["pip_line"] = "python -m pip install -q " + " ".join(requirements)
        report["install_rc"], report["install_seconds"] = main_run["rc"], main_run["seconds"]
        lines = main_run["stderr"].splitlines()
        report["conflicts"] = [ln for ln in lines if " requires " in ln and "but you have" in ln]
        report["pip_stderr"] = lines[-20:]
        after = metadata(py, work)
        report["changed"] = diff(before, after)
        print(f"[{name}] the same from a fresh session, in a copy ...", flush=True)
        fresh_run = session(fresh / "bin" / "python", work, "fresh", "", requirements, stale_src)
        shutil.rmtree(fresh)
        report["restart"] = {
            "fresh_session": fresh_run["stale"],
            "numpy_pandas_imported": main_run["stale"],
            "fresh_install_seconds": fresh_run["seconds"],
        }
        report["import_failures"], report["import_seconds"] = {}, {}
        for stmt in IMPORTS:
            t0, proc = time.time(), run([py, "-c", stmt], check=False, env={**os.environ, "USE_TF": "0"})
            report["import_seconds"][stmt] = round(time.time() - t0, 1)
            if proc.returncode:
                report["import_failures"][stmt] = proc.stderr.strip().splitlines()[-1]
        if a.smoke:
            print(f"[{name}] both notebooks' smoke profile with papermill ...", flush=True)
            pip(py, "install", "-q", "papermill", "ipykernel")
            report["added_for_smoke"] = diff(after, metadata(py, work))
            report["smoke"] = smoke(py, work, a.smoke_timeout)
    finally:
        lscpu = run(["lscpu"], check=False).stdout.splitlines()
        cpu = [ln.split(":", 1)[1].strip() for ln in lscpu if ln.startswith("Model name")]
        report["machine"] = cpu[0] if cpu else "?"
        if not a.keep:
            shutil.rmtree(work.parent if not a.workdir else work, ignore_errors=True)
        report["total_seconds"] = round(time.time() - t_start)  # deleting the venvs included
        out = REPO / "results" / "platforms" / f"{name}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=1) + "\n")
    r = report
    print(f"\n{name}: Python {r['python']}, {len(r['from_freeze'])} packages; whole check {r['total_seconds']} s")
    print(f"pip line: rc {r['install_rc']}, {r['install_seconds']} s; conflict lines: {r['conflicts'] or 'none'}")
    print("changed: " + ", ".join(f"{n} {old} -> {new}" for n, (old, new) in r["changed"].items()))
    print(f"restart asked: {r['restart']}\nimport failures: {r['import_failures'] or 'none'}")
    print(f"smoke: {r.get('smoke', 'not run')}\nwritten: {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()

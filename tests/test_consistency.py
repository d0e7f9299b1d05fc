"""The two notebooks stay in step: shared cells identical, pins agree, one parameters cell, no outputs."""

import ast
import json

import pytest
from nbcode import NOTEBOOKS, REPO, cells


def params_cell(nb):
    (src,) = cells(nb, "parameters")
    tree = ast.parse(src)
    knobs = [
        n.targets[0].id
        for n in tree.body
        if isinstance(n, ast.Assign) and not n.targets[0].id.startswith("_") and n.targets[0].id != "PROFILES"
    ]
    ns = {}
    exec(src, ns)
    return knobs, ns


def test_shared_cells_are_identical():
    a, b = cells("finetuning", "shared"), cells("distill", "shared")
    assert len(a) >= 4, "the setup, environment, helper and data cells are shared"
    assert a == b, "a cell tagged 'shared' differs between the notebooks: copy it across"


@pytest.mark.parametrize("nb", NOTEBOOKS)
def test_one_parameters_cell_whose_knobs_are_all_none_and_in_every_profile(nb):
    knobs, ns = params_cell(nb)
    assert "profile" in knobs and all(ns[k] is None for k in knobs)
    assert set(ns["PROFILES"]) == {"default", "cpu", "smoke"}
    for name, table in ns["PROFILES"].items():
        assert set(table) == set(knobs) - {"profile"}, f"profile {name} does not set exactly the knobs of the cell"


def test_shared_knobs_have_the_same_defaults_in_both_notebooks():
    (_, a), (_, b) = params_cell("finetuning"), params_cell("distill")
    shared = {
        "run_name",
        "dataset",
        "dataset_config",
        "data_file",
        "seed",
        "artifacts_dir",
        "results_dir",
        "teacher_dir",
        "max_length",
    }
    for profile in a["PROFILES"]:
        for knob in shared:
            assert a["PROFILES"][profile][knob] == b["PROFILES"][profile][knob], (profile, knob)


def test_install_cell_pins_agree_with_requirements():
    src = cells("finetuning", "shared")[0]
    (pins,) = [
        ast.literal_eval(n.value)
        for n in ast.parse(src).body
        if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "REQUIREMENTS"
    ]
    reqs = [
        l.strip() for l in (REPO / "requirements.txt").read_text().splitlines() if l.strip() and not l.startswith("#")
    ]
    name = lambda req: req.split("[")[0].split("=")[0].split(">")[0].split("<")[0]
    assert [r for r in reqs if name(r) != "torch"] == pins
    assert "torch" not in map(name, pins), "never reinstall the platform's torch"
    assert 'PLATFORM != "local"' in src, "installs run only on Colab/Kaggle"


@pytest.mark.parametrize("nb", NOTEBOOKS.values(), ids=NOTEBOOKS)
def test_cell_ids_are_unique(nb):
    ids = [c["id"] for c in json.loads(nb.read_text())["cells"]]
    assert len(ids) == len(set(ids)), sorted({i for i in ids if ids.count(i) > 1})


@pytest.mark.parametrize("nb", NOTEBOOKS.values(), ids=NOTEBOOKS)
def test_committed_without_outputs(nb):
    data = json.loads(nb.read_text())
    assert data["cells"][0]["cell_type"] == "markdown" and data["cells"][0]["source"][0].startswith("# ")
    for cell in data["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None


def test_setup_cell_names_modules_that_need_a_restart(monkeypatch):
    """After the Colab/Kaggle install, a module loaded earlier at another version must stop the run (restart)."""
    import sys
    import types
    from importlib.metadata import version

    src = cells("finetuning", "shared")[0]
    (fn,) = [n for n in ast.parse(src).body if isinstance(n, ast.FunctionDef) and n.name == "stale_modules"]
    ns = {"sys": sys}
    exec(compile(ast.Module([fn], []), "setup-cell", "exec"), ns)
    old, same = types.ModuleType("fdq_old"), types.ModuleType("fdq_same")
    old.__version__, same.__version__ = "0.0.1", version("pytest")
    monkeypatch.setitem(sys.modules, "fdq_old", old)
    monkeypatch.setitem(sys.modules, "fdq_same", same)
    pairs = (("fdq_old", "pytest"), ("fdq_same", "pytest"), ("fdq_absent", "pytest"), ("fdq_old", "no-such-dist"))
    assert ns["stale_modules"](pairs) == [f"fdq_old 0.0.1 (installed now: {version('pytest')})"]
    assert ns["stale_modules"]() == [], "a module of this environment reports a version other than its metadata"


@pytest.mark.parametrize("nb", NOTEBOOKS)
def test_papermill_sees_every_knob_of_the_parameters_cell(nb, caplog):
    """`papermill --help-notebook` lists a knob only if its line holds a single '=' (else it logs 'Unable to parse')."""
    import papermill

    knobs, _ = params_cell(nb)
    with caplog.at_level("WARNING", logger="papermill"):
        seen = papermill.inspect_notebook(str(NOTEBOOKS[nb]))
    assert not [r.getMessage() for r in caplog.records if "Unable to parse" in r.getMessage()]
    assert set(knobs) <= set(seen), f"papermill misses {sorted(set(knobs) - set(seen))}"
    assert set(seen) - set(knobs) <= {"_COMMON", "PROFILES"}, "only the profile tables are listed besides the knobs"
    assert all(seen[k]["help"] for k in knobs), "every knob has its comment as help"


@pytest.fixture(scope="module")
def setup_ns():
    from nbcode import namespace

    return namespace("finetuning", tags=("shared",))


def test_results_come_home_as_a_zip_on_colab_and_kaggle_and_as_paths_locally(setup_ns, tmp_path, monkeypatch, capsys):
    run = tmp_path / "results" / "cpu"
    (run / "sub").mkdir(parents=True)
    (run / "metrics.csv").write_text("stage\n")
    (run / "sub" / "vendor").mkdir()
    (run / "sub" / "vendor" / "big.wasm").write_text("x")
    (run / "sub" / "predict.py").write_text("print()\n")
    monkeypatch.chdir(tmp_path)
    assert setup_ns["bring_home"]([run], "results-cpu") is None and str(run) in capsys.readouterr().out
    monkeypatch.setitem(setup_ns, "PLATFORM", "kaggle")
    import zipfile

    archive = setup_ns["bring_home"]([run], "results-cpu")
    assert archive == tmp_path / "results-cpu.zip" and "in this notebook's output" in capsys.readouterr().out
    assert sorted(zipfile.ZipFile(archive).namelist()) == ["cpu/metrics.csv", "cpu/sub/predict.py"]


def test_the_install_explains_expected_conflict_lines_and_flags_others(setup_ns, monkeypatch, capsys):
    import subprocess

    lines = (
        "ERROR: pip's dependency resolver does not currently take into account all the packages that are installed.\n"
        "gradio 5.49.1 requires huggingface-hub<2.0,>=1.16, but you have huggingface-hub 0.36.2 which is "
        "incompatible.\n"
        "mystery 1.0 requires numpy<2, but you have numpy 2.1.3 which is incompatible.\n"
    )
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(a, 0, "", lines))
    assert len(setup_ns["install"](["x==1"])) == 2
    out = capsys.readouterr().out
    assert "gradio 5.49.1 requires" in out and "Expected: Colab's gradio wants huggingface_hub" in out
    assert "mystery 1.0 requires" in out and "Not expected" in out and "ERROR" not in out
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(a, 1, "", "no such version"))
    with pytest.raises(SystemExit, match="could not install"):
        setup_ns["install"](["x==1"])


def notebook_names(trees):
    """Names bound at a notebook's top level, less imports, functions, classes and constants (ALL_CAPS names bound
    once, to a literal that is not an empty container): the state a function could read behind its caller's back."""
    imported, defined, bound, constant = set(), set(), {}, set()
    for tree in trees:
        for node in tree.body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                imported |= {(a.asname or a.name).split(".")[0] for a in node.names}
            elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                defined.add(node.name)
            else:
                for name in (n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)):
                    bound[name] = bound.get(name, 0) + 1
                if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                    try:
                        value = ast.literal_eval(node.value)
                        if value not in ({}, [], (), set()) and node.targets[0].id.isupper():
                            constant.add(node.targets[0].id)
                    except ValueError:
                        pass
    return {n for n in bound if not (n in constant and bound[n] == 1)} - imported - defined - {"P"}


def functions_reading_notebook_state(nb):
    """{function: notebook-level names it reads} for every function and method of a notebook's code cells."""
    import builtins

    sources = ["".join(c["source"]) for c in json.loads(NOTEBOOKS[nb].read_text())["cells"] if c["cell_type"] == "code"]
    trees = [ast.parse(s) for s in sources if not s.startswith("%%")]
    state = notebook_names(trees)
    out = {}
    for tree in trees:
        for fn in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)):
            local = {a.arg for a in ast.walk(fn.args) if isinstance(a, ast.arg)}
            for n in ast.walk(fn):
                if isinstance(n, ast.Name) and isinstance(n.ctx, (ast.Store, ast.Del)):
                    local.add(n.id)
                elif isinstance(n, (ast.FunctionDef, ast.Lambda)) and n is not fn:
                    local |= {a.arg for a in ast.walk(n.args) if isinstance(a, ast.arg)}
                    local |= {n.name} if isinstance(n, ast.FunctionDef) else set()
                elif isinstance(n, (ast.Import, ast.ImportFrom)):
                    local |= {(a.asname or a.name).split(".")[0] for a in n.names}
                elif isinstance(n, ast.ExceptHandler) and n.name:
                    local.add(n.name)
            reads = {n.id for n in ast.walk(fn) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
            out[fn.name] = sorted((reads - local - set(dir(builtins))) & state)
    return out


@pytest.mark.parametrize("nb", NOTEBOOKS)
def test_no_function_reads_more_than_three_notebook_level_names(nb):
    """A step's function takes what it uses (arguments, a settings object) and returns what it makes."""
    readers = functions_reading_notebook_state(nb)
    assert len(readers) > 20, "the functions of the notebook were found"
    assert {f: names for f, names in readers.items() if len(names) > 3} == {}


def test_the_search_returns_its_best_settings_instead_of_rebinding_the_knobs():
    knobs, _ = params_cell("distill")
    for cell in json.loads(NOTEBOOKS["distill"].read_text())["cells"]:
        src = "".join(cell["source"])
        if cell["cell_type"] != "code" or "parameters" in cell["metadata"].get("tags", []) or src.startswith("%%"):
            continue
        top = [n for n in ast.parse(src).body if not isinstance(n, (ast.FunctionDef, ast.ClassDef))]
        rebound = {n.id for t in top for n in ast.walk(t) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        # max_length alone: the teacher's own, when it records one, wins over the knob (said in the parameters cell)
        assert rebound & set(knobs) <= {"max_length"}, (cell["id"], rebound & set(knobs))


def test_a_colab_reader_meets_at_most_300_code_lines_before_the_kd_trainer():
    """Folded cells (Colab's `# @title` forms) count as one line: the first screens are about distillation."""
    lines = 0
    for cell in json.loads(NOTEBOOKS["distill"].read_text())["cells"]:
        src = "".join(cell["source"])
        if cell["cell_type"] == "markdown" and "The knowledge-distillation Trainer" in src:
            break
        if cell["cell_type"] == "code":
            folded = cell["metadata"].get("cellView") == "form" and src.startswith("# @title")
            lines += 1 if folded else sum(1 for line in src.splitlines() if line.strip())
    else:
        raise AssertionError("no section on the knowledge-distillation Trainer")
    assert lines <= 300, lines

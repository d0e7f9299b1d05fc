# Two commands on a fresh machine (see README):
#   make run PROFILE=cpu     # install into .venv, then run both notebooks (results/<run>/, artifacts/<run>/)
#   make test                # install into .venv, then the test suite (tiny offline models, a few minutes)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH ?= torch==2.13.0
PROFILE ?= cpu
RUN ?= $(PROFILE)

.PHONY: install run test strip
install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-offline.txt requirements-test.txt
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

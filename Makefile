# The two commands users and CI run: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# MLflow resolves an outside host for telemetry at start; this machine and many hospitals have no internet.
export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := true
export PYTHONDONTWRITEBYTECODE := 1
# UTF-8 whatever the locale (CI may have none): progress bars and docstrings are not ASCII
export PYTHONUTF8 := 1

.PHONY: setup demo test lint phantoms clean

setup: $(STAMP)

$(STAMP): requirements.txt constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt -c constraints.txt
	touch $(STAMP)

demo: $(STAMP)
	$(PY) scripts/demo.py --out demo

test: $(STAMP)
	$(PY) -m pytest -q --durations=15 tests

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

phantoms: $(STAMP)
	$(PY) scripts/make_phantoms.py --out demo/data --cases 8 --seed 0

clean:
	rm -rf demo .pytest_cache

# MONAI Label drop-in test against the real server (docs/README.md, "MONAI Label"). monailabel needs its own venv
# (its torchvision does not import beside torch 2.13.0); the tests run with the main venv's python and start the
# server from the venv named by MONAILABEL_VENV. Without that venv they skip, so `make test` never needs it.
ML_VENV := .venv-monailabel
ML_STAMP := $(ML_VENV)/.installed

.PHONY: monailabel-test

$(ML_STAMP): requirements-monailabel.txt constraints-monailabel.txt
	test -x $(ML_VENV)/bin/python || $(PYTHON) -m venv $(ML_VENV)
	$(ML_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(ML_VENV)/bin/python -m pip install --quiet -r requirements-monailabel.txt -c constraints-monailabel.txt
	touch $(ML_STAMP)

monailabel-test: $(STAMP) $(ML_STAMP)
	MONAILABEL_VENV=$(CURDIR)/$(ML_VENV) $(PY) -m pytest -q tests/monailabel

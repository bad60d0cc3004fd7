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
	$(PY) -m pytest -q tests

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

phantoms: $(STAMP)
	$(PY) scripts/make_phantoms.py --out demo/data --cases 8 --seed 0

clean:
	rm -rf demo .pytest_cache

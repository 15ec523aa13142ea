# brainalign: the two commands of the README.
#   make demo   set up .venv and run the workflow on the embedded demo (config/config.yaml)
#   make test   set up .venv, lint the workflow and run the test suite (what .ci/run calls)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.brainalign-installed
PROFILE ?= profiles/default

.PHONY: setup demo report verify test lint clean

setup: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=24"
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -r requirements.lock
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

# brainalign run: snakemake, clearing a stale lock left by a crash (never one a live run holds).
# The bundle (report.html included) ends with its manifest and RO-Crate; `make verify` checks it.
demo: setup
	$(VENV)/bin/brainalign run --profile $(PROFILE)

report: setup
	$(VENV)/bin/brainalign run --profile $(PROFILE) results/bundle/report.html

verify: setup
	$(VENV)/bin/brainalign verify results/bundle

test: lint
	$(PY) -m pytest -m "slow or not slow" --durations=30

lint: setup
	$(VENV)/bin/snakemake --lint
	$(VENV)/bin/snakefmt --check Snakefile workflow/rules

clean:
	rm -rf results .snakemake

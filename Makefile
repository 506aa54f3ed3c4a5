# The two commands of the README, and the checks CI runs.
#   make run CORES=2   set up .venv and run the default workflow (synthetic PASTIS)
#   make test          set up .venv and run the test suite
PYTHON ?= python3
VENV ?= .venv
CORES ?= 2
# The CPU build of torch 2.13.0; any torch >= 2.2 works (see pyproject.toml).
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin

.PHONY: venv run test lint bench slurm-check clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet "$(TORCH)"
	$(BIN)/pip install --quiet -e ".[test,dev,clouds]"
	touch $@

run: venv
	$(BIN)/snakemake --cores $(CORES)

test: venv
	$(BIN)/pytest

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/snakefmt --check Snakefile workflow
	$(BIN)/snakemake --lint

# Run the workflow on a throw-away single-node SLURM on localhost (as root; see ci/slurm).
slurm-check: venv
	VENV=$(VENV) ci/slurm/install.sh
	VENV=$(VENV) ci/slurm/check_workflow.sh

bench: venv
	$(BIN)/python bench/bench_ltae.py

clean:
	rm -rf results logs benchmarks .snakemake report.html

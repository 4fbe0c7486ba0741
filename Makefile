# Everything a fresh machine needs: `make demo` runs the sandbox demo, `make test` the tests.
# Both create the virtual environment and install what is missing first.
PYTHON ?= python3
# What `make synth` synthesizes (`make synth CONFIG=federation.yaml` for yours).
CONFIG ?= federation.example.yaml
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.fedkeeper-installed

.PHONY: demo test lint typecheck docs-check docs unit bench synth clean

# On a terminal pip shows what it fetches (the first install is about 1 GB); elsewhere quiet.
PIP_OUTPUT = $$(test -t 1 && echo --progress-bar=on || echo --quiet)

$(STAMP): requirements.txt pyproject.toml
	@echo "[1/3] creating $(VENV) (once)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --upgrade pip
	@echo "[2/3] installing requirements.txt: boto3, kubernetes, pydantic, Powertools, moto, aws-cdk-lib (with its Node.js bundle), cdk-nag, cfn-lint, pytest, ruff, mypy: about 1 GB, a minute or two the first time"
	@$(BIN)/python -m pip install $(PIP_OUTPUT) -r requirements.txt
	@echo "[3/3] installing fedkeeper itself (editable)"
	@# setuptools talks even with --quiet (its editable-install banner): shown only on failure
	@$(BIN)/python -m pip install --quiet --no-deps -e . > $(VENV)/install.log 2>&1 \
		|| { cat $(VENV)/install.log; exit 1; }
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/fedkeeper demo -c federation.example.yaml

# Each phase of `make test` names itself before it starts (mypy is silent for a minute).
lint: $(STAMP)
	@echo "==> lint: ruff check, ruff format --check"
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	@echo "==> types: mypy --strict (about a minute from a cold cache, silent until done)"
	$(BIN)/mypy fedkeeper lambdas app.py stacks docgen

docs-check: $(STAMP)
	@echo "==> docs: the generated parts of README.md and docs/ still say what the program does"
	$(BIN)/python -m docgen --check

test: $(STAMP) lint typecheck docs-check
	@echo "==> tests: pytest on 2 workers (unit, integration, infra, e2e, faults: a few minutes)"
	JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION=1 JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20 $(BIN)/pytest -n 2 --dist loadgroup -q

# Rewrites every generated block of README.md and docs/ (runs the demo once, ~20 s).
docs: $(STAMP)
	@echo "==> docs: rewriting the generated parts of README.md and docs/ from the program"
	$(BIN)/python -m docgen

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

# Prints every benchmark and writes docs/BENCHMARKS.md from the figures (a few minutes).
BENCH_RUNS ?= 15
bench: $(STAMP)
	$(BIN)/python -m bench --runs $(BENCH_RUNS)

synth: $(STAMP)
	JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION=1 JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20 $(BIN)/python app.py -c config=$(CONFIG)

clean:
	rm -rf $(VENV) cdk.out .build .pytest_cache .mypy_cache .ruff_cache

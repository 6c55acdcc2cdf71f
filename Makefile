# Targets read like the README: `make demo` and `make test` do all set-up on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
EXTRAS ?= dev
BIN := $(VENV)/bin
comma := ,
# One stamp per set of extras, so `make test` after `make install EXTRAS=dev,train` installs nothing.
STAMP := $(VENV)/.installed-$(subst $(comma),-,$(EXTRAS))

.PHONY: install demo test diagrams e2e lint format sam-checks bench-model train fuzz reliability security-checks bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check pip==25.3
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[$(EXTRAS)]'
	touch $@

install: $(STAMP)

demo: install  ## run the sample images through the local workflow
	$(BIN)/scones demo

test: install  ## unit, integration and infrastructure tests (no network, no AWS account)
	$(BIN)/pytest

e2e: install  ## against a deployed stack: SCONES_STACK=<name> [SCONES_REGION=<region>] make e2e (real AWS calls)
	@test -n "$(SCONES_STACK)" || { echo "set SCONES_STACK to the name of a deployed stack"; exit 2; }
	$(BIN)/pytest tests/e2e -m e2e

diagrams: install  ## the README's state machine diagrams, drawn from the ASL files (needs Graphviz: apt-get install graphviz)
	$(BIN)/scones graph

lint: install  ## ruff and mypy, as CI runs them
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy harness model monitor layers/common/scones_common tests bench
	for fn in functions/*/; do $(BIN)/mypy "$$fn"app.py || exit 1; done

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

sam-checks:  ## sam validate --lint and sam build (python3.13, arm64), in a venv of their own
	bash scripts/sam_checks.sh

security-checks:  ## statelint, checkov on the SAM-translated template, IAM wildcard count (own venv: .venv-security)
	bash scripts/security_checks.sh

bench: install  ## cold starts, warm and end-to-end latency, throughput, model, package sizes (docs/BENCHMARKS.md)
	$(BIN)/python -m bench

bench-model: install  ## inference latency and throughput of the default model
	$(BIN)/python -m model.bench_model

fuzz: install  ## a longer fuzz run of the image decoding path (FUZZ_SECONDS, default 300)
	$(BIN)/python -m tests.fuzz --seconds $(or $(FUZZ_SECONDS),300)

reliability: install  ## every catalogued bad input and fault through the local workflow
	$(BIN)/scones reliability

train:  ## train the default model on the CPU (needs the train extra: torch)
	$(MAKE) install EXTRAS=dev,train
	$(BIN)/scones train

clean:
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache .scones

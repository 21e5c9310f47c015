# posesvc developer entry points. `make run` and `make test` create .venv when it is missing.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: venv run predict test lint typecheck bench reliability soak security clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,cpu]'
	touch $(STAMP)

venv: $(STAMP)

## What the suite needs beyond the venv: docker-compose, chromium, prometheus, node + the Node client's packages.
TOOLS := $(VENV)/.tools
$(TOOLS): $(STAMP) .ci/install-deploy-tools.sh clients/node/package-lock.json
	bash .ci/install-deploy-tools.sh $(VENV)
	touch $(TOOLS)

## Run the service on 127.0.0.1 (HTTP 8000, gRPC 50051). Real weights are used when cached; otherwise it
## starts with explicitly untrained weights (a warning, and trained=false in every answer).
run: $(STAMP)
	$(BIN)/posesvc serve --allow-untrained

## One-shot: posesvc predict on a bundled sample photo, JSON on stdout, drawing in artifacts/.
predict: $(STAMP)
	$(BIN)/posesvc predict "$$($(BIN)/python -c "import ultralytics, pathlib; print(pathlib.Path(ultralytics.__file__).parent / 'assets' / 'bus.jpg')")" --allow-untrained --render artifacts/bus_pose.png

## The test suite CI runs (lint + types + tests), after installing what it needs (root or sudo for apt).
test: $(STAMP) $(TOOLS)
	$(BIN)/ruff check service tests bench
	$(BIN)/mypy service
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check service tests bench
	$(BIN)/ruff format --check service tests bench || true

typecheck: $(STAMP)
	$(BIN)/mypy service

bench: $(STAMP)
	$(BIN)/python bench/bench_core.py

## Reliability suite including the slow runs (10-minute soak), then the table of docs/RELIABILITY.md.
reliability: $(STAMP)
	$(BIN)/python -m pytest -q -s -m "slow or not slow" tests/reliability tests/engine/test_fault_timing.py
	$(BIN)/python bench/reliability_report.py

soak: $(STAMP)
	$(BIN)/python bench/soak.py --duration-s 600 --json test-artifacts/reliability-soak-long.json

## bandit (medium+) and pip-audit (needs pypi.org or OSV; POSESVC_SKIP_PIP_AUDIT=1 reports it as skipped).
security: $(STAMP)
	bash .ci/security-scan.sh $(VENV)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache artifacts

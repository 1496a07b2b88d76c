# Two commands for a newcomer: `make demo` and `make test`. Everything else is set up by them.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
NATIVE := native/Cargo.toml native/Cargo.lock native/pyproject.toml $(wildcard native/src/*.rs)

.PHONY: setup demo test lint typecheck unit integration bench evaluate evaluate-recs clean

setup: $(STAMP)

$(STAMP): pyproject.toml scripts/system-deps.sh tools/grafana-schema/package-lock.json $(NATIVE)
	bash scripts/system-deps.sh
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[model,serving,dev]"
	$(PY) -m pip install -q ./native  # the worker's hot path in Rust (cargo)
	$(PY) -m ecomstream kafka install
	npm ci --prefix tools/grafana-schema --no-audit --no-fund --silent
	touch $(STAMP)

demo: setup
	$(PY) -m ecomstream demo

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: setup
	$(VENV)/bin/mypy

unit: setup
	$(PY) -m pytest tests/unit ecomstream

integration: setup
	$(PY) -m pytest tests/integration tests/e2e

# ECOMSTREAM_NATIVE=on: the tests must find the Rust extension built, not skip it.
test: lint typecheck
	ECOMSTREAM_NATIVE=on $(PY) -m pytest

bench: setup
	$(PY) -m benchmarks

# A simulated run with incidents, replayed twice through the real worker (detector defaults vs
# the quick model's preset), one report side by side (reports/replay/).
EVAL_RUN ?= runs/sim/eval.jsonl
evaluate: setup
	$(PY) -m ecomstream simulate --users 20000 --duration 3h --incidents 2 --out $(EVAL_RUN)
	$(PY) -m ecomstream kafka up
	$(PY) -m ecomstream evaluate replay --jsonl $(EVAL_RUN) --train-if-missing \
	  --compare-alert-preset quick; \
	  status=$$?; $(PY) -m ecomstream kafka down; exit $$status

# The recommendation evaluation on the held-out simulator seeds: reports/recs-seeds/summary.md.
evaluate-recs: setup
	$(PY) -m ecomstream evaluate recommendations-seeds reports/recs-seeds --seeds 101-106

clean:
	-$(PY) -m ecomstream kafka down
	rm -rf var runs reports .pytest_cache .mypy_cache .ruff_cache native/target

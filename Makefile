# The README's commands. Each sets up what it needs on a fresh Debian machine.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: demo test lint unit bench faults deps system-deps web-vendor clean format

demo: deps
	$(BIN)/python examples/demo.py

test: deps .venv-checkov lint
	$(BIN)/python -m pytest --durations=25 $(PYTEST_ARGS); rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected"; exit 0; fi; exit $$rc

unit: deps
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

lint: deps
	$(BIN)/ruff check src tests bench examples tools
	$(BIN)/ruff format --check src tests bench examples tools
	$(BIN)/mypy

format: deps
	$(BIN)/ruff format src tests bench examples tools
	$(BIN)/ruff check --fix src tests bench examples tools

# The reliability suite at full strength: fuzzing at 500 examples per input kind, every fault.
faults: deps
	DEPLOYOPS_TEST_FUZZ_EXAMPLES=500 DEPLOYOPS_TEST_CRASH_MATRIX=full DEPLOYOPS_TEST_FAULTS=full \
	DEPLOYOPS_TEST_CANARY_LOAD=full \
	DEPLOYOPS_TEST_CRASH_REPORT=$(CURDIR)/.deployops-crash-matrix.md \
	$(BIN)/python -m pytest tests/faults tests/integration/aws/test_aws_engine_native_resume.py \
	tests/integration/aws/test_aws_watch_after.py tests/e2e/test_watch_after_e2e.py \
	tests/e2e/test_canary_e2e.py -s $(PYTEST_ARGS)

bench: deps
	@WITH_BENCH=1 bash tools/system-deps.sh
	$(BIN)/python bench/run_all.py

deps: system-deps web-vendor $(STAMP)

system-deps:
	@bash tools/system-deps.sh

# The dashboard's chart library (vendored into the package) and axe-core for the browser tests,
# at the versions pinned in tools/web-vendor/package-lock.json.
web-vendor: system-deps
	@bash tools/vendor-web.sh

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[aws,web,dev]'
	touch $(STAMP)

# checkov pins versions that clash with ours: it lives in its own venv.
.venv-checkov:
	$(PY) -m venv .venv-checkov
	.venv-checkov/bin/python -m pip install -q checkov

clean:
	rm -rf $(VENV) .venv-checkov .pytest_cache .mypy_cache .ruff_cache tools/web-vendor/node_modules src/deployops/web/static/vendor

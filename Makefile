# Two commands: `make demo` and `make test`. Both bootstrap .venv from the locked dependency set.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
STAMP := $(VENV)/.synced-dev

.PHONY: test demo lint typecheck pytest quality venv bench-venv bench clean lock

$(BIN)/uv:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "uv==$(UV_VERSION)"

# Re-sync whenever the lock file changes; the stamp records the lock that was installed.
$(STAMP): requirements/dev.lock pyproject.toml | $(BIN)/uv
	$(BIN)/uv pip sync --quiet --python $(BIN)/python requirements/dev.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	@touch $(STAMP)

venv: $(STAMP)

# Benchmarks run in their own environment: buttress with every extra plus the peers it is compared with.
BENCH_VENV := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.synced-bench
$(BENCH_STAMP): requirements/bench.lock pyproject.toml
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet "uv==$(UV_VERSION)"
	$(BENCH_VENV)/bin/uv pip sync --quiet --python $(BENCH_VENV)/bin/python requirements/bench.lock
	$(BENCH_VENV)/bin/uv pip install --quiet --python $(BENCH_VENV)/bin/python --no-deps -e .
	@touch $(BENCH_STAMP)

bench-venv: $(BENCH_STAMP)

# Every area's benchmark in turn (BENCH_ARGS="--quick" for the short runs), then the summary table.
BENCH_AREAS := telemetry resilience cache hitrate slo quality
JSCPD_DIR := benchmarks/jscpd
$(JSCPD_DIR)/node_modules/.package-lock.json: $(JSCPD_DIR)/package-lock.json
	# `npm install`, not `npm ci`: the lock holds only the platform binary the registry serves here, and
	# npm ci refuses a lock that lacks jscpd's other optional platform packages.
	cd $(JSCPD_DIR) && npm install --no-audit --no-fund --loglevel=error

bench: $(BENCH_STAMP) $(JSCPD_DIR)/node_modules/.package-lock.json
	@mkdir -p .bench
	@for area in $(BENCH_AREAS); do \
		echo "== $$area"; \
		JSCPD=$(JSCPD_DIR)/node_modules/.bin/jscpd \
		$(BENCH_VENV)/bin/python benchmarks/$$area.py $(BENCH_ARGS) --json .bench/$$area.json || exit 1; \
	done
	$(BENCH_VENV)/bin/python benchmarks/summary.py $(addprefix .bench/,$(addsuffix .json,$(BENCH_AREAS)))

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy --strict src/buttress

# The dashboard's browser test drives Debian's Chromium with playwright-core from npm (no browser download).
BROWSER_DIR := tests/dashboard/browser
BROWSER_STAMP := $(BROWSER_DIR)/node_modules/.package-lock.json
$(BROWSER_STAMP): $(BROWSER_DIR)/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		cd $(BROWSER_DIR) && npm ci --no-audit --no-fund --loglevel=error; \
	else echo "npm not found: the browser test will be skipped (or fail under BUTTRESS_REQUIRE_SERVICES=1)"; fi

# The suite runs under coverage so that `make quality` can judge coverage without a second run.
pytest: $(STAMP) $(BROWSER_STAMP)
	$(BIN)/coverage run --branch --source=src/buttress -m pytest $(PYTEST_ARGS)

# buttress's own quality gate ([tool.buttress.quality] in pyproject.toml) on the coverage of the last
# `make pytest`; new code is what changed since the commit named in .ci/quality-base.
QUALITY_BASE ?= $(shell cat .ci/quality-base 2>/dev/null)
QUALITY_PROFILE ?= project-ci
quality: $(STAMP)
	$(BIN)/buttress quality check src --profile $(QUALITY_PROFILE) $(if $(QUALITY_BASE),--base $(QUALITY_BASE))

test: lint typecheck pytest

# The reference event platform on embedded defaults (SQLite, memory cache); DEMO_ARGS="--duration 60" bounds it.
demo: $(STAMP)
	$(BIN)/buttress demo $(DEMO_ARGS)

# Regenerate the lock files after editing pyproject.toml's dependencies.
lock: | $(BIN)/uv
	$(BIN)/uv pip compile --quiet pyproject.toml --extra dev --python-version 3.11 -o requirements/dev.lock
	$(BIN)/uv pip compile --quiet pyproject.toml --extra bench --python-version 3.11 -o requirements/bench.lock

clean:
	rm -rf $(VENV) $(BENCH_VENV) .bench .mypy_cache .ruff_cache .pytest_cache

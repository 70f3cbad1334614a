# One command per habit: run, test, lint, proto, bench. Each installs what it needs first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TOOLS := .tools
BUF := $(TOOLS)/node_modules/.bin/buf
BUF_VERSION := 1.75.0
KUSTOMIZE_VERSION := v5.8.2
KUSTOMIZE := $(TOOLS)/bin/kustomize
K8S_VERSION := 1.30.0
# Client code generation and tests. Go and npm downloads stay in .tools (and the TypeScript
# client's node_modules), so a second run is fast.
GOENV := GOBIN=$(abspath $(TOOLS))/bin GOMODCACHE=$(abspath $(TOOLS))/go/mod \
	GOCACHE=$(abspath $(TOOLS))/go/cache GOFLAGS=-modcacherw
NPM := npm --cache $(abspath $(TOOLS))/npm-cache --no-audit --no-fund
PROTOC_GEN_GO_VERSION := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2
GRPCURL_VERSION := v1.9.4
TS_DEPS := clients/typescript/node_modules/.installed
CLIENT_TOOLS := $(TOOLS)/bin/protoc-gen-go $(TOOLS)/bin/protoc-gen-go-grpc $(TS_DEPS)

# pip stays quiet: no version nag, and no setuptools notice about the compat editable mode,
# which keeps server/ and clients/python/src importable by mypy and the namespace package.
PIP := PYTHONWARNINGS=ignore::UserWarning $(PY) -m pip install --quiet --disable-pip-version-check \
	--no-input -c constraints.txt --config-settings editable_mode=compat
# `make run` listens on loopback only and on the embedded emulator; both can be overridden.
RUN_HOST ?= 127.0.0.1
TIERGATE_UPSTREAM ?= emulator
# ... and keeps its batches in the checkout (git-ignored), so BatchService answers from the start.
TIERGATE_BATCH_DIR ?= .tiergate/batches

.PHONY: help run test lint fmt proto proto-check bench install tools clean k8s-check readme
.PHONY: client-tools clients-test proto-breaking grpcurl mutate

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z][a-z0-9-]*:.*## / {printf "  %-15s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# The eval extra too: `tiergate eval --report` draws its chart with matplotlib.
run: install $(VENV)/.installed-eval ## serve on 127.0.0.1:50051 on the embedded emulator, batches in .tiergate/
	@if [ "$(TIERGATE_UPSTREAM)" = emulator ]; then \
		answers="the embedded emulator: heuristic answers, not a language model"; \
	else answers="the Messages API at $${ANTHROPIC_BASE_URL:-its default URL}, with ANTHROPIC_API_KEY"; fi; \
	echo "tiergate: starting on $(RUN_HOST):$${TIERGATE_PORT:-50051}, TIERGATE_UPSTREAM=$(TIERGATE_UPSTREAM)" \
		"($$answers), batches in $(TIERGATE_BATCH_DIR). Call it from another terminal;" \
		"Ctrl-C stops it."
	@TIERGATE_HOST=$(RUN_HOST) TIERGATE_UPSTREAM=$(TIERGATE_UPSTREAM) \
		TIERGATE_BATCH_DIR=$(TIERGATE_BATCH_DIR) $(VENV)/bin/tiergate serve

test: $(VENV)/.installed-dev tools lint proto-check proto-breaking k8s-check clients-test grpcurl ## every test, after lint and the stale-code check
	$(PY) -m pytest

install: $(VENV)/.installed ## the runtime dependencies into .venv (what `make run` needs)

$(VENV)/.installed: pyproject.toml clients/python/pyproject.toml constraints.txt
	@test -x $(PY) || { echo "tiergate: installing the runtime dependencies into $(VENV)"; \
		$(PYTHON) -m venv $(VENV); }
	@$(PIP) -e clients/python -e .
	@touch $@

# One extra per habit (see pyproject.toml): test, lint, codegen, k8s, bench; dev is all but bench.
$(VENV)/.installed-%: $(VENV)/.installed
	@echo "tiergate: installing the '$*' extra into $(VENV)"
	@$(PIP) -e '.[$*]'
	@touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	@echo "tiergate: installing the 'dev' extra (test, lint, codegen, k8s, eval) into $(VENV)"
	@$(PIP) -e '.[dev]'
	@touch $@ $(foreach extra,test lint codegen k8s eval,$(VENV)/.installed-$(extra))

tools: $(BUF) ## install buf into .tools

$(BUF):
	mkdir -p $(TOOLS)
	cd $(TOOLS) && npm install --no-audit --no-fund --silent @bufbuild/buf@$(BUF_VERSION)

lint: $(VENV)/.installed-lint tools ## ruff, mypy --strict, buf lint and buf format
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy clients/python/tests  # alone: its conftest would clash with tests/conftest
	$(BUF) lint
	$(BUF) format --diff --exit-code
	@unformatted=$$(gofmt -l clients/go); test -z "$$unformatted" || { echo "gofmt: $$unformatted"; exit 1; }

fmt: $(VENV)/.installed-lint tools ## format and fix: ruff format, ruff check --fix, buf format -w
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .
	$(BUF) format -w

readme: $(VENV)/.installed-test grpcurl ## rewrite the README's example outputs from a live server
	$(PY) tests/test_readme.py --update

proto: $(VENV)/.installed-codegen tools client-tools ## format the protos and regenerate the committed code (messages, stubs, client methods)
	$(BUF) format -w
	$(PY) scripts/gen_protos.py
	$(PY) scripts/gen_clients.py
	$(PY) scripts/gen_client_methods.py

proto-check: $(VENV)/.installed-codegen tools client-tools ## fail when the committed generated code is stale
	$(PY) scripts/gen_protos.py --check
	$(PY) scripts/gen_clients.py --check
	$(PY) scripts/gen_client_methods.py --check

# The protos against main's tip (what is not committed yet) and against the commit before it
# (what the last commit changed), when there is one.
proto-breaking: tools ## buf breaking against main
	@set -e; for ref in $$(git rev-parse --verify --quiet main) \
		$$(git rev-parse --verify --quiet main~1); do \
		echo "buf breaking against main ($$ref)"; \
		$(BUF) breaking protos --against ".git#ref=$$ref,subdir=protos"; \
	done

client-tools: $(CLIENT_TOOLS) ## install the Go and TypeScript code generators

$(TOOLS)/bin/protoc-gen-go:
	$(GOENV) go install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)

$(TOOLS)/bin/protoc-gen-go-grpc:
	$(GOENV) go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)

$(TS_DEPS): clients/typescript/package-lock.json
	cd clients/typescript && $(NPM) ci --silent
	touch $@

grpcurl: $(TOOLS)/bin/grpcurl ## install grpcurl into .tools/bin (needs Go; see the README)

$(TOOLS)/bin/grpcurl:
	$(GOENV) go install github.com/fullstorydev/grpcurl/cmd/grpcurl@$(GRPCURL_VERSION)

clients-test: $(VENV)/.installed-test client-tools ## the Go, TypeScript and Python clients against a live server
	$(GOENV) $(PY) scripts/clients_test.py

k8s-check: $(VENV)/.installed-k8s $(KUSTOMIZE) ## render every overlay, validate it for Kubernetes 1.30, replay the image recipe
	mkdir -p $(TOOLS)/k8s
	for overlay in k8s/overlays/*/; do \
		$(KUSTOMIZE) build $$overlay > $(TOOLS)/k8s/$$(basename $$overlay).yaml || exit 1; \
	done
	$(VENV)/bin/kubernetes-validate --kubernetes-version $(K8S_VERSION) --strict --quiet \
		$(TOOLS)/k8s/*.yaml
	$(PY) scripts/image_recipe.py

$(KUSTOMIZE):
	$(GOENV) go install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION)

bench: $(VENV)/.installed-test $(VENV)/.installed-bench ## overhead, in-flight scale, start-up, cost per 1,000 requests
	$(PY) -m bench.run --update-readme

mutate: $(VENV)/.installed-test $(VENV)/.installed-mutate ## mutation testing of the tasks, ledger, admission, model client, errors (slow; not in CI)
	$(PY) scripts/mutate.py

clean: ## remove .venv, .tools and the caches
	rm -rf $(VENV) $(TOOLS) .mypy_cache .ruff_cache .pytest_cache

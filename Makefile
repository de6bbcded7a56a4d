# garment: every target works on a fresh machine (see README.md).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
SHARED ?= ../shared
STAMP  := $(VENV)/.installed
DEVSTAMP := $(VENV)/.installed-dev

.PHONY: setup dev data demo test lint bench model onnx dist browser services clean compiler

setup: $(STAMP) data

# Everything the demo and the tests use: the core and the train, onnxruntime, parquet and
# render extras. torch is installed first, pinned, so pip takes the CPU build on disk instead
# of a CUDA one.
$(STAMP): pyproject.toml setup.py src/garment/_convert.c
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	@$(MAKE) --no-print-directory compiler
	$(BIN)/pip install -q -e '.[train,onnxruntime,parquet,render]'
	touch $@

# The conversion kernel (src/garment/_convert.c) is compiled at install: a C compiler and
# Python's headers, from Debian when root, else the command that installs them.
compiler:
	@cc="$${CC:-$$($(PYTHON) -c "import sysconfig; print((sysconfig.get_config_var('CC') or 'cc').split()[0])")}"; \
	if ! command -v "$${cc%% *}" >/dev/null 2>&1; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc; \
		else echo "garment compiles a C kernel at install: install a C compiler (apt-get install gcc)"; exit 1; fi; \
	fi
	@if ! $(PYTHON) -c "import os, sysconfig, sys; sys.exit(not os.path.isfile(os.path.join(sysconfig.get_paths()['include'], 'Python.h')))"; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-dev; \
		else echo "garment compiles a C kernel at install: install Python's headers (apt-get install python3-dev)"; exit 1; fi; \
	fi

# Fashion-MNIST: present and verified, else Debian's package when root, else the three ways.
data: $(STAMP)
	@if $(BIN)/garment data >/dev/null 2>&1; then \
		echo "Fashion-MNIST: found and verified"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "Fashion-MNIST missing: installing Debian's dataset-fashion-mnist"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist \
		&& $(BIN)/garment data; \
	else \
		$(BIN)/garment data; exit 1; \
	fi

$(DEVSTAMP): $(STAMP)
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

dev: $(DEVSTAMP)

# Debian's Chromium for the browser tests (Playwright drives /usr/bin/chromium).
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; \
		else echo "note: /usr/bin/chromium missing; browser tests will be skipped (apt-get install chromium)"; fi; \
	fi

# Debian's redis-server and PostgreSQL for the scale-out tests (the fixtures start their own
# servers on 127.0.0.1 in a temporary folder and stop them; skipped with a reason when absent).
services:
	@missing=""; command -v redis-server >/dev/null 2>&1 || missing="$$missing redis-server"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
		else echo "note:$$missing missing; scale-out tests will be skipped (apt-get install$$missing)"; fi; \
	fi

demo: setup
	$(BIN)/garment demo

test: setup dev browser services
	$(BIN)/python -m pytest -q

lint: dev
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy

bench: setup dev
	@for b in benchmarks/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

# Retrains the shipped default model exactly as shipped (and records its real-photo accuracy
# in its card when the development photos are beside the repository).
model: setup
	$(BIN)/garment train --model default --preset shipped --out src/garment/weights/default --force
	rm -rf src/garment/weights/default/checkpoint src/garment/weights/default/tensorboard
	@$(MAKE) --no-print-directory onnx
	@if [ -f $(SHARED)/realphotos-dev/labels.csv ]; then \
		$(BIN)/garment evaluate $(SHARED)/realphotos-dev/labels.csv --model src/garment/weights/default --record; \
	else echo "note: $(SHARED)/realphotos-dev absent; real-photo metrics not recorded"; fi

# The shipped model's ONNX export (model.onnx + its sidecar, checked against the weights'
# hash at each use), so the core install classifies without PyTorch.
onnx: $(STAMP)
	$(BIN)/python scripts/export_onnx.py src/garment/weights/default

# The wheel (the C kernel compiled into it) and the sdist, in dist/.
dist: $(DEVSTAMP)
	rm -rf dist
	$(BIN)/python -m build

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache src/garment/*.so

# Two entry points (see README.md): `make demo` and `make test`. Both set everything up first.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.plmstruct-installed
PYTEST_ARGS ?=

.PHONY: setup demo test lint bench clean

# System tools: DSSP (mkdssp) and MMseqs2 from Debian, installed only when missing.
/usr/bin/mkdssp /usr/bin/mmseqs:
	@if [ "$$(id -u)" = "0" ]; then \
		(apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dssp mmseqs2 >/dev/null; \
	else \
		echo "note: install Debian packages 'dssp' and 'mmseqs2' for mkdssp/mmseqs (pure-Python fallbacks are used otherwise)"; \
	fi

$(STAMP): pyproject.toml | /usr/bin/mkdssp /usr/bin/mmseqs
	@test -x $(BIN)/python || $(PY) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# The CPU build of torch first (lies on disk here); the project's torch range accepts it, so
	# nothing pulls a CUDA build. On a GPU machine, install your CUDA torch first instead.
	@$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[dev]"
	$(BIN)/python -m pip install -q --no-deps antiberty==0.1.3
	@touch $(STAMP)

setup: $(STAMP)

demo: setup
	HF_HUB_OFFLINE=1 $(BIN)/plmstruct demo --out outputs/demo

test: setup
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check src tests benchmarks

bench: setup
	HF_HUB_OFFLINE=1 $(BIN)/python -m benchmarks.run_all

clean:
	rm -rf $(VENV) outputs .pytest_cache

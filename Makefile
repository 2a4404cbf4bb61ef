# verdicts: every command an editor or CI runs. The virtual environment lives in .venv/.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TOOL_A ?= hf-inference-providers
TOOL_B ?= mistral-3-small
export HF_HUB_DISABLE_TELEMETRY ?= 1

.PHONY: install draft test lint bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

draft: install
	$(PY) -m pipeline draft $(TOOL_A) $(TOOL_B)

test: install
	$(PY) -m pytest

lint: install
	$(PY) -m ruff check pipeline tests bench
	$(PY) -m mypy

bench: install
	$(PY) bench/cold_draft.py

clean:
	rm -rf $(VENV) .cache .pytest_cache .mypy_cache .ruff_cache *.egg-info

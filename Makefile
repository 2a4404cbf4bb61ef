# verdicts: every command an editor or CI runs. The virtual environment lives in .venv/.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TOOL_A ?= hf-inference-providers
TOOL_B ?= mistral-3-small
export HF_HUB_DISABLE_TELEMETRY ?= 1


.PHONY: calibrate install draft prompts preview log stale refresh pin check browser test lint bench clean

# Byte-compiled once here: where PYTHONDONTWRITEBYTECODE is set (CI images often set it), every command would
# otherwise compile the package from source at each start (about 40 ms). Only a speed-up, so never an error.
install: $(VENV)/.installed
	@$(PY) -m compileall -q pipeline >/dev/null || true

# llama.cpp is compiled for a portable x86-64 (AVX2), not for this CPU (-march=native): on a CPU with AMX (recent
# Xeons, as some CI machines have) the native build's AMX kernels crash the process (a segfault in
# ggml_backend_amx_mul_mat). Built without pip's wheel cache, so a native wheel cached earlier is never reused.
LLAMA := $(shell grep -o '"llama-cpp-python==[^"]*"' pyproject.toml | head -1 | tr -d '"')
LLAMA_CMAKE_ARGS ?= $(if $(filter x86_64,$(shell uname -m)),-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON)

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PY) -m pip install --quiet --no-cache-dir '$(LLAMA)'
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

draft: install
	$(PY) -m pipeline draft $(TOOL_A) $(TOOL_B) $(ARGS)

# Dry run: the prompts, what the cache holds, and a cost forecast. Sends nothing.
prompts: install
	$(PY) -m pipeline prompts $(TOOL_A) $(TOOL_B) $(ARGS)

# make preview DRAFT=outputs/a-vs-b.md: a self-contained HTML page of the draft
preview: install
	$(PY) -m pipeline preview $(or $(DRAFT),outputs/$(TOOL_A)-vs-$(TOOL_B).md)

# What the model was asked and said in the last run (ARGS="--failures", "--draft a-vs-b", "--run all")
log: install
	$(PY) -m pipeline log $(ARGS)

# Headless Chromium for the preview test, from Debian's packages, unless one is on PATH already. apt-get needs
# root: run as root (the CI container, no sudo there) it runs as is, otherwise through sudo (a GitHub runner).
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
browser:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || \
		($(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)

# Drafts whose inputs changed, and why; exit 1 when any is stale.
stale: install
	$(PY) -m pipeline stale $(DRAFTS) $(ARGS)

# Regenerate stale sections, merged into hand edits. `python -m pipeline refresh` exits 5 on a conflict.
refresh: install
	$(PY) -m pipeline refresh $(DRAFTS) $(ARGS)

# make pin DRAFT=outputs/a-vs-b.md SECTION=skeptic:b (UNPIN=1 releases it)
pin: install
	$(PY) -m pipeline pin $(DRAFT) $(SECTION) $(if $(UNPIN),--unpin)

# The editorial files as they are: every fact sheet and persona loads, every template renders against them, every
# quote in outputs/ still passes its lens. Sends nothing, needs no token; exit 2 lists every problem.
check: install
	$(PY) -m pipeline check

# Every test tier: with VERDICTS_REQUIRE_ALL_TIERS=1 a test that needs a missing asset (Chromium, the local model,
# the reference pages) fails instead of being skipped. ARGS goes to pytest, e.g. ARGS='-k fallback'.
# How the lens checks judge the labelled quotes in calibration/ (per lens, accepted/refused per label).
calibrate: install
	$(PY) -m pipeline calibrate $(ARGS)

test: install browser check
	VERDICTS_REQUIRE_ALL_TIERS=1 $(PY) -m pytest -n auto $(ARGS)

lint: install
	$(PY) -m ruff check pipeline tests bench
	$(PY) -m mypy

bench: install
	$(PY) bench/cold_draft.py
	$(PY) bench/peer_ratio.py
	$(PY) bench/catalogue.py --limit 32
	$(PY) bench/catalogue.py --limit 4
	$(PY) bench/provider_429.py
	$(PY) bench/stale_drafts.py

clean:
	rm -rf $(VENV) .cache .pytest_cache .mypy_cache .ruff_cache *.egg-info

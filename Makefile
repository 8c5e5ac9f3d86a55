# edgeprune: two commands for a fresh Debian/Ubuntu machine.
#   make demo   install what is missing, then run the main job (a search on the emulated Cortex-M4)
#   make test   install what is missing, then run the whole test suite
# Both are idempotent: stamps under .stamps/ skip work already done, and are redone when inputs change.

SHELL        := /bin/bash
PYTHON       ?= $(shell command -v python3.11 || command -v python3)
VENV         := .venv
PY           := $(VENV)/bin/python
PIP          := $(PY) -m pip
STAMPS       := .stamps
APT_PACKAGES := gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib qemu-system-arm
QEMU_ENVS    := qemu-m0 qemu-m3 qemu-m4 qemu-m7 qemu-m33 qemu-b-l475e-iot01a qemu-netduinoplus2
SUDO         := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PYTEST_ARGS  ?=
# Where the CPU build of torch comes from. These machines carry it as a local wheel that plain
# `pip install torch==2.13.0` finds; elsewhere use TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu".
TORCH_PIP_ARGS ?=

export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: setup system venv firmware demo test test-fast lint clean distclean help

help:
	@echo "make demo   - set up and run a search on QEMU Cortex-M4 (weather GRU, PPO)"
	@echo "make test   - set up and run the test suite"
	@echo "make lint   - ruff + mypy + import layers"
	@echo "make firmware - build every QEMU firmware env with PlatformIO (offline)"

setup: system venv $(STAMPS)/scons $(STAMPS)/qemu10

# System packages: only what is missing, through apt (sudo when not root).
system:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	$(PYTHON) -c 'import venv, ensurepip' >/dev/null 2>&1 || missing="$$missing python3-venv"; \
	if [ -n "$$missing" ]; then \
	  echo "==> installing system packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	else echo "==> system packages present"; fi

venv: $(STAMPS)/venv

# torch==2.13.0 (CPU) goes in first: any later requirement on torch is then already satisfied
# instead of pulling the multi-GB CUDA build from the registry.
$(STAMPS)/venv: requirements/runtime.txt requirements/dev.txt requirements/ray.txt pyproject.toml setup.py tools/check_torch.py
	@mkdir -p $(STAMPS)
	@[ -x $(PY) ] || { echo "==> creating $(VENV) with $(PYTHON)"; $(PYTHON) -m venv $(VENV); }
	$(PIP) install -q --upgrade pip setuptools wheel
	$(PIP) install -q torch==2.13.0 $(TORCH_PIP_ARGS)
	$(PIP) install -q -r requirements/runtime.txt -r requirements/dev.txt
	$(PIP) install -q -r requirements/ray.txt  # the edgeprune[ray] extra, for tests/host/search/test_ray.py
	$(PIP) install -q --no-deps -e .
	$(PY) tools/check_torch.py
	@touch $@

# PlatformIO's core package tool-scons is normally downloaded; provide it from PyPI's scons.
$(STAMPS)/scons: $(STAMPS)/venv tools/provision_scons.py
	$(PY) tools/provision_scons.py
	@touch $@

# QEMU >= 9 for the emulated B-L475E-IOT01A (`--device qemu:b-l475e-iot01a`): Debian's qemu-system-arm from
# bookworm-backports unpacked into .tools/qemu10 (nothing when the system QEMU has the machine); the system QEMU
# stays the one the mps2 instruction counts come from.
# A machine that cannot fetch it still sets up; the tests that need the machine then fail saying so (no stamp:
# the next `make` tries again).
$(STAMPS)/qemu10: tools/provision_qemu10.sh
	@mkdir -p $(STAMPS)
	@if tools/provision_qemu10.sh .tools/qemu10; then touch $@; \
	else echo "warning: no QEMU >= 9 (b-l475e-iot01a); its tests will fail until \`make setup\` can fetch it"; fi

firmware: setup
	@for e in $(QEMU_ENVS); do $(VENV)/bin/pio run -s -e $$e || exit 1; done

demo: setup
	$(VENV)/bin/edgeprune search --workers auto

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: setup
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check host export bench tests tools
	$(VENV)/bin/mypy host export bench
	$(VENV)/bin/lint-imports  # the layer contract of pyproject.toml (docs/design.md "Layers")

clean:
	rm -rf .pio build .pytest_cache .mypy_cache .ruff_cache

distclean: clean
	rm -rf $(VENV) $(STAMPS) .tools

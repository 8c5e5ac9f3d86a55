"""Fail setup when the venv holds anything but the torch 2.13.0 CPU build (a CUDA build is several GB)."""

import sys

import torch

WANT = "2.13.0"

if not torch.__version__.startswith(WANT) or torch.version.cuda is not None:
    sys.exit(
        f"error: torch {torch.__version__} (CUDA {torch.version.cuda}) is installed; edgeprune needs the {WANT} CPU build. "
        'Fix: make distclean && make setup TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu"'
    )

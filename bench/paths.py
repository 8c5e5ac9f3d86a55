"""Where edgeprune finds its own files and keeps its caches."""

from __future__ import annotations

import os
from pathlib import Path


def project_root() -> Path:
    """The repository root (holds platformio.ini and firmware/); edgeprune is installed editable from it."""
    env = os.environ.get("EDGEPRUNE_ROOT")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1]


def firmware_dir() -> Path:
    return project_root() / "firmware"


def cache_dir() -> Path:
    """Baselines and evaluation cache; ``EDGEPRUNE_CACHE`` overrides ``~/.cache/edgeprune``."""
    env = os.environ.get("EDGEPRUNE_CACHE")
    path = Path(env) if env else Path.home() / ".cache" / "edgeprune"
    path.mkdir(parents=True, exist_ok=True)
    return path

"""Shared fixtures: a private cache root per test and one torch thread (other engineers share the cores)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    import torch

    torch.set_num_threads(1)


@pytest.fixture
def cache_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv("EDGEPRUNE_CACHE", str(root))
    return root


def baseline_entries(root: Path) -> list[Path]:
    base = root / "baselines"
    return sorted(base.iterdir()) if base.is_dir() else []

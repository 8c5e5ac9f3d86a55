"""The baseline cache publishes complete entries only."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeprune.host.tasks import cache


def test_digest_ignores_key_order_but_not_values() -> None:
    assert cache.digest({"a": 1, "b": [1, 2]}) == cache.digest({"b": [1, 2], "a": 1})
    assert cache.digest({"a": 1}) != cache.digest({"a": 2})


def test_failed_writer_leaves_nothing(tmp_path: Path) -> None:
    def crash(d: Path) -> None:
        (d / "model.pt").write_bytes(b"partial")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cache.store("k1", crash, tmp_path)
    assert list((tmp_path / "baselines").iterdir()) == []
    with pytest.raises(RuntimeError, match="metrics.json"):
        cache.store("k1", lambda d: (d / "model.pt").write_bytes(b"x"), tmp_path)
    assert list((tmp_path / "baselines").iterdir()) == []
    assert cache.lookup("k1", tmp_path) is None


def test_store_publishes_and_replaces_incomplete_leftovers(tmp_path: Path) -> None:
    (tmp_path / "baselines" / "k2").mkdir(parents=True)  # e.g. a hand-copied, incomplete entry
    assert cache.lookup("k2", tmp_path) is None
    path = cache.store("k2", lambda d: cache.write_json(d / "metrics.json", {"v": 1}), tmp_path)
    assert path == tmp_path / "baselines" / "k2" and cache.lookup("k2", tmp_path) == path
    # A concurrent publisher of the same key keeps the first entry.
    again = cache.store("k2", lambda d: cache.write_json(d / "metrics.json", {"v": 2}), tmp_path)
    assert again == path and (path / "metrics.json").read_text().count('"v": 1') == 1
    assert sorted(p.name for p in (tmp_path / "baselines").iterdir()) == ["k2"]

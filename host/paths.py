"""Kept so ``edgeprune.host.paths`` keeps working: the path helpers live in ``edgeprune.bench.paths``, the
lowest layer, because bench (firmware builds, QEMU, flashing) needs them and may not import host."""

from __future__ import annotations

from edgeprune.bench.paths import cache_dir, firmware_dir, project_root

__all__ = ["cache_dir", "firmware_dir", "project_root"]

"""Exporting the best candidate of a run into ``<run>/best/``: the .tflite, C array, manifest and
the deploy build's flash/RAM as measured when the candidate was evaluated."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from edgeprune.bench.firmware_build import BuildError, build
from edgeprune.bench.targets import TargetSpec, split_specs
from edgeprune.host.search.result_figures import deploy_record
from edgeprune.host.search.store import StoredEvaluation
from edgeprune.host.search.types import FLASH_BYTES, RAM_BYTES

log = logging.getLogger(__name__)

BEST_FILES = ("model.tflite", "model_data.c", "model_data.h", "manifest.json")


def deploy_env_for(options: dict[str, Any]) -> str | None:
    """PlatformIO env of the run's target: ``qemu-<core>``, or the ``deploy_env`` the user gave."""
    env = (options.get("evaluator_options") or {}).get("deploy_env")
    if env:
        return str(env)
    devices = split_specs(str(options.get("device", "")))
    spec = TargetSpec.parse(devices[0]) if devices else None
    return f"qemu-{spec.core}" if spec is not None and spec.is_qemu else None


def _deploy(folder: Path, src: Path, env: str | None, build_dir: Path, enabled: bool) -> dict[str, Any]:
    """Deploy build of the model in ``folder``; its ELF goes next to the model, sizes to deploy.json.

    A deploy build the evaluator already made for this candidate (``src/deploy.json``) is reused.
    """
    prior = src / "deploy.json"
    if prior.is_file() and (src / "firmware.elf").is_file():
        rec = json.loads(prior.read_text())
        if rec.get("status") == "built" and (env is None or rec.get("env") == env):
            shutil.copy2(src / "firmware.elf", folder / "firmware.elf")
            return dict(rec)
    if not enabled:
        return {"status": "skipped: deploy build of the best candidate disabled (deploy_best=False)"}
    if env is None:
        return {"status": "skipped: no PlatformIO env known for this device (give evaluator deploy_env)"}
    try:
        built = build(env, baked_model_dir=folder, build_dir=build_dir)
    except BuildError as exc:
        return {"status": f"failed: {str(exc).splitlines()[0]}", "env": env}
    shutil.copy2(built.elf, folder / "firmware.elf")
    if built.elf.with_suffix(".bin").is_file():
        shutil.copy2(built.elf.with_suffix(".bin"), folder / "firmware.bin")
    return deploy_record(built)


def export_best(run_dir: Path, best: StoredEvaluation | None, options: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """Copy the best candidate's artifacts to ``<run>/best/`` (atomically), deploy-build it, describe it.

    Returns ``None`` when the run has no feasible candidate. When the artifacts are gone (the
    cache was cleared), the description says so instead of writing a partial folder. A ``best/``
    already holding this candidate's deploy build is kept as is.
    """
    if best is None:
        return None
    info: dict[str, Any] = {
        "seq": best.seq,
        "digest": best.digest,
        "strategy": best.strategy,
        "reward": best.reward,
        "config": json.loads(best.result.config_json),
    }
    for name in (FLASH_BYTES, RAM_BYTES):
        fig = best.result.figures.get(name)
        if fig is not None:
            info[name] = f"{fig.value:.0f} {fig.unit} [{fig.source}] {fig.detail}".strip()
    src = Path(best.result.artifacts.get("dir", ""))
    missing = [f for f in BEST_FILES if not (src / f).is_file()] if src.parts else list(BEST_FILES)
    if missing:
        info["files"] = f"not exported: {', '.join(missing)} missing under {src or '(no artifact dir)'}"
        return info
    dest = Path(run_dir) / "best"
    done = dest / "deploy.json"
    if done.is_file() and (dest / "config.json").is_file():
        prior = json.loads(done.read_text())
        if prior.get("digest") == best.digest:
            info.update({f"deploy_{k}": v for k, v in prior.items() if k != "digest"})
            info["files"] = ", ".join(sorted(p.name for p in dest.iterdir()))
            info["dir"] = str(dest)
            return info
    tmp = Path(run_dir) / "best.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    for f in BEST_FILES:
        shutil.copy2(src / f, tmp / f)
    opts = options or {}
    deploy = _deploy(tmp, src, deploy_env_for(opts), Path(run_dir) / ".best-build", bool(opts.get("deploy_best", True)))
    (tmp / "deploy.json").write_text(json.dumps({"digest": best.digest, **deploy}, indent=2), encoding="utf-8")
    info.update({f"deploy_{k}": v for k, v in deploy.items()})
    (tmp / "config.json").write_text(best.result.config_json, encoding="utf-8")
    (tmp / "evaluation.json").write_text(json.dumps(best.result.to_dict(), indent=2), encoding="utf-8")
    if dest.exists():
        old = Path(run_dir) / "best.old"
        shutil.rmtree(old, ignore_errors=True)
        os.replace(dest, old)
        os.replace(tmp, dest)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, dest)
    info["files"] = ", ".join(sorted(p.name for p in dest.iterdir()))
    info["dir"] = str(dest)
    return info

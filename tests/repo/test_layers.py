"""Dependencies point one way, host → export → bench, checked by import-linter (``[tool.importlinter]`` in
pyproject.toml). The contract's ``ignore_imports`` lists the known upward imports one by one; a new one fails
here, and import-linter also fails when a listed one no longer exists (so the list cannot go stale)."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT = Path(sys.executable).with_name("lint-imports")


def _lint(cwd: Path, config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LINT), "--config", str(config), "--no-cache"], cwd=cwd, capture_output=True,
                          text=True, timeout=300, check=False)


def test_layers_contract_is_kept():
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]
    (contract,) = cfg["contracts"]
    assert contract["type"] == "layers"
    assert contract["layers"] == ["edgeprune.host", "edgeprune.export", "edgeprune.bench"]
    # The moved pieces stay down: bench reads manifests and finds the repository without export or host.
    ignored = contract.get("ignore_imports", [])
    assert not [i for i in ignored if i.endswith(("edgeprune.bench.paths", "edgeprune.bench.carray"))]
    readers = ("agreement", "inputs", "measure", "model_bench", "firmware_build")
    assert not [i for i in ignored if i.endswith("edgeprune.bench.manifest") and i.split(".")[2].split()[0] in readers]
    res = _lint(ROOT, ROOT / "pyproject.toml")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "1 kept, 0 broken" in res.stdout


def test_contract_catches_an_upward_import(tmp_path):
    """The same contract on a toy package whose lowest layer imports the top one must be reported broken."""
    pkg = tmp_path / "toy"
    for sub, body in {"host": "", "export": "from toy import bench\n", "bench": "from toy.host import x\n"}.items():
        (pkg / sub).mkdir(parents=True)
        (pkg / sub / "__init__.py").write_text(body)
    (pkg / "__init__.py").write_text("")
    (pkg / "host" / "x.py").write_text("")
    config = tmp_path / ".importlinter"
    config.write_text("[importlinter]\nroot_package = toy\n\n[importlinter:contract:layers]\nname = toy layers\n"
                      "type = layers\nlayers =\n    toy.host\n    toy.export\n    toy.bench\n")
    res = _lint(tmp_path, config)
    assert res.returncode != 0
    assert "toy.bench is not allowed to import toy.host" in res.stdout

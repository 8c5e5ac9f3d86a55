"""Dependencies point one way, checked by import-linter (``[tool.importlinter]`` in pyproject.toml) with no
exemptions; docs/design.md draws the same layers the contract checks."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT = Path(sys.executable).with_name("lint-imports")


def _lint(cwd: Path, config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LINT), "--config", str(config), "--no-cache"], cwd=cwd, capture_output=True,
                          text=True, timeout=300, check=False)


def _contracts() -> list[dict]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]["contracts"]


def _layers() -> list[str]:
    (layers,) = [c["layers"] for c in _contracts() if c["type"] == "layers"]
    return layers


def test_contracts_are_kept_with_no_exemptions():
    contracts = _contracts()
    assert not [c["name"] for c in contracts if c.get("ignore_imports")], "fix the import instead of listing it"
    res = _lint(ROOT, ROOT / "pyproject.toml")
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"{len(contracts)} kept, 0 broken" in res.stdout


def test_every_host_package_sits_in_a_layer():
    """A new host subpackage or top-level module must be placed in the order, not slip between layers."""
    named = {m.strip() for layer in _layers() for m in re.split(r"[|:]", layer)}
    host = ROOT / "host"
    parts = [p.name for p in host.iterdir() if (p / "__init__.py").is_file()]
    parts += [p.stem for p in host.glob("*.py") if p.name != "__init__.py"]
    missing = sorted(f"edgeprune.host.{p}" for p in parts if f"edgeprune.host.{p}" not in named)
    assert not missing, f"add these to the layers contract in pyproject.toml and to docs/design.md: {missing}"


def test_design_doc_draws_the_checked_layers():
    """The diagram under "## Layers" in docs/design.md lists the contract's layers, top to bottom."""
    text = (ROOT / "docs" / "design.md").read_text(encoding="utf-8")
    section = text.split("\n## Layers", 1)[1]
    block = section.split("```", 2)[1]
    drawn = [line.split("#")[0].strip() for line in block.splitlines()]
    drawn = [line for line in drawn if line and not set(line) <= set("↓ ")]
    assert drawn == _layers()


def test_benchmark_scripts_use_only_public_names():
    """Scripts import the library's public names (no ``_private`` ones), as a user's program would."""
    bad = []
    for path in sorted((ROOT / "bench" / "scripts").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("edgeprune"):
                bad += [f"{path.name}:{node.lineno} {a.name}" for a in node.names if a.name.startswith("_")]
    assert not bad


def test_contract_catches_an_upward_import(tmp_path):
    """The same kind of contract on a toy package whose lowest layer imports the top one must be reported broken."""
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


def module_names(tops: tuple[str, ...] = ("host", "export", "bench")) -> dict[str, list[str]]:
    """Module basename -> the files of that name under ``tops`` (the benchmark scripts included)."""
    names: dict[str, list[str]] = {}
    for top in tops:
        for path in sorted((ROOT / top).rglob("*.py")):
            if "__pycache__" not in path.parts:
                names.setdefault(path.stem, []).append(str(path.relative_to(ROOT)))
    return names


def test_module_names_are_unique():
    """A module is named for what it holds, once: two ``pipeline.py``, ``dqn.py`` or ``errors.py`` said nothing
    about which one an import meant. Only a package's ``__init__`` / ``__main__`` repeat."""
    repeated = {n: p for n, p in module_names().items() if len(p) > 1 and n not in ("__init__", "__main__")}
    assert not repeated, f"rename so each says what it holds: {repeated}"


def test_module_name_check_sees_a_repeat():
    """The census behind the uniqueness test finds every module, so a repeated name could not hide from it."""
    names = module_names()
    assert len(names["__init__"]) > 5
    assert names["errors"] == ["bench/errors.py"]
    assert "bench/scripts/studies.py" in names["studies"]


#: Test folders that are not a source folder's mirror, and what they hold instead.
NOT_MIRRORS = {
    "tests/repo": "checks of the repository itself (layers, imports, names)",
    "tests/doubles": "the test doubles, in one place",
    "tests/device": "end-to-end runs on QEMU boards and their stub, across layers",
    "tests/device/stm32_stub": "a stub board's firmware for tests/device",
    "tests/runtime": "the C runtime, firmware/runtime/",
}


def test_tests_mirror_the_source_tree():
    """tests/<path> tests <path>: each test folder names a source folder (or says above why it does not)."""
    folders = sorted(str(d.relative_to(ROOT)) for d in (ROOT / "tests").rglob("*")
                     if d.is_dir() and "__pycache__" not in d.parts and any(d.glob("*.py")))
    unmatched = [f for f in folders if f not in NOT_MIRRORS and not (ROOT / f.removeprefix("tests/")).is_dir()]
    assert "tests/host/search" in folders and "tests/bench/scripts" in folders
    assert not unmatched, f"put these tests beside a mirror of their source folder: {unmatched}"

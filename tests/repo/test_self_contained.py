"""The repository is complete on its own: no code, test, tool or firmware file names a path outside it."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from edgeprune.bench import reference
from edgeprune.bench.reference import AD01_SHA256, ReferenceModelError, ad01_bytes, ad01_path, tflm_same_qemu

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("host", "export", "bench", "firmware", "tests", "tools", ".ci", "requirements",
           "Makefile", "platformio.ini", "setup.py", "pyproject.toml")
SKIP_DIRS = {".pio", "__pycache__", ".venv", "build", ".mypy_cache", ".ruff_cache", ".pytest_cache"}
# Built by concatenation so this file does not match its own patterns.
OUTSIDE = re.compile("|".join(re.escape(p) for p in ("/" + "work/", ".." + "/shared", "/" + "home/", "/" + "tmp/ci")))


def _text_files() -> list[Path]:
    out: list[Path] = []
    for name in SCANNED:
        top = ROOT / name
        paths = [top] if top.is_file() else [p for p in top.rglob("*") if p.is_file()]
        for p in paths:
            if SKIP_DIRS.intersection(p.relative_to(ROOT).parts) or p.suffix in (".tflite", ".so", ".elf", ".bin"):
                continue
            out.append(p)
    return out


def test_no_absolute_path_outside_the_repository():
    files = _text_files()
    assert len(files) > 100, "the scan found too few files; is ROOT right?"
    hits = []
    for p in files:
        try:
            text = p.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for lineno, line in enumerate(text.splitlines(), 1):
            if OUTSIDE.search(line):
                hits.append(f"{p.relative_to(ROOT)}:{lineno}: {line.strip()[:100]}")
    assert not hits, "paths outside the repository:\n" + "\n".join(hits)


def test_the_scan_would_catch_one(tmp_path):
    assert OUTSIDE.search('AD01 = Path("' + "/" + 'work/shared/benchmarks/x.tflite")')
    assert OUTSIDE.search("see " + ".." + "/shared/benchmarks/README.md")
    assert not OUTSIDE.search("bench/reference/README.md")


def test_ad01_ships_with_its_licence_and_hash():
    path = ad01_path()
    assert path.is_relative_to(ROOT)
    assert hashlib.sha256(ad01_bytes()).hexdigest() == AD01_SHA256
    for name in ("LICENSE", "NOTICE", "README.md"):
        assert (path.parent / name).is_file(), name
    assert "Apache License" in (path.parent / "LICENSE").read_text()
    assert AD01_SHA256 in (path.parent / "README.md").read_text()


def test_a_changed_model_is_refused(tmp_path, monkeypatch):
    bad = tmp_path / "ad01.tflite"
    data = bytearray(ad01_bytes())
    data[100] ^= 1
    bad.write_bytes(bytes(data))
    monkeypatch.setattr(reference, "AD01_FILE", bad)
    with pytest.raises(ReferenceModelError, match="SHA-256"):
        reference.ad01_bytes()
    monkeypatch.setattr(reference, "AD01_FILE", tmp_path / "missing.tflite")
    with pytest.raises(ReferenceModelError, match="cannot read"):
        reference.ad01_path()


def test_tflm_figures_match_the_readme_table():
    text = (ROOT / "bench" / "reference" / "README.md").read_text()
    section = text.split("## TFLM on the same QEMU", 1)[1]
    rows = re.findall(r"^\| M(\d+) \(mps2-an\d+\) \|(.+)\|$", section, flags=re.M)
    assert len(rows) == 3
    for core, cells in rows:
        counts = [int(c.split("(")[0].strip().replace(",", "")) for c in cells.split("|")]
        want = [tflm_same_qemu(f"m{core}", m, k) for m, k in
                (("ad01", "reference"), ("ad01", "cmsis-nn"), ("fc256", "reference"), ("fc256", "cmsis-nn"))]
        assert counts == want, core
    assert tflm_same_qemu("m0", "ad01", "reference") is None

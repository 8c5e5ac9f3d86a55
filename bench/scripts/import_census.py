"""Import census (issue 29): how many imports of host/, export/ and bench/ sit inside functions.

    python bench/scripts/import_census.py [REPO_ROOT]

Counts ``import``/``from ... import`` statements with ``ast``: all of them, and those of project modules
(``edgeprune.*`` or relative), for the package and for bench/scripts separately.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path


def count(files: list[Path], internal_only: bool) -> tuple[int, int]:
    """(imports, of which inside a function) over ``files``."""
    total = inner = 0
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        in_function = {id(n) for f in ast.walk(tree) if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)
                       for n in ast.walk(f) if n is not f}
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            names = [("." * node.level) + (node.module or "")] if isinstance(node, ast.ImportFrom) else [
                a.name for a in node.names]
            if internal_only and not any(m.startswith(("edgeprune", ".")) for m in names):
                continue
            total += 1
            inner += id(node) in in_function
    return total, inner


def main() -> None:
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[2]
    package = [p for top in ("host", "export", "bench") for p in (root / top).rglob("*.py")
               if "__pycache__" not in p.parts and "scripts" not in p.parts]
    scripts = sorted((root / "bench" / "scripts").glob("*.py"))
    for name, files in (("package", package), ("bench/scripts", scripts)):
        for internal in (False, True):
            total, inner = count(files, internal)
            print(f"{name:14s} {'project-only' if internal else 'all':13s} imports {total:4d} "
                  f"in-function {inner:4d} ({100 * inner / max(total, 1):.0f} %)")


if __name__ == "__main__":
    main()

"""Imports sit at module top; only heavy optional dependencies are deferred into functions.

An import inside a function is allowed when the module it loads is heavy: one of ``DEFERRED`` (each with the
reason it is deferred) or an edgeprune module whose top-level imports reach one of them. Everything else goes
to the top of the module, where the layer contract (pyproject.toml) can see it.

The benchmark scripts (bench/scripts/) follow the same rule, and each function of theirs that defers an import
says why in a comment above its first one (which of the script's commands stay light without it): a script that
needs torch on every path imports it at the top.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {"host": "edgeprune.host", "export": "edgeprune.export", "bench": "edgeprune.bench"}

#: Dependencies imported inside functions, and why.
DEFERRED = {
    "torch": "1-2 s to import; report, doctor, bench and --help never need it",
    "tensorflow": "several seconds and ~1 GB; only the converter stage (export.to_tflite) needs it",
    "onnx2tf": "imports TensorFlow",
    "onnx": "only the ONNX stage of an export needs it",
    "onnxruntime": "only the ONNX parity check needs it",
    "tflite_micro": "loads the TFLM interpreter's shared library; only the oracle and tflite readers need it",
    "ray": "optional extra (pip install edgeprune[ray]); only --ray-address needs it",
    "codecarbon": "optional; only host-energy figures need it",
    "stable_baselines3": "imports torch and gymnasium; only DQN/PPO tasks and strategies need it",
    "gymnasium": "only policy tasks need it",
    "optuna": "only the tpe/cmaes strategies need it",
    "matplotlib": "~0.5 s; only the report's plots need it",
    "moocore": "only the hypervolume figure needs it",
    "ppk2_api": "optional; only a Nordic PPK2 power meter needs it",
    "elftools": "only firmware size/profile readers need it",
    "absl": "comes with TensorFlow; its logger is quieted only once TensorFlow is loaded",
}

#: In-function imports that still dodge an import cycle, each with what breaks it. Only ever shrinks (now empty).
PENDING: dict[tuple[str, str], str] = {}


def _modules() -> dict[str, Path]:
    out = {}
    for folder, pkg in PACKAGES.items():
        for path in (ROOT / folder).rglob("*.py"):
            rel = path.relative_to(ROOT / folder).with_suffix("")
            if rel.parts[0] == "scripts":
                continue
            parts = [p for p in rel.parts if p != "__init__"]
            out[".".join([pkg, *parts])] = path
    return out


MODULES = _modules()
#: The benchmark scripts, named as import-linter names them (``bench.scripts.<stem>``).
SCRIPTS = {f"bench.scripts.{p.stem}": p for p in sorted((ROOT / "bench" / "scripts").glob("*.py"))}


def _resolve(node: ast.ImportFrom | ast.Import, module: str, path: Path) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    base = node.module or ""
    if node.level:
        pkg = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
        pkg = pkg[: len(pkg) - node.level + 1]
        base = ".".join(pkg + ([base] if base else []))
    # "from pkg import sub" imports a module when pkg.sub is one.
    return [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]


def _walk(tree: ast.AST):
    """(import node, inside a function?) for every import; TYPE_CHECKING blocks are skipped."""
    def visit(node: ast.AST, in_fn: bool):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, ast.Import | ast.ImportFrom):
                yield child, in_fn
            yield from visit(child, in_fn or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda))
    yield from visit(tree, False)


@cache
def _imports(module: str) -> tuple[tuple[ast.AST, bool, tuple[str, ...]], ...]:
    path = MODULES.get(module) or SCRIPTS[module]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return tuple((node, in_fn, tuple(_resolve(node, module, path))) for node, in_fn in _walk(tree))


def _known(name: str) -> str | None:
    """The project module ``name`` loads (its longest prefix that is one), else None."""
    parts = name.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in MODULES:
            return ".".join(parts[:n])
    return None


_HEAVY: dict[str, bool] = {}


def is_heavy(name: str) -> bool:
    """Does importing ``name`` (at top level, transitively) load a ``DEFERRED`` dependency?"""
    if name.split(".")[0] in DEFERRED:
        return True
    mod = _known(name)
    if mod is None:
        return False
    if mod not in _HEAVY:
        _HEAVY[mod] = False  # a cycle back here adds nothing
        # A package's __init__ runs first.
        parents = [".".join(mod.split(".")[:n]) for n in range(2, len(mod.split(".")))]
        _HEAVY[mod] = any(is_heavy(p) for p in parents if p in MODULES and p != mod) or any(
            is_heavy(t) for _, in_fn, targets in _imports(mod) if not in_fn for t in targets)
    return _HEAVY[mod]


def light_deferred_imports() -> list[str]:
    bad = []
    for module, path in sorted(MODULES.items()):
        for node, in_fn, targets in _imports(module):
            if in_fn and not any(is_heavy(t) for t in targets) and (module, targets[0]) not in PENDING:
                bad.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)}")
    return bad


def test_only_heavy_dependencies_are_imported_inside_functions() -> None:
    bad = light_deferred_imports()
    assert not bad, "move these imports to the top of their module:\n" + "\n".join(bad)


def unexplained_deferrals(source: str) -> list[int]:
    """Lines of the first import inside each function of ``source`` that no ``#`` comment line sits right above
    (blank lines between are allowed)."""
    lines = source.splitlines()
    bad = []
    for fn in ast.walk(ast.parse(source)):
        if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        first = min((n.lineno for n, _ in _walk(fn)), default=None)
        if first is None:
            continue
        above = first - 2
        while above >= 0 and not lines[above].strip():
            above -= 1
        if above < 0 or not lines[above].lstrip().startswith("#"):
            bad.append(first)
    return bad


def script_deferred_imports() -> tuple[list[str], list[str]]:
    """(light imports inside a script's functions, heavy ones deferred without a reason) over bench/scripts."""
    light, unexplained = [], []
    for module, path in SCRIPTS.items():
        for node, in_fn, targets in _imports(module):
            if in_fn and not any(is_heavy(t) for t in targets):
                light.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)}")
        unexplained += [f"{path.relative_to(ROOT)}:{line}" for line in unexplained_deferrals(path.read_text("utf-8"))]
    return light, unexplained


def test_scripts_defer_only_heavy_dependencies_and_say_why() -> None:
    light, unexplained = script_deferred_imports()
    assert not light, "move these imports to the top of their script:\n" + "\n".join(light)
    assert not unexplained, ("say in a comment above the import which commands stay light without it (or import it "
                             "at the top):\n" + "\n".join(unexplained))


def test_the_checks_see_a_light_deferral_and_a_missing_reason() -> None:
    """The census finds the scripts and tells heavy from light; a deferral without a comment is reported."""
    assert "bench.scripts.bench_common" in SCRIPTS and len(SCRIPTS) > 10
    assert is_heavy("torch") and is_heavy("edgeprune.host.models")
    assert not is_heavy("edgeprune.bench.paths") and not is_heavy("json")
    src = "def f():\n    import torch\n\n\ndef g():\n    # Deferred: only g needs it.\n\n    import torch\n    import ray\n"
    assert unexplained_deferrals(src) == [2]

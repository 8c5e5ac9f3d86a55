"""The deploy build's object cache: an object is reused exactly when the compiler would read the same thing.

The key covers the source and the headers it includes (found as the preprocessor finds them), not every header in
the folders: each candidate's library carries its own generated headers, and keying on those made a search
recompile the whole runtime for every candidate.
"""

from __future__ import annotations

from pathlib import Path

from edgeprune.export.deploy_tools import _included_headers, arm_gcc, compile_object

FLAGS = ["-mcpu=cortex-m4", "-mthumb", "-O2"]


def _lib(root: Path, config: str, unrelated: str) -> tuple[Path, Path]:
    """A library folder: ``src/k.c`` includes ``cfg.h`` (which includes ``sub/inner.h``); ``include/model.h`` is
    beside it but not included by ``k.c``."""
    (root / "src" / "sub").mkdir(parents=True)
    (root / "include").mkdir()
    (root / "src" / "k.c").write_text('#include "cfg.h"\n#include <string.h>\nint k(void) { return K + INNER; }\n')
    (root / "src" / "cfg.h").write_text(config + '\n#include "sub/inner.h"\n')
    (root / "src" / "sub" / "inner.h").write_text("#define INNER 3\n")
    (root / "include" / "model.h").write_text(unrelated)
    return root / "src" / "k.c", root / "include"


def test_headers_found_as_the_preprocessor_finds_them(tmp_path: Path) -> None:
    src, inc = _lib(tmp_path, "#define K 1", "#define M 1\n")
    found = _included_headers(src, [inc])
    assert [name for name, _ in found] == ["cfg.h", "sub/inner.h"]  # <string.h> is the toolchain's, model.h unused


def test_object_reused_only_for_what_the_compiler_reads(tmp_path: Path) -> None:
    gcc, cache = arm_gcc(), tmp_path / "cache"
    cache.mkdir()
    src_a, inc_a = _lib(tmp_path / "a", "/* 98 deep */\n#define K 1", "#define M 1\n")
    base = compile_object(gcc, src_a, [inc_a], FLAGS, cache, 60.0)
    # Another library: a header it does not include differs, and a comment in the one it does: same object.
    other = tmp_path / "b"
    src_b, inc_b = _lib(other, "/* 128 deep,\n   two layers */\n#define K 1", "#define M 2\n")
    assert compile_object(gcc, src_b, [inc_b], FLAGS, cache, 60.0) == base
    # A macro that changes, directly or two includes down, is a new object.
    src_c, inc_c = _lib(tmp_path / "c", "#define K 2", "#define M 1\n")
    changed = compile_object(gcc, src_c, [inc_c], FLAGS, cache, 60.0)
    assert changed != base and changed.read_bytes() != base.read_bytes()
    src_d, inc_d = _lib(tmp_path / "d", "#define K 1", "#define M 1\n")
    (tmp_path / "d" / "src" / "sub" / "inner.h").write_text("#define INNER 4\n")
    assert compile_object(gcc, src_d, [inc_d], FLAGS, cache, 60.0) not in (base, changed)
    assert len(list(cache.glob("*.o"))) == 3

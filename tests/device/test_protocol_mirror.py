"""ep_protocol.h and bench/protocol.py must agree on every constant and payload layout."""

from __future__ import annotations

import re

from edgeprune.bench import protocol as P
from edgeprune.bench.paths import project_root

HEADER = project_root() / "firmware" / "include" / "ep_protocol.h"


def _strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def header_constants() -> dict[str, int]:
    """Every ``#define EP_X <integer expression>`` evaluated in order (later ones may use earlier ones)."""
    values: dict[str, int] = {}
    for name, expr in re.findall(r"^#define EP_(\w+)\s+(.+)$", _strip_comments(HEADER.read_text()), flags=re.M):
        py = re.sub(r"\b(0x[0-9A-Fa-f]+|\d+)u\b", r"\1", expr.strip())
        py = re.sub(r"\bEP_(\w+)\b", lambda m: str(values[m.group(1)]), py)
        if name == "PROTOCOL_H":
            continue
        values[name] = int(eval(py.replace("/", "//"), {"__builtins__": {}}))  # noqa: S307 - our own header
    return values


def header_structs() -> dict[str, list[tuple[str, str, int]]]:
    text = _strip_comments(HEADER.read_text())
    consts = header_constants()
    out: dict[str, list[tuple[str, str, int]]] = {}
    for body, name in re.findall(r"typedef struct \{(.*?)\}\s*(\w+);", text, flags=re.S):
        fields = []
        for ctype, fname, count in re.findall(r"(\w+)\s+(\w+)(?:\[(\w+)\])?;", body):
            n = 1 if not count else (int(count) if count.isdigit() else consts[count.removeprefix("EP_")])
            fields.append((fname, ctype, n))
        out[name] = fields
    return out


def test_constants_match():
    consts = header_constants()
    assert len(consts) > 50
    for name, value in consts.items():
        assert hasattr(P, name), f"bench/protocol.py lacks {name} (= {value})"
        assert getattr(P, name) == value, f"{name}: header {value}, python {getattr(P, name)}"


def test_python_has_no_extra_protocol_constants():
    consts = header_constants()
    prefixes = ("MSG_", "ST_", "CORE_", "COUNTER_", "RESET_", "POWER_", "MAX_")
    extra = [n for n in dir(P) if n.startswith(prefixes) and isinstance(getattr(P, n), int) and n not in consts]
    assert not extra, f"python constants missing from the header: {extra}"


def test_struct_layouts_match():
    structs = header_structs()
    by_name = {layout.c_name: layout for layout in P.LAYOUTS}
    assert set(structs) == set(by_name)
    asserted = dict(re.findall(r"_Static_assert\(sizeof\((\w+)\) == (\d+)", HEADER.read_text()))
    for name, fields in structs.items():
        assert list(by_name[name].fields) == fields, name
        assert by_name[name].size == int(asserted[name]), name


def test_layout_roundtrip_and_unknown_field():
    raw = P.HELLO.pack(protocol=1, core=P.CORE_M7, build_id="abc", board="mps2-an500", clock_hz=25_000_000)
    assert len(raw) == P.HELLO.size
    back = P.HELLO.unpack(raw)
    assert back["build_id"] == "abc" and back["board"] == "mps2-an500" and back["clock_hz"] == 25_000_000
    try:
        P.HELLO.pack(no_such_field=1)
    except ValueError as exc:
        assert "no_such_field" in str(exc)
    else:
        raise AssertionError("unknown field accepted")

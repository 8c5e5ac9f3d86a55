"""ep_runtime.h's ``ep_rt_status`` and bench/runtime_status.py agree on every code and its meaning."""

from __future__ import annotations

import re

from edgeprune.bench import protocol as P
from edgeprune.bench.link import DeviceError
from edgeprune.bench.paths import project_root
from edgeprune.bench.runtime_status import MEANINGS, RuntimeStatus, describe

HEADER = project_root() / "firmware" / "runtime" / "ep_runtime.h"


def header_statuses() -> dict[str, tuple[int, str]]:
    """``{"ERR_ARG": (-1, "NULL pointer ..."), ...}`` from the ``ep_rt_status`` enum."""
    body = re.search(r"typedef enum \{(.*?)\}\s*ep_rt_status;", HEADER.read_text(), flags=re.S)
    assert body is not None, "ep_rt_status enum not found in ep_runtime.h"
    entries = re.findall(r"EP_RT_(\w+)\s*=\s*(-?\d+),?[ \t]*(?:/\*\s*(.*?)\s*\*/)?", body.group(1))
    return {name: (int(value), comment) for name, value, comment in entries}


def test_every_header_status_is_mirrored_with_its_meaning():
    header = header_statuses()
    assert len(header) >= 18
    assert {s.name: s.value for s in RuntimeStatus} == {n: v for n, (v, _) in header.items()}
    for name, (_, comment) in header.items():
        if comment:
            assert MEANINGS[RuntimeStatus[name]] == comment, name


def test_a_runtime_refusal_names_the_runtime_status():
    err = DeviceError(P.ST_RUNTIME, int(RuntimeStatus.ERR_OP), P.MSG_LOAD_END)
    assert "OP (operator (builtin code, custom op, or option) not supported)" in str(err)
    assert describe(-999) == "runtime status -999"
    assert "ARENA" not in str(DeviceError(P.ST_HASH, int(RuntimeStatus.ERR_ARENA), P.MSG_LOAD_END))

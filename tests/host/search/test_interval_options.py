"""The quality options have one default each, shared by the CLI and the library; a bad level stops everything."""

from __future__ import annotations

import dataclasses

import pytest
from click.testing import CliRunner

from edgeprune.host.cli.search_cmd import command
from edgeprune.host.search.objective import Constraints
from edgeprune.host.search.options import SearchOptions


def _cli_default(name: str) -> object:
    return next(p.default for p in command.params if p.name == name)


def test_cli_and_library_share_the_quality_defaults() -> None:
    lib = {f.name: f.default for f in dataclasses.fields(SearchOptions)}
    for name in ("max_acc_drop", "interval_level"):
        assert _cli_default(name) == lib[name], name
    assert Constraints().max_acc_drop == lib["max_acc_drop"]


@pytest.mark.parametrize("level", ["1.5", "0.2", "1", "nan"])
def test_interval_level_out_of_range_is_refused_in_one_line_before_any_work(tmp_path, level: str) -> None:
    out = tmp_path / "run"
    res = CliRunner().invoke(command, ["--interval-level", level, "--out", str(out)])
    assert res.exit_code != 0
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "interval level" in lines[0] and "0.95" in lines[0], res.output
    assert not out.exists()

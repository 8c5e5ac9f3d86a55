"""bench/scripts/search_speed.py (issue 28's benchmark): every command line it runs is one `edgeprune search`
accepts today, every strategy it lists exists, and its table reads the records it writes."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from edgeprune.host.cli.search_cmd import command
from edgeprune.host.search.strategies import STRATEGIES

SCRIPTS = Path(__file__).resolve().parents[3] / "bench" / "scripts"
sys.path.insert(0, str(SCRIPTS))
import search_speed  # noqa: E402


@pytest.mark.parametrize("case, strategy", [("demo", None), ("budget100", None),
                                            *(("strategies", s) for s in search_speed.STRATEGIES)])
def test_its_command_lines_parse_as_the_cli_parses_them(case: str, strategy: str | None, tmp_path: Path) -> None:
    args = ["--out", str(tmp_path / "run"), *search_speed._args(case, 1, strategy)]
    ctx = command.make_context("search", args)  # parses and checks every option; runs nothing
    assert ctx.params["seed"] == 1
    if strategy is not None:
        assert ctx.params["strategy"] == strategy and strategy in STRATEGIES
    assert ctx.params["budget"] == {"demo": None, "budget100": 100, "strategies": 20}[case]  # None: the default


def test_table_and_an_unfinished_run(tmp_path: Path) -> None:
    assert search_speed.summarise(tmp_path / "missing") == {"error": "no store"}
    record = {"label": "new", "case": "demo", "strategy": "ppo", "seed": 0, "wall_s": 251.4, "cpu_s": 400.0,
              "load": 1.5, "candidates": 24, "device": 20, "host_screened": 4, "stopped": 0, "instr_ratio": 15.6,
              "flash_ratio": 15.7, "val_drop": 0.0, "feasible_in_first5": True}
    lines = search_speed.table([record]).splitlines()
    assert len(lines) == 3 and lines[0].count("|") == lines[2].count("|")
    assert "| new | demo | ppo | 0 | 251 | 400 | 1.5 | 20 / 24 | 4 | 0 | 15.6 | 15.7 | 0.0 | True |" == lines[2]


def test_an_ablations_options_reach_the_cli(tmp_path: Path) -> None:
    """``--search-args=...`` (an ablation) is appended to the search's command line and parses as the CLI's options."""
    extra = search_speed.shlex.split("--no-bounds --no-multi-fidelity")
    ctx = command.make_context("search", ["--out", str(tmp_path / "run"), *search_speed._args("demo", 0, None), *extra])
    assert ctx.params["bounded"] is False and ctx.params["multi_fidelity"] is False

"""One default per option: every CLI option that has a library counterpart defaults to the library's value, so a
library caller gets what a CLI user gets (the CLI only parses)."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any

import click
import pytest

from edgeprune.bench.flash import flash
from edgeprune.bench.model_bench import bench_model
from edgeprune.bench.targets import DEFAULT_TARGET, TargetSpec
from edgeprune.export.deploy_build import deploy_and_measure
from edgeprune.host.cli import bench_cmd, export_cmd, flash_cmd, search_cmd
from edgeprune.host.search.options import SearchOptions, parse_finetune_steps
from edgeprune.host.search.parallel import parse_workers


def _signature_defaults(fn: Callable[..., Any]) -> dict[str, Any]:
    return {n: p.default for n, p in inspect.signature(fn).parameters.items() if p.default is not inspect.Parameter.empty}


def _cli_default(option: click.Option) -> Any:
    """The value click passes when the option is not given (click 8.2 marks "no default" with a sentinel)."""
    with click.Context(click.Command("probe")) as ctx:
        value = option.get_default(ctx, call=True)
    if value is None or "UNSET" in repr(value):
        return False if option.is_flag else None
    return value


def _cli_defaults(command: click.Command) -> dict[str, Any]:
    return {p.name: _cli_default(p) for p in command.params if isinstance(p, click.Option)}


SEARCH = {f.name: getattr(SearchOptions(), f.name) for f in dataclasses.fields(SearchOptions)}

# CLI option name -> (library default, how the CLI turns its own default into the library's value)
SEARCH_MAP: dict[str, tuple[Any, Callable[[Any], Any]]] = {
    "device": (SEARCH["device"], lambda v: v),
    "workers": (SEARCH["workers"], parse_workers),
    "strategy": (SEARCH["strategy"], lambda v: v),
    "budget": (SEARCH["budget"], lambda v: SEARCH["budget"] if v is None else v),
    "max_acc_drop": (SEARCH["max_acc_drop"], lambda v: v),
    "interval_level": (SEARCH["interval_level"], lambda v: v),
    "flash_kb": (SEARCH["flash_kb"], lambda v: v),
    "ram_kb": (SEARCH["ram_kb"], lambda v: v),
    "seed": (SEARCH["seed"], lambda v: v),
    "reward": (SEARCH["reward"], lambda v: v),
    "finetune_steps": (SEARCH["finetune_steps"], parse_finetune_steps),
    "no_host_energy": (SEARCH["host_energy"], lambda v: not v),
    "no_cache": (SEARCH["use_cache"], lambda v: not v),
    "out": (SEARCH["out"], lambda v: v),
    "ray_address": (SEARCH["ray_address"], lambda v: v),
    "qat_steps": (SEARCH["qat_steps"], lambda v: v),
    "stochastic_rounding": (SEARCH["stochastic_rounding"], lambda v: v),
    "greedy_batch": (SEARCH["greedy_batch"], lambda v: v),
    "mixed_precision": (SEARCH["mixed_precision"], lambda v: v),
    "multi_fidelity": (SEARCH["multi_fidelity"], lambda v: v),
    "bounded": (SEARCH["bounded"], lambda v: v),
    "warm_start": (SEARCH["warm_start"], lambda v: v),
}


@pytest.mark.parametrize("option", sorted(SEARCH_MAP))
def test_search_cli_defaults_are_search_options_defaults(option: str) -> None:
    library, to_library = SEARCH_MAP[option]
    assert to_library(_cli_defaults(search_cmd.command)[option]) == library


def test_every_search_option_with_a_library_field_is_compared() -> None:
    """A new ``edgeprune search`` option that sets a ``SearchOptions`` field must be added above."""
    display_only = {"task", "model", "env_id", "data", "resume", "wide"}  # inputs with no default to share
    assert set(_cli_defaults(search_cmd.command)) - display_only == set(SEARCH_MAP)


@pytest.mark.parametrize(("command", "library", "pairs"), [
    (bench_cmd.command, bench_model, {"repeats": "repeats", "warmup": "warmup", "agreement": "agreement",
                                      "energy_board": "energy_board", "host_energy_runs": "host_energy_runs",
                                      "ppk2_port": "ppk2_port", "ppk2_channel": "ppk2_channel", "ppk2_mv": "ppk2_mv",
                                      "timeout_s": "timeout_s", "json_out": "json_out",
                                      "manifest_path": "manifest_path"}),
    (flash_cmd.command, flash, {"timeout_s": "timeout_s", "retries": "retries", "expect_build_id": "expect_build_id"}),
    (export_cmd.command, deploy_and_measure, {"deploy_core": "core"}),
])
def test_cli_defaults_are_the_library_defaults(command: click.Command, library: Callable[..., Any],
                                               pairs: dict[str, str]) -> None:
    cli, lib = _cli_defaults(command), _signature_defaults(library)
    assert {o: cli[o] for o in pairs} == {o: lib[p] for o, p in pairs.items()}


def test_one_default_target() -> None:
    """``search``, ``bench`` (no --device) and ``SearchOptions`` all mean the one default target."""
    assert SEARCH["device"] == DEFAULT_TARGET == _cli_defaults(search_cmd.command)["device"]
    assert TargetSpec.parse(DEFAULT_TARGET).is_qemu

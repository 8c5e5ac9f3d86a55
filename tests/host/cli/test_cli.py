"""The CLI surface: every subcommand exists and explains itself with an example."""

from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner

from edgeprune.host.cli import SUBCOMMANDS, main


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_subcommand_help_has_an_example(name: str) -> None:
    result = CliRunner().invoke(main, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert "Example" in result.output
    assert f"edgeprune {name}" in result.output


def test_all_subcommands_are_listed() -> None:
    result = CliRunner().invoke(main, ["--help"])
    for name in SUBCOMMANDS:
        assert name in result.output


def test_packages_map_to_top_level_folders_without_generic_names(tmp_path) -> None:
    code = (
        "import importlib.util, edgeprune.host, edgeprune.export, edgeprune.bench;"
        "print(edgeprune.host.__file__, edgeprune.export.__file__, edgeprune.bench.__file__);"
        "print(importlib.util.find_spec('host'), importlib.util.find_spec('bench'))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    files, specs = out.stdout.strip().splitlines()
    assert files.split()[0].endswith("host/__init__.py")
    assert files.split()[1].endswith("export/__init__.py")
    assert files.split()[2].endswith("bench/__init__.py")
    assert specs == "None None"


@pytest.mark.tf
def test_library_errors_become_one_line_and_exit_1(tmp_path) -> None:
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"not a model")
    result = CliRunner().invoke(main, ["bench", str(bad), "--device", "qemu:m4"])
    assert result.exit_code == 1
    assert "Error: ExportError: export failed at tflm" in result.output
    assert "Traceback" not in result.output


def test_bugs_keep_their_traceback() -> None:
    from edgeprune.host.cli import _is_library_error
    from edgeprune.host.tasks.base import TaskError

    assert _is_library_error(TaskError("x"))
    assert not _is_library_error(KeyError("x"))


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_group_help_summary_is_the_command_s_own(name: str) -> None:
    """``edgeprune --help`` shows SUBCOMMANDS' summaries; each must be its command's own first docstring line."""
    import importlib

    command = importlib.import_module(f"edgeprune.host.cli.{name}_cmd").command
    assert SUBCOMMANDS[name] == command.get_short_help_str(limit=500)


def test_group_help_imports_no_command() -> None:
    """Listing the commands loads none of them (nor the library behind them): ``edgeprune --help`` stays fast."""
    code = ("import sys\nfrom click.testing import CliRunner\nfrom edgeprune.host.cli import main\n"
            "assert CliRunner().invoke(main, ['--help']).exit_code == 0\n"
            "print(sorted(m for m in sys.modules if m.endswith('_cmd') or m.startswith('edgeprune.host.search')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"


#: What a command's ``--help`` must not load: each takes from ~0.5 s (matplotlib) to several seconds (TensorFlow).
HEAVY = ("matplotlib", "torch", "tensorflow", "onnx", "onnxruntime", "tflite_micro", "ray", "codecarbon",
         "stable_baselines3", "gymnasium", "optuna")


def test_command_help_loads_no_heavy_dependency() -> None:
    """``edgeprune <command> --help`` (search's included: it imports the run and report library at module top)
    loads neither matplotlib nor torch nor TensorFlow: the plots import matplotlib where they draw."""
    code = ("import sys\nfrom click.testing import CliRunner\nfrom edgeprune.host.cli import SUBCOMMANDS, main\n"
            f"heavy = {HEAVY!r}\n"
            "for name in SUBCOMMANDS:\n"
            "    assert CliRunner().invoke(main, [name, '--help']).exit_code == 0, name\n"
            "    print(name, sorted({m.split('.')[0] for m in sys.modules} & set(heavy)))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr
    loaded = dict(line.split(" ", 1) for line in out.stdout.strip().splitlines())
    assert set(loaded) == set(SUBCOMMANDS)
    assert all(v == "[]" for v in loaded.values()), loaded


def test_heavy_module_check_sees_an_import() -> None:
    """The check above reads sys.modules of the child: a child that imports matplotlib is seen doing so."""
    code = "import sys, matplotlib\nprint(sorted({m.split('.')[0] for m in sys.modules} & {'matplotlib', 'torch'}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "['matplotlib']"

"""`edgeprune bench --profile` (bench.qemu_profile): a per-function profile of one inference from QEMU's trace."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeprune.bench.qemu_profile import function_counts, profile

from .conftest import seed_models


def _tb(tc: str, pc: int, fn: str) -> str:
    return f"Trace 0: {tc} [00800408/{pc:08x}/00000110/ff020200] {fn}\n"


def _in(fn: str, pc: int, n: int) -> str:
    return f"IN: {fn}\n" + "".join(f"0x{pc + 2 * i:08x}:  4813       ldr      r0, [pc, #0x4c]\n" for i in range(n)) + "\n"


def test_counts_only_blocks_inside_invoke_calls(tmp_path: Path) -> None:
    log = "".join([
        _in("main", 0x100, 5), _tb("0xa0", 0x100, "main"),                # before: not counted
        _in("do_infer", 0x200, 3), _tb("0xa1", 0x200, "do_infer"),
        _in("ep_model_invoke", 0x300, 4), _tb("0xa2", 0x300, "ep_model_invoke"),
        _in("ep_k_conv_i8", 0x400, 10), _tb("0xa3", 0x400, "ep_k_conv_i8"), _tb("0xa3", 0x400, "ep_k_conv_i8"),
        _in("IRQ_Handler", 0x500, 2), _tb("0xa4", 0x500, "IRQ_Handler"),  # an interrupt taken inside: counted
        _in("do_infer", 0x210, 6), _tb("0xa5", 0x210, "do_infer"),        # back in the caller: the call ends
        _tb("0xa2", 0x300, "ep_model_invoke"),                            # second call, blocks already translated
        _in("ep_k_conv_i8", 0x400, 7), _tb("0xa6", 0x400, "ep_k_conv_i8"),  # re-translated at the same pc
        _tb("0xa5", 0x210, "do_infer"),
        _tb("0xa0", 0x100, "main"),
    ])
    trace = tmp_path / "trace.log"
    trace.write_text(log)
    counts, calls = function_counts(trace)
    assert calls == 2
    assert counts == {"ep_model_invoke": 8, "ep_k_conv_i8": 27, "IRQ_Handler": 2}


def test_profile_matches_the_device_count(tmp_path: Path, full_firmware) -> None:
    """On the real firmware under QEMU: the functions add up to the device's own count, and the FC kernel is
    where an FC model's instructions go."""
    full_firmware("m4")
    model = tmp_path / "fc64.tflite"
    model.write_bytes(seed_models().fc_square(64))
    prof = profile(model, "m4", runs=2)
    assert prof.device_count > 0
    assert abs(prof.attributed - prof.device_count) <= 200, (prof.attributed, prof.device_count, prof.per_function)
    top = next(iter(prof.per_function))
    assert top in ("ep_k_fc_i8", "ep_fc_dot_rows", "dot_rows"), prof.per_function  # dot_rows: ep_fc.c since d3ce867
    assert "ep_sha256_update" not in prof.per_function  # the model load is outside the window


def test_profile_refuses_zero_runs(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        profile(tmp_path / "none.tflite", runs=0)


def test_cli_profile_needs_a_qemu_target(tmp_path: Path) -> None:
    """`--profile` on a serial board is refused in one line before anything is measured."""
    from click.testing import CliRunner

    from edgeprune.host.cli import main

    model = tmp_path / "fc8.tflite"
    model.write_bytes(seed_models().fc_square(8))
    result = CliRunner().invoke(main, ["bench", str(model), "--device", "/dev/ttyACM9", "--profile", "5"])
    assert result.exit_code != 0
    assert "--profile traces QEMU" in result.output and len(result.output.strip().splitlines()) == 1


def test_cli_profile_prints_the_table(tmp_path: Path, full_firmware) -> None:
    from click.testing import CliRunner

    from edgeprune.host.cli import main

    full_firmware("m4")
    model = tmp_path / "fc32.tflite"
    model.write_bytes(seed_models().fc_square(32))
    result = CliRunner().invoke(main, ["bench", str(model), "--device", "qemu:m4", "--repeats", "2", "--agreement", "0",
                                       "--no-deploy-build", "--profile", "3"])
    assert result.exit_code == 0, result.output
    assert "where one inference's instructions go" in result.output and "ep_k_fc_i8" in result.output

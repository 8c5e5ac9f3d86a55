"""``edgeprune export --deploy``: the library a user drops into their firmware, built three ways and run in QEMU.

The example application prints the output of one prediction on a fixed input pattern; every build of it (the
direct arm-none-eabi-gcc build the search measures, a plain CMake project, a separate PlatformIO project on
the project-local QEMU platform) must print exactly TFLM's bytes for the same input.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgeprune.bench.errors import ExportError
from edgeprune.bench.reference import ad01_bytes
from edgeprune.export.deploy import runtime_families, write_deploy
from edgeprune.export.deploy_build import build_example, footprint
from edgeprune.export.deploy_tools import run_example

GRU_FEATURES, GRU_STEPS = 4, 12


def _pattern(n: int) -> np.ndarray:
    """The example's input pattern (firmware/deploy/example/main.c: PATTERN)."""
    return ((np.arange(n, dtype=np.uint32) * 37 + 11) & 0xFF).astype(np.uint8).view(np.int8)


def _tflm_ad01() -> bytes:
    from tflite_micro.python.tflite_micro import runtime

    from edgeprune.bench.tflm import ORACLE_ARENA_DEFAULT

    x = (_pattern(640).astype(np.float32) / np.float32(64.0)).reshape(1, 640)
    it = runtime.Interpreter.from_bytes(ad01_bytes(), arena_size=ORACLE_ARENA_DEFAULT)
    it.set_input(x, 0)
    it.invoke()
    return np.asarray(it.get_output(0)).tobytes()


@pytest.fixture(scope="module")
def ad01_lib(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("deploy") / "ad01"
    write_deploy(ad01_bytes(), out, name="mlperf-ad01", source="bench/reference/mlperf_tiny_ad01_int8.tflite")
    return out


@pytest.fixture(scope="module")
def gru_export(tmp_path_factory: pytest.TempPathFactory):
    import torch

    from edgeprune.export import export_model
    from edgeprune.host.models import StackedGRU

    torch.manual_seed(3)
    model = StackedGRU(GRU_FEATURES, [24, 16], 3, GRU_STEPS)
    calibration = np.random.default_rng(4).normal(size=(48, GRU_STEPS, GRU_FEATURES)).astype(np.float32)
    return export_model(model, calibration, tmp_path_factory.mktemp("gru") / "export", name="gru-deploy")


def test_runtime_files_are_chosen_by_the_family_the_file_declares(tmp_path):
    families = runtime_families()
    assert families["ep_conv.c"] == "conv" and families["ep_gru.c"] == "gru"
    assert families["ep_model.c"] is None and families["ep_invoke.c"] is None
    # A file added to the runtime is core (always shipped) unless it says which family it belongs to.
    (tmp_path / "ep_new.c").write_text("int ep_new(void) { return 1; }\n")
    (tmp_path / "ep_lstm.c").write_text('#include "x.h"\n#if EP_RT_LSTM /* the whole file; see ep_kernels.h */\n#endif\n')
    assert runtime_families(tmp_path) == {"ep_lstm.c": "lstm", "ep_new.c": None}


def test_ad01_library_ships_only_what_it_runs(ad01_lib):
    meta = json.loads((ad01_lib / "deploy.json").read_text())
    runtime = {p.name for p in (ad01_lib / "src" / "runtime").iterdir()}
    assert meta["kernels"] == [] and {"ep_conv.c", "ep_gru.c"}.isdisjoint(runtime)
    assert {"ep_model.c", "ep_invoke.c", "ep_fc.c"} <= runtime
    # Nothing of the measurement firmware: no protocol, link or SHA-256 code.
    every = " ".join(p.read_text(errors="replace") for p in ad01_lib.rglob("*.[ch]"))
    assert not re.search(r"ep_protocol|ep_link|ep_sha256|ep_frame", every)
    for h in (ad01_lib / "src" / "runtime").glob("ep_*.h"):
        if h.name != "ep_deploy_config.h":
            assert '#include "ep_deploy_config.h"' in h.read_text(), h.name
    config = (ad01_lib / "src" / "runtime" / "ep_deploy_config.h").read_text()
    assert "#define EP_RT_CONV 0" in config and "#define EP_RT_MAX_OPS 12" in config
    header = (ad01_lib / "include" / "edgeprune_model.h").read_text()
    assert "861f3de4465a176099248090583ae5b6be00bc6f0c6bac16ce3bda004a7fa9c2" in header
    assert "EDGEPRUNE_ERR_ARENA = -12," in header and "#define EDGEPRUNE_INPUT_BYTES 2560u" in header
    lib = json.loads((ad01_lib / "library.json").read_text())
    assert lib["name"] == "edgeprune-mlperf-ad01" and lib["build"]["srcDir"] == "src"
    assert (ad01_lib / "examples" / "qemu" / "src" / "main.c").read_text().count("\n") <= 40


@pytest.mark.tf
def test_slim_model_keeps_weights_aligned_and_outputs_equal():
    """Names, signatures, metadata, min/max and the activations' empty buffers go; TFLM computes the same bytes."""
    from tflite_micro.python.tflite_micro import runtime

    from edgeprune.bench.reference import kws_bytes
    from edgeprune.bench.tflite_info import read_model, tflite_schema
    from edgeprune.export.slim import slim_tflite

    full = kws_bytes()
    slim = slim_tflite(full)
    assert len(slim) < 0.7 * len(full)
    a, b = read_model(full), read_model(slim)
    assert a.ops == b.ops and [t.shape for t in a.tensors] == [t.shape for t in b.tensors]
    assert not any(t.name for t in b.tensors) and not b.signature_inputs
    model = tflite_schema().Model.GetRootAsModel(bytearray(slim), 0)
    starts = [model.Buffers(i)._tab.Vector(model.Buffers(i)._tab.Offset(4))
              for i in range(model.BuffersLength()) if model.Buffers(i).DataLength()]
    assert starts and all(s % 16 == 0 for s in starts)
    x = np.random.default_rng(0).integers(-128, 128, a.tensors[a.inputs[0]].shape).astype(np.int8)
    outs = []
    for tflite in (full, slim):
        it = runtime.Interpreter.from_bytes(tflite, arena_size=200_000)
        it.set_input(x, 0)
        it.invoke()
        outs.append(np.asarray(it.get_output(0)).tobytes())
    assert outs[0] == outs[1]


def test_a_second_input_the_api_cannot_feed_is_refused(tmp_path):
    from runtime.seed_models import gru_like_cell

    model = gru_like_cell(4, 8, seed=2)  # inputs x and h; without a sequence block h would stay unset
    with pytest.raises(ExportError, match="one input"):
        write_deploy(model, tmp_path / "lib")
    assert not (tmp_path / "lib").exists()


@pytest.mark.qemu
@pytest.mark.tf
def test_ad01_example_matches_tflm_built_directly(ad01_lib, tmp_path):
    """The prepared library (the runtime's state after init, no parser linked) and the .tflite + parser library
    print TFLM's bytes; the prepared one is smaller and holds no flatbuffer."""
    fp = footprint(ad01_lib, "m4")
    assert fp.output == _tflm_ad01()
    meta = json.loads((ad01_lib / "deploy.json").read_text())
    assert meta["prepared"] and 0 < meta["weight_bytes"] < meta["model_bytes"]
    assert fp.model_bytes == meta["model_bytes"] < len(ad01_bytes()) and fp.arena_bytes == meta["arena_bytes"]
    assert 0 < fp.code_bytes < 64 * 1024 and 0 < fp.stack_bytes < 32 * 1024
    assert fp.ram_bytes == fp.static_ram_bytes + fp.stack_bytes >= fp.arena_bytes
    assert b"TFL3" not in (ad01_lib / "src" / "edgeprune_model_data.c").read_bytes()
    assert _symbols(fp.elf).isdisjoint({"ep_model_init_ex", "load", "plan_arena", "parse_tensor", "prepare_op"})
    parser = write_deploy(ad01_bytes(), tmp_path / "parser", name="mlperf-ad01", prepared=False)
    fp_parser = footprint(parser.out_dir, "m4")
    assert not parser.prepared and fp_parser.output == fp.output
    assert {"ep_model_init_ex", "plan_arena"} <= _symbols(fp_parser.elf)
    assert fp.flash_bytes < fp_parser.flash_bytes and fp.code_bytes < fp_parser.code_bytes


def _symbols(elf: Path) -> set[str]:
    from elftools.elf.elffile import ELFFile
    from elftools.elf.sections import SymbolTableSection

    with open(elf, "rb") as fh:
        symtab = ELFFile(fh).get_section_by_name(".symtab")
        assert isinstance(symtab, SymbolTableSection)
        return {s.name for s in symtab.iter_symbols()}


def _symbol_bytes(elf: Path, name: str) -> int:
    from elftools.elf.elffile import ELFFile

    with open(elf, "rb") as fh:
        (sym,) = ELFFile(fh).get_section_by_name(".symtab").get_symbol_by_name(name)
        return int(sym["st_size"])


def _cmake_build(lib: Path, tmp: Path) -> Path:
    example = lib / "examples" / "qemu"
    build = tmp / "cmake-build"
    for cmd in (["cmake", "-S", str(example), "-B", str(build), f"-DCMAKE_TOOLCHAIN_FILE={example / 'arm-none-eabi.cmake'}"],
                ["cmake", "--build", str(build)]):
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return build / "example.elf"


def _pio_build(lib: Path, tmp: Path) -> Path:
    """The example as a separate PlatformIO project (its own folder, the library by symlink)."""
    project = tmp / "pio-project"
    shutil.copytree(lib / "examples" / "qemu", project, ignore=shutil.ignore_patterns("build-*"))
    ini = (project / "platformio.ini").read_text().replace("symlink://../..", f"symlink://{lib}")
    (project / "platformio.ini").write_text(ini)
    pio = Path(sys.executable).with_name("pio")
    proc = subprocess.run([str(pio), "run", "-d", str(project)], capture_output=True, text=True, timeout=900,
                          check=False, env={**os.environ, "PLATFORMIO_BUILD_DIR": str(tmp / "pio-build")})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    return tmp / "pio-build" / "qemu-m4" / "firmware.elf"


@pytest.mark.qemu
@pytest.mark.tf
@pytest.mark.slow
def test_ad01_example_as_cmake_and_platformio_projects(ad01_lib, tmp_path):
    expected = _tflm_ad01()
    direct = build_example(ad01_lib, "m4")
    for elf in (_cmake_build(ad01_lib, tmp_path), _pio_build(ad01_lib, tmp_path)):
        run = run_example(elf, "m4")
        assert run.status == 0 and run.output == expected, run.text[-300:]
    # The figure the search reports is the image CMake links (archive vs objects: alignment padding only).
    from edgeprune.bench.firmware_build import elf_sizes

    assert abs(sum(elf_sizes(direct)[:2]) - sum(elf_sizes(tmp_path / "cmake-build" / "example.elf")[:2])) <= 64


@pytest.mark.qemu
@pytest.mark.tf
@pytest.mark.slow
@pytest.mark.parametrize("core", ["m4", "m0", "m33"])
def test_gru_export_example_matches_tflm(gru_export, core, tmp_path):
    """A streaming GRU cell: the library runs all steps per invoke, carrying the state as the oracle does."""
    from edgeprune.bench.tflm import TflmRunner

    lib = write_deploy(gru_export.read_tflite(), tmp_path / "lib", manifest=gru_export.manifest, name="gru",
                       core=core)
    assert lib.steps == GRU_STEPS and lib.kernels == ("gru",) and "ep_conv.c" not in lib.runtime_files
    x = _pattern(GRU_STEPS * GRU_FEATURES).reshape(GRU_STEPS, GRU_FEATURES)
    expected = TflmRunner.oracle(gru_export.read_tflite(), gru_export.manifest).run(x).tobytes()
    fp = footprint(tmp_path / "lib", core)
    assert fp.output == expected
    config = (tmp_path / "lib" / "src" / "runtime" / "ep_deploy_config.h").read_text()
    assert "#define EP_RT_LSTM 0" in config and "fc_i8, gru */" in config
    # Linked: the fused GRU step and the FC, not the LSTM step, the element-wise kernels it replaced, or double
    # arithmetic (every multiplier is split in integers).
    linked = _symbols(fp.elf)
    assert {"ep_k_gru", "ep_k_fc_i8"} <= linked
    assert linked.isdisjoint({"ep_k_lstm", "ep_k_elementwise", "__aeabi_dmul", "__aeabi_ddiv", "__aeabi_dadd"})
    assert linked.isdisjoint({"ep_model_init_ex", "ep_gru_fuse", "ep_model_set_sequence"})  # prepared at export
    if core == "m4":
        run = run_example(_cmake_build(tmp_path / "lib", tmp_path), core)
        assert run.status == 0 and run.output == expected
        parser = write_deploy(gru_export.read_tflite(), tmp_path / "parser", manifest=gru_export.manifest,
                              name="gru", core=core, prepared=False)
        assert footprint(parser.out_dir, core).output == expected


def test_a_word_that_moved_by_neither_displacement_is_refused():
    """The snapshot's two runs: a word moved by the arena's displacement becomes an arena offset, one moved by
    the model's a model offset; any other difference is refused (the prepared state would be wrong)."""
    from edgeprune.export.deploy_prepare import PrepareError, Snapshot, relocations

    snap = Snapshot({}, (b"", b""), (bytes(64), bytes(64)), (0x1000, 0x9000), (0x20000000, 0x20010000), bytes(256))
    a = (0x20000010).to_bytes(4, "little") + (0x1020).to_bytes(4, "little") + b"\x07\0\0\0"
    b = (0x20010010).to_bytes(4, "little") + (0x9020).to_bytes(4, "little") + b"\x07\0\0\0"
    image, to_arena, to_fb = relocations(a, b, snap, 256)
    assert (to_arena, to_fb) == ([0], [4]) and image == bytes([0x10, 0, 0, 0, 0x20, 0, 0, 0, 7, 0, 0, 0])
    with pytest.raises(PrepareError, match="neither"):
        relocations(a, b[:8] + b"\x08\0\0\0", snap, 256)


@pytest.mark.qemu
@pytest.mark.tf
def test_kws_convolutions_and_shared_vectors_match_tflm(tmp_path):
    """KWS: the conv family shipped (not the GRU one), per-channel filters whose equal vectors the slim model
    writes once; the example's bytes are TFLM's."""
    from tflite_micro.python.tflite_micro import runtime

    from edgeprune.bench.reference import kws_bytes

    lib = write_deploy(kws_bytes(), tmp_path / "kws", name="kws")
    assert lib.kernels == ("conv",) and "ep_conv.c" in lib.runtime_files and "ep_gru.c" not in lib.runtime_files
    assert lib.model_bytes < 0.7 * len(kws_bytes())
    x = _pattern(49 * 10).reshape(1, 49, 10, 1)
    it = runtime.Interpreter.from_bytes(kws_bytes(), arena_size=200_000)
    it.set_input(x, 0)
    it.invoke()
    assert footprint(tmp_path / "kws", "m4").output == np.asarray(it.get_output(0)).tobytes()


def test_a_build_with_only_the_planned_kinds_runs_the_gru_and_refuses_what_it_left_out(gru_export, tmp_path):
    """EP_RT_KINDS from the planner (what the deploy config writes): the fused GRU runs with the element-wise
    kernels it replaced left out, bytes equal to the full runtime's; the same model unfused is refused at load."""
    from runtime.rt import NO_FUSE, STATUS, Runtime, build

    from edgeprune.bench.firmware_build import CONSUME_INPUTS, plan_model
    from edgeprune.export.deploy import kernel_kinds

    tflite, man = gru_export.read_tflite(), gru_export.manifest
    plan = plan_model(tflite, "qemu-m4", man["sequence"], flags=CONSUME_INPUTS)
    names = kernel_kinds()
    assert plan.kinds is not None
    assert {n for i, n in enumerate(names) if plan.kinds >> i & 1} == {"fc_i8", "gru"}
    lean = Runtime(build(tmp_path / "lean.so", ["-O2", f"-DEP_RT_KINDS={plan.kinds:#x}ull", "-DEP_RT_LSTM=0"]))
    full = Runtime(build(tmp_path / "full.so"))
    x = _pattern(GRU_STEPS * GRU_FEATURES).reshape(GRU_STEPS, 1, GRU_FEATURES)
    outs = []
    for rt in (lean, full):
        assert STATUS[rt.init(tflite)] == "OK" and rt.num_fused == 2
        assert rt.set_sequence(GRU_STEPS, man["sequence"]["stream_input"], man["sequence"]["recurrent"]) == 0
        outs.append(rt.run([x])[0].tobytes())
    assert outs[0] == outs[1]
    assert STATUS[lean.init(tflite, flags=NO_FUSE)] == "OP"


def _unsteps(packed: bytes) -> bytes:
    """ep_prepared.c's decoding of one table (after its offset)."""
    v, bits, start = packed[0] - 256 * (packed[0] > 127), packed[1] & 7, 128 * bool(packed[1] & 0x10)
    out = bytearray(256)
    out[start] = v & 0xFF
    for k in range(1, 256):
        at = (k - 1) * bits
        v += (packed[2 + (at >> 3)] >> (at & 7)) & ((1 << bits) - 1)
        out[(k + start) & 255] = v & 0xFF
    return bytes(out)


def test_activation_tables_are_stored_as_their_steps():
    """A rising int8 table (value order, or indexed by the input byte) goes in 1/2/4-bit steps and comes back
    byte for byte; one that falls, or jumps by more than 15, stays in the arena image as it is."""
    from edgeprune.export.deploy_prepare import _steps

    logistic = np.round(255 / (1 + np.exp(-np.arange(-128, 128) / 24.0))).astype(np.int32) - 128
    value_order = logistic.astype(np.int8).tobytes()
    byte_order = np.roll(logistic, 128).astype(np.int8).tobytes()  # t[(uint8)x]: x = 0..127 first
    for table in (value_order, byte_order):
        packed = _steps(table)
        assert packed is not None and len(packed) == 2 + 64 and _unsteps(packed) == table
    assert _steps(value_order[::-1]) is None
    assert _steps(bytes(range(0, 256, 16)) * 16) is None


def test_a_prepared_record_of_another_layout_is_refused_not_misread(ad01_lib, tmp_path):
    """The prepared model holds the record as the library's core lays it out (32-bit pointers); compiled for this
    64-bit host, edgeprune_init must refuse it (not initialised) rather than bind it, and an unaligned arena first."""
    main = tmp_path / "main.c"
    main.write_text(
        '#include <stdint.h>\n#include <stdio.h>\n#include "edgeprune_model.h"\n'
        "static uint8_t arena[EDGEPRUNE_ARENA_BYTES + 16] __attribute__((aligned(16)));\n"
        'int main(void) { printf("%d %d\\n", edgeprune_init(arena + 1, EDGEPRUNE_ARENA_BYTES),\n'
        "  edgeprune_init(arena, EDGEPRUNE_ARENA_BYTES)); return 0; }\n")
    sources = [main, *sorted((ad01_lib / "src").glob("*.c")), *sorted((ad01_lib / "src" / "runtime").glob("*.c"))]
    exe = tmp_path / "host"
    proc = subprocess.run(["gcc", "-O1", "-std=c99", f"-I{ad01_lib / 'include'}", *map(str, sources), "-lm", "-o",
                           str(exe)], capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60, check=True).stdout.split()
    assert out == ["-1", "-13"]  # EDGEPRUNE_ERR_ARG, EDGEPRUNE_ERR_STATE


def test_without_qemu_or_when_the_snapshot_fails_the_model_ships_with_the_parser(monkeypatch, tmp_path):
    """No qemu-system-arm (or arm-none-eabi-gcc), or a snapshot the exporter cannot explain: the .tflite + parser
    library (the same init, run on the device), said so in deploy.json and the config."""
    from edgeprune.export import deploy
    from edgeprune.export.deploy_prepare import PrepareError

    def refuse(*_a, **_k):
        raise PrepareError("a word at 12 differs between the runs by 0x4")

    for case in ("no qemu", "snapshot fails"):
        with monkeypatch.context() as mp:
            if case == "no qemu":
                mp.setattr(deploy.shutil, "which", lambda tool, real=shutil.which: None if tool == "qemu-system-arm"
                           else real(tool))
            else:
                mp.setattr(deploy, "_prepare", refuse)
            lib = write_deploy(ad01_bytes(), tmp_path / case.replace(" ", "-"), name="ad01")
        assert not lib.prepared and json.loads((lib.out_dir / "deploy.json").read_text())["prepared"] is False
        assert b"0x54, 0x46, 0x4c, 0x33" in (lib.out_dir / "src" / "edgeprune_model_data.c").read_bytes()  # "TFL3"
        assert "#define EP_DEPLOY_PREPARED 0" in (lib.out_dir / "src" / "runtime" / "ep_deploy_config.h").read_text()
        assert not (lib.out_dir / "src" / "runtime" / "ep_prepared.c").exists()


@pytest.mark.qemu
@pytest.mark.tf
@pytest.mark.slow
def test_lstm_export_prepared_matches_tflm(tmp_path):
    """A per-tensor streaming LSTM (the fused LSTM step reads its parts' weights, scratch and tables from the
    prepared record): TFLM's bytes on M4, and the same as the .tflite + parser library's."""
    import torch

    from edgeprune.bench.tflm import TflmRunner
    from edgeprune.export import export_model
    from edgeprune.host.models import StackedLSTM

    torch.manual_seed(1)
    calibration = np.random.default_rng(0).normal(size=(48, GRU_STEPS, GRU_FEATURES)).astype(np.float32)
    res = export_model(StackedLSTM(GRU_FEATURES, [16, 24], 3, GRU_STEPS), calibration, tmp_path / "export",
                       name="lstm", weights="tensor")
    x = _pattern(GRU_STEPS * GRU_FEATURES).reshape(GRU_STEPS, GRU_FEATURES)
    expected = TflmRunner.oracle(res.read_tflite(), res.manifest).run(x).tobytes()
    outs = []
    for prepared in (True, False):
        lib = write_deploy(res.read_tflite(), tmp_path / f"lib-{prepared}", manifest=res.manifest, name="lstm",
                           prepared=prepared)
        assert lib.prepared == prepared
        outs.append(footprint(lib.out_dir, "m4").output)
    assert outs == [expected, expected]


def test_recurrent_switches_mirror_the_runtime_limits():
    """The one-pass chain for layers of at most 64 units; the unrolled depth-16/32 loops for a block of rows that is
    a multiple of 4 (blocks of 32) whose x or h side has that depth."""
    from edgeprune.export.deploy import rnn_switches

    def on(*layers):
        return tuple(k for k, v in rnn_switches(layers).items() if v)

    assert on((17, 4), (30, 17)) == ("EP_RT_RNN_PASS",)  # the default winner: rows 17 and 30, no quad of rows
    assert on((256, 4), (256, 256)) == ()  # the int8 baseline: stage loops only
    assert on((16, 4)) == ("EP_RT_RNN_PASS", "EP_RT_GRU_DOT16")
    assert on((32, 16)) == ("EP_RT_RNN_PASS", "EP_RT_GRU_DOT16", "EP_RT_GRU_DOT32")
    assert on((17, 16)) == ("EP_RT_RNN_PASS",)  # 17 rows: the general row loop
    assert on((40, 16)) == ("EP_RT_RNN_PASS", "EP_RT_GRU_DOT16")  # the first block's 32 rows
    assert on((65, 32), (64, 4)) == ("EP_RT_RNN_PASS",)  # 65 units: stage loops; 64 units, depths 4 and 64
    assert on() == ()


@pytest.mark.qemu
@pytest.mark.tf
@pytest.mark.slow
def test_recurrent_code_left_out_or_forced_off_keeps_tflm_bytes(gru_export, tmp_path):
    """24 + 16 units: the config keeps the one-pass chain and the depth-16 loop (the second layer's h side) and
    leaves the depth-32 loop out; forced off, the layers run the general loop or the stage loops, same bytes."""
    from edgeprune.bench.tflm import TflmRunner

    tflite, man = gru_export.read_tflite(), gru_export.manifest
    x = _pattern(GRU_STEPS * GRU_FEATURES).reshape(GRU_STEPS, GRU_FEATURES)
    expected = TflmRunner.oracle(tflite, man).run(x).tobytes()
    chosen = write_deploy(tflite, tmp_path / "chosen", manifest=man, name="gru")
    config = (chosen.out_dir / "src" / "runtime" / "ep_deploy_config.h").read_text()
    assert "#define EP_RT_RNN_PASS 1" in config and "#define EP_RT_GRU_DOT16 1" in config
    assert "#define EP_RT_GRU_DOT32 0" in config
    fp = footprint(chosen.out_dir, "m4")
    assert fp.output == expected
    linked = _symbols(fp.elf)
    assert {"ep_gru_pass_dsp", "ep_gru_dot16_dsp"} <= linked and "ep_gru_dot32_dsp" not in linked
    # FCs at most 24 deep: the quad loops take every row, so the 4-row loop is not compiled.
    assert "#define EP_RT_FC_DEEP 0" in config and "dot_rows" not in linked
    # Both layers run the one pass: the GRU kernel is its dispatch only (the stage loops are ~2 KB on M4).
    assert "#define EP_RT_RNN_STAGES 0" in config and _symbol_bytes(fp.elf, "ep_k_gru") < 128
    sizes = [fp.code_bytes]
    for off in ({"EP_RT_GRU_DOT16": 0}, {"EP_RT_RNN_PASS": 0}):
        lib = write_deploy(tflite, tmp_path / f"off-{len(sizes)}", manifest=man, name="gru", switches=off)
        fp_off = footprint(lib.out_dir, "m4")
        assert fp_off.output == expected
        linked = _symbols(fp_off.elf)
        assert "ep_gru_dot16_dsp" not in linked
        assert ("ep_gru_pass_dsp" in linked) == ("EP_RT_RNN_PASS" not in off)
        sizes.append(fp_off.code_bytes)
    assert sizes[0] > sizes[1]  # the depth-16 loop left out (without the one pass, the stage loops come back)


@pytest.mark.qemu
@pytest.mark.tf
@pytest.mark.slow
def test_a_layer_left_to_the_stage_loops_keeps_them(monkeypatch, tmp_path):
    """The exporter tries the build without the stage loops whenever every layer may run the one pass; the snapshot
    refuses it when a layer does not (here 72 units, over the pass's 64, offered as a candidate), and the library keeps
    the stage loops: prepared, TFLM's bytes. (The 24 + 16 library above has none: the winner's case.)"""
    import torch

    import edgeprune.export.deploy as deploy
    from edgeprune.bench.tflm import TflmRunner
    from edgeprune.export import export_model
    from edgeprune.host.models import StackedGRU

    torch.manual_seed(5)
    res = export_model(StackedGRU(GRU_FEATURES, [72], 3, GRU_STEPS),
                       np.random.default_rng(6).normal(size=(32, GRU_STEPS, GRU_FEATURES)).astype(np.float32),
                       tmp_path / "export", name="gru72")
    tflite, man = res.read_tflite(), res.manifest
    lib = write_deploy(tflite, tmp_path / "lib", manifest=man, name="gru72")
    config = (lib.out_dir / "src" / "runtime" / "ep_deploy_config.h").read_text()
    assert lib.prepared and "EP_RT_RNN_STAGES" not in config and "#define EP_RT_RNN_PASS 0" in config
    x = _pattern(GRU_STEPS * GRU_FEATURES).reshape(GRU_STEPS, GRU_FEATURES)
    fp = footprint(lib.out_dir, "m4")
    assert fp.output == TflmRunner.oracle(tflite, man).run(x).tobytes()
    # The same layer with the one pass compiled and offered without the stage loops: the snapshot refuses that
    # build (ep_rnn_staged), so the library is the second attempt's, with them.
    monkeypatch.setattr(deploy, "_stages_optional", lambda plan, switches: True)
    forced = write_deploy(tflite, tmp_path / "forced", manifest=man, name="gru72", switches={"EP_RT_RNN_PASS": 1})
    config = (forced.out_dir / "src" / "runtime" / "ep_deploy_config.h").read_text()
    assert forced.prepared and "EP_RT_RNN_STAGES" not in config
    assert footprint(forced.out_dir, "m4").output == fp.output


@pytest.mark.qemu
@pytest.mark.tf
def test_deep_fcs_keep_the_four_row_loop_and_run_exact_without_it(ad01_lib, tmp_path):
    """AD01's FCs are 640 and 128 deep: its library keeps ep_fc.c's 4-row loop; forced out, every such row runs the
    one-row product instead, with TFLM's bytes (only slower)."""
    assert "#define EP_RT_FC_DEEP 1" in (ad01_lib / "src" / "runtime" / "ep_deploy_config.h").read_text()
    assert "dot_rows" in _symbols(footprint(ad01_lib, "m4").elf)
    lib = write_deploy(ad01_bytes(), tmp_path / "lib", name="mlperf-ad01", switches={"EP_RT_FC_DEEP": 0})
    config = (lib.out_dir / "src" / "runtime" / "ep_deploy_config.h").read_text()
    assert config.count("EP_RT_FC_DEEP") == 1 and "#define EP_RT_FC_DEEP 0" in config
    fp = footprint(lib.out_dir, "m4")
    assert "dot_rows" not in _symbols(fp.elf)
    assert fp.output == _tflm_ad01()

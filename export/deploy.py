"""``edgeprune export --deploy DIR``: a self-contained C library of one model for the user's own firmware.

What it writes (atomically: a temporary folder beside ``DIR`` renamed into place):

* ``include/edgeprune_model.h``: the C API (``edgeprune_init`` with the caller's arena, ``edgeprune_invoke``,
  ``edgeprune_output``; every call returns a status code) and the model's sizes and quantisation as macros;
* ``src/edgeprune_model.c`` (the API over the runtime), ``src/edgeprune_model_data.c`` (the ``.tflite`` as a
  16-byte aligned array stamped with its SHA-256 and source);
* ``src/runtime/``: the runtime sources of ``firmware/runtime`` for only the kernel families the model runs, and
  ``ep_deploy_config.h`` (table sizes for exactly this model, the families left out, the sequence loop), which
  every copied header includes first, so any build system compiles ``src/**/*.c`` with no extra flags;
* ``library.json`` (PlatformIO), ``CMakeLists.txt``, ``deploy.json`` (what was selected and why);
* ``examples/qemu/``: the ~30-line example application, QEMU board support (startup, semihosting console,
  stack high-water mark), a CMake toolchain file and project, and a PlatformIO project on the project-local
  QEMU platform.

Which runtime file belongs to which kernel family is read from the file itself: a source whose whole body sits
under ``#if EP_RT_<FAMILY> /* the whole file`` (the runtime's convention, see ``ep_kernels.h``) belongs to that
family; every other runtime source is core and always shipped, so a file added to the runtime is never lost.
None of the measurement firmware (protocol, link drivers, SHA-256: ``firmware/src``) is shipped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgeprune.bench.atomic import sweep_stale_tmp
from edgeprune.bench.errors import ExportError
from edgeprune.bench.firmware_build import CONSUME_INPUTS, BuildError, plan_model
from edgeprune.bench.paths import project_root
from edgeprune.bench.tflite_info import read_model
from edgeprune.export.deploy_prepare import Prepared, PrepareError, prepare
from edgeprune.export.deploy_tools import (
    COMPILE_FLAGS,
    CORE_BOARDS,
    LINK_FLAGS,
    OPT_FLAGS,
    board_flags,
    deploy_sources,
    example_ld,
)
from edgeprune.export.slim import slim_tflite

log = logging.getLogger(__name__)

_FAMILY_RE = re.compile(r"^#if\s+EP_RT_([A-Z0-9_]+)\s*/\*\s*the whole file", re.M)
_STATUS_RE = re.compile(r"^\s*(EP_RT_(?:OK|ERR_[A-Z_]+))\s*=\s*(-?\d+)", re.M)
_GUARD_RE = re.compile(r"^#ifndef\s+(\w+)\s*\n#define\s+\1\b[^\n]*\n", re.M)
_KIND_ENUM_RE = re.compile(r"enum\s*\{\s*(EP_K_NONE\s*=\s*0\s*,.*?)\}", re.S)
_DTYPE_BYTES = {"int8": 1, "uint8": 1, "int16": 2, "int32": 4, "float32": 4}
CONFIG_HEADER = "ep_deploy_config.h"
_C_TYPES = {"int8": "int8_t", "uint8": "uint8_t", "int16": "int16_t", "int32": "int32_t", "float32": "float"}


def runtime_dir() -> Path:
    return project_root() / "firmware" / "runtime"


def runtime_families(runtime: Path | None = None) -> dict[str, str | None]:
    """Each runtime ``.c`` file → the kernel family its whole body belongs to (``"conv"``, ``"gru"``), or ``None``
    for core files.

    :param runtime: the runtime folder (default ``firmware/runtime``)
    """
    runtime = runtime or runtime_dir()
    out: dict[str, str | None] = {}
    for src in sorted(runtime.glob("*.c")):
        m = _FAMILY_RE.search(src.read_text(encoding="utf-8"))
        out[src.name] = m.group(1).lower() if m else None
    return out


@dataclass(frozen=True)
class DeployLibrary:
    """A written deploy library.

    :param out_dir: the library folder
    :param name: library name (``library.json``)
    :param core: core the arena was planned for
    :param model_bytes: size of the model array
    :param sha256: SHA-256 of the model bytes
    :param arena_bytes: ``EDGEPRUNE_ARENA_BYTES``
    :param kernels: kernel families compiled in
    :param runtime_files: runtime files shipped (``src/runtime``)
    :param input_bytes: bytes one ``edgeprune_invoke`` takes
    :param output_bytes: bytes ``edgeprune_output`` writes
    :param steps: recurrent steps per prediction (1: not recurrent)
    :param tensors: tensors in the model (sizes the runtime's table)
    :param ops: operators in the model
    :param left_out: runtime files not shipped (families the model does not run)
    :param source_sha256: SHA-256 of the ``.tflite`` given (``sha256`` is of the slimmed bytes shipped)
    :param prepared: the model ships prepared (``export.deploy_prepare``), not as a ``.tflite``
    :param weight_bytes: prepared: of ``model_bytes``, the constants the kernels read (weights); the rest is state
    :param opt: ``"speed"`` (-O2) or ``"size"`` (-Os): the example's toolchain file flag (``OPT_FLAGS``)
    """

    out_dir: Path
    name: str
    core: str
    model_bytes: int
    sha256: str
    arena_bytes: int
    kernels: tuple[str, ...]
    runtime_files: tuple[str, ...]
    input_bytes: int
    output_bytes: int
    steps: int
    tensors: int = 0
    ops: int = 0
    left_out: tuple[str, ...] = field(default_factory=tuple)
    source_sha256: str = ""
    prepared: bool = False
    weight_bytes: int = 0
    opt: str = "speed"

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["out_dir"] = str(self.out_dir)
        return d


def _c_float(v: float) -> str:
    return repr(float(v)) if "e" in repr(float(v)) or "." in repr(float(v)) else f"{float(v)}.0"


def _io(tflite: bytes, manifest: dict | None) -> tuple[Any, Any, dict | None, Any]:
    """(stream input tensor, output tensor, sequence block, model info) of a model the deploy API can drive."""
    info = read_model(tflite)
    seq = (manifest or {}).get("sequence") or None
    if seq:
        stream, out = int(seq["stream_input"]), int(seq.get("output", 0))
        recurrent_in = {int(i) for _, i in seq.get("recurrent", [])}
        extra = set(range(len(info.inputs))) - recurrent_in - {stream}
    else:
        stream, out, extra = 0, 0, set(range(1, len(info.inputs)))
    if extra:
        raise ExportError("deploy", detail=f"the deploy API feeds one input; inputs {sorted(extra)} would stay unset")
    if not info.inputs or out >= len(info.outputs):
        raise ExportError("deploy", detail="the model has no input, or no output at the manifest's position")
    return info.tensors[info.inputs[stream]], info.tensors[info.outputs[out]], seq, info


def _nbytes(t: Any) -> int:
    if t.dtype not in _DTYPE_BYTES:
        raise ExportError("deploy", detail=f"tensor {t.name!r} has dtype {t.dtype}, which the deploy API cannot size")
    n = _DTYPE_BYTES[t.dtype]
    for d in t.shape:
        n *= int(d)
    return n


def _quant(t: Any) -> tuple[float, int]:
    return (float(t.scales[0]), int(t.zero_points[0])) if t.scales else (0.0, 0)


def _status_enum() -> str:
    text = (runtime_dir() / "ep_runtime.h").read_text(encoding="utf-8")
    pairs = _STATUS_RE.findall(text)
    if not pairs or pairs[0][0] != "EP_RT_OK":
        raise ExportError("deploy", detail="cannot read the status codes from firmware/runtime/ep_runtime.h")
    return "\n".join(f"  {name.replace('EP_RT_', 'EDGEPRUNE_')} = {value}," for name, value in pairs)


def kernel_kinds(runtime: Path | None = None) -> list[str]:
    """The runtime's kernel kinds (``EP_K_*`` of ``ep_kernels.h``, lower case, without the prefix) by value.

    :param runtime: the runtime folder (default ``firmware/runtime``)
    """
    text = ((runtime or runtime_dir()) / "ep_kernels.h").read_text(encoding="utf-8")
    m = _KIND_ENUM_RE.search(re.sub(r"/\*.*?\*/", "", text, flags=re.S))
    if m is None:
        raise ExportError("deploy", detail="cannot read the kernel kinds (EP_K_*) from firmware/runtime/ep_kernels.h")
    names = [item.split("=")[0].strip() for item in m.group(1).split(",") if item.strip()]
    return [n.removeprefix("EP_K_").lower() for n in names]


def _kinds_used(plan: Any) -> list[str]:
    """Kernel kinds the model's run list calls (all of them when the planner did not say)."""
    names = kernel_kinds()
    if plan.kinds is None:
        return names
    return [n for i, n in enumerate(names) if plan.kinds >> i & 1]


def _fc_scalings(info: Any) -> tuple[bool, bool]:
    """(any per-channel, any per-tensor) int8 FC weights: the rank-2 int8 constants, FULLY_CONNECTED's only."""
    weights = [t for t in info.tensors if t.constant and t.dtype == "int8" and len(t.shape) == 2]
    return any(len(t.scales) > 1 for t in weights), any(len(t.scales) <= 1 for t in weights)


def _gru_constant(name: str, runtime: Path | None = None) -> int:
    """A ``#define NAME <n>u`` of ``ep_gru.c`` (the one-pass limit and block size the switches mirror)."""
    text = ((runtime or runtime_dir()) / "ep_gru.c").read_text(encoding="utf-8")
    m = re.search(rf"^#define\s+{name}\s+(\d+)u?\b", text, re.M)
    if m is None:
        raise ExportError("deploy", detail=f"cannot read {name} from firmware/runtime/ep_gru.c")
    return int(m.group(1))


def rnn_switches(rnn: tuple[tuple[int, int], ...], runtime: Path | None = None) -> dict[str, int]:
    """``EP_RT_RNN_PASS``, ``EP_RT_GRU_DOT16``, ``EP_RT_GRU_DOT32`` for a build of exactly these recurrent layers.

    Mirrors ``ep_gru.c``: a layer of at most ``EP_GRU_PASS_MAX`` units may run the one-pass chain (``pass_bytes``;
    whether its constants fit is known only at init, so such a layer keeps the switch on); its step runs rows in
    blocks of ``EP_GRU_BLOCK``, and ``dot_into`` takes the unrolled depth-16/32 loop for a block whose row count is a
    multiple of 4 on the x side (input depth) or the h side (depth = hidden). A switch left on that the model does not
    use costs only code; one left off where a layer would use it would cost instructions (same bytes: the general
    loop), so every layer that could reach it keeps it on.

    :param rnn: (hidden, input depth) of each fused GRU/LSTM layer (``ModelPlan.rnn``)
    :param runtime: the runtime folder (default ``firmware/runtime``)
    """
    pass_max, block = _gru_constant("EP_GRU_PASS_MAX", runtime), _gru_constant("EP_GRU_BLOCK", runtime)
    depths: set[int] = set()
    for hidden, depth_x in rnn:
        if hidden > pass_max:
            continue
        for j0 in range(0, hidden, block):
            if min(hidden - j0, block) % 4 == 0:
                depths |= {depth_x, hidden}
    one_pass = any(hidden <= pass_max for hidden, _ in rnn)
    return {"EP_RT_RNN_PASS": int(one_pass), "EP_RT_GRU_DOT16": int(16 in depths), "EP_RT_GRU_DOT32": int(32 in depths)}


def _stages_optional(plan: Any, switches: dict[str, int] | None) -> bool:
    """The one pass is compiled and every fused recurrent layer is within its size (``EP_RT_RNN_STAGES=0`` is worth
    a snapshot try)."""
    if not plan.rnn or not (switches or {}).get("EP_RT_RNN_PASS", 1):
        return False
    return all(hidden <= _gru_constant("EP_GRU_PASS_MAX") for hidden, _ in plan.rnn)


def _config_header(plan: Any, families: set[str], seq: dict | None, stream: int, out: int,
                   scalings: tuple[bool, bool] = (True, True), switches: dict[str, int] | None = None,
                   prepared: int = 0, wide: bool = False, int4: bool = False) -> str:
    steps = int(seq["steps"]) if seq else 1
    pairs = [(int(o), int(i)) for o, i in (seq or {}).get("recurrent", [])]
    lines = [
        "/* Generated by edgeprune export --deploy for one model; every runtime header includes it first. */",
        "#ifndef EP_DEPLOY_CONFIG_H",
        "#define EP_DEPLOY_CONFIG_H",
        "/* Tables sized for exactly this model (ep_runtime.h: EP_RT_MAX_*). */",
        f"#define EP_RT_MAX_TENSORS {max(1, plan.tensors)}",
        f"#define EP_RT_MAX_OPS {max(1, plan.ops)}",
        "/* Kernel families: 0 = left out (ep_kernels.h), its source file is not shipped. */",
    ]
    lines += [f"#define EP_RT_{f.upper()} {int(f in plan.kernels)}" for f in sorted(families)]
    if plan.kinds is not None:
        used = _kinds_used(plan)
        lines += ["/* Kernels the run list calls, one bit per EP_K_* kind (ep_kernels.h): " + ", ".join(used) + " */",
                  f"#define EP_RT_KINDS 0x{plan.kinds:x}ull",
                  f"#define EP_RT_LSTM {int('lstm' in used)}",
                  "/* Weight scalings of the model's int8 FCs: the fused steps compile a chain for these only. */",
                  f"#define EP_RT_FC_PER_CHANNEL {int(scalings[0])}",
                  f"#define EP_RT_FC_PER_TENSOR {int(scalings[1])}"]
        if plan.fc_depth is not None:
            # ep_fc.c's 4-row loop: rows of 64 deep or more (the quad loops take shorter ones) and the convolutions'.
            deep = plan.fc_depth >= 64 or "conv" in plan.kernels
            lines += [f"/* FCs up to {plan.fc_depth} deep: the 4-row loop for 64 deep or more and convolutions. */",
                      f"#define EP_RT_FC_DEEP {int(deep)}"]
    if plan.rnn is not None:
        layers = ", ".join(f"{n} units x {d} inputs" for n, d in plan.rnn) or "none"
        lines += [f"/* Recurrent layers ({layers}): the one-pass chain and unrolled dot loops they can use. */",
                  *(f"#define {k} {v}" for k, v in rnn_switches(plan.rnn).items())]
    for key, value in (switches or {}).items():  # set over the model's choice, or added
        at = [i for i, line in enumerate(lines) if line.startswith(f"#define {key} ")]
        if at:
            lines[at[0]] = f"#define {key} {value}"
        else:
            lines.append(f"#define {key} {value}")
    lines += [
        f"#define EP_DEPLOY_STEPS {steps}u",
        f"#define EP_DEPLOY_INPUT {stream}u",
        f"#define EP_DEPLOY_OUTPUT {out}u",
        f"#define EP_DEPLOY_NPAIRS {len(pairs)}u",
        "#define EP_DEPLOY_PAIRS {" + (", ".join(f"{{{o}, {i}}}" for o, i in pairs) or "{0, 0}") + "}",
        "/* 1: the model ships prepared (runtime/ep_prepared.h: the runtime's state after init, no .tflite). */",
        f"#define EP_DEPLOY_PREPARED {int(prepared)}",
        f"#define EP_PREP_WIDE {int(wide)}",
        "/* 1: int4 convolution filters ship packed, unpacked into the arena at bind (ep_prepared.h). */",
        f"#define EP_PREP_INT4 {int(int4)}",
        "#endif /* EP_DEPLOY_CONFIG_H */",
        "",
    ]
    return "\n".join(lines)


def _with_config(header: str) -> str:
    """The runtime header with ``ep_deploy_config.h`` included right inside its include guard."""
    m = _GUARD_RE.search(header)
    include = f'#include "{CONFIG_HEADER}" /* added by edgeprune export --deploy */\n'
    return header[: m.end()] + include + header[m.end():] if m else include + header


def _model_source(tflite: bytes, digest: str, source: str) -> str:
    origin = source.replace("*/", "* /").replace("\n", " ")
    rows = [", ".join(f"0x{b:02x}" for b in tflite[i:i + 12]) for i in range(0, len(tflite), 12)]
    return (
        "/* Generated by edgeprune export --deploy; do not edit.\n"
        f" * source: {origin}\n * sha256(model): {digest}\n * bytes: {len(tflite)}\n */\n"
        "#include <stdint.h>\n\n"
        "extern const uint8_t edgeprune_model_data[];\nextern const uint32_t edgeprune_model_data_len;\n\n"
        "/* 16-byte aligned: the runtime reads weights in place. */\n"
        "const uint8_t edgeprune_model_data[] __attribute__((aligned(16))) = {\n  "
        + ",\n  ".join(rows)
        + "\n};\n"
        f"const uint32_t edgeprune_model_data_len = {len(tflite)}u;\n"
    )


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "model"


def _cmake(sources: list[str]) -> str:
    listed = "\n".join(f"  ${{CMAKE_CURRENT_LIST_DIR}}/{s}" for s in sources)
    return (
        "# Generated by edgeprune export --deploy: the model and its runtime as one static library.\n"
        "# add_subdirectory(<this folder> edgeprune) then target_link_libraries(app PRIVATE edgeprune_model).\n"
        "cmake_minimum_required(VERSION 3.13)\n"
        "project(edgeprune_model C)\n"
        f"add_library(edgeprune_model STATIC\n{listed}\n)\n"
        "target_include_directories(edgeprune_model PUBLIC ${CMAKE_CURRENT_LIST_DIR}/include)\n"
        "set_target_properties(edgeprune_model PROPERTIES C_STANDARD 99 C_STANDARD_REQUIRED ON C_EXTENSIONS OFF)\n"
        "target_link_libraries(edgeprune_model PUBLIC m)\n"
    )


def _example_files(core: str, opt: str = "speed") -> dict[str, str]:
    """The example project: main.c, board support, toolchain file, CMake and PlatformIO projects."""
    flags = [OPT_FLAGS[opt], *(f for f in COMPILE_FLAGS if not f.startswith("-O"))]
    src = deploy_sources()
    cpu = " ".join(board_flags(core))
    toolchain = (
        f"# arm-none-eabi-gcc for {core} (flags of firmware/platform/boards/{CORE_BOARDS[core]}.json).\n"
        "set(CMAKE_SYSTEM_NAME Generic)\nset(CMAKE_SYSTEM_PROCESSOR arm)\n"
        "set(CMAKE_C_COMPILER arm-none-eabi-gcc)\nset(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)\n"
        f'set(CMAKE_C_FLAGS_INIT "{cpu} {" ".join(flags)}")\n'
        f'set(CMAKE_EXE_LINKER_FLAGS_INIT "{cpu} {" ".join(LINK_FLAGS)}")\n'
    )
    cmake = (
        "# The deploy example as a plain CMake project:\n"
        "#   cmake -S . -B build -DCMAKE_TOOLCHAIN_FILE=arm-none-eabi.cmake && cmake --build build\n"
        "cmake_minimum_required(VERSION 3.13)\nproject(edgeprune_example C)\n"
        "add_subdirectory(${CMAKE_CURRENT_LIST_DIR}/../.. edgeprune)\n"
        "add_executable(example.elf src/main.c src/board_qemu.c)\n"
        "set_target_properties(example.elf PROPERTIES C_STANDARD 99 C_EXTENSIONS OFF)\n"
        "target_link_libraries(example.elf PRIVATE edgeprune_model c m gcc nosys)\n"
        "target_link_options(example.elf PRIVATE -T${CMAKE_CURRENT_LIST_DIR}/qemu.ld)\n"
    )
    env = f"qemu-{core}"
    ld = example_ld(core)
    pio = (
        "; The deploy example as a PlatformIO project on edgeprune's offline QEMU platform (the checkout that\n"
        "; exported it). On your board: your platform/board, your startup code instead of src/board_qemu.c.\n"
        f"[env:{env}]\nplatform = {project_root() / 'firmware' / 'platform'}\n"
        f"board = {CORE_BOARDS[core]}\n"
        "board_build.ldscript = qemu.ld\n"
        "lib_deps = symlink://../..\n"
    )
    return {
        "src/main.c": (src / "example" / "main.c").read_text(encoding="utf-8"),
        "src/board_qemu.c": (src / "qemu" / "board_qemu.c").read_text(encoding="utf-8"),
        "qemu.ld": ld,
        "arm-none-eabi.cmake": toolchain,
        "CMakeLists.txt": cmake,
        "platformio.ini": pio,
    }


def write_deploy(tflite: bytes, out_dir: str | Path, *, manifest: dict | None = None, name: str = "model",
                 source: str = "", core: str = "m4", slim: bool = True, prepared: bool = True,
                 switches: dict[str, int] | None = None, opt: str = "speed") -> DeployLibrary:
    """Write the deploy library of ``tflite`` to ``out_dir`` (replaced only once complete).

    :param tflite: the int8 (or float32) model the runtime runs
    :param out_dir: the library folder
    :param manifest: the export manifest (its ``sequence`` block makes a recurrent cell run ``steps`` times)
    :param name: model name (library name, header comment)
    :param source: where the model came from (stamped into the model array and ``deploy.json``)
    :param core: core whose arena plan sizes ``EDGEPRUNE_ARENA_BYTES`` and whose flags the example uses
    :param slim: ship the model without names, signatures and metadata (``export.slim``; same outputs)
    :param prepared: ship the runtime's state after init instead of the model (``export.deploy_prepare``: no
        parser or planner on the device; needs arm-none-eabi-gcc and qemu-system-arm at export)
    :param switches: runtime build switches set over the ones chosen for the model (:func:`rnn_switches`), e.g.
        ``{"EP_RT_GRU_DOT16": 0}``: a layer that would have used a code path left out runs the general one (same
        output bytes, more instructions)
    :param opt: ``"speed"`` (-O2, default) or ``"size"`` (-Os) for the example's toolchain file: a size build of
        the same library (same output bytes)
    """
    if opt not in OPT_FLAGS:
        raise ExportError("deploy", detail=f"--deploy-opt must be one of {', '.join(OPT_FLAGS)}, not {opt!r}")
    out_dir = Path(out_dir)
    source_sha256 = hashlib.sha256(tflite).hexdigest()
    if slim:
        tflite = slim_tflite(tflite)
    stream_t, out_t, seq, info = _io(tflite, manifest)
    try:
        plan = plan_model(tflite, f"qemu-{core}", seq, flags=CONSUME_INPUTS)
    except BuildError as exc:
        raise ExportError("deploy", detail=str(exc)) from exc
    families = runtime_families()
    known = set(plan.kernels) | {"conv", "f32", "gru"}
    shipped = [f for f, fam in families.items() if fam is None or fam not in known or fam in plan.kernels]
    left_out = tuple(f for f in families if f not in shipped)
    steps = int(seq["steps"]) if seq else 1
    input_bytes = _nbytes(stream_t) * steps
    output_bytes = _nbytes(out_t)
    digest = hashlib.sha256(tflite).hexdigest()
    config_args = (plan, known, seq, int((seq or {}).get("stream_input", 0)), int((seq or {}).get("output", 0)),
                   _fc_scalings(info), switches)
    files: dict[str, str | bytes] = {
        "src/edgeprune_model.c": (deploy_sources() / "edgeprune_model.c").read_text(encoding="utf-8"),
        "src/edgeprune_model_data.c": _model_source(tflite, digest, f"{source or name} (sha256 {source_sha256})"),
        f"src/runtime/{CONFIG_HEADER}": _config_header(*config_args),
    }
    for h in sorted(runtime_dir().glob("*.h")):
        files[f"src/runtime/{h.name}"] = _with_config(h.read_text(encoding="utf-8"))
    for c in shipped:
        files[f"src/runtime/{c}"] = (runtime_dir() / c).read_bytes()
    c_sources = ["src/edgeprune_model.c", "src/edgeprune_model_data.c", *(f"src/runtime/{c}" for c in shipped)]
    arena, model_bytes, weight_bytes = plan.arena, len(tflite), 0
    if prepared and not all(shutil.which(t) for t in ("arm-none-eabi-gcc", "qemu-system-arm")):
        log.warning("deploy: arm-none-eabi-gcc or qemu-system-arm not found, so the model ships as a .tflite with "
                    "the runtime's parser (install both for the prepared library: no parser on the device)")
        prepared = False
    ready = None
    if prepared:
        # First without the code paths the init may not choose (ep_kernels.h): the stage loops when every layer may
        # run the one pass, the general requantisation of per-tensor FCs. The snapshot refuses that build when the
        # init chose one for some op (ep_rnn_staged, ep_fc_unbuilt), and the next attempt keeps them.
        lean = {"EP_RT_FC_RQ_FULL": 0, **({"EP_RT_RNN_STAGES": 0} if _stages_optional(plan, switches) else {})}
        attempts: list[dict[str, int]] = [lean, {}]
        for extra in attempts:
            config_args = (*config_args[:-1], {**extra, **(switches or {})})
            files[f"src/runtime/{CONFIG_HEADER}"] = _config_header(*config_args)
            try:
                ready = _prepare(files, tflite, core, plan.arena, f"{source or name} (sha256 {source_sha256})")
                break
            except PrepareError as exc:
                failure = exc
        if ready is None:
            # The parser library runs the same init on the device, so it is the same model, only larger.
            log.warning("deploy: %s; the model ships as a .tflite with the runtime's parser", failure.detail)
            # The parser library keeps the stage loops: nothing checked that its layers run without them.
            kept = {k: v for k, v in (switches or {}).items() if k not in ("EP_RT_RNN_STAGES", "EP_RT_FC_RQ_FULL")}
            config_args = (*config_args[:-1], kept)
            files[f"src/runtime/{CONFIG_HEADER}"] = _config_header(*config_args)
            prepared = False
    if ready is not None:
        files["src/edgeprune_model_data.c"] = ready.source
        files[f"src/runtime/{CONFIG_HEADER}"] = _config_header(*config_args, prepared=1, wide=ready.wide,
                                                                int4=ready.int4 > 0)
        for f in ("ep_prepared.h", "ep_prepared.c"):
            text = (deploy_sources() / f).read_text(encoding="utf-8")
            files[f"src/runtime/{f}"] = _with_config(text) if f.endswith(".h") else text
        c_sources.append("src/runtime/ep_prepared.c")
        arena, model_bytes, weight_bytes = ready.arena_bytes, ready.data_bytes + ready.state_bytes, ready.data_bytes
    lib = DeployLibrary(out_dir.resolve(), f"edgeprune-{_slug(name)}", core, model_bytes, digest, arena,
                        tuple(plan.kernels), tuple(shipped), input_bytes, output_bytes, steps, plan.tensors,
                        plan.ops, left_out, source_sha256, bool(prepared), weight_bytes, opt)
    in_s, in_zp = _quant(stream_t)
    out_s, out_zp = _quant(out_t)
    seq_doc = f" (all {steps} steps of the stream input, step after step)" if steps > 1 else ""
    header = (deploy_sources() / "edgeprune_model.h.in").read_text(encoding="utf-8")
    form = ("prepared at export: the runtime's state after init, no parser on the device" if prepared
            else "names and metadata left out, export/slim.py")
    for key, value in {
        "NAME": name, "SHA256": digest, "MODEL_BYTES": f"{model_bytes} B; {form}",
        "SOURCE": (source or "-").replace("*/", "* /") + f" (sha256 {source_sha256})", "TARGET": f"Cortex-{core.upper()}",
        "ARENA": str(arena), "INPUT_BYTES": str(input_bytes), "OUTPUT_BYTES": str(output_bytes),
        "STEPS": str(steps), "INPUT_IS_FLOAT": str(int(stream_t.dtype == "float32")),
        "INPUT_T": _C_TYPES.get(stream_t.dtype, "uint8_t"), "INPUT_SCALE": _c_float(in_s), "INPUT_ZP": str(in_zp),
        "OUTPUT_SCALE": _c_float(out_s), "OUTPUT_ZP": str(out_zp), "STATUS_ENUM": _status_enum(),
        "INPUT_DOC": f", {stream_t.dtype} {stream_t.shape}{seq_doc}",
        "OUTPUT_DOC": f", {out_t.dtype} {out_t.shape}",
    }.items():
        header = header.replace(f"@{key}@", value)
    if "@" in header:
        raise ExportError("deploy", detail="edgeprune_model.h.in has a placeholder the exporter does not fill")
    files["include/edgeprune_model.h"] = header
    files["CMakeLists.txt"] = _cmake(c_sources)
    files["library.json"] = json.dumps({
        "name": lib.name, "version": "1.0.0",
        "description": f"{name}: int8 model + edgeprune runtime (generated by edgeprune export --deploy)",
        "license": "Apache-2.0", "frameworks": "*", "platforms": "*",
        "build": {"srcDir": "src", "includeDir": "include", "flags": ["-std=c99"]},
        "export": {"include": ["include", "src", "library.json", "CMakeLists.txt"]},
    }, indent=2) + "\n"
    files["deploy.json"] = json.dumps({**lib.to_json(), "out_dir": None, "source": source,
                                       "runtime_families": families}, indent=2) + "\n"
    for rel, text in _example_files(core, opt).items():
        files[f"examples/qemu/{rel}"] = text
    _write_atomically(out_dir, files)
    return lib


def _prepare(files: dict[str, str | bytes], tflite: bytes, core: str, arena: int, origin: str) -> Prepared:
    """The prepared model of the parser library ``files`` (``export.deploy_prepare``)."""
    with tempfile.TemporaryDirectory(prefix="ep-deploy-src-") as tmp:
        for rel, content in files.items():
            path = Path(tmp) / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
        header = ("/* Generated by edgeprune export --deploy; do not edit: the model prepared at export (the runtime's "
                  f"state after init on {core}).\n * source: {origin.replace('*/', '* /')}\n */")
        return prepare(Path(tmp) / "src", core, arena, tflite, kernel_kinds(), header)


def _write_atomically(out_dir: Path, files: dict[str, str | bytes]) -> None:
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale_tmp(out_dir.parent, f".{out_dir.name}.tmp-")  # left by a writer killed mid-write
    sweep_stale_tmp(out_dir.parent, f".{out_dir.name}.old-")
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-{os.getpid()}-", dir=out_dir.parent))
    try:
        for rel, content in files.items():
            path = tmp / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content, encoding="utf-8")
        old = None
        if out_dir.exists():
            old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
            os.replace(out_dir, old)
        os.replace(tmp, out_dir)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ExportError("deploy", detail=f"cannot write {out_dir}: {exc}") from exc

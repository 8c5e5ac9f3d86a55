"""Build the firmware with PlatformIO and read its memory footprint from the ELF.

``build("qemu-m4")`` runs ``pio run -e qemu-m4`` (offline for the QEMU envs, see tools/provision_scons.py);
``build(env, baked_model_dir=...)`` is the deploy build with the exporter's ``model_data.c/.h`` compiled in,
in a separate build dir so it never clobbers the serial-loading firmware.
"""

from __future__ import annotations

import configparser
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from edgeprune.bench.atomic import LockTimeout, folder_lock
from edgeprune.bench.carray import c_source
from edgeprune.bench.manifest import ManifestError, read_manifest, write_manifest
from edgeprune.bench.paths import project_root
from edgeprune.bench.proc_group import run_in_group

log = logging.getLogger(__name__)

# Memory limits per env: (flash bytes, RAM bytes) of what the linker script gives the firmware.
ENV_LIMITS: dict[str, tuple[int, int]] = {
    "qemu-m0": (512 * 1024, 512 * 1024),
    "qemu-m3": (4 * 1024 * 1024, 4 * 1024 * 1024),
    "qemu-m4": (4 * 1024 * 1024, 4 * 1024 * 1024),
    "qemu-m7": (4 * 1024 * 1024, 4 * 1024 * 1024),
    "qemu-m33": (4 * 1024 * 1024, 4 * 1024 * 1024),
    "nucleo_l4r5zi": (2 * 1024 * 1024, 640 * 1024),
    "nucleo_g0b1re": (512 * 1024, 144 * 1024),
    "nucleo_h743zi": (2 * 1024 * 1024, 512 * 1024),  # AXI SRAM; the linker script of the platform decides
    # STM32 bare builds (issue 26): the board env and its emulated twin build the same image
    "qemu-b-l475e-iot01a": (1024 * 1024, 96 * 1024), "disco_l475vg_iot01a": (1024 * 1024, 96 * 1024),
    "qemu-netduinoplus2": (512 * 1024, 128 * 1024), "nucleo_f411re": (512 * 1024, 128 * 1024),
}
CORE_ENVS = {"m0": "qemu-m0", "m3": "qemu-m3", "m4": "qemu-m4", "m7": "qemu-m7", "m33": "qemu-m33"}
# -mcpu of each env (decides whether the runtime's DSP fully-connected path, and its arena temporary, exist).
ENV_CPU: dict[str, str] = {
    "qemu-m0": "cortex-m0", "qemu-m3": "cortex-m3", "qemu-m4": "cortex-m4", "qemu-m7": "cortex-m7",
    "qemu-m33": "cortex-m33", "nucleo_l4r5zi": "cortex-m4", "nucleo_g0b1re": "cortex-m0plus",
    "nucleo_h743zi": "cortex-m7", "qemu-b-l475e-iot01a": "cortex-m4", "disco_l475vg_iot01a": "cortex-m4",
    "qemu-netduinoplus2": "cortex-m4", "nucleo_f411re": "cortex-m4",
}
# ARMv6-M cores (no CLZ, one index register in the FC loop: the runtime keeps folded FC biases and tables there).
V6M_CPUS = ("cortex-m0", "cortex-m0plus", "cortex-m1")
# Stack headroom the linker script reserves beyond .bss/.noinit (ep_cortexm.ld asserts it).
STACK_RESERVE = 16 * 1024


class BuildError(RuntimeError):
    """A firmware build failed. ``stage`` says whose problem it is:

    * ``"model"``: the runtime refuses this model (per candidate, like ``"limits"``)
    * ``"limits"``: the image or its RAM does not fit the env's memory (per candidate)
    * ``"plan"``, ``"pio"``, ``"elf"``: the toolchain (host gcc, PlatformIO, the ELF) failed
    """

    def __init__(self, stage: str, message: str):
        super().__init__(f"[{stage}] {message}")
        self.stage = stage


@dataclass(frozen=True)
class BuildResult:
    """One built firmware image.

    :param env: PlatformIO environment
    :param elf: path of firmware.elf
    :param text: bytes of code + read-only data in flash (.isr_vector, .text, .rodata, .ARM.*)
    :param data: bytes of initialised RAM data (stored in flash too)
    :param bss: bytes of zeroed + uninitialised RAM (.bss, .noinit)
    :param flash_bytes: text + data
    :param ram_bytes: data + bss (the stack comes on top)
    :param limits: ``(flash, ram)`` the env allows
    :param build_id: the id HELLO will report
    """

    env: str
    elf: Path
    text: int
    data: int
    bss: int
    flash_bytes: int
    ram_bytes: int
    limits: tuple[int, int]
    build_id: str
    plan: ModelPlan | None = None


@dataclass(frozen=True)
class ModelPlan:
    """What a deploy build reserves for its baked model, from firmware/runtime's own planner run on the host.

    :param model_bytes: size of the .tflite compiled into flash
    :param arena: tensor arena bytes on the target (incl. sequence staging and the DSP FC temporary)
    :param tensors: tensors in the model (sizes the runtime's tensor table)
    :param ops: operators in the model (sizes the runtime's op table)
    :param dsp: the target compiles the runtime's DSP fully-connected path
    :param kernels: the optional kernel families (``"conv"``, ``"f32"``, ``"gru"``; firmware/runtime/ep_kernels.h)
        the model runs; the deploy build compiles only these
    :param kinds: bit mask of the kernel kinds the model's run list calls (``EP_RT_KINDS``), None when unknown
    :param rnn: (hidden, input depth) of each fused GRU/LSTM layer, None when unknown
    :param fc_depth: the deepest FULLY_CONNECTED's input depth (0: none), None when unknown
    """

    model_bytes: int
    arena: int
    tensors: int
    ops: int
    dsp: bool
    kernels: tuple[str, ...] = ("conv", "f32", "gru")
    kinds: int | None = None
    rnn: tuple[tuple[int, int], ...] | None = None
    fc_depth: int | None = None


def _pio() -> list[str]:
    exe = Path(sys.executable).with_name("pio")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("pio") or shutil.which("platformio")
    if found is None:
        raise BuildError("pio", "PlatformIO not found: pip install platformio==6.2.0")
    return [found]


def elf_sizes(elf: Path) -> tuple[int, int, int]:
    """``(text, data, bss)`` from the ELF's allocated sections (the same split as ``arm-none-eabi-size``)."""
    from elftools.elf.elffile import ELFFile  # imported late: only needed when sizing

    text = data = bss = 0
    SHF_ALLOC, SHF_WRITE = 0x2, 0x1
    try:
        with open(elf, "rb") as fh:
            for sec in ELFFile(fh).iter_sections():
                flags = sec["sh_flags"]
                if not flags & SHF_ALLOC:
                    continue
                if sec["sh_type"] == "SHT_NOBITS":
                    bss += sec["sh_size"]
                elif flags & SHF_WRITE:
                    data += sec["sh_size"]
                else:
                    text += sec["sh_size"]
    except (OSError, ValueError) as exc:
        raise BuildError("elf", f"cannot read {elf}: {exc}") from exc
    return text, data, bss


def _run(cmd: list[str], stage: str, timeout_s: float, **kw: object) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False, **kw)  # type: ignore[call-overload, no-any-return]
    except subprocess.TimeoutExpired as exc:
        raise BuildError(stage, f"{cmd[0]} took longer than {timeout_s:g} s") from exc
    except OSError as exc:
        raise BuildError(stage, f"cannot run {cmd[0]}: {exc}") from exc


def _planner(dsp: bool, fpu: bool, v6m: bool) -> Path:
    """The host build of ``firmware/platform/scripts/ep_arena_plan.c`` + the runtime for one kind of target (cached by
    source hash).

    :param dsp: plan as a core with the DSP extension (``EP_PLAN_DSP``: the FC input widening, model-bias FCs)
    :param fpu: plan as a hard-float core with a single-precision FPU (``EP_PLAN_FPU``: no QUANTIZE/DEQUANTIZE tables)
    :param v6m: plan as an ARMv6-M core (``EP_PLAN_V6M``: FCs keep their folded bias, DEQUANTIZE its table)
    """
    fw = project_root() / "firmware"
    sources = [fw / "platform" / "scripts" / "ep_arena_plan.c", *sorted((fw / "runtime").glob("*.c"))]
    h = hashlib.sha256()
    for src in [*sources, *sorted((fw / "runtime").glob("*.h"))]:
        h.update(src.read_bytes())
    exe = project_root() / ".pio" / "ep_arena_plan" / f"plan-{h.hexdigest()[:12]}-d{int(dsp)}f{int(fpu)}v{int(v6m)}"
    if exe.is_file():
        return exe
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        raise BuildError("plan", "no host C compiler to plan the arena: apt-get install gcc")
    exe.parent.mkdir(parents=True, exist_ok=True)
    tmp = exe.with_name(exe.name + f".{os.getpid()}.tmp")
    proc = _run([cc, "-std=c99", "-O1", f"-DEP_PLAN_DSP={int(dsp)}", f"-DEP_PLAN_FPU={int(fpu)}",
                 f"-DEP_PLAN_V6M={int(v6m)}", f"-I{fw / 'runtime'}",
                 *map(str, sources), "-lm", "-o", str(tmp)], "plan", 120)
    if proc.returncode != 0:
        raise BuildError("plan", f"compiling the arena planner failed: {proc.stderr.strip()[-400:]}")
    os.replace(tmp, exe)
    return exe


def has_dsp(env: str) -> bool:
    """Whether ``arm-none-eabi-gcc -mcpu=<env's cpu>`` defines ``__ARM_FEATURE_DSP``."""
    cpu = ENV_CPU.get(env)
    if cpu is None:
        raise BuildError("plan", f"unknown env {env!r}: add its -mcpu to ENV_CPU in bench/firmware_build.py")
    gcc = shutil.which("arm-none-eabi-gcc")
    if gcc is None:
        raise BuildError("plan", "arm-none-eabi-gcc not found: apt-get install gcc-arm-none-eabi")
    proc = _run([gcc, f"-mcpu={cpu}", "-mthumb", "-O2", "-dM", "-E", "-x", "c", os.devnull], "plan", 60)
    return bool(re.search(r"^#define __ARM_FEATURE_DSP 1$", proc.stdout, flags=re.M))


def has_fpu(env: str) -> bool:
    """Whether ``env`` builds hard-float for a single-precision FPU (its runtime then keeps no QUANTIZE/DEQUANTIZE
    tables), from its board file in the project-local platform. A board outside it counts as without one: its plan
    then reserves the tables, more than such a device needs, never less.

    :param env: PlatformIO env
    """
    ini = configparser.ConfigParser(interpolation=None)
    ini.read(project_root() / "platformio.ini", encoding="utf-8")
    board = ini.get(f"env:{env}", "board", fallback="")
    path = project_root() / "firmware" / "platform" / "boards" / f"{board}.json"
    if not board or not path.is_file():
        return False
    build = json.loads(path.read_text(encoding="utf-8")).get("build", {})
    return build.get("float_abi", "soft") == "hard" and bool(build.get("fpu"))


def baked_tflite(baked_dir: Path) -> bytes:
    """The model of an export dir: ``model.tflite``, or the bytes of ``model_data.c`` when that is all there is."""
    if (baked_dir / "model.tflite").is_file():
        return (baked_dir / "model.tflite").read_bytes()
    text = (baked_dir / "model_data.c").read_text()
    m = re.search(r"\{(.*?)\};", text, flags=re.S)
    if m is None:
        raise BuildError("plan", f"{baked_dir / 'model_data.c'} holds no array initialiser")
    return bytes(int(x, 16) for x in re.findall(r"0x([0-9a-fA-F]{1,2})", m.group(1)))


#: ``EP_RT_INIT_CONSUME_INPUTS`` (firmware/runtime/ep_runtime.h): inputs end at their last reader, as TFLM plans.
CONSUME_INPUTS = 2


def plan_model(tflite: bytes, env: str, sequence: dict | None = None, flags: int | None = None) -> ModelPlan:
    """Arena and table sizes the firmware of ``env`` needs for ``tflite`` (exactly what its runtime plans).

    :param tflite: the model
    :param env: PlatformIO env (decides the DSP temporary)
    :param sequence: the manifest's ``sequence`` block (``steps``, ``stream_input``, ``recurrent``), if any
    :param flags: ``ep_model_init_ex`` flags to plan with (default: the firmware's own, ``ep_model_init``); e.g.
        :data:`CONSUME_INPUTS` for an application that writes its inputs before every invoke
    """
    with tempfile.NamedTemporaryFile(suffix=".tflite") as fh:
        fh.write(tflite)
        fh.flush()
        dsp = has_dsp(env)
        args = [str(_planner(dsp, has_fpu(env), ENV_CPU[env] in V6M_CPUS)), fh.name]
        if sequence:
            args += [str(int(sequence["steps"])), str(int(sequence["stream_input"]))]
            args += [f"{int(o)},{int(i)}" for o, i in sequence.get("recurrent", [])]
        env_vars = None if flags is None else {**os.environ, "EP_PLAN_FLAGS": str(int(flags))}
        proc = _run(args, "plan", 60, env=env_vars)
    if proc.returncode == 1:
        raise BuildError("model", f"the runtime refuses this model: {proc.stderr.strip()[-300:]}")
    if proc.returncode != 0:
        raise BuildError("plan", f"the arena planner failed (exit {proc.returncode}): {proc.stderr.strip()[-300:]}")
    m = re.search(r"arena (\d+) tensors (\d+) ops (\d+) fc_max_depth (\d+) gru (\d+) conv (\d+) f32 (\d+)",
                  proc.stdout)
    if m is None:
        raise BuildError("plan", f"unexpected planner output {proc.stdout!r}")
    arena, tensors, ops, fc_depth, gru, conv, f32 = map(int, m.groups())
    km = re.search(r" kinds (0x[0-9a-f]+)", proc.stdout)
    kernels = tuple(name for name, n in (("conv", conv), ("f32", f32), ("gru", gru)) if n)
    rm = re.search(r"^rnn (-|[\dx,]+)$", proc.stdout, re.M)
    rnn = None if rm is None else tuple(
        (int(n), int(d)) for n, d in (layer.split("x") for layer in rm.group(1).split(",") if layer != "-"))
    return ModelPlan(len(tflite), arena, tensors, ops, dsp, kernels, int(km.group(1), 16) if km else None, rnn,
                     fc_depth)


BAKED_VARS = ("EP_BAKED_MODEL_DIR", "EP_BAKED_ARENA", "EP_BAKED_MAX_TENSORS", "EP_BAKED_MAX_OPS", "EP_BAKED_KERNELS")


def deploy_environ(env: str, baked_model_dir: str | Path,
                   build_dir: str | Path | None = None) -> tuple[dict[str, str], ModelPlan]:
    """Environment variables for ``pio run -e <env>`` to make the deploy build of an export dir, and its plan.

    Anything that runs PlatformIO on a deploy build (``build`` here, an upload in ``bench/flash.py``) must use
    these, so it produces the same image and build id: ``EP_BAKED_*`` (the model and the buffer sizes planned
    for it) and ``PLATFORMIO_BUILD_DIR`` (one dir per model unless ``build_dir`` is given).

    :param env: PlatformIO env
    :param baked_model_dir: export dir with ``model_data.c/.h`` (and ``model.tflite``, ``manifest.json``)
    :param build_dir: PlatformIO build dir (default ``.pio/build-baked/<dir name>-<model hash>``)
    """
    env = CORE_ENVS.get(env, env)
    baked = Path(baked_model_dir).resolve()
    if not (baked / "model_data.c").is_file() or not (baked / "model_data.h").is_file():
        raise BuildError("model", f"{baked} has no model_data.c/.h; export the model first")
    try:
        sequence = read_manifest(baked / "manifest.json").sequence if (baked / "manifest.json").is_file() else None
    except ManifestError as exc:
        raise BuildError("model", str(exc)) from exc
    tflite = baked_tflite(baked)
    flash, ram = ENV_LIMITS.get(env, (0, 0))
    if flash and len(tflite) > flash:
        raise BuildError("limits", f"{env}: the model alone is {len(tflite)} B, the board has {flash} B flash")
    plan = plan_model(tflite, env, sequence.to_dict() if sequence is not None else None)
    if ram and plan.arena + STACK_RESERVE > ram:
        raise BuildError("limits", f"{env}: the model needs a {plan.arena} B arena + {STACK_RESERVE} B stack, "
                                   f"the board has {ram} B RAM")
    if build_dir is None:
        digest = hashlib.sha256((baked / "model_data.c").read_bytes()).hexdigest()[:10]
        build_dir = project_root() / ".pio" / "build-baked" / f"{baked.name}-{digest}"
    return {"EP_BAKED_MODEL_DIR": str(baked), "EP_BAKED_ARENA": str(plan.arena),
            "EP_BAKED_MAX_TENSORS": str(max(1, plan.tensors)), "EP_BAKED_MAX_OPS": str(max(1, plan.ops)),
            "EP_BAKED_KERNELS": ",".join(plan.kernels) or "none",
            "PLATFORMIO_BUILD_DIR": str(Path(build_dir).resolve())}, plan


def pio_envs(project_dir: str | Path | None = None) -> list[str]:
    """The PlatformIO envs ``platformio.ini`` defines (``[env:<name>]`` sections), in file order.

    :param project_dir: folder holding ``platformio.ini`` (default: the project root)
    """
    ini = Path(project_dir) if project_dir is not None else project_root()
    try:
        text = (ini / "platformio.ini").read_text(encoding="utf-8")
    except OSError:
        return []
    return re.findall(r"^\[env:([^\]\s]+)\]", text, flags=re.M)


def env_build_dir(env: str, build_dir: str | Path | None = None) -> Path:
    """The folder ``pio run -e <env>`` writes: ``<build_dir>/<env>``, else ``$PLATFORMIO_BUILD_DIR/<env>``, else
    ``.pio/build/<env>``.

    :param env: PlatformIO env or core name
    :param build_dir: an explicit PlatformIO build dir
    """
    env = CORE_ENVS.get(env, env)
    root = build_dir if build_dir is not None else os.environ.get("PLATFORMIO_BUILD_DIR")
    return (Path(root).resolve() if root else project_root() / ".pio" / "build") / env


@contextmanager
def build_lock(out_dir: Path, timeout_s: float) -> Iterator[None]:
    """Hold the lock of one PlatformIO output folder, waiting up to ``timeout_s`` for another process's build.

    Two ``pio run -e qemu-m4`` writing the same ``.pio/build/qemu-m4`` (two benches, a search and a test) race
    on its objects and one fails at link; the second one waits here and then finds the build up to date
    (``bench.atomic.folder_lock``: released by the kernel when its holder dies).

    :param out_dir: the env's output folder (``env_build_dir``)
    :param timeout_s: longest wait for another build, s (raises ``BuildError`` stage ``"pio"`` after it)
    """
    try:
        with folder_lock(out_dir, timeout_s):
            yield
    except LockTimeout as exc:
        raise BuildError("pio", f"another build: {exc}") from None


def build(env: str, baked_model_dir: str | Path | None = None, build_dir: str | Path | None = None,
          *, timeout_s: float = 600.0, no_runtime: bool = False) -> BuildResult:
    """Build ``env`` and return its sizes, checked against the env's memory limits.

    :param env: PlatformIO env (``qemu-m4``, ``nucleo_l4r5zi``, ...) or a core name (``m4``)
    :param baked_model_dir: folder with the exporter's ``model_data.c/.h``: deploy build with the model inside
    :param build_dir: PlatformIO build dir (default ``.pio/build`` or ``.pio/build-baked/<model>`` when baked)
    :param timeout_s: limit for the whole ``pio run``
    :param no_runtime: link-only firmware (protocol bring-up without firmware/runtime)
    """
    env = CORE_ENVS.get(env, env)
    root = project_root()
    environ = dict(os.environ)
    for var in BAKED_VARS:
        environ.pop(var, None)
    plan = None
    if baked_model_dir is not None:
        baked_env, plan = deploy_environ(env, baked_model_dir, build_dir)
        environ.update(baked_env)
        build_dir = baked_env["PLATFORMIO_BUILD_DIR"]
    if no_runtime:
        environ["EP_NO_RUNTIME"] = "1"
    out = env_build_dir(env, build_dir)
    environ["PLATFORMIO_BUILD_DIR"] = str(out.parent)
    cmd = [*_pio(), "run", "-e", env, "-d", str(root)]
    log.info("building %s: %s", env, " ".join(cmd))
    with build_lock(out, timeout_s):
        return _build_locked(cmd, env, out, root, environ, timeout_s, plan)


def _build_locked(cmd: list[str], env: str, out: Path, root: Path, environ: dict[str, str], timeout_s: float,
                  plan: ModelPlan | None) -> BuildResult:
    try:
        # In a killable group: a search killed mid-build must not leave pio/SCons/gcc running.
        proc = run_in_group(cmd, timeout_s, cwd=root, env=environ)
    except subprocess.TimeoutExpired as exc:
        raise BuildError("pio", f"pio run -e {env} took longer than {timeout_s:g} s") from exc
    if proc.returncode != 0:
        out_text = proc.stdout + proc.stderr
        over = re.search(r"region `(\w+)' overflowed by (\d+) bytes", out_text)
        if over:
            raise BuildError("limits", f"{env}: the image does not fit: {over.group(1)} overflowed by "
                                       f"{over.group(2)} B (smaller model, or a board with more memory)")
        if "RAM overflow" in out_text:
            raise BuildError("limits", f"{env}: less than {STACK_RESERVE} B RAM left for the stack "
                                       "(lower custom_ep_model_max / custom_ep_arena, or a smaller model)")
        tail = "\n".join(out_text.strip().splitlines()[-25:])
        raise BuildError("pio", f"pio run -e {env} failed (exit {proc.returncode}):\n{tail}")
    elf = out / "firmware.elf"
    if not elf.is_file():
        raise BuildError("elf", f"pio run succeeded but {elf} is missing")
    text, data, bss = elf_sizes(elf)
    limits = ENV_LIMITS.get(env, (0, 0))
    result = BuildResult(env, elf, text, data, bss, text + data, data + bss, limits,
                         (out / "build_id.txt").read_text().strip() if (out / "build_id.txt").is_file() else "", plan)
    check_limits(result)
    return result


def check_limits(result: BuildResult) -> None:
    flash, ram = result.limits
    if flash and result.flash_bytes > flash:
        raise BuildError("limits", f"{result.env}: image needs {result.flash_bytes} B flash, the board has {flash} B")
    if ram and result.ram_bytes + STACK_RESERVE > ram:
        raise BuildError("limits", f"{result.env}: {result.ram_bytes} B RAM + {STACK_RESERVE} B stack exceed {ram} B; "
                                   "lower custom_ep_model_max / custom_ep_arena in platformio.ini")


def deploy_env_for(counter: str, core: str, board: str) -> str | None:
    """The PlatformIO env whose deploy build matches a measured target (``None`` when none is known).

    :param counter: ``"icount"`` (QEMU) or ``"dwt"`` (a board), as HELLO reports it
    :param core: the core HELLO reports (``m4``, ...)
    :param board: the board name HELLO reports
    """
    if counter == "icount":
        return CORE_ENVS.get(core)
    return board if board in ENV_LIMITS else None


def deploy_footprint(tflite_path: str | Path, env: str, manifest: dict | None = None,
                     *, timeout_s: float = 600.0) -> BuildResult:
    """The deploy build of a ``.tflite`` for ``env`` (the model compiled into flash, as it would ship).

    An export folder beside the model (``model_data.c`` of the same bytes) is built as it is; a bare
    ``.tflite`` gets its C array generated under ``.pio/deploy-src/<sha256>``. Each model has its own
    PlatformIO build dir, so building the same model again is an up-to-date check, not a rebuild.

    :param tflite_path: the model
    :param env: PlatformIO env (see :func:`deploy_env_for`)
    :param manifest: the export manifest (its ``sequence`` block sizes the arena of a GRU)
    """
    path = Path(tflite_path)
    tflite = path.read_bytes()
    digest = hashlib.sha256(tflite).hexdigest()
    beside = path.parent / "model_data.c"
    if beside.is_file() and (path.parent / "model_data.h").is_file() and digest in beside.read_text(errors="replace")[:600]:
        return build(env, baked_model_dir=path.parent, timeout_s=timeout_s)
    src = project_root() / ".pio" / "deploy-src" / digest[:16]
    if not (src / "model_data.h").is_file():
        tmp = src.with_name(f"{src.name}.{os.getpid()}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        body, header = c_source(tflite, str(path))
        (tmp / "model.tflite").write_bytes(tflite)
        (tmp / "model_data.c").write_text(body)
        if manifest:
            write_manifest(tmp / "manifest.json", manifest)
        (tmp / "model_data.h").write_text(header)
        shutil.rmtree(src, ignore_errors=True)
        os.replace(tmp, src)
    return build(env, baked_model_dir=src, timeout_s=timeout_s)

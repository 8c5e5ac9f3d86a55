"""Where a model's instructions go: a per-function profile of one inference under QEMU (``edgeprune bench --profile``).

QEMU logs every translation block it executes (``-d in_asm,exec,nochain``: each block's guest instructions once,
then one line per execution with the function the block starts in). Only blocks inside the firmware's calls of
``ep_model_invoke`` count (interrupts taken during one included, as the device's own count sees them), divided
by the number of calls: loading, the link and start-up are left out. Counts are QEMU instructions (compare them
only with other QEMU counts). A block is attributed to the function it starts in;
at -O2 this firmware's blocks do not fall through into another function, so the attribution is by function
(an inlined helper counts as its caller).
"""

from __future__ import annotations

import collections
import logging
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeprune.bench.cycle_model import CycleModel, disassemble
from edgeprune.bench.inputs import set_inputs, synthetic_inputs
from edgeprune.bench.link import Device
from edgeprune.bench.manifest import Manifest, load_manifest
from edgeprune.bench.measure import configure_sequence
from edgeprune.bench.qemu import QemuBoard, default_elf

log = logging.getLogger(__name__)

TRACE = re.compile(r"^Trace \d+: (0x[0-9a-f]+) \[[0-9a-f]+/([0-9a-f]+)/[0-9a-f]+/[0-9a-f]+\] ?(\S*)")
INSN = re.compile(r"^0x([0-9a-f]+):")
#: The firmware's inference entry point (firmware/src/ep_link.c calls it once per timed run).
INVOKE = "ep_model_invoke"


#: Functions that run the op list: a block outside them entered from them starts the next op.
DISPATCH = frozenset({INVOKE, "run_list", "run_graph"})


@dataclass(frozen=True)
class Block:
    """One executed translation block inside a call of the window function.

    :param call: which call (1-based)
    :param fn: the function the block starts in
    :param pc: guest address of its first instruction
    :param n: guest instructions in it
    """

    call: int
    fn: str
    pc: int
    n: int


def executed_blocks(trace: Path, window: str = INVOKE) -> Iterator[Block]:
    """The blocks executed inside calls of ``window`` in a ``-d in_asm,exec,nochain`` log, in order.

    A call starts at the first block of ``window`` and ends at the next block of the function that was running
    before it (its caller): everything between, interrupts included, is the call's, as the device's own count
    sees it.
    """
    size: dict[str, int] = {}  # host code address of a translation -> its guest instructions
    pending: dict[int, list[int]] = collections.defaultdict(list)  # guest pc -> sizes of blocks translated there
    calls, caller, prev = 0, None, "?"
    block_pc, block_n = None, 0
    with trace.open(errors="replace") as f:
        for line in f:
            if line.startswith("Trace "):
                m = TRACE.match(line)
                if m is None:
                    continue
                tc, pc, fn = m.group(1), int(m.group(2), 16), m.group(3) or "?"
                if pending.get(pc):
                    # QEMU translates a block right before its first execution: that execution is this block
                    # (a re-translation at a reused host address overrides the old size).
                    size[tc] = pending[pc].pop(0)
                if caller is None and fn == window:
                    caller, calls = prev, calls + 1
                elif caller is not None and fn == caller:
                    caller = None
                if caller is not None:
                    yield Block(calls, fn, pc, size.get(tc, 0))
                prev = fn
            elif line.startswith("IN:"):
                block_pc, block_n = None, 0
            else:
                m = INSN.match(line)
                if m is not None:
                    if block_pc is None:
                        block_pc = int(m.group(1), 16)
                    block_n += 1
                elif not line.strip() and block_pc is not None:
                    pending[block_pc].append(block_n)
                    block_pc, block_n = None, 0


def function_counts(trace: Path, window: str = INVOKE) -> tuple[collections.Counter[str], int]:
    """Guest instructions executed per function inside calls of ``window`` (see :func:`executed_blocks`), and
    how many such calls there were."""
    counts: collections.Counter[str] = collections.Counter()
    calls = 0
    for b in executed_blocks(trace, window):
        counts[b.fn] += b.n
        calls = b.call
    return counts, calls


def _is_handler(fn: str) -> bool:
    return fn.endswith("_Handler") or fn.endswith("IRQHandler")


def op_counts(trace: Path, model: Any = None) -> tuple[list[dict[str, Any]], int]:
    """Per op of the run list: instructions (and, with a :class:`~edgeprune.bench.cycle_model.CycleModel`,
    modelled cycles) summed over every call of ``ep_model_invoke``, and the number of calls.

    An op starts when control leaves the dispatcher (:data:`DISPATCH`) for another function (an interrupt handler
    entered from the dispatcher does not start one); the dispatcher's own blocks go to the op before them (index
    -1 before the first). Rows: ``{"op": index, "instructions": n, "cycles": c, "functions": {fn: n}}``.
    """
    rows: dict[int, dict[str, Any]] = {}
    calls, op, prev_fn = 0, -1, INVOKE
    last: _OpBlock | None = None

    def account(b: _OpBlock, next_pc: int | None) -> None:
        row = rows.setdefault(b.op, {"op": b.op, "instructions": 0, "cycles": 0, "functions": collections.Counter()})
        row["instructions"] += b.n
        row["functions"][b.fn] += b.n
        if model is not None:
            row["cycles"] += model.feed(b.pc, b.n, next_pc)

    for b in executed_blocks(trace):
        if b.call != calls:
            calls, op, prev_fn = b.call, -1, INVOKE
        if b.fn not in DISPATCH and prev_fn in DISPATCH and not _is_handler(b.fn):
            op += 1
        if not _is_handler(b.fn):
            prev_fn = b.fn
        cur = _OpBlock(b.call, b.fn, b.pc, b.n, op)
        if last is not None:
            account(last, cur.pc)
        last = cur
    if last is not None:
        account(last, None)
    return [rows[k] for k in sorted(rows)], calls


@dataclass(frozen=True)
class _OpBlock(Block):
    op: int = -1


def _run(core: str, tflite: bytes, manifest: Any, sample: dict[int, bytes], elf: Path | None, runs: int,
         trace: Path) -> int:
    """One traced QEMU session: load, set inputs, ``runs`` inferences; the device's count per inference."""
    args = ("-d", "in_asm,exec,nochain", "-D", str(trace))
    with QemuBoard(core, elf=elf, serial="tcp", boot_timeout_s=120.0, extra_args=args) as board, \
            Device.open(board.url, 600.0) as dev:
        dev.load_model(tflite)
        configure_sequence(dev, manifest)
        set_inputs(dev, sample, manifest)
        result = dev.infer(runs, fetch_outputs=False)
    return int(result.median)


@dataclass(frozen=True)
class Profile:
    """A per-function profile of one inference.

    :param core: the QEMU core
    :param per_function: QEMU instructions per inference by function, largest first
    :param device_count: the firmware's own instruction count of one inference (the figure ``bench`` reports)
    :param runs: inferences traced
    """

    core: str
    per_function: dict[str, float]
    device_count: int
    runs: int

    source = "qemu"  # instruction counts: compare only with other QEMU counts

    @property
    def attributed(self) -> float:
        return sum(self.per_function.values())


def profile(model: str | Path, core: str = "m4", runs: int = 4, elf: str | Path | None = None,
            manifest_path: str | Path | None = None) -> Profile:
    """Profile ``model`` on QEMU ``core``: instructions per inference by function.

    :param model: the .tflite
    :param core: ``m0`` … ``m33``
    :param runs: inferences traced (the divisor); under -icount every run counts the same, so more only
        cost log size
    :param elf: firmware to run (default: the core's build)
    :param manifest_path: export manifest (default: beside the model, else read from the .tflite)
    """
    if runs < 1:
        raise ValueError("runs must be >= 1")
    model = Path(model)
    tflite = model.read_bytes()
    manifest = Manifest.from_dict(load_manifest(model, manifest_path, tflite))
    sample = synthetic_inputs(manifest, 1, seed=0)[0]
    with tempfile.TemporaryDirectory(prefix="ep-profile-") as tmp:
        trace = Path(tmp) / "trace.log"
        device_count = _run(core, tflite, manifest, sample, None if elf is None else Path(elf), runs, trace)
        counts, calls = function_counts(trace)
    if calls == 0:
        raise ValueError(f"the trace holds no call of {INVOKE}: was the firmware built with the runtime?")
    per = {fn: n / calls for fn, n in sorted(counts.items(), key=lambda kv: -kv[1]) if n / calls >= 0.5}
    log.info("profiled %s on %s: %.0f instructions attributed, device count %d", model.name, core, sum(per.values()),
             device_count)
    return Profile(core, per, device_count, runs)



@dataclass(frozen=True)
class OpProfile:
    """Per-op instructions of one inference, and the cycle model's estimate of them.

    :param core: the QEMU core
    :param ops: one row per op of the run list, per inference: ``op`` (index), ``instructions`` (``qemu``),
        ``cycles`` (``model``; 0 without a model), ``functions`` (instructions by function)
    :param dispatch: instructions per inference in the dispatcher before the first op
    :param device_count: the firmware's own instruction count of one inference
    :param estimate: the cycle model's whole-run figures (:class:`~edgeprune.bench.cycle_model.Estimate`,
        summed over the traced runs), or None
    :param runs: inferences traced
    """

    core: str
    ops: list[dict[str, Any]]
    dispatch: float
    device_count: int
    estimate: Any
    runs: int


def op_profile(model: str | Path, core: str = "m4", runs: int = 1, elf: str | Path | None = None,
               manifest_path: str | Path | None = None, cycles: bool = True, flash_ws: int = 5,
               clock_mhz: float = 120.0) -> OpProfile:
    """Profile ``model`` on QEMU ``core`` op by op, with the cycle model's estimate beside the instruction counts.

    :param model: the .tflite
    :param core: ``m0`` … ``m33`` (the cycle model covers m3 and m4; elsewhere ``cycles`` must be False)
    :param runs: inferences traced
    :param elf: firmware to run (default: the core's build)
    :param manifest_path: export manifest (default: beside the model, else read from the .tflite)
    :param cycles: price the trace with :mod:`edgeprune.bench.cycle_model`
    :param flash_ws: instruction-fetch wait states for the model
    :param clock_mhz: the model's stated clock
    """
    if runs < 1:
        raise ValueError("runs must be >= 1")
    model = Path(model)
    elf_path = Path(elf) if elf is not None else default_elf(core)
    cm = CycleModel(disassemble(elf_path), core, clock_mhz, flash_ws) if cycles else None
    tflite = model.read_bytes()
    manifest = Manifest.from_dict(load_manifest(model, manifest_path, tflite))
    sample = synthetic_inputs(manifest, 1, seed=0)[0]
    with tempfile.TemporaryDirectory(prefix="ep-profile-") as tmp:
        trace = Path(tmp) / "trace.log"
        device_count = _run(core, tflite, manifest, sample, elf_path, runs, trace)
        rows, calls = op_counts(trace, cm)
    if calls == 0:
        raise ValueError(f"the trace holds no call of {INVOKE}: was the firmware built with the runtime?")
    per = []
    dispatch = 0.0
    for r in rows:
        row = {"op": r["op"], "instructions": r["instructions"] / calls, "cycles": r["cycles"] / calls,
               "functions": {k: v / calls for k, v in r["functions"].most_common()}}
        if r["op"] < 0:
            dispatch = row["instructions"]
        else:
            per.append(row)
    log.info("op profile of %s on %s: %d ops, device count %d", model.name, core, len(per), device_count)
    return OpProfile(core, per, dispatch, device_count, cm.est if cm else None, calls)

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

TRACE = re.compile(r"^Trace \d+: (0x[0-9a-f]+) \[[0-9a-f]+/([0-9a-f]+)/[0-9a-f]+/[0-9a-f]+\] ?(\S*)")
INSN = re.compile(r"^0x([0-9a-f]+):")
#: The firmware's inference entry point (firmware/src/ep_link.c calls it once per timed run).
INVOKE = "ep_model_invoke"


def function_counts(trace: Path, window: str = INVOKE) -> tuple[collections.Counter[str], int]:
    """Guest instructions executed per function inside calls of ``window`` in a ``-d in_asm,exec,nochain``
    log, and how many such calls there were.

    A call starts at the first block of ``window`` and ends at the next block of the function that was running
    before it (its caller): everything between, interrupts included, is the call's, as the device's own count
    sees it.
    """
    size: dict[str, int] = {}  # host code address of a translation -> its guest instructions
    pending: dict[int, list[int]] = collections.defaultdict(list)  # guest pc -> sizes of blocks translated there
    counts: collections.Counter[str] = collections.Counter()
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
                    counts[fn] += size.get(tc, 0)
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
    return counts, calls


def _run(core: str, tflite: bytes, manifest: Any, sample: dict[int, bytes], elf: Path | None, runs: int,
         trace: Path) -> int:
    """One traced QEMU session: load, set inputs, ``runs`` inferences; the device's count per inference."""
    from edgeprune.bench.inputs import set_inputs
    from edgeprune.bench.link import Device
    from edgeprune.bench.measure import configure_sequence
    from edgeprune.bench.qemu import QemuBoard

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
    from edgeprune.bench.inputs import synthetic_inputs
    from edgeprune.bench.manifest import Manifest
    from edgeprune.bench.manifests import load_manifest

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


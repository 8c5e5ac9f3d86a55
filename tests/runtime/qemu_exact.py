"""Run single-input models in the real firmware under QEMU and compare each output with TFLM's bytes."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .oracle import tflm_run

#: A sequence-mode case: name, model, steps, recurrent pairs (output, input), the streamed input 0 (all steps'
#: bytes) and the expected outputs after the last step.
SequenceCase = tuple[str, bytes, int, list[tuple[int, int]], np.ndarray, list[np.ndarray]]


def qemu_mismatches(core: str, build_dir: Path, cases: list[tuple[str, bytes, np.ndarray | list[np.ndarray]]],
                    sequences: Sequence[SequenceCase] = ()) -> list[str]:
    """Build the core's firmware into ``build_dir``, run every ``(name, model, input)`` once, and describe the
    outputs that differ from TFLM's (empty when all are byte-identical). ``input`` is one array for a one-input
    model or the list of every input's array; every output is compared. ``sequences`` then run in the device's
    sequence mode (its own recurrent carry) against the outputs given."""
    from edgeprune.bench.firmware_build import CORE_ENVS, build
    from edgeprune.bench.link import Device
    from edgeprune.bench.qemu import QemuBoard

    elf = build(CORE_ENVS[core], build_dir=build_dir).elf
    bad = []
    with QemuBoard(core, elf=elf) as board, Device.open(board.url, 60.0) as dev:
        for name, buf, x in cases:
            xs = x if isinstance(x, list) else [x]
            dev.load_model(buf)
            for i, xi in enumerate(xs):
                dev.set_input(i, xi.tobytes())
            outs = dev.infer(1).outputs
            refs = tflm_run(buf, xs, n_outputs=len(outs))
            for k, (out, r) in enumerate(zip(outs, refs, strict=True)):
                ref = r.tobytes()
                if out != ref:
                    bad.append(f"{name} {xs[0].shape} output {k}: "
                               f"{sum(a != b for a, b in zip(out, ref, strict=False))} of {len(ref)} bytes differ")
        for name, buf, steps, pairs, stream, refs in sequences:
            dev.load_model(buf)
            dev.set_sequence(steps, 0, pairs)
            dev.set_input(0, stream.tobytes())
            outs = dev.infer(1).outputs
            dev.set_sequence(1, 0, [])
            bad += [f"{name} ({steps} steps) output {k} differs" for k, (out, r) in enumerate(zip(outs, refs, strict=True))
                    if out != r.tobytes()]
    return bad

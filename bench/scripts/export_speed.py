"""How long one compressed weather-GRU candidate takes to export, end to end, with the per-stage split.

Run: ``nice .venv/bin/python bench/scripts/export_speed.py [--retain 0.5] [--repeats 2]``.
Compression (structured pruning, no fine-tuning) is timed separately; it is not part of export.
The first export in a process also pays the TensorFlow/onnx2tf import (the ``import`` stage);
later ones show the steady state the search sees.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import torch

from edgeprune.export import export_model
from edgeprune.host.compress import CompressionConfig
from edgeprune.host.compress.compressor import compress
from edgeprune.host.tasks import get_task


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--retain", type=float, default=0.5, help="fraction of weights retained (from_retain_rate)")
    parser.add_argument("--repeats", type=int, default=2, help="exports in this process")
    parser.add_argument("--calibration", type=int, default=512, help="calibration windows from the task")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    torch.set_num_threads(1)

    t0 = time.perf_counter()
    task = get_task("weather-gru")
    base = task.baseline()
    t_task = time.perf_counter() - t0
    cfg = CompressionConfig.from_retain_rate(args.retain, task, finetune_steps=0)
    t0 = time.perf_counter()
    model = compress(task, cfg).model
    t_compress = time.perf_counter() - t0
    cal = task.calibration_inputs(args.calibration)
    print(f"task {task.name}: baseline hidden {base.hidden_sizes} (load {t_task:.1f}s)")
    print(f"candidate: retain {args.retain} -> hidden {model.hidden_sizes}, compress {t_compress:.1f}s")
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            t0 = time.perf_counter()
            res = export_model(model, cal, Path(tmp) / f"e{i}", name="weather-gru-candidate")
            total = time.perf_counter() - t0
            split = "  ".join(f"{k} {v:.2f}s" for k, v in res.timings.items())
            print(f"export #{i + 1}: total {total:.2f}s  [{split}]")
            print(f"  tflite {res.tflite_bytes} B, int8 weights {res.weight_bytes} B, arena {res.arena_bytes} B")


if __name__ == "__main__":
    main()

"""Small recurrent models on the device runtime: instructions per MAC on every QEMU core (issue 27 item 3).

Usage: python bench/scripts/rnn_ipm.py [--cores m0 m3 m4 m7 m33] [--runs 1] [--build-dir DIR] [--markdown FILE]

Models go through the real exporter (random weights, 4 features, T = 30 steps, 5 classes, per-channel weight scales
as `export_model` defaults; rows ending in -t per-tensor, as the search exports first): GRUs of one layer of hidden 16/32/64/256, the weather baseline's 2 x 256, the default
search's winner shape 17 + 30 (both weight scalings), and LSTMs of hidden 16 and 32. Each runs in the firmware (PlatformIO build into
--build-dir) under qemu-system-arm -icount shift=0; its output is compared byte for byte with TFLM
(bench.tflm.TflmRunner, the same sequence loop). MACs = the model's FULLY_CONNECTED MACs x steps (readout
included every step). QEMU counts instructions: a lower bound on cycles, compared only with other QEMU counts.
Targets (QEMU M4): hidden 32 <= 3.0 instructions/MAC, hidden 16 <= 4.0, 2 x 256 <= 1.7, LSTM within 15 % of the
GRU of the same hidden size per MAC. Exit status 1 if any output differs from TFLM.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from edgeprune.bench.firmware_build import CORE_ENVS, build
from edgeprune.bench.tflm import TflmRunner
from edgeprune.export.pipeline import export_model
from edgeprune.host.models.gru import StackedGRU
from edgeprune.host.models.lstm import StackedLSTM

sys.path.insert(0, str(Path(__file__).resolve().parent))
from runtime_matrix import CLASSES, FEATURES, STEPS, Bench, run_core  # noqa: E402  (sibling script)

ROOT = Path(__file__).resolve().parents[2]
GRUS = {"gru16": [16], "gru32": [32], "gru64": [64], "gru256": [256], "gru2x256": [256, 256], "gru17+30": [17, 30],
        "gru17+30-t": [17, 30], "gru16-t": [16], "gru32-t": [32]}
LSTMS = {"lstm16": [16], "lstm32": [32]}
# "-t": per-tensor weight scales, what the search exports first (and kept for its default winner).
TARGETS = {"gru32": 3.0, "gru16": 4.0, "gru32-t": 3.0, "gru16-t": 4.0, "gru2x256": 1.7}  # instructions/MAC on M4
LSTM_VS_GRU = 1.15


def _export(name: str, model, calib: np.ndarray, cache: Path, weights: str) -> tuple[bytes, dict]:
    """The real exporter's .tflite and manifest, cached under ``cache/name``."""
    out = cache / name
    if not (out / "model.tflite").is_file():
        export_model(model, calib, out, weights=weights)
    return (out / "model.tflite").read_bytes(), json.loads((out / "manifest.json").read_text())


def models(cache: Path, rng: np.random.Generator) -> list[Bench]:
    """The exported models with TFLM's output for one random int8 input stream each."""
    torch.set_num_threads(1)
    out = []
    kinds = [(n, StackedGRU, h) for n, h in GRUS.items()] + [(n, StackedLSTM, h) for n, h in LSTMS.items()]
    for k, (name, cls, hidden) in enumerate(kinds):
        torch.manual_seed(k)
        calib = np.random.default_rng(k).normal(0, 1, (64, STEPS, FEATURES)).astype(np.float32)
        tflite, man = _export(name.replace("+", "x"), cls(FEATURES, hidden, CLASSES, seq_len=STEPS).eval(), calib, cache,
                              "tensor" if name.endswith("-t") else "channel")
        seq = man["sequence"]
        x = rng.integers(-128, 128, (seq["steps"], *man["inputs"][seq["stream_input"]]["shape"][1:]), dtype=np.int8)
        out.append(Bench(name, tflite, x.tobytes(), TflmRunner(tflite, man).run(x).tobytes(), seq["output"], seq))
    return out


def report(results: dict[str, dict[str, dict]], cores: list[str]) -> list[str]:
    """The per-MAC table (rows: models, columns: cores) and the M4 targets."""
    names = list(dict.fromkeys(n for rows in results.values() for n in rows))
    lines = ["| model | MACs | " + " | ".join(f"{c.upper()} instr/MAC" for c in cores) + " | TFLM-exact |",
             "|---|---:|" + "---:|" * len(cores) + "---|"]

    def ipm(name: str, core: str) -> float | None:
        r = results.get(core, {}).get(name)
        return r["count"] / r["macs"] if r and r["count"] is not None and r["macs"] else None

    for name in names:
        rows = [results[c].get(name) for c in cores]
        macs = next((r["macs"] for r in rows if r and r["count"] is not None), 0)
        cells = [f"{v:.3f}" if (v := ipm(name, c)) is not None else "does not load" for c in cores]
        exact = all(r["exact"] for r in rows if r and r["count"] is not None)
        lines.append(f"| {name} | {macs:,} | " + " | ".join(cells) + f" | {'yes' if exact else 'NO'} |")
    lines += ["", "Targets (QEMU M4):"]
    for name, limit in TARGETS.items():
        v = ipm(name, "m4")
        if v is not None:
            lines.append(f"- {name} <= {limit} instr/MAC: {v:.3f} -> {'MET' if v <= limit else 'NOT MET'}")
    for lstm in LSTMS:
        gru = "gru" + lstm.removeprefix("lstm")
        v, g = ipm(lstm, "m4"), ipm(gru, "m4")
        if v is not None and g is not None:
            lines.append(f"- {lstm} within {LSTM_VS_GRU - 1:.0%} of {gru} per MAC: {v:.3f} vs {g:.3f} ({v / g:.2f}x) -> "
                         f"{'MET' if v <= LSTM_VS_GRU * g else 'NOT MET'}")
    for name in ("gru17+30", "gru17+30-t"):
        w = ipm(name, "m4")
        if w is not None:
            lines.append(f"- default search winner shape {name} (no fixed target, as low as possible): {w:.3f}")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cores", nargs="+", default=["m0", "m3", "m4", "m7", "m33"])
    ap.add_argument("--runs", type=int, default=1, help="inferences per model (-icount: every run counts the same)")
    ap.add_argument("--build-dir", type=Path, default=ROOT / ".pio" / "build-rnn-ipm")
    ap.add_argument("--markdown", type=Path, default=None, help="also write the table here")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    benches = models(args.build_dir / "models", np.random.default_rng(27))
    results = {core: run_core(core, build(CORE_ENVS[core], build_dir=args.build_dir / "fw").elf, benches, args.runs)
               for core in args.cores}
    commit = subprocess.run(["git", "log", "-1", "--format=%h", "--", "firmware/runtime"], cwd=ROOT,
                            capture_output=True, text=True, timeout=30, check=False).stdout.strip()
    head = [f"Command: `python bench/scripts/rnn_ipm.py {' '.join(argv if argv is not None else sys.argv[1:])}` — "
            f"{dt.date.today().isoformat()}, firmware/runtime at commit {commit}, QEMU -icount shift=0 (instructions), "
            f"median of {args.runs} run(s).", ""]
    text = "\n".join(head + report(results, args.cores))
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n")
    bad = [(c, n) for c, rows in results.items() for n, r in rows.items() if not r["exact"]]
    if bad:
        print(f"NOT TFLM-exact: {bad}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

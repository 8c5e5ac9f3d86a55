"""Issue 27 items 2 and 4, issue 32's footprint rule: flash and RAM as the user pays them, per model.

Usage:
  python bench/scripts/deploy_footprint.py            # measure, print, write bench/results/deploy_footprint.json
  python bench/scripts/deploy_footprint.py --write    # ... and the section "Deploy footprint (issue 27)" of BENCHMARKS.md
  python bench/scripts/deploy_footprint.py --no-image # skip the PlatformIO image builds (the estimate check)

For each model: the .tflite split into weight bytes (int8 constants), bias bytes (int32 constants) and everything
else (graph, quantisation parameters, names, metadata); the deploy library (``edgeprune export --deploy``) built
for M4 and run once in QEMU: flash = model + code of the linked example, RAM = static (arena, the runtime's model
record, the example's buffers) + stack high-water. The weather GRUs are structural twins of the search's models
(same shapes, random weights, per-tensor int8 as the search exports them): byte counts depend on shapes only.
The default winner is the 17 + 30-unit best point of the default search (BENCHMARKS.md, "Search targets (issue
12): default"). Then the measurement image's flash/RAM estimate (host/search/footprint.py) against a real
PlatformIO deploy build of the same model, with its error.

Targets: the default winner's deploy library ≤ 12 KB flash on M4 (RAM reported); the int8 baseline's deploy flash
≥ 40× the winner's.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from bench_common import commit, replace_section
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

from edgeprune.bench.firmware_build import deploy_footprint
from edgeprune.bench.model_bench import bench_model
from edgeprune.bench.qemu import default_elf
from edgeprune.bench.reference import TFLM_ARENA, ad01_bytes, kws_bytes
from edgeprune.bench.tflite_info import read_model
from edgeprune.export import export_model
from edgeprune.export.deploy import write_deploy
from edgeprune.export.deploy_build import deploy_and_measure, footprint
from edgeprune.host.models import StackedGRU
from edgeprune.host.search.footprint import image_estimate

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results" / "deploy_footprint.json"
SECTION = "## Deploy footprint (issue 27)"
log = logging.getLogger("deploy_footprint")

#: Published TFLM footprint claims (not measured here; different builds and models), with their source.
PUBLISHED = [
    ("TFLM core runtime, Cortex-M3", "\"just fits in 16 KB\" (TensorFlow docs, quoted in tensorflow/tflite-micro "
     "issue #3069, which reports the claim out of date: 1.1 MB microlite archive, release build)",
     "https://github.com/tensorflow/tflite-micro/issues/3069"),
    ("TFLM minimum", "\"as little as 20 KB of flash and 4 KB of SRAM\" (Warden & Situnayake, TinyML, ch. 17)",
     "https://www.oreilly.com/library/view/tinyml/9781492052036/ch17.html"),
]


def _gru_twin(hidden: list[int], out: Path, weights: str = "tensor") -> tuple[bytes, dict]:
    torch.manual_seed(0)
    model = StackedGRU(4, hidden, 5, 30)
    calibration = np.random.default_rng(0).normal(size=(64, 30, 4)).astype(np.float32)
    res = export_model(model, calibration, out, name=f"gru-{'-'.join(map(str, hidden))}", weights=weights)
    return res.read_tflite(), res.manifest


def _split(tflite: bytes) -> dict[str, int]:
    info = read_model(tflite)
    weights = sum(t.nbytes for t in info.tensors if t.constant and t.dtype in ("int8", "float32"))
    bias = sum(t.nbytes for t in info.tensors if t.constant and t.dtype == "int32")
    return {"tflite": len(tflite), "weights": weights, "bias": bias, "other": len(tflite) - weights - bias}


def _largest_code(elf: Path, n: int = 8) -> list[tuple[str, int]]:
    """The ``n`` largest functions/read-only objects in flash (the model's ``edgeprune_model_*`` arrays left out)."""
    with open(elf, "rb") as fh:
        symtab = ELFFile(fh).get_section_by_name(".symtab")
        assert isinstance(symtab, SymbolTableSection)
        sizes = {s.name: int(s["st_size"]) for s in symtab.iter_symbols()
                 if s["st_info"]["type"] in ("STT_FUNC", "STT_OBJECT") and s["st_value"] < 0x20000000
                 and not s.name.startswith("edgeprune_model_")}
    return sorted(sizes.items(), key=lambda kv: -kv[1])[:n]


def _measure(name: str, tflite: bytes, manifest: dict | None, work: Path) -> dict[str, Any]:
    started = time.perf_counter()
    lib, fp = deploy_and_measure(tflite, work / f"lib-{name}", manifest=manifest, name=name, core="m4")
    small = footprint(lib.out_dir, "m4", optimize="-Os")
    # The same model as a .tflite with the runtime's parser and planner on the device (the library before issue 27's
    # prepared form; also what a machine without QEMU exports).
    parser = write_deploy(tflite, work / f"parser-{name}", manifest=manifest, name=name, core="m4", prepared=False)
    fp_parser = footprint(parser.out_dir, "m4")
    row = {"model": name, **_split(tflite), "kernels": list(lib.kernels), **fp.to_json(),
           "prepared": lib.prepared, "prepared_weight_bytes": lib.weight_bytes,
           "prepared_state_bytes": fp.model_bytes - lib.weight_bytes,
           "parser_flash_bytes": fp_parser.flash_bytes, "parser_model_bytes": fp_parser.model_bytes,
           "parser_code_bytes": fp_parser.code_bytes, "parser_ram_bytes": fp_parser.ram_bytes,
           "parser_output_equal": fp_parser.output == fp.output,
           "largest_code": _largest_code(fp.elf),
           "os_flash_bytes": small.flash_bytes, "os_code_bytes": small.code_bytes, "os_output_equal": small.output == fp.output,
           "build_run_s": round(time.perf_counter() - started, 1)}
    row.pop("elf")
    row.pop("output")
    log.info("%s: %s", name, row)
    return row


def _image_check(name: str, tflite: bytes, manifest: dict | None, work: Path, record_bytes: int) -> dict[str, Any]:
    """The image estimate of host/search/footprint.py against a real PlatformIO deploy build."""
    path = work / f"image-{name}" / "model.tflite"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(tflite)
    built = deploy_footprint(path, "qemu-m4", manifest)
    flash, ram, _ = image_estimate(tflite, manifest, "qemu-m4", default_elf("m4"), record_bytes)
    return {"model": name, "built_flash": built.flash_bytes, "estimated_flash": flash,
            "flash_error": (flash - built.flash_bytes) / built.flash_bytes, "built_ram": built.ram_bytes,
            "estimated_ram": ram, "ram_error": (ram - built.ram_bytes) / built.ram_bytes}


def _instructions(model: Path) -> float:
    """Instructions per inference on QEMU M4 (the measurement firmware: the same runtime as the library)."""
    return float(bench_model(model, "qemu:m4", repeats=3, warmup=1, agreement=0).figures["count"].value)


def _table(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["| model | .tflite B | weights B | int32 bias B | everything else B | deploy flash B (model + code) "
             "| shipped model: constants + everything else B | deploy RAM B (static + stack) | arena B "
             "| .tflite + parser library flash B (model + code) | kernels |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        state = r["prepared_state_bytes"]
        lines.append(f"| {r['model']} | {r['tflite']:,} | {r['weights']:,} | {r['bias']:,} | {r['other']:,} "
                     f"({r['other'] / r['tflite']:.0%}) | {r['flash_bytes']:,} ({r['model_bytes']:,} + "
                     f"{r['code_bytes']:,}) | {r['prepared_weight_bytes']:,} + {state:,} ({state / r['model_bytes']:.0%})"
                     f" | {r['ram_bytes']:,} ({r['static_ram_bytes']:,} + {r['stack_bytes']:,}) "
                     f"| {r['arena_bytes']:,} | {r['parser_flash_bytes']:,} ({r['parser_model_bytes']:,} + "
                     f"{r['parser_code_bytes']:,}) | {', '.join(r['kernels']) or 'core'} |")
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--write", action="store_true", help="write the BENCHMARKS.md section")
    ap.add_argument("--no-image", action="store_true", help="skip the measurement-image estimate check")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    rows: list[dict[str, Any]] = []
    images: list[dict[str, Any]] = []
    channel: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="deploy-footprint-") as tmp:
        work = Path(tmp)
        winner = _gru_twin([17, 30], work / "winner")
        baseline = _gru_twin([256, 256], work / "baseline")
        small = _gru_twin([32], work / "h32")
        for weights_mode, hidden in (("channel", [17, 30]), ("channel", [256, 256])):
            channel[f"gru {hidden[0]}+{hidden[1]}"] = len(_gru_twin(hidden, work / f"ch{hidden[0]}", weights_mode)[0])
        models = [("weather GRU 17+30 (default winner)", *winner), ("weather GRU 256+256 (int8 baseline)", *baseline),
                  ("GRU 32", *small), ("MLPerf Tiny AD01", ad01_bytes(), None), ("MLPerf Tiny KWS", kws_bytes(), None)]
        for name, tflite, manifest in models:
            rows.append(_measure(name, tflite, manifest, work))
        if not args.no_image:
            for (name, tflite, manifest), row in zip(models[:2], rows[:2], strict=True):
                images.append(_image_check(name, tflite, manifest, work, int(row["record_bytes"])))
        counts = {key: _instructions(work / key / "model.tflite") for key in ("winner", "baseline")}
    win, base = rows[0], rows[1]
    ratio = base["flash_bytes"] / win["flash_bytes"]
    parser_ratio = base["parser_flash_bytes"] / win["parser_flash_bytes"]
    met_12k, met_40 = win["flash_bytes"] <= 12 * 1024, ratio >= 40
    result = {"rows": rows, "images": images, "per_channel_tflite": channel, "ratio": ratio,
              "parser_ratio": parser_ratio, "instructions": counts,
              "met_12k": met_12k, "met_40x": met_40, "published": PUBLISHED}
    at = commit()  # before the results file is written: it is part of the tree
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    lines = [SECTION, "", "- command: `python bench/scripts/deploy_footprint.py --write`",
             f"- date: {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, commit {at}",
             "- deploy library = `edgeprune export --deploy` (the model prepared at export: the runtime's state after "
             "init as C data, no parser or planner on the device; export/deploy_prepare.py), example linked with "
             "arm-none-eabi-gcc -O2 for Cortex-M4 (flash: .text+.rodata+.data of the linked example; RAM: .data+.bss "
             "+ stack high-water measured in QEMU)",
             f"- every prepared library's output bytes equal the .tflite + parser library's: "
             f"{all(r['parser_output_equal'] for r in rows)} (and TFLM's: tests/export/test_deploy_library.py)",
             f"- target: default winner's deploy library ≤ 12 KB flash: **{'met' if met_12k else 'not met'}** "
             f"({win['flash_bytes']:,} B = {win['model_bytes']:,} model + {win['code_bytes']:,} code; "
             f"RAM {win['ram_bytes']:,} B)",
             f"- target: int8 baseline's deploy flash ≥ 40× the winner's: **{'met' if met_40 else 'not met'}** "
             f"({base['flash_bytes']:,} / {win['flash_bytes']:,} = {ratio:.1f}×; model bytes alone "
             f"{base['model_bytes'] / win['model_bytes']:.1f}×; with the .tflite + parser library at this commit "
             f"{base['parser_flash_bytes']:,} / {win['parser_flash_bytes']:,} = {parser_ratio:.1f}×)",
             f"- instructions per inference, QEMU M4 (qemu, a lower bound on cycles; the runtime at this commit): winner "
             f"{counts['winner']:,.0f}, baseline {counts['baseline']:,.0f} = {counts['baseline'] / counts['winner']:.1f}× "
             "(target ≥ 40×, depends on the runtime's small-GRU work: **"
             f"{'met' if counts['baseline'] / counts['winner'] >= 40 else 'not met'}**)", ""]
    lines += _table(rows)
    lines += ["", "Shipped model = the constants the kernels read at invoke (weights, and an FC's bias where there is "
              "no input zero point to fold into it) + everything else (the runtime's op and tensor records, arena "
              "offsets, multipliers, folded biases, activation tables as steps, fused-step constants: zero-run images "
              "and relocations)."]
    lines += ["", "The .tflite + parser column ships the model slimmed (`export/slim.py`: no names, signatures, metadata, "
              "min/max, activation buffers; equal vectors shared; same outputs): " + "; ".join(f"{r['model']} {r['tflite']:,} → {r['parser_model_bytes']:,} B" for r in rows) + ".",
              "", "The same libraries compiled -Os instead of -O2 (a user's size build; same output bytes: "
              f"{all(r['os_output_equal'] for r in rows)}), deploy flash (code): "
              + "; ".join(f"{r['model']} {r['os_flash_bytes']:,} B ({r['os_code_bytes']:,})" for r in rows) + ".",
              "", f"Where the winner's {win['code_bytes']:,} B of code go (largest symbols, bytes): "
              + ", ".join(f"`{n}` {b:,}" for n, b in win["largest_code"]) + "."]
    lines += ["", "Per-channel weight scales (the converter's default) against per-tensor (what the search exports "
              "unless per-channel scores better on validation), .tflite bytes: "
              + "; ".join(f"{k}: {v:,} per channel vs {r['tflite']:,} per tensor"
                          for (k, v), r in zip(channel.items(), rows[:2], strict=True))]
    if images:
        lines += ["", "Measurement-image estimate (host/search/footprint.py, one rule for every candidate) against a "
                  "real PlatformIO deploy build of the same model (qemu-m4):", "",
                  "| model | built flash | estimated | error | built RAM | estimated | error |", "|---|---:|---:|---:|---:|---:|---:|"]
        lines += [f"| {i['model']} | {i['built_flash']:,} | {i['estimated_flash']:,} | {i['flash_error']:+.1%} | "
                  f"{i['built_ram']:,} | {i['estimated_ram']:,} | {i['ram_error']:+.1%} |" for i in images]

    ours = {r["model"]: r["arena_bytes"] for r in rows}
    lines += ["", "TFLM's `arena_used_bytes()` for the same models on the same QEMU M4 build (bench/reference/README.md; "
              "measured there, not here), against the deploy library's planned arena (inputs consumed, as TFLM plans): "
              + "; ".join(f"{label}: TFLM {TFLM_ARENA[key][0]:,} B (reference kernels) / {TFLM_ARENA[key][1]:,} B "
                          f"(CMSIS-NN), ours {ours[label]:,} B"
                          for key, label in (("ad01", "MLPerf Tiny AD01"), ("kws", "MLPerf Tiny KWS"))) + "."]
    lines += ["", "Published TFLM footprint claims (not measured here, other builds and models):", ""]
    lines += [f"- {what}: {claim} — {url}" for what, claim, url in PUBLISHED]
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    if args.write:
        replace_section(ROOT / "BENCHMARKS.md", SECTION, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

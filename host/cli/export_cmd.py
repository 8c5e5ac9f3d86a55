"""``edgeprune export``: a task baseline, a compression config, a search run's best or a user's model
→ int8 .tflite verified in TFLM, ``model_data.c/.h`` and ``manifest.json``."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from edgeprune.export import ExportError
from edgeprune.export.deploy_build import deploy_and_measure
from edgeprune.host.cli.friendly_errors import UserError, friendly_errors
from edgeprune.host.search.evaluator import HardwareEvaluator
from edgeprune.host.search.task_export import CALIBRATION_INPUTS, SourceError, export_source, resolve_source


def _weights(man: dict[str, Any]) -> str:
    """The weights' precision in words: one mode, or each layer's where they differ (issue 30)."""
    mode = "int8" if man["quantize"] == "16x8" else man["quantize"]
    layers = man.get("precision") or {}
    return mode if not layers else f"{mode}; " + ", ".join(f"{n} {p}" for n, p in layers.items())


def _summary(exp: Any, kind: str) -> Any:
    """The export's figures; an argmax agreement only where outputs are classes or actions (not a regressor)."""
    man = exp.result.manifest
    sizes, parity = man["sizes"], man["parity"]
    table = Table(title=f"export {man['name']} ({man['quantize']})", show_header=False)
    rows = [
        ("source", man["source"]),
        ("output", str(exp.result.out_dir)),
        (".tflite size", f"{sizes['tflite_bytes']:,} B"),
        ("weight bytes", f"{sizes['weight_bytes']:,} B ({_weights(man)}) + {sizes['bias_bytes']:,} B bias"),
        ("TFLM arena", f"{man['arena_bytes']:,} B (host build)"),
        ("ops", ", ".join(f"{k}×{v}" for k, v in man["ops"].items())),
        ("steps per prediction", str(man["sequence"]["steps"]) if man["sequence"] else "1"),
        ("ONNX vs PyTorch", f"max |Δ| {parity['onnx_max_abs_diff']:.2e}"),
        ("TF vs PyTorch", f"max |Δ| {parity['tf_max_abs_diff']:.2e}"),
        ("TFLM vs PyTorch", f"max |Δ| {parity['tflm_max_abs_diff']:.3g}"
         + (f", argmax agree {parity['tflm_argmax_agreement']:.1%}" if kind != "regressor" else "")
         + f" on {parity.get('tflm_samples', '?')} calibration windows"),
    ]
    if exp.float_quality is not None:
        fq, iq = exp.float_quality, exp.int8_quality
        rows.append((f"{fq.metric} (test)", f"float {fq.value:.4g} → exported {iq.value:.4g}"))
        rows.append(("int8 calibration", _calibration_note()))
    if exp.agreement is not None:
        rows.append(("argmax agreement", f"{exp.agreement:.2%} of {exp.details.get('agreement_inputs')} test inputs"))
    rows.append(("time", ", ".join(f"{k} {v:.1f}s" for k, v in exp.result.timings.items())))
    for label, value in rows:
        table.add_row(label, value)
    return table


def _calibration_note() -> str:
    """Why a search's figures for the same model can differ a little from this export's."""
    search_n = inspect.signature(HardwareEvaluator.__init__).parameters["calibration_n"].default
    if search_n == CALIBRATION_INPUTS:
        return f"{CALIBRATION_INPUTS} training windows (as in a search)"
    return (f"{CALIBRATION_INPUTS} training windows; a search calibrates each candidate on {search_n} (faster), "
            "so its int8 model, metric and instruction count can differ slightly from this export's")


@click.command("export")
@click.option("--task", "task", help="Task name: weather-gru | weather-lstm | digits-cnn | cartpole-dqn | dqn:<env id>.")
@click.option("--config", "config", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="CompressionConfig JSON applied to the task's baseline before export.")
@click.option("--run", "run", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Search run directory: export its best feasible candidate.")
@click.option("--model", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Bring your own: GRU .pt (with --data) or SB3 DQN .zip (with --env).")
@click.option("--data", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Data .npz for a --model .pt.")
@click.option("--env", "env_id", help="Gymnasium env id for a --model .zip.")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output directory (default runs/export/<task>). Replaced only after verification.")
@click.option("--float32", "float32", is_flag=True, help="Export float32 instead of full-integer int8.")
@click.option("--no-eval", is_flag=True, help="Skip the task-metric comparison (float vs exported).")
@click.option("--distill-int8", is_flag=True,
              help="DQN policies: export an int8-aware student distilled from the policy (keeps ≥99 percent of greedy "
                   "actions where plain int8 keeps ~76 percent); judged against the unmodified policy.")
@click.option("--weights", type=click.Choice(["channel", "tensor"]), default=None,
              help="int8 dense-layer weight scales: per output row (channel) or one per matrix (tensor, 12 B less "
                   "per row). Default: channel; with --run, the layout the search measured.")
@click.option("--deploy", "deploy", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Also write a self-contained C library of the model (API header, runtime for only its kernels, "
                   "library.json, CMakeLists.txt, example) to this folder, and measure its flash/RAM in QEMU.")
@click.option("--deploy-core", type=click.Choice(["m0", "m3", "m4", "m7", "m33"]),
              default=inspect.signature(deploy_and_measure).parameters["core"].default, show_default=True,
              help="Core the deploy library's arena is planned and its example built for.")
@click.option("--deploy-opt", type=click.Choice(["speed", "size"]), default="speed", show_default=True,
              help="Optimisation of the deploy library's example build and toolchain file: speed (-O2) or size (-Os: "
                   "smaller code, same output bytes, a few percent more instructions).")
@friendly_errors
def command(
    task: str | None,
    config: Path | None,
    run: Path | None,
    model: Path | None,
    data: Path | None,
    env_id: str | None,
    out: Path | None,
    float32: bool,
    no_eval: bool,
    distill_int8: bool,
    weights: str | None,
    deploy: Path | None,
    deploy_core: str,
    deploy_opt: str,
) -> None:
    """Export a model to an int8 .tflite checked in TFLM, plus model_data.c/.h and manifest.json.

    \b
    Examples:
      edgeprune export --task weather-gru --out build/weather
      edgeprune export --task weather-gru --config best.json
      edgeprune export --run runs/weather-gru-ppo-20260101
      edgeprune export --model policy.zip --env CartPole-v1 --float32
      edgeprune export --task cartpole-dqn --distill-int8
      edgeprune export --run runs/w --deploy fw/lib/weather   # + C library for your firmware
    """
    if config is not None and not task:
        raise click.UsageError("--config needs --task (the task whose baseline it compresses)")
    try:
        source = resolve_source(task=task, config=config, run=run, model=model, data=data, env=env_id)
        name = str(source.task.name).replace(":", "_").replace("/", "_")
        exp = export_source(source, out or Path("runs") / "export" / name,
                            quantize="float32" if float32 else "int8", evaluate=not no_eval,
                            distill_int8=distill_int8, weights=weights)
        deployed = None
        if deploy is not None:
            deployed = deploy_and_measure(exp.result.read_tflite(), deploy, manifest=exp.result.manifest,
                                          name=str(exp.result.manifest["name"]), source=str(exp.result.out_dir),
                                          core=deploy_core, opt=deploy_opt)
    except (ExportError, SourceError) as exc:
        raise UserError(str(exc)) from exc
    table = _summary(exp, str(source.task.kind))
    if deployed is not None:
        lib, fp = deployed
        form = "model prepared at export, no parser" if lib.prepared else ".tflite + parser"
        table.add_row("deploy library", f"{lib.out_dir} (kernels: {', '.join(lib.kernels) or 'core only'}; {form})")
        table.add_row(f"deploy flash ({deploy_core})", f"{fp.flash_bytes:,} B = {fp.model_bytes:,} model + "
                      f"{fp.code_bytes:,} code (linked example, {deploy_opt} build)")
        table.add_row(f"deploy RAM ({deploy_core})", f"{fp.ram_bytes:,} B = {fp.static_ram_bytes:,} static "
                      f"(arena {fp.arena_bytes:,}) + {fp.stack_bytes:,} stack high-water (qemu)")
    Console().print(table)

"""Multi-fidelity evaluation: a candidate earns the rest of its fine-tuning only while it can still pass.

Successive halving over fine-tuning steps with one rung (η = 3): after a third of its steps, a candidate's
weights (the best validated so far, what fine-tuning would keep if it ended there) are exported int8 and
scored in TFLM on the validation split — the device's bit-exact oracle, as at the end. A candidate whose
drop there is beyond the limit by more than fine-tuning is seen to recover after a third of its steps
(``RUNG_MARGIN``) is stopped: stored with origin ``"stopped"``, never counted as measured, never on the front.
Everything else is fine-tuned to the end along exactly the path it would have taken without the rung
(``compress.finetuning.finetune``'s hook works on a copy), so what reaches the device is unchanged.

Why one rung and a margin rather than a ranking against other candidates (ASHA): the rung's verdict depends
only on the candidate itself, so a run with one worker or several, killed and resumed or not, stops the same
candidates (``tests/search/test_resume_*``), and the budget (device evaluations) is never spent on a
candidate stopped for being behind others that may not pass either.
"""

from __future__ import annotations

import logging
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeprune.bench.errors import ExportError
from edgeprune.export.pipeline import export_model
from edgeprune.host.search.candidate_export import tflm_quality
from edgeprune.host.search.timing import Stopwatch
from edgeprune.host.search.types import STOPPED_REASON

log = logging.getLogger(__name__)

#: Origin of a candidate stopped at a rung (``session.UNMEASURED_ORIGINS``).
STOPPED = "stopped"
#: The rung sits at this fraction of a candidate's fine-tuning steps.
RUNG_FRACTION = 1.0 / 3.0
#: Candidates fine-tuned for fewer steps go through in one piece: a rung costs an export and a TFLM pass.
MIN_RUNG_STEPS = 90
#: How far beyond the limit a rung's int8 drop may be and still earn the rest of the fine-tuning, in units of
#: the limit (at least ``RUNG_MARGIN_FLOOR`` of the metric's unit). Measured on the default search's candidates
#: (BENCHMARKS.md, "A search that costs minutes"): after a third of its steps, fine-tuning with early stopping
#: recovered at most a few points of validation accuracy.
RUNG_MARGIN = 3.0
RUNG_MARGIN_FLOOR = 3.0


def rung_steps(total_steps: int) -> tuple[int, ...]:
    """The fine-tuning steps after which a candidate of ``total_steps`` is checked (none for short ones)."""
    if total_steps < MIN_RUNG_STEPS:
        return ()
    return (max(1, int(round(total_steps * RUNG_FRACTION))),)


@dataclass(frozen=True)
class RungRule:
    """When a candidate stops at a rung.

    Parameters
    ----------
    objective:
        The run's ``Objective`` (its ``drop`` turns a quality into the limit's unit).
    max_acc_drop:
        The run's quality limit.
    margin:
        How far beyond the limit the rung's drop may be, in units of the limit (``RUNG_MARGIN``).
    """

    objective: Any
    max_acc_drop: float
    margin: float = RUNG_MARGIN

    @property
    def threshold(self) -> float:
        """The largest rung drop that goes on."""
        return self.max_acc_drop + max(self.margin * self.max_acc_drop, RUNG_MARGIN_FLOOR)

    def goes_on(self, quality: float) -> bool:
        """Whether a rung quality of ``quality`` earns the rest of the fine-tuning."""
        drop = self.objective.drop(float(quality))
        return math.isfinite(drop) and drop <= self.threshold


@dataclass(frozen=True)
class RungStop:
    """Where and why a candidate stopped.

    Parameters
    ----------
    step, steps:
        The rung step and the fine-tuning steps the candidate would have taken.
    quality:
        The int8 TFLM validation quality of its weights at the rung.
    drop, threshold:
        That quality's drop and the largest drop that would have gone on (the limit's unit).
    """

    step: int
    steps: int
    quality: float
    drop: float
    threshold: float

    def reason(self, unit: str) -> str:
        """The verdict's reason."""
        # The closing remark in parentheses, as the other host verdicts carry theirs (``reason_parts`` drops it).
        return (f"{STOPPED_REASON} at fine-tuning step {self.step} of {self.steps}: drop {self.drop:.2f} {unit} in TFLM, "
                f"beyond what the rest could recover at go-on threshold {self.threshold:.2f} "
                "(not fully fine-tuned, not sent to the device)")


def rung_hook(task: Any, calibration: Any, config: Any, rule: RungRule, result: Any,
              stops: list[RungStop]) -> dict[str, Any]:
    """``compress`` keyword arguments that check ``config``'s fine-tuning at its rung on ``task``.

    At the rung the kept weights are exported as the config says (int8 with one weight scale per matrix, as every
    export is tried first, or float32) into a temporary folder and scored in TFLM on validation; the rung's quality and verdict go into
    ``result.fidelity`` and its time into ``result.timings`` (``rung-export``, ``rung-tflm``). A stop is appended
    to ``stops``. An export that fails at the rung lets the candidate go on (the final export reports it).
    Nothing for configs without fine-tuning long enough, QAT or policies (whose validation is whole episodes).
    ``calibration``: the int8 export's calibration inputs.
    """
    if config.quantize not in ("int8", "float32") or config.qat or getattr(task, "kind", None) == "policy":
        return {}
    rungs = rung_steps(int(config.finetune_steps))
    if not rungs:
        return {}
    watch = Stopwatch(result.timings)

    def on_rung(model: Any, step: int) -> bool:
        with tempfile.TemporaryDirectory(prefix="edgeprune-rung-") as tmp:
            try:
                with watch("rung-export"):
                    scales = {"weights": "tensor"} if config.quantize == "int8" else {}
                    exported = export_model(model, calibration, Path(tmp) / "rung", quantize=config.quantize,
                                            name="model", **scales)
            except ExportError as exc:
                log.info("rung export of %s failed (%s): fine-tuning goes on", config.digest()[:10], exc)
                return True
            with watch("rung-tflm"):
                quality = tflm_quality(task, exported.read_tflite(), exported.manifest)
        value = float(quality.value)
        goes_on = rule.goes_on(value)
        drop = float(rule.objective.drop(value))
        result.fidelity = {"step": float(step), "steps": float(config.finetune_steps), "quality": value,
                           "drop": drop, "threshold": float(rule.threshold), "stopped": 0.0 if goes_on else 1.0}
        if not goes_on:
            stops.append(RungStop(step, int(config.finetune_steps), value, drop, rule.threshold))
        return goes_on

    return {"rungs": rungs, "on_rung": on_rung}

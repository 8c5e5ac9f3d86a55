"""The typed errors of the two lowest layers, in one module at the bottom so every layer can raise and catch
them without importing the modules that raise them: ``ExportError`` (an export stage failed, including the
model-format readers and the TFLM oracle that live in bench) and ``MeasureError`` (a measurement could not be
made)."""

from __future__ import annotations

STAGES = ("onnx", "onnxruntime-parity", "onnx2tf", "tflite", "tflm", "carray", "distill", "deploy")


class ExportError(Exception):
    """An export stage failed; the message is one line saying what and where.

    Parameters
    ----------
    stage:
        One of ``STAGES``: ``onnx``, ``onnxruntime-parity``, ``onnx2tf``, ``tflite``, ``tflm``, ``carray``,
        ``distill`` (the optional policy distillation, ``policy_distill``), ``deploy`` (the deploy library).
    op:
        The layer or operator involved (e.g. ``"Conv1d"``, ``"GATHER"``), or ``None``.
    detail:
        What went wrong and what to do about it; the underlying exception (if any) is chained
        with ``raise ... from`` and also kept in ``cause``.
    """

    def __init__(self, stage: str, op: str | None = None, detail: str = "", cause: BaseException | None = None):
        if stage not in STAGES:
            raise ValueError(f"unknown export stage {stage!r}; expected one of {STAGES}")
        self.stage = stage
        self.op = op
        self.detail = detail
        self.cause = cause
        where = f"{stage}" + (f" [{op}]" if op else "")
        underlying = f" ({type(cause).__name__}: {_first_line(cause)})" if cause is not None else ""
        super().__init__(f"export failed at {where}: {detail}{underlying}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else ""


class MeasureError(RuntimeError):
    """A measurement could not be made (bad inputs, manifest/device mismatch); the message says why."""

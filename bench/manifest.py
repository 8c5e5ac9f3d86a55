"""``manifest.json``: everything the device, the oracle and the reports need to know about an export.

:class:`Manifest` is the typed, versioned form; :func:`read_manifest` and :func:`write_manifest` are the
one reader and writer of the file. ``Manifest.from_dict(d).to_dict() == d`` for every manifest this or
an earlier format wrote: fields the code reads are typed, everything else (sizes, parity, quality, ...)
rides along in ``extra`` untouched, in its original order. ``edgeprune.export.manifest_build.build`` assembles
the dict at export time; ``load_manifest`` finds the one a measurement uses (beside the model, or read from a
bare .tflite by ``bare_manifest``). The type lives here, in the lowest layer, because measurement (bench) reads it and
may not import export.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeprune.bench.atomic import atomic_write_text
from edgeprune.bench.errors import MeasureError
from edgeprune.bench.tflite_info import ModelInfo, read_model

# Bump when a field changes meaning; readers refuse manifests from a newer format instead of misreading them.
FORMAT_VERSION = 1


class ManifestError(ValueError):
    """A manifest that cannot be read: not JSON, a newer format, or a required field missing or malformed."""


@dataclass(frozen=True)
class IoSpec:
    """One model input or output, in the .tflite's order.

    :param name: the exporter's name (``x_t``, ``h_0``, ``y``, ``obs``, ``q``) or the tensor's
    :param position: index among the model's inputs (or outputs)
    :param tensor: tensor index in the flatbuffer (absent in a manifest read from a bare .tflite: -1)
    :param shape: tensor shape (empty when a hand-written manifest omits it)
    :param dtype: ``"int8"`` or ``"float32"`` (what the device's I/O takes)
    :param scale: quantisation scale (``None`` for float I/O)
    :param zero_point: quantisation zero point (``None`` for float I/O)
    """

    name: str
    position: int
    tensor: int
    shape: tuple[int, ...]
    dtype: str
    scale: float | None = None
    zero_point: int | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], position: int) -> IoSpec:
        try:
            return cls(str(d.get("name", "")), int(d.get("position", position)), int(d.get("tensor", -1)),
                       tuple(int(n) for n in d.get("shape", ())), str(d["dtype"]),
                       None if d.get("scale") is None else float(d["scale"]),
                       None if d.get("zero_point") is None else int(d["zero_point"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ManifestError(f"I/O entry {position} is malformed ({exc}): {dict(d)}") from exc

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "position": self.position, "tensor": self.tensor, "shape": list(self.shape),
                "dtype": self.dtype, "scale": self.scale, "zero_point": self.zero_point}


@dataclass(frozen=True)
class SequenceSpec:
    """How a streaming GRU cell runs: ``steps`` invokes, ``stream_input`` fed per step, ``recurrent``
    ``(output, input)`` pairs carried between steps, ``output`` read after the last step.

    :param steps: invokes per inference
    :param stream_input: input position that receives ``x_t``
    :param output: output position read after the last step
    :param recurrent: ``(output_position, input_position)`` pairs
    """

    steps: int
    stream_input: int = 0
    output: int = 0
    recurrent: tuple[tuple[int, int], ...] = ()

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SequenceSpec:
        try:
            return cls(int(d["steps"]), int(d.get("stream_input", 0)), int(d.get("output", 0)),
                       tuple((int(o), int(i)) for o, i in d.get("recurrent", [])))
        except (KeyError, TypeError, ValueError) as exc:
            raise ManifestError(f"sequence block is malformed ({exc}): {dict(d)}") from exc

    def to_dict(self) -> dict[str, Any]:
        return {"steps": self.steps, "stream_input": self.stream_input, "output": self.output,
                "recurrent": [[o, i] for o, i in self.recurrent]}


# Keys Manifest types; every other key is kept verbatim in ``extra``.
_TYPED = ("format", "inputs", "outputs", "sequence", "input_norm", "arena_bytes", "hashes", "tools")


@dataclass
class Manifest:
    """The typed ``manifest.json``.

    :param inputs: model inputs in .tflite order
    :param outputs: model outputs in .tflite order
    :param sequence: the streaming loop, or ``None`` for a single-invoke model (an MLP, a bare .tflite)
    :param input_norm: ``{"input", "mean", "std"[, "fine"]}`` folded standardisation, or ``None``
    :param arena_bytes: TFLM's smallest arena on the host build (0: not stated, e.g. a bare .tflite)
    :param hashes: ``tflite_sha256``, ``onnx_sha256``
    :param tools: versions of the tools that made the export
    :param format: format version (0: built in memory from a bare .tflite, never written by an export)
    :param extra: every other field, in file order (name, kind, ops, sizes, parity, quality, ...)
    """

    inputs: list[IoSpec]
    outputs: list[IoSpec]
    sequence: SequenceSpec | None = None
    input_norm: dict[str, Any] | None = None
    arena_bytes: int = 0
    hashes: dict[str, str] = field(default_factory=dict)
    tools: dict[str, str] = field(default_factory=dict)
    format: int = FORMAT_VERSION
    extra: dict[str, Any] = field(default_factory=dict)
    _order: tuple[str, ...] = field(default=(), repr=False, compare=False)

    @classmethod
    def from_dict(cls, d: Manifest | Mapping[str, Any]) -> Manifest:
        """Validate and type ``d``; refuses a newer format rather than misreading it."""
        if isinstance(d, Manifest):
            return d
        version = int(d.get("format", 0) or 0)
        if version > FORMAT_VERSION:
            raise ManifestError(f"manifest format {version} is newer than this edgeprune reads ({FORMAT_VERSION}); "
                                "upgrade edgeprune or re-export the model")
        seq = d.get("sequence")
        return cls(
            inputs=[IoSpec.from_dict(e, i) for i, e in enumerate(d.get("inputs") or [])],
            outputs=[IoSpec.from_dict(e, i) for i, e in enumerate(d.get("outputs") or [])],
            sequence=SequenceSpec.from_dict(seq) if seq else None,
            input_norm=dict(d["input_norm"]) if d.get("input_norm") else None,
            arena_bytes=int(d.get("arena_bytes") or 0),
            hashes=dict(d.get("hashes") or {}),
            tools=dict(d.get("tools") or {}),
            format=version,
            extra={k: v for k, v in d.items() if k not in _TYPED},
            _order=tuple(d),
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON form, keys in their original order (new keys last)."""
        typed: dict[str, Any] = {
            "format": self.format,
            "inputs": [e.to_dict() for e in self.inputs],
            "outputs": [e.to_dict() for e in self.outputs],
            "sequence": self.sequence.to_dict() if self.sequence is not None else None,
            "input_norm": self.input_norm,
            "arena_bytes": self.arena_bytes,
            "hashes": self.hashes,
            "tools": self.tools,
        }
        every = {**typed, **self.extra}
        order = [k for k in self._order if k in every] + [k for k in every if k not in self._order]
        out = {k: every[k] for k in order}
        # A bare manifest had no format, hashes or tools; do not invent them on the way out.
        for key in ("format", "inputs", "outputs", "hashes", "tools", "arena_bytes", "sequence", "input_norm"):
            if key not in self._order and self._order and not out[key]:
                del out[key]
        return out

    # -- what readers ask ---------------------------------------------------------------------------
    @property
    def steps(self) -> int:
        return self.sequence.steps if self.sequence is not None else 1

    @property
    def stream_input(self) -> int:
        return self.sequence.stream_input if self.sequence is not None else 0

    @property
    def output_index(self) -> int:
        return self.sequence.output if self.sequence is not None else 0

    @property
    def recurrent_inputs(self) -> set[int]:
        return {i for _, i in self.sequence.recurrent} if self.sequence is not None else set()

    @property
    def tflite_sha256(self) -> str | None:
        return self.hashes.get("tflite_sha256")


# What functions that read a manifest accept: the typed form or the JSON dict.
ManifestLike = Manifest | Mapping[str, Any]


def read_manifest(path: str | Path) -> Manifest:
    """The one reader of ``manifest.json``."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ManifestError(f"cannot read manifest {p}: {exc}") from exc
    if not isinstance(data, dict):
        raise ManifestError(f"manifest {p} is not a JSON object")
    return Manifest.from_dict(data)


def write_manifest(path: str | Path, manifest: ManifestLike) -> Path:
    """The one writer of ``manifest.json`` (validated, atomic)."""
    typed = Manifest.from_dict(manifest)
    return atomic_write_text(path, json.dumps(typed.to_dict(), indent=2) + "\n")


def io_entries(info: ModelInfo, names: list[str], output: bool) -> list[dict[str, Any]]:
    """I/O tensors in the .tflite's order (``position``), each with the user's name and quant params."""
    by_index = info.signature_outputs if output else info.signature_inputs
    order = info.outputs if output else info.inputs
    name_of = {idx: name for name, idx in by_index.items() if name in names}
    entries = []
    for pos, idx in enumerate(order):
        t = info.tensors[idx]
        entries.append(
            {
                "name": name_of.get(idx, t.name),
                "position": pos,
                "tensor": idx,
                "shape": t.shape,
                "dtype": t.dtype,
                "scale": t.scales[0] if t.scales else None,
                "zero_point": t.zero_points[0] if t.zero_points else None,
            }
        )
    return entries


def bare_manifest(tflite_bytes: bytes) -> dict[str, Any]:
    """A manifest for a .tflite that came without one: its I/O list and quantisation, no sequence."""
    info = read_model(tflite_bytes)
    return {"inputs": io_entries(info, [], output=False), "outputs": io_entries(info, [], output=True)}


def load_manifest(model_path: str | Path, manifest_path: str | Path | None, tflite_bytes: bytes) -> dict[str, Any]:
    """The given manifest, else ``manifest.json`` beside the model, else one read from the .tflite."""
    candidates = [Path(manifest_path)] if manifest_path is not None else [Path(model_path).with_name("manifest.json")]
    for p in candidates:
        if p.is_file():
            try:
                man = read_manifest(p)
            except ManifestError as exc:
                raise MeasureError(str(exc)) from exc
            want = man.tflite_sha256
            if want and want != hashlib.sha256(tflite_bytes).hexdigest():
                raise MeasureError(f"manifest {p} belongs to another model (sha256 differs); pass the right --manifest")
            return man.to_dict()
        if manifest_path is not None:
            raise MeasureError(f"manifest {p} does not exist")
    return bare_manifest(tflite_bytes)

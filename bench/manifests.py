"""The manifest a measurement uses: the export's ``manifest.json``, or one read from a bare .tflite."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from edgeprune.bench.errors import MeasureError
from edgeprune.bench.manifest import ManifestError, read_manifest
from edgeprune.export.manifest import io_entries
from edgeprune.export.tflite_info import read_model


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

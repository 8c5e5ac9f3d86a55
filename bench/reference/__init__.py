"""Reference models and published figures shipped in the repository (see README.md here).

The MLPerf Tiny models are read only through :func:`ad01_bytes` / :func:`ad01_path` and
:func:`mlperf_bytes` / :func:`mlperf_path` (``"kws"``, ``"ic"``, ``"vww"``, ``"sww"``; :func:`kws_bytes` / :func:`kws_path`),
which check their SHA-256, so a truncated or replaced copy fails loudly instead of skewing a benchmark.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent

AD01_FILE = HERE / "mlperf_tiny_ad01_int8.tflite"
AD01_SHA256 = "861f3de4465a176099248090583ae5b6be00bc6f0c6bac16ce3bda004a7fa9c2"
AD01_MACS = 264_192

KWS_FILE = HERE / "mlperf_tiny_kws01_int8.tflite"
KWS_SHA256 = "aeea436800704fce17b17292e4412630ad856e9d777c044c64ef748a880bd0ae"
KWS_MACS = 2_656_768  # DS-CNN: CONV 10x4 + 4 x (depthwise 3x3 + pointwise 64x64) on 25x5, FC 64x12


@dataclass(frozen=True)
class MlperfModel:
    """One shipped MLPerf Tiny convolutional reference model (README.md here).

    :param name: short name (``"kws"``, ``"ic"``, ``"vww"``)
    :param path: the ``.tflite`` in this folder
    :param sha256: its recorded SHA-256
    :param macs: multiply-accumulates per inference, counted from the model
    :param input_shape: the int8 input's shape
    """

    name: str
    path: Path
    sha256: str
    macs: int
    input_shape: tuple[int, ...]


MLPERF: dict[str, MlperfModel] = {
    "kws": MlperfModel("kws", KWS_FILE, KWS_SHA256, KWS_MACS, (1, 49, 10, 1)),
    "ic": MlperfModel("ic", HERE / "mlperf_tiny_ic01_int8.tflite",
                      "3c002613d1b2475eb51dd78dfb85a546c8ae658dee71cf6ade43b022fe205415", 12_501_632, (1, 32, 32, 3)),
    "vww": MlperfModel("vww", HERE / "mlperf_tiny_vww01_int8.tflite",
                       "597a384c8c2c8a1276f04702f25013b7838f2f814f1ca7c174d295b73e3d6b7b", 7_489_664, (1, 96, 96, 3)),
    # The streaming wake-word model (1-D DS-CNN over 30 frames × 40 features): one window per invoke.
    "sww": MlperfModel("sww", HERE / "mlperf_tiny_sww01_int8.tflite",
                       "3af8550895ba7d5c584277102b5075c52dcfa63ba9d2b2240f37c4e6abd5dd2b", 826_368, (1, 30, 1, 40)),
}


class ReferenceModelError(RuntimeError):
    """A shipped reference file is missing or its SHA-256 differs from the recorded one."""


def _verified(path: Path, sha256: str) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ReferenceModelError(f"cannot read reference model {path}: {exc}") from exc
    got = hashlib.sha256(data).hexdigest()
    if got != sha256:
        raise ReferenceModelError(f"{path} has SHA-256 {got}, expected {sha256}; restore it from git")
    return data


def ad01_bytes() -> bytes:
    """The AD01 model's bytes, SHA-256 checked."""
    return _verified(AD01_FILE, AD01_SHA256)


def ad01_path() -> Path:
    """Path of the AD01 model, after checking its SHA-256 (for tools that want a file)."""
    _verified(AD01_FILE, AD01_SHA256)
    return AD01_FILE


def mlperf_bytes(name: str) -> bytes:
    """The bytes of the MLPerf Tiny model ``name`` (a key of :data:`MLPERF`), SHA-256 checked."""
    ref = MLPERF[name]
    return _verified(ref.path, ref.sha256)


def mlperf_path(name: str) -> Path:
    """Path of the MLPerf Tiny model ``name``, after checking its SHA-256 (for tools that want a file)."""
    mlperf_bytes(name)
    return MLPERF[name].path


def kws_bytes() -> bytes:
    """The MLPerf Tiny KWS (DS-CNN) model's bytes, SHA-256 checked."""
    return mlperf_bytes("kws")


def kws_path() -> Path:
    """Path of the KWS model, after checking its SHA-256 (for tools that want a file)."""
    return mlperf_path("kws")


@dataclass(frozen=True)
class TflmQemuCount:
    """TFLM instructions per ``Invoke()`` under qemu-system-arm 7.2 ``-icount shift=0`` (see README.md).

    :param core: QEMU core (``m3``, ``m4``, ``m7``)
    :param model: ``"ad01"``, ``"kws"``, ``"ic"``, ``"vww"``, ``"sww"`` or ``"fc256"`` (int8 FULLY_CONNECTED 256×256, bias, ReLU)
    :param kernels: ``"reference"`` or ``"cmsis-nn"``
    :param instructions: instructions per inference
    """

    core: str
    model: str
    kernels: str
    instructions: int

    source = "qemu"  # instruction counts: compare only with other QEMU counts


# Copied from the team's benchmark notes (README.md here, "TFLM on the same QEMU").
TFLM_SAME_QEMU: tuple[TflmQemuCount, ...] = tuple(
    TflmQemuCount(core, model, kernels, n)
    for core, figures in {
        "m4": (2_044_240, 674_840, 409_200, 138_120),
        "m7": (1_968_880, 603_160, 408_680, 138_120),
        "m3": (2_144_440, 1_148_080, 409_160, 230_800),
    }.items()
    for (model, kernels), n in zip(
        (("ad01", "reference"), ("ad01", "cmsis-nn"), ("fc256", "reference"), ("fc256", "cmsis-nn")), figures, strict=True
    )
) + tuple(  # the convolutional models: README.md here, "MLPerf Tiny KWS, IC, VWW"
    TflmQemuCount(core, model, kernels, n)
    for (core, model), figures in {
        ("m4", "kws"): (198_637_280, 7_698_200), ("m7", "kws"): (196_877_600, 7_643_920),
        ("m3", "kws"): (198_685_920, 10_532_920),
        ("m4", "ic"): (824_060_920, 29_864_480), ("m7", "ic"): (821_813_280, 30_027_480),
        ("m3", "ic"): (824_233_240, 41_848_240),
        ("m4", "vww"): (552_355_920, 24_104_000), ("m7", "vww"): (549_894_400, 24_027_520),
        ("m3", "vww"): (552_557_280, 31_961_240),
        ("m4", "sww"): (59_167_120, 2_228_200), ("m7", "sww"): (59_322_520, 2_189_280),
        ("m3", "sww"): (59_178_280, 4_729_760),
    }.items()
    for kernels, n in zip(("reference", "cmsis-nn"), figures, strict=True)
)


def tflm_same_qemu(core: str, model: str, kernels: str) -> int | None:
    """TFLM's instruction count for ``model`` on ``core`` with ``kernels``, or ``None`` if not measured."""
    for row in TFLM_SAME_QEMU:
        if (row.core, row.model, row.kernels) == (core, model, kernels):
            return row.instructions
    return None


#: TFLM's ``arena_used_bytes()`` on the same QEMU M4 build (README.md here): (reference kernels, CMSIS-NN).
#: The PyPI interpreter does not expose it, so these figures come from the C++ build the counts above came from.
TFLM_ARENA: dict[str, tuple[int, int]] = {
    "ad01": (4_816, 5_136), "kws": (22_772, 22_820), "ic": (54_340, 54_996), "vww": (100_660, 100_708),
    "sww": (15_252, 16_596),
}

"""Write the fuzz seed corpora kept in the repository (run from the repository root; the output is committed).

``link/``: byte streams for the firmware's frame receiver/parser/dispatcher and the host's frame decoder, one
file per request kind (valid requests, a whole model load, the golden malformed frames). ``validator/``: small
valid int8 models for the runtime's model validator (AD01, the large seed, is read from bench/reference).
``regressions/`` (in each) holds inputs that once crashed something; every CI run replays them.

    .venv/bin/python firmware/tests/corpus/make_corpus.py
"""

from __future__ import annotations

import hashlib
import json
import struct
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "tests"))

from edgeprune.bench import protocol as P  # noqa: E402


def link_corpus() -> dict[str, bytes]:
    model = bytes(range(256)) * 3
    sha = hashlib.sha256(model).digest()
    requests = {
        "hello": (P.MSG_HELLO, b""),
        "load_begin": (P.MSG_LOAD_BEGIN, P.LOAD_BEGIN.pack(size=len(model), sha256=sha)),
        "load_chunk": (P.MSG_LOAD_CHUNK, struct.pack("<I", 0) + model[:200]),
        "load_end": (P.MSG_LOAD_END, b""),
        "set_sequence": (P.MSG_SET_SEQUENCE, P.SET_SEQUENCE.pack(steps=30, stream_input=0, npairs=1) + b"\x01\x01"),
        "set_input": (P.MSG_SET_INPUT, P.SET_INPUT.pack(index=0, offset=0) + bytes(range(1, 17))),
        "infer": (P.MSG_INFER, P.INFER.pack(n=3)),
        "get_output": (P.MSG_GET_OUTPUT, P.GET_OUTPUT.pack(index=0, max_len=64, offset=0)),
        "power": (P.MSG_POWER, b""),
        "io_info": (P.MSG_IO_INFO, P.IO_INFO_REQ.pack(is_output=1, index=0)),
        "reset": (P.MSG_RESET, b""),
        "unknown_type": (0x55, b"\x01\x02"),
    }
    out = {name: b"\0" + P.encode_frame(t, seq, payload) for seq, (name, (t, payload)) in enumerate(requests.items(), 1)}
    session = [P.encode_frame(P.MSG_HELLO, 1)]
    session.append(P.encode_frame(P.MSG_LOAD_BEGIN, 2, P.LOAD_BEGIN.pack(size=len(model), sha256=sha)))
    for i, off in enumerate(range(0, len(model), P.MAX_CHUNK)):
        session.append(P.encode_frame(P.MSG_LOAD_CHUNK, 3 + i, struct.pack("<I", off) + model[off : off + P.MAX_CHUNK]))
    session.append(P.encode_frame(P.MSG_LOAD_END, 3 + i + 1))
    out["session_load"] = b"\0" + b"".join(session)
    golden = json.loads((ROOT / "firmware" / "tests" / "golden_frames.json").read_text())["frames"]
    for n, fr in enumerate(f for f in golden if f["kind"] != "valid"):
        out[f"golden_bad_{n:02d}"] = b"\0" + bytes.fromhex(fr["encoded"]) + b"\0"
    return out


def validator_corpus() -> dict[str, bytes]:
    from runtime.seed_models import gru_like_cell

    return {"gru_4x8": gru_like_cell(4, 8, 0), "gru_3x12": gru_like_cell(3, 12, 1), "gru_2x4": gru_like_cell(2, 4, 2)}


def main() -> None:
    here = Path(__file__).resolve().parent
    for name, files, ext in (("link", link_corpus(), ".bin"), ("validator", validator_corpus(), ".tflite")):
        folder = here / name
        (folder / "regressions").mkdir(parents=True, exist_ok=True)
        (folder / "regressions" / ".keep").touch()
        for stem, data in files.items():
            (folder / f"{stem}{ext}").write_bytes(data)


if __name__ == "__main__":
    main()

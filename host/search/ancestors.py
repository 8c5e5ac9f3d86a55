"""Fine-tuned candidates kept for warm starts (issue 28, "reuse what was learned").

Every fully fine-tuned candidate's float model is kept in the artifacts cache beside the exports of its task
(``<artifacts>/<task hash>/finetuned/``: same task, baseline, data and compression code, as the task hash covers
them); a later candidate that is a further compression of one of them (``host/compress/warm_start.py``) is pruned
from the closest instead of from the baseline and fine-tuned from there. Measured to converge faster and no worse:
bench/scripts/warm_start_speed.py, BENCHMARKS.md (issue 28, "Warm starts").
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeprune.bench.atomic import atomic_write_text
from edgeprune.host.compress.compress_errors import ConfigError
from edgeprune.host.compress.config import CompressionConfig
from edgeprune.host.compress.warm_start import closest

log = logging.getLogger(__name__)

#: Folder of the kept models inside a task's artifacts folder.
FOLDER = "finetuned"


@dataclass
class Ancestor:
    """A kept fine-tuned candidate.

    Parameters
    ----------
    digest:
        Its config's digest.
    config:
        Its ``CompressionConfig``.
    model:
        Its fine-tuned float model (``torch.nn.Module``).
    """

    digest: str
    config: CompressionConfig
    model: Any


class Ancestors:
    """The kept fine-tuned candidates of one task.

    Parameters
    ----------
    folder:
        ``<artifacts>/<task hash>/finetuned``; created on the first ``keep``.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def keep(self, config: CompressionConfig, model: Any) -> None:
        """Keep ``config``'s fine-tuned ``model`` (written whole, then renamed into place; the config last, so a
        config file always names a complete model). The first kept model of a config stays: it is the one whose
        export the artifacts cache holds and reuses (``candidate_export.export_candidate``)."""
        # Deferred: torch (1-2 s to import) is loaded by the time a candidate has been fine-tuned anyway.
        import torch

        self.folder.mkdir(parents=True, exist_ok=True)
        stem = self.folder / config.digest()[:16]
        if stem.with_suffix(".json").is_file():
            return
        tmp = stem.with_name(f".{stem.name}.{os.getpid()}.pt")
        torch.save(model, tmp)
        os.replace(tmp, stem.with_suffix(".pt"))
        atomic_write_text(stem.with_suffix(".json"), config.to_json())

    def load(self, digest: str) -> Any:
        """The kept fine-tuned model of the config whose digest is ``digest``, or ``None`` when none is kept."""
        path = self.folder / f"{digest[:16]}.pt"
        if not (path.is_file() and path.with_suffix(".json").is_file()):
            return None
        import torch  # deferred: see keep()

        return torch.load(path, weights_only=False)

    def closest(self, config: CompressionConfig) -> Ancestor | None:
        """The kept candidate closest to ``config`` that ``config`` further compresses (``warm_start.closest``)."""
        if not self.folder.is_dir():
            return None
        kept: list[tuple[CompressionConfig, Path]] = []
        for path in sorted(self.folder.glob("*.json")):
            try:
                kept.append((CompressionConfig.from_json(path.read_text()), path.with_suffix(".pt")))
            except (OSError, ValueError, ConfigError) as exc:  # a damaged entry is skipped, not fatal
                log.info("skipping kept model %s: %s", path.name, exc)
        found = closest(config, [(c, (c, p)) for c, p in kept])
        if found is None:
            return None
        import torch  # deferred: see keep()

        ancestor_config, path = found
        try:
            model = torch.load(path, weights_only=False)
        except (OSError, RuntimeError, EOFError) as exc:
            log.info("kept model %s unreadable (%s): fine-tuning from the baseline", path.name, exc)
            return None
        return Ancestor(ancestor_config.digest(), ancestor_config, model)


def warm_startable(task: Any, config: CompressionConfig) -> bool:
    """Does ``config`` fine-tune in a way a warm start serves (and may serve later candidates)?

    Not without fine-tuning, not with QAT (its weights are snapped to the int8 grid), not for policies (an int8
    policy is distilled from the baseline afresh, ``compressor._int8_aware_policy``).
    """
    return config.finetune_steps > 0 and not config.qat and getattr(task, "kind", None) != "policy"


def kept_beside(export_dir: Path) -> Ancestors:
    """The kept fine-tuned candidates of the task a candidate's export folder (``artifacts["dir"]``) belongs to."""
    return Ancestors(Path(export_dir).parent / FOLDER)


def ancestors_of(artifacts_dir: Path, task_hash: str) -> Ancestors:
    """The kept fine-tuned candidates of the task whose evaluator identity hash is ``task_hash``."""
    return Ancestors(Path(artifacts_dir) / task_hash[:16] / FOLDER)

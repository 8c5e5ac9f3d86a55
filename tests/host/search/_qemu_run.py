"""Subprocess entry for the QEMU kill -9 / resume test: a real search (small weather GRU, QEMU M4)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from edgeprune.host.search.options import SearchOptions  # noqa: E402
from edgeprune.host.search.run import run_search
from tests.host.search.qemu_setup import evaluator_options, small_weather_task  # noqa: E402


def main() -> None:
    import torch

    torch.set_num_threads(1)
    run_dir, strategy, budget, resume = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
    # "nocache": no global evaluation cache, so two runs side by side do not answer each other's configs.
    use_cache = not (len(sys.argv) > 5 and sys.argv[5] == "nocache")
    opts = SearchOptions(device="qemu:m4", strategy=strategy, budget=budget, out=run_dir, host_energy=False,
                         use_cache=use_cache, max_acc_drop=50.0, finetune_steps=0, max_finetune_steps=5, repeats=3,
                         deploy_best=False, evaluator_options=evaluator_options(deploy_build="never"))
    run_search(None if resume else opts, resume=Path(run_dir) if resume else None, task=small_weather_task())


if __name__ == "__main__":
    main()

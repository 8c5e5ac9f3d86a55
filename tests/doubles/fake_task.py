"""A stand-in task for the search machinery: names, metric and hash, no data and no model."""

from __future__ import annotations


class FakeTask:
    """Just enough of ``Task`` for the search machinery: names, metric, hash (no data, no model)."""

    name = "fake-gru"
    kind = "classifier"
    metric = "accuracy"
    higher_is_better = True

    def __init__(self, names=("gru0", "gru1", "head")):
        self.layer_names = tuple(names)

    def content_hash(self) -> str:
        return "task-hash-1"

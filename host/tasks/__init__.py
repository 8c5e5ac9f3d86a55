"""edgeprune.host.tasks: the models to compress, their data or environments, and their quality metric.

``get_task(name)`` is the entry point; ``Task`` / ``Quality`` / ``TaskError`` are the interface
(see ``edgeprune.host.tasks.base`` for the contract and its refinements of docs/design.md).
"""

from edgeprune.host.tasks.base import Quality, Task, TaskError
from edgeprune.host.tasks.registry import get_task

__all__ = ["Quality", "Task", "TaskError", "get_task"]

"""The typed tasks. Each module is the specification of one task: its tier, what a valid
request is, what the model is asked (laid out for caching), the output schema that holds every
invariant of a usable output, and how that output becomes the typed response.

:data:`TASKS` is the registry, RPC name -> task, and with it the one binding of RPC to tier:
a new task is one module and one line in :data:`TASKS`, plus its proto messages and tests
(``CONTRIBUTING.md``, "Adding a task", lists the steps). Each task states its facts on its
:class:`Task` (types, summary, tier, cacheable, scoring); no other layer keeps a table of tasks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from tiergate.tasks import answer, classify, extract, moderate, read, reason, summarize
from tiergate.tasks.task import Task as Task
from tiergate.tasks.task import clamp_unit as clamp_unit
from tiergate.tasks.task import no_problems as no_problems
from tiergate.tasks.task import non_blank as non_blank

# One line per task; each task states its tier: five high-volume tasks on the fast tier,
# Reason, which needs depth, on the balanced tier; Read, which needs vision, on the frontier tier.
TASKS: Final[Mapping[str, Task[Any, Any]]] = {
    task.rpc: task
    for task in (
        classify.TASK,
        summarize.TASK,
        extract.TASK,
        answer.TASK,
        moderate.TASK,
        reason.TASK,
        read.TASK,
    )
}

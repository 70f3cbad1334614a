"""pytest plugin for mutation runs: a mutant's tests run fastest first.

mutmut's fork server hands a mutant's tests over in no particular order, and ``-x`` stops at
the first failure: ordered by the durations mutmut measured (``mutmut-stats.json``), the first
failure is usually a fast in-process test, not an integration test that waits on a server.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

STATS = Path("mutmut-stats.json")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if not STATS.exists():
        return  # the run that measures them
    durations: dict[str, float] = json.loads(STATS.read_text())["duration_by_test"]
    items.sort(key=lambda item: durations.get(item.nodeid, math.inf))

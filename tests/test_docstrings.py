"""The examples in the service's docstrings run as written (``doctest``): a module's example
that no longer holds is a test that fails, not a page that lies."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import tiergate

MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages(tiergate.__path__, prefix="tiergate.")
    # Generated code has no examples; a __main__ runs the command line when imported.
    if not info.name.startswith("tiergate.v1") and not info.name.endswith(".__main__")
)


@pytest.mark.parametrize("name", MODULES)
def test_the_examples_hold(name: str) -> None:
    module = importlib.import_module(name)
    found = doctest.testmod(module, optionflags=doctest.ELLIPSIS, report=False, verbose=False)
    assert found.failed == 0, f"{found.failed} of {found.attempted} examples in {name} failed"


def test_there_are_examples_to_run() -> None:
    """Many modules open with an example: the walk found them (counted, not run again)."""
    finder = doctest.DocTestFinder()
    found = sum(
        len(test.examples)
        for name in MODULES
        for test in finder.find(importlib.import_module(name))
    )
    assert found >= 30

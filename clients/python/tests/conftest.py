"""Fixtures for the client tests: the live server and emulator that ``make clients-test``
started, named by ``TIERGATE_TARGET`` and ``TIERGATE_EMULATOR_URL``."""

from __future__ import annotations

import os

import pytest
from emulator_control import EmulatorControl


def _required(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.skip(f"{name} is not set: run these tests with make clients-test")
    return value


@pytest.fixture(scope="session")
def target() -> str:
    return _required("TIERGATE_TARGET")


@pytest.fixture(scope="session")
def emulator() -> EmulatorControl:
    return EmulatorControl(_required("TIERGATE_EMULATOR_URL"))

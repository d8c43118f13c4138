"""End-to-end fixtures: the CLI as real subprocesses against `reconciler sandbox` on loopback.

The helpers they return are in tests/helpers.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers import SandboxProcess, Workspace, start_sandbox_process


@pytest.fixture
def start_sandbox(tmp_path: Path) -> Iterator[Callable[..., SandboxProcess]]:
    """`start_sandbox(*args)` starts a sandbox; every one started is stopped afterwards."""
    started: list[SandboxProcess] = []

    def start(*args: str) -> SandboxProcess:
        sandbox = start_sandbox_process(tmp_path, *args)
        started.append(sandbox)
        return sandbox

    yield start
    for sandbox in started:
        sandbox.stop()


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path)

"""Fixtures for the sandbox tests: a real sandbox on loopback and an httpx client for it."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from reconciler.sandbox import Sandbox, SandboxConfig
from tests.sandbox.helpers import BEARER


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(SandboxConfig(credentials=frozenset({"secret-token", "api-key"}))) as running:
        yield running


@pytest.fixture
def client(sandbox: Sandbox) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox.url, headers=BEARER, timeout=5) as http:
        yield http

"""The Lofty client as commands get it: from a factory the caller may replace.

`apply`, `import` and a refreshed `plan` build their client through a `ClientFactory` passed
in by the CLI (the real `LoftyClient`) or by a test (one on `httpx.MockTransport`), so every
command runs in-process in tests without a server.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from reconciler.apply import LeadUpdater
from reconciler.client import ClientSettings, LoftyClient
from reconciler.importer import LeadReader
from reconciler.refresh import LiveReader

Notice = Callable[[str], None]


class LoftyApi(LeadUpdater, LeadReader, LiveReader, Protocol):
    """Everything the commands ask of Lofty."""

    async def check_access(self) -> None: ...


# Builds the client from its settings and where its one-time notices go (the console).
ClientFactory = Callable[[ClientSettings, Notice], AbstractAsyncContextManager[LoftyApi]]


def lofty_client(settings: ClientSettings, notice: Notice) -> LoftyClient:
    """The real client: the default `client_factory` of every command."""
    return LoftyClient(settings, notice=notice)

"""Running a sandbox: `Sandbox` (start, stop, and what tests do to it) and `serve()` for the CLI.

`Sandbox` builds what the sandbox holds at start (a seed file, generated leads), listens in a
background thread, and offers the admin endpoints as Python methods, so tests can seed, read,
edit as an agent and delete without HTTP. `serve()` runs one in the foreground until SIGINT or
SIGTERM, as `reconciler sandbox` does.
"""

from __future__ import annotations

import errno
import signal
import threading
from collections.abc import Callable, Iterable, Mapping
from types import FrameType
from typing import Any

from reconciler.errors import SandboxError
from reconciler.sandbox.api import Api
from reconciler.sandbox.config import SandboxConfig
from reconciler.sandbox.rules import Rejection
from reconciler.sandbox.seed import generate_leads, load_seed, seed_entries
from reconciler.sandbox.server import HttpServer, Log

FIRST_GENERATED_ID = 100_001  # generated leads start here, or after the highest seeded id


class Sandbox:
    """A sandbox server; a context manager that starts on enter and stops on exit.

    Raises SandboxError when its seed file is not a list of valid leads (on construction) or
    when it cannot listen (on start). `log`, when given, receives one line per request.
    """

    def __init__(self, config: SandboxConfig, *, log: Log | None = None) -> None:
        self.config = config
        self._log = log
        self._api = Api(config)
        seeded: list[int] = []
        if config.seed_file is not None:
            bodies = load_seed(config.seed_file)
            try:
                seeded = self._api.seed(bodies)
            except SandboxError as exc:
                raise SandboxError(f"seed file {config.seed_file}: {exc}") from None
        if config.generate:
            first = max(FIRST_GENERATED_ID, max(seeded, default=0) + 1)
            self._api.add_generated(
                generate_leads(config.generate, seed=config.random_seed, first_id=first)
            )
        self._server: HttpServer | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Sandbox:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> str:
        """Bind, serve in a background thread and return the base URL (with the real port)."""
        if self._server is not None:
            return self.url
        try:
            server = HttpServer(self.config, self._api, self._log)
        except OSError as exc:
            raise SandboxError(_cannot_listen(self.config, exc)) from None
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"lofty-sandbox-{server.server_port}",
            daemon=True,
        )
        self._thread.start()
        return self.url

    def stop(self) -> None:
        """Stop serving, close the listening socket and every open client connection."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.close_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    @property
    def url(self) -> str:
        """Base URL such as `http://127.0.0.1:54321`; only while started."""
        if self._server is None:
            raise RuntimeError("the sandbox is not running; call start() first")
        return self._server.url

    # -- what tests see and do, as the admin endpoints offer it ---------------------------------

    def lead(self, lead_id: int) -> dict[str, Any] | None:
        """The lead as `GET /v1.0/leads/{leadId}` shows it, or None if none is held."""
        return self._api.view(lead_id)

    def record(self, lead_id: int) -> dict[str, Any] | None:
        """The lead with what Lofty never shows (`leadTransaction`, property prices), or None;
        the same document as `GET /_sandbox/leads/{leadId}`."""
        return self._api.record(lead_id)

    def leads(self) -> list[dict[str, Any]]:
        """Every lead held, as `record` shows it, by leadId (`GET /_sandbox/leads`)."""
        return self._api.records()

    def stats(self) -> dict[str, Any]:
        """Request counters; the same document as `GET /_sandbox/stats`.

        `requests` counts every request under /v1.0 (401s, 429s and faults included);
        `puts`/`gets` count, per leadId, the PUTs/GETs that got past auth and the rate limit
        (injected faults included, so a client's retry shows as another request); `lists`
        counts list requests the same way; `status_counts` is keyed by status code, with
        `"dropped"` for connections closed without an answer; `faults` counts injected faults;
        `first_request_at`/`last_request_at` are epoch seconds or None.
        """
        return self._api.stats()

    def puts(self) -> list[dict[str, Any]]:
        """Every PUT received, `{"leadId": ..., "body": ...}`, in order (`GET /_sandbox/puts`)."""
        return self._api.puts()

    def register(self, *lead_ids: int) -> None:
        """Make these leads exist, as `POST /_sandbox/leads {"leadIds": [...]}` does."""
        self._api.register(lead_ids)

    def seed_leads(self, leads: Iterable[int | Mapping[str, Any]]) -> list[int]:
        """Store leads as a seed file lists them (ids, or PUT-shaped objects with `leadId`),
        through the PUT code path; returns their ids. Raises SandboxError for an invalid one."""
        return self._api.seed(seed_entries(leads, where="seed_leads"))

    def agent_edit(self, lead_id: int, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Change a lead as an agent in Lofty's UI would (PUT-shaped fields); returns the lead
        as GET shows it. Not logged as a PUT; moves `lastUpdateTime`; marks the inquiry
        `modifyByAgent`. Raises SandboxError when Lofty would refuse the change."""
        result = self._api.agent_edit(lead_id, dict(fields))
        if isinstance(result, Rejection):
            raise SandboxError(f"agent edit of lead {lead_id} refused: {result.message}")
        return result

    def delete_lead(self, lead_id: int) -> None:
        """Move a lead to the trash (a later GET is 404); SandboxError if none is held."""
        if not self._api.delete(lead_id):
            raise SandboxError(f"the sandbox holds no lead {lead_id} to delete")


def serve(config: SandboxConfig, *, ready: Callable[[str], None], log: Log | None) -> None:
    """Serve until SIGINT or SIGTERM; call `ready(url)` once listening. Main thread only.

    `log` receives one line per request (method, path, status, milliseconds), or None.
    """
    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with Sandbox(config, log=log) as sandbox:
            ready(sandbox.url)
            # A timed wait so the signal handler gets its turn on every platform.
            while not stopping.wait(0.2):
                pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _cannot_listen(config: SandboxConfig, exc: OSError) -> str:
    where = f"{config.host}:{config.port}"
    if exc.errno == errno.EADDRINUSE:
        return (
            f"cannot listen on {where}: the port is already in use; "
            "choose another --port, or 0 for a free one"
        )
    return f"cannot listen on {where}: {exc.strerror or exc}"

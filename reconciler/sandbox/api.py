"""What the sandbox answers: routes, auth, the rate limit, injected faults, counters and admin.

Plain data in, plain data out (a `Reply`), behind one lock; `server.py` speaks HTTP around it.

API requests (everything under `/v1.0`) count toward the rate limit, need a credential and may
get an injected fault, whether they read or write:
    GET /v1.0/leads/{leadId}[?withTrash=true]   {"lead": LeadResponse}, or 404 LEAD_NOT_EXIST
    PUT /v1.0/leads/{leadId}                    {"leadId": ...}; the body as Update Lead takes it
    GET /v1.0/leads?...                          LeadListResponse (see `listing`)
Without a seed file or generated leads every leadId exists: a lead comes into being, holding
only Lofty's defaults, at its first GET or PUT (and is listed from then on).
Admin requests (under `/_sandbox`) need no credential, are not counted and never fail on purpose:
    GET    /_sandbox/stats                      request counters (`Sandbox.stats`)
    GET    /_sandbox/puts                       every PUT body received, in order
    GET    /_sandbox/leads                      every lead held, with write-only fields
    POST   /_sandbox/leads                      {"leadIds": [...]} registers leads;
                                                {"leads": [...]} seeds them (as a seed file)
    GET    /_sandbox/leads/{leadId}             {"lead": ...} with write-only fields
    POST   /_sandbox/leads/{leadId}/agent-edit  PUT-shaped fields, changed as an agent would
    DELETE /_sandbox/leads/{leadId}             moves the lead to the trash (then GET is 404)
"""

from __future__ import annotations

import copy
import hmac
import json
import math
import random
import re
import secrets
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reconciler.errors import SandboxError
from reconciler.sandbox.config import SandboxConfig
from reconciler.sandbox.listing import Pager, parse
from reconciler.sandbox.rules import LEAD_NOT_EXIST, Rejection, check_update, invalid, is_lead_id
from reconciler.sandbox.seed import GeneratedLead, seed_entries
from reconciler.sandbox.store import LeadStore

# What X-RateLimit-Limit says when no limit is configured: a client pacing itself from the
# headers must see plenty of room, never "unlimited" spelled in a way it cannot parse.
UNLIMITED = 1_000_000

_LEAD_PATH = re.compile(r"^/v1\.0/leads/(?P<lead_id>[^/]+)$")
_ADMIN_LEAD_PATH = re.compile(r"^/_sandbox/leads/(?P<lead_id>[^/]+)(?P<edit>/agent-edit)?$")
# The spellings Spring, which serves Lofty's API, binds to a boolean query parameter.
_BOOLEANS = dict.fromkeys(("true", "on", "yes", "1"), True) | dict.fromkeys(
    ("false", "off", "no", "0"), False
)
Headers = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Reply:
    """An answer: status, a JSON-serialisable body, extra headers."""

    status: int
    body: object
    headers: Headers = ()


# A reply that is no reply: the server closes the connection without writing anything.
DROP = Reply(0, None)
NOT_FOUND = Reply(404, {"code": 404, "message": "Not Found"})
NOT_ALLOWED = Reply(405, {"code": 405, "message": "Method Not Allowed"})


@dataclass(frozen=True, slots=True)
class Request:
    """One HTTP request, as the server read it."""

    method: str
    path: str
    query: Mapping[str, Sequence[str]]
    authorization: str | None
    body: bytes


def refused(rejection: Rejection) -> Reply:
    """Lofty's answer to a refused request."""
    return Reply(rejection.status, rejection.body())


class Api:
    """Everything the handler threads share, behind one lock."""

    def __init__(self, config: SandboxConfig) -> None:
        self._config = config
        self._lock = threading.Lock()
        self._store = LeadStore(open_world=not config.closed_world)
        self._random = random.Random(config.random_seed)  # injected faults
        # Short pages follow from the seed; without one, from a salt fixed for this run.
        salt = secrets.token_hex(8) if config.random_seed is None else str(config.random_seed)
        self._pager = Pager(
            metadata_key=config.metadata_key, short_page_rate=config.short_page_rate, salt=salt
        )
        self._window_start: float | None = None
        self._window_count = 0
        self._requests = 0
        self._puts: Counter[str] = Counter()
        self._gets: Counter[str] = Counter()
        self._lists = 0
        self._status_counts: Counter[str] = Counter()
        self._faults = 0
        self._put_log: list[dict[str, Any]] = []
        self._first_request_at: float | None = None
        self._last_request_at: float | None = None

    # -- API requests: everything under /v1.0 ---------------------------------------------------

    def arrive(self) -> None:
        """Count an API request as it comes in (before latency, limits and auth)."""
        with self._lock:
            now = time.time()
            self._requests += 1
            if self._first_request_at is None:
                self._first_request_at = now
            self._last_request_at = now

    def answered(self, reply: Reply) -> None:
        """Count the status an API request got (`dropped` for a closed connection)."""
        with self._lock:
            self._status_counts["dropped" if reply is DROP else str(reply.status)] += 1

    def handle(self, request: Request) -> tuple[Reply, Headers]:
        """Answer one API request; returns the reply (DROP = none) and the rate-limit headers."""
        with self._lock:
            allowed, limit_headers = self._take_from_window(time.time())
            if not allowed:
                return Reply(429, {"message": "Too Many Requests"}), limit_headers
            if not self._authorized(request.authorization):
                return Reply(401, "Unauthorized"), limit_headers
            return self._route(request), limit_headers

    def _route(self, request: Request) -> Reply:
        if request.path == "/v1.0/leads":
            if request.method != "GET":
                return NOT_ALLOWED
            self._lists += 1
            return self._fault() or self._list(request.query)
        match = _LEAD_PATH.match(request.path)
        if match is None:
            return NOT_FOUND
        if request.method not in ("GET", "PUT"):
            return NOT_ALLOWED
        lead_id = _lead_id(match["lead_id"])
        if isinstance(lead_id, Rejection):
            return refused(lead_id)
        counter = self._gets if request.method == "GET" else self._puts
        counter[str(lead_id)] += 1
        if fault := self._fault():
            return fault
        if request.method == "GET":
            return self._get(lead_id, request.query)
        return self._put(lead_id, request.body)

    def _take_from_window(self, now: float) -> tuple[bool, Headers]:
        # Fixed windows that start with the first request after the previous one ended, so a
        # burst right after a quiet spell always meets a full window.
        window = self._config.rate_window
        if self._window_start is None or now >= self._window_start + window:
            self._window_start, self._window_count = now, 0
        limit = self._config.rate_limit
        allowed = limit is None or self._window_count < limit
        if allowed:
            self._window_count += 1
        ceiling = UNLIMITED if limit is None else limit
        reset = self._window_start + window
        headers = [
            ("X-RateLimit-Limit", str(ceiling)),
            ("X-RateLimit-Remaining", str(max(0, ceiling - self._window_count))),
            ("X-RateLimit-Reset", str(math.ceil(reset))),
        ]
        if not allowed:
            headers.append(("Retry-After", str(max(1, math.ceil(reset - now)))))
        return allowed, tuple(headers)

    def _authorized(self, authorization: str | None) -> bool:
        scheme, _, secret = (authorization or "").strip().partition(" ")
        secret = secret.strip()
        if scheme.lower() not in ("bearer", "token") or not secret:
            return False
        if not self._config.credentials:
            return True
        # Compare every accepted secret in constant time, so timing says nothing about them.
        matches = [
            hmac.compare_digest(secret.encode(), accepted.encode())
            for accepted in self._config.credentials
        ]
        return any(matches)

    def _fault(self) -> Reply | None:
        """An injected fault for this request, or None (most of the time)."""
        if not (self._config.fault_rate and self._random.random() < self._config.fault_rate):
            return None
        self._faults += 1
        kind = self._random.choice(("500", "503", "drop"))
        if kind == "500":
            return Reply(500, {"code": 500, "message": "Internal Server Error"})
        if kind == "503":
            return Reply(
                503, {"code": 503, "message": "Service Unavailable"}, (("Retry-After", "1"),)
            )
        return DROP

    def _get(self, lead_id: int, query: Mapping[str, Sequence[str]]) -> Reply:
        values = query.get("withTrash") or ["false"]
        with_trash = _BOOLEANS.get(values[0].strip().lower())
        if with_trash is None:
            return refused(invalid("withTrash", "must be true or false"))
        lead = self._store.get(lead_id, with_trash=with_trash)
        if lead is None:
            return refused(LEAD_NOT_EXIST)
        return Reply(200, {"lead": self._store.view(lead)})

    def _put(self, lead_id: int, raw: bytes) -> Reply:
        try:
            body = json.loads(raw, parse_constant=_refuse_constant) if raw.strip() else None
        except ValueError as exc:
            return refused(invalid("body", str(exc)))
        self._put_log.append({"leadId": lead_id, "body": body})
        rejection = check_update(body)
        if rejection is None:
            assert isinstance(body, dict)
            rejection = self._store.update(lead_id, body)
        if rejection is not None:
            return refused(rejection)
        return Reply(200, {"leadId": lead_id})

    def _list(self, query: Mapping[str, Sequence[str]]) -> Reply:
        request = parse(query)
        if isinstance(request, Rejection):
            return refused(request)
        page = self._pager.page(self._store, request)
        return refused(page) if isinstance(page, Rejection) else Reply(200, page)

    # -- admin: no auth, not counted, no latency, no faults -------------------------------------

    def admin(self, request: Request) -> Reply:
        """Answer one request under /_sandbox/ (see the module docstring)."""
        method, path = request.method, request.path
        if path in ("/_sandbox/stats", "/_sandbox/puts"):
            if method != "GET":
                return NOT_ALLOWED
            return Reply(200, self.stats() if path.endswith("stats") else {"puts": self.puts()})
        if path == "/_sandbox/leads":
            if method == "GET":
                return Reply(200, {"leads": self.records()})
            return self._admin_add(request.body) if method == "POST" else NOT_ALLOWED
        match = _ADMIN_LEAD_PATH.match(path)
        if match is None:
            return NOT_FOUND
        lead_id = _lead_id(match["lead_id"])
        if isinstance(lead_id, Rejection):
            return refused(lead_id)
        if match["edit"]:
            return self._admin_edit(lead_id, request.body) if method == "POST" else NOT_ALLOWED
        if method == "GET":
            record = self.record(lead_id)
            return refused(LEAD_NOT_EXIST) if record is None else Reply(200, {"lead": record})
        if method == "DELETE":
            if not self.delete(lead_id):
                return refused(LEAD_NOT_EXIST)
            return Reply(200, {"deleted": True, "leadId": lead_id})
        return NOT_ALLOWED

    def _admin_add(self, raw: bytes) -> Reply:
        try:
            data = json.loads(raw, parse_constant=_refuse_constant)
        except ValueError:
            data = None
        usage = 'expected {"leadIds": [integers >= 1]} or {"leads": [lead objects with leadId]}'
        if not isinstance(data, dict) or len(data) != 1:
            return Reply(400, {"code": 20012, "message": usage})
        if "leadIds" in data:
            lead_ids = data["leadIds"]
            if not isinstance(lead_ids, list) or not all(is_lead_id(i) for i in lead_ids):
                return Reply(400, {"code": 20012, "message": usage})
            self.register(lead_ids)
            return Reply(200, {"leadIds": lead_ids})
        if not isinstance(data.get("leads"), list):
            return Reply(400, {"code": 20012, "message": usage})
        try:
            seeded = self.seed(seed_entries(data["leads"], where="request"))
        except SandboxError as exc:
            return Reply(400, {"code": 20012, "message": str(exc)})
        return Reply(200, {"leadIds": seeded})

    def _admin_edit(self, lead_id: int, raw: bytes) -> Reply:
        try:
            fields = json.loads(raw, parse_constant=_refuse_constant)
        except ValueError as exc:
            return refused(invalid("body", str(exc)))
        result = self.agent_edit(lead_id, fields)
        return refused(result) if isinstance(result, Rejection) else Reply(200, {"lead": result})

    # -- admin as Python: what `Sandbox` offers tests ---------------------------------------------

    def seed(self, leads: Mapping[int, Mapping[str, Any]]) -> list[int]:
        """Store checked PUT bodies as PUTs would (not logged as PUTs); returns their ids.

        Raises SandboxError when the store refuses a body (a `property.id` the lead does not
        have); the leads before it stay stored.
        """
        with self._lock:
            for lead_id, body in leads.items():
                self._store.register(lead_id)
                rejection = self._store.update(lead_id, body)
                if rejection is not None:
                    raise SandboxError(f"leadId {lead_id}: {rejection.code} {rejection.message}")
            return list(leads)

    def add_generated(self, leads: Iterable[GeneratedLead]) -> None:
        """Store generated leads, dated when they say they were written."""
        with self._lock:
            for lead in leads:
                self._store.register(lead.lead_id, at=lead.at)
                for body in lead.bodies:
                    self._store.update(lead.lead_id, body, at=lead.at)
                self._store.set_server_fields(lead.lead_id, lead.server)

    def register(self, lead_ids: Iterable[int]) -> None:
        """Make leads exist (holding only Lofty's defaults if new)."""
        with self._lock:
            for lead_id in lead_ids:
                self._store.register(lead_id)

    def agent_edit(self, lead_id: int, fields: object) -> dict[str, Any] | Rejection:
        """Change a lead as an agent in Lofty's UI would: not a PUT, not counted, but it moves
        `lastUpdateTime` and marks the inquiry `modifyByAgent`. Returns the lead as GET shows it."""
        rejection = check_update(fields)
        if rejection is not None:
            return rejection
        assert isinstance(fields, dict)
        with self._lock:
            rejection = self._store.update(lead_id, fields, by_agent=True)
            if rejection is not None:
                return rejection
            lead = self._store.peek(lead_id)
            assert lead is not None
            return self._store.view(lead)

    def delete(self, lead_id: int) -> bool:
        """Trash a lead; False when no such lead is held."""
        with self._lock:
            return self._store.peek(lead_id) is not None and self._store.trash(lead_id)

    def view(self, lead_id: int) -> dict[str, Any] | None:
        """The lead as GET shows it, if held (never creates one)."""
        with self._lock:
            lead = self._store.peek(lead_id)
            return None if lead is None else self._store.view(lead)

    def record(self, lead_id: int) -> dict[str, Any] | None:
        """The lead as held, write-only fields included, if held (never creates one)."""
        with self._lock:
            lead = self._store.peek(lead_id)
            return None if lead is None else self._store.view(lead, write_only=True)

    def records(self) -> list[dict[str, Any]]:
        """Every lead held and not trashed, write-only fields included, by leadId."""
        with self._lock:
            return [self._store.view(lead, write_only=True) for lead in self._store.held()]

    def puts(self) -> list[dict[str, Any]]:
        """Every PUT received past auth and the rate limit, refused ones included, in order."""
        with self._lock:
            return copy.deepcopy(self._put_log)

    def stats(self) -> dict[str, Any]:
        """Request counters; see `Sandbox.stats`."""
        with self._lock:
            return {
                "requests": self._requests,
                "puts": dict(self._puts),
                "gets": dict(self._gets),
                "lists": self._lists,
                "status_counts": dict(self._status_counts),
                "faults": self._faults,
                "first_request_at": self._first_request_at,
                "last_request_at": self._last_request_at,
            }


def _lead_id(text: str) -> int | Rejection:
    value = int(text) if text.isascii() and text.isdigit() else None
    if value is None or not is_lead_id(value):
        return invalid("leadId", f"must be an integer >= 1, not {text!r}")
    return value


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")

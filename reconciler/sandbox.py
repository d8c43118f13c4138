"""A Lofty-compatible HTTP server on loopback, for demos, dry runs, end-to-end tests and benchmarks.

It behaves like the one vendor endpoint we drive, `PUT /v1.0/leads/{leadId}`, as documented in
`reference/lofty-update-lead.txt` and the vendor's OpenAPI file (shipped as
`reconciler/data/lofty-openapi-leads.json`): both auth schemes, the body validated against
`EditLeadRequest` plus the documented rules the schema does not encode, 404 `LEAD_NOT_EXIST`,
silent truncation, `X-RateLimit-*` headers with 429 past the limit, and optional latency and
injected faults. `GET /v1.0/leads/{leadId}` shows what it stores; `/_sandbox/...` endpoints (no
auth) let tests and benchmarks register leads and read counters.

The server is the standard library's threading HTTP server speaking HTTP/1.1 with keep-alive, so
a pooled httpx client behaves against it as it does against Lofty.
"""

from __future__ import annotations

import contextlib
import copy
import difflib
import hmac
import ipaddress
import json
import math
import random
import re
import signal
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

import jsonschema
from jsonschema.exceptions import best_match
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from reconciler.yamlio import YamlProblem, decode, load_documents

# What X-RateLimit-Limit says when no limit is configured: a client pacing itself from the
# headers must see plenty of room, never "unlimited" spelled in a way it cannot parse.
UNLIMITED = 1_000_000
MAX_BODY_BYTES = 1024 * 1024

_LEAD_PATH = re.compile(r"^/v1\.0/leads/(?P<lead_id>[^/]+)$")
_INT64_MAX = 2**63 - 1
_INT32 = (-(2**31), 2**31 - 1)

# Silent truncation, as the vendor page documents it.
_NAME_LIMIT = 30
_TAG_LIMIT = 64
_TRUNCATED_STRINGS = ("firstName", "lastName")
_TRUNCATED_ITEMS = ("groups", "segments")
_TAG_FIELDS = ("tags", "tagsAdd", "tagsRemove", "clearAllTags")

# Documented rules that EditLeadRequest carries only in its descriptions.
_TIME_FRAMES = ("1-3", "3-6", "6-12", "12+", "Just Looking", "Refinancing")
_YES_NO = ("Yes", "No")
_ENUMS: dict[str, tuple[str, ...]] = {
    "buyingTimeFrame": _TIME_FRAMES,
    "sellingTimeFrame": _TIME_FRAMES,
    **{
        name: _YES_NO
        for name in (
            "preQual",
            "houseToSell",
            "fthb",
            "withBuyerAgent",
            "mortgage",
            "buyHouse",
            "withListingAgent",
        )
    },
    "language": ("en", "fr", "de", "es", "zh-CN", "zh-TW", "ja"),
    "ownershipScope": ("TEAM", "OFFICE", "PERSONAL"),
}
_LEAD_TYPES = frozenset({-1, 1, 2, 5, 6, 7, 8, 9})
_ATTRIBUTE_TYPES = (
    "number",
    "text",
    "date",
    "anniversary_date",
    "single_select",
    "multi_select",
    "percentage",
    "currency",
)
_MAX_PHONE = 20
_MAX_STAGE = 19  # "less than 20 characters"
_MAX_FAMILY_MEMBERS = 4
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_BIRTHDAY = re.compile(r"^(?P<month>[A-Z][a-z]{2}) (?P<day>\d{1,2}), (?P<year>\d{4})$")
_ADDRESS_FIELDS = ("city", "state", "zipCode", "streetAddress")
_MIN_MAX_PAIRS = (
    ("inquiry", "priceMin", "priceMax"),
    ("inquiry", "bedroomsMin", "bedroomsMax"),
    ("property", "priceMin", "priceMax"),
)

_SCHEMA_URI = "urn:lofty:openapi-leads"


@dataclass(frozen=True)
class SandboxConfig:
    """How a sandbox listens and misbehaves. Invalid values raise ValueError on construction."""

    host: str = "127.0.0.1"
    port: int = 0  # 0 = pick a free port
    latency_ms: float = 0.0
    fault_rate: float = 0.0  # fraction of PUTs answered with an injected fault
    rate_limit: int | None = None  # requests allowed per window; None = unlimited
    rate_window: float = 60.0  # seconds per window (tests use short windows)
    seed_file: Path | None = None  # when given, only seeded (and later registered) leads exist
    credentials: frozenset[str] = frozenset()  # accepted secrets; empty = any non-empty secret
    random_seed: int | None = None  # makes fault injection reproducible

    def __post_init__(self) -> None:
        if not _is_loopback(self.host):
            raise ValueError(
                f"the sandbox only listens on loopback, not {self.host!r}: use 127.0.0.1 or ::1"
            )
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be between 0 and 65535, not {self.port}")
        if not (self.latency_ms >= 0 and math.isfinite(self.latency_ms)):
            raise ValueError(f"latency must be a non-negative number of ms, not {self.latency_ms}")
        if not 0.0 <= self.fault_rate <= 1.0:
            raise ValueError(f"fault rate must be between 0 and 1, not {self.fault_rate}")
        if self.rate_limit is not None and self.rate_limit < 1:
            raise ValueError(f"rate limit must be at least 1 request, not {self.rate_limit}")
        if not (self.rate_window > 0 and math.isfinite(self.rate_window)):
            raise ValueError(f"rate window must be a positive number of s, not {self.rate_window}")


@dataclass(frozen=True, slots=True)
class Rejection:
    """A refusal as Lofty words it: HTTP status, Lofty error code, message."""

    status: int
    code: int
    message: str

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message}


def check_update(body: object) -> Rejection | None:
    """Why Lofty would refuse this Update Lead body, or None when it would accept it.

    Checks, in order: a JSON object, no unknown top-level keys, the vendor's `EditLeadRequest`
    schema, the documented rules the schema leaves to prose, and the property address rule.
    """
    problem = _first_problem(body)
    if problem is not None:
        path, reason = problem
        return Rejection(400, 20012, f"INVALID_PARAMETER: {path}: {reason}")
    assert isinstance(body, dict)  # _first_problem refuses anything else
    block = body.get("property")
    if isinstance(block, dict) and all(
        not str(block.get(name) or "").strip() for name in _ADDRESS_FIELDS
    ):
        return Rejection(400, 200057, "PROPERTY_ADDRESS_EMPTY")
    return None


class Sandbox:
    """A running sandbox server; a context manager that starts on enter and stops on exit."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        seeded = None if config.seed_file is None else load_seed(config.seed_file)
        self._state = _State(config, seeded)
        self._server: _Server | None = None
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
        server = _Server(self.config, self._state)
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

    def lead(self, lead_id: int) -> dict[str, Any] | None:
        """What the sandbox stores for a lead (with its `leadId`), or None if nothing."""
        return self._state.stored_lead(lead_id)

    def stats(self) -> dict[str, Any]:
        """Request counters; the same document as `GET /_sandbox/stats`.

        `requests` counts every request under /v1.0 (401s, 429s and faults included);
        `puts` counts, per leadId, the PUTs that got past auth and the rate limit (injected
        faults included, so a client's retry shows as another PUT); `status_counts` is keyed
        by status code, with `"dropped"` for connections closed without an answer; `faults`
        counts injected faults; `first_request_at`/`last_request_at` are epoch seconds or None.
        """
        return self._state.stats()


def serve(config: SandboxConfig, *, ready: Callable[[str], None]) -> None:
    """Serve until SIGINT or SIGTERM; call `ready(url)` once listening. Main thread only."""
    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with Sandbox(config) as sandbox:
            ready(sandbox.url)
            # A timed wait so the signal handler gets its turn on every platform.
            while not stopping.wait(0.2):
                pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def load_seed(path: Path) -> dict[int, dict[str, Any]]:
    """Read a seed file (JSON or YAML): lead ids, lead objects with `leadId`, or `{"leads": ...}`.

    Returns the stored fields per lead id. Raises ValueError saying what is wrong with the file.
    """
    try:
        documents = [doc.value for doc in load_documents(decode(path.read_bytes()))]
    except OSError as exc:
        raise ValueError(f"cannot read seed file {path}: {exc}") from exc
    except YamlProblem as exc:
        raise ValueError(f"seed file {path} is not valid JSON or YAML: {exc}") from exc
    if len(documents) > 1:
        raise ValueError(f"seed file {path} must hold one document, not {len(documents)}")
    data = documents[0] if documents else None
    if isinstance(data, dict) and set(data) == {"leads"}:
        data = data["leads"]
    if data is None:
        data = []
    if not isinstance(data, list):
        raise ValueError(
            f"seed file {path} must hold a list of lead ids or lead objects, or {{leads: [...]}}"
        )
    leads: dict[int, dict[str, Any]] = {}
    for index, entry in enumerate(data):
        fields = dict(entry) if isinstance(entry, dict) else {}
        lead_id = fields.pop("leadId", None) if isinstance(entry, dict) else entry
        if not _is_lead_id(lead_id):
            raise ValueError(
                f"seed file {path}: entry {index}: expected a leadId (integer >= 1), "
                f"got {lead_id!r}"
            )
        assert isinstance(lead_id, int)
        if lead_id in leads:
            raise ValueError(f"seed file {path}: leadId {lead_id} appears twice")
        leads[lead_id] = fields
    return leads


# --- validation -------------------------------------------------------------------------------


@cache
def _edit_lead_request() -> tuple[jsonschema.protocols.Validator, frozenset[str]]:
    """A validator for the vendor's `EditLeadRequest` (its $refs resolved within the OpenAPI
    file) and the top-level fields it names."""
    text = resources.files("reconciler").joinpath("data/lofty-openapi-leads.json").read_text()
    document = json.loads(text)
    # OpenAPI 3.0 schema objects are JSON Schema draft 4 with extra keywords; draft 4 also keeps
    # integers strict (1.5 and true are not int64), as Lofty's Java binding is.
    registry: Registry[Any] = Registry().with_resource(
        _SCHEMA_URI, Resource.from_contents(document, default_specification=DRAFT4)
    )
    checker = jsonschema.FormatChecker(formats=())
    checker.checks("int32")(lambda v: not isinstance(v, int) or _INT32[0] <= v <= _INT32[1])
    checker.checks("int64")(lambda v: not isinstance(v, int) or -_INT64_MAX - 1 <= v <= _INT64_MAX)
    schema = {"$ref": f"{_SCHEMA_URI}#/components/schemas/EditLeadRequest"}
    validator = jsonschema.Draft4Validator(schema, registry=registry, format_checker=checker)
    fields = frozenset(document["components"]["schemas"]["EditLeadRequest"]["properties"])
    return validator, fields


def _first_problem(body: object) -> tuple[str, str] | None:
    if not isinstance(body, dict):
        return "body", "must be a JSON object"
    validator, known_fields = _edit_lead_request()
    unknown = sorted(set(body) - known_fields)
    if unknown:
        hint = difflib.get_close_matches(unknown[0], known_fields, n=1)
        return unknown[0], "unknown field" + (f" (did you mean {hint[0]}?)" if hint else "")
    error = best_match(validator.iter_errors(body))
    if error is not None:
        return _path(error.absolute_path), error.message
    return next(_rule_problems(body), None)


def _rule_problems(body: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """Documented rules not in the schema; runs on a body whose types the schema has checked."""
    yield from _phone_problems("phones", body.get("phones", []))
    stage = body.get("stage")
    if stage is not None and len(stage) > _MAX_STAGE:
        yield "stage", f"must be less than {_MAX_STAGE + 1} characters"
    yield from _birthday_problems("birthday", body.get("birthday"))
    for name, allowed in _ENUMS.items():
        value = body.get(name)
        # An empty string clears the field; anything else must be a documented value.
        if value is not None and value != "" and value not in allowed:
            yield name, f"must be one of {', '.join(allowed)}"
    if body.get("ownershipScope") in ("OFFICE", "PERSONAL") and "ownershipId" not in body:
        yield "ownershipId", f"is required when ownershipScope is {body['ownershipScope']}"
    for index, lead_type in enumerate(body.get("leadTypes", [])):
        if lead_type not in _LEAD_TYPES:
            yield f"leadTypes[{index}]", f"unknown lead type {lead_type}"
    for index, attribute in enumerate(body.get("customAttributeList", [])):
        if attribute["attributeType"] not in _ATTRIBUTE_TYPES:
            yield (
                f"customAttributeList[{index}].attributeType",
                f"must be one of {', '.join(_ATTRIBUTE_TYPES)}",
            )
    members = body.get("leadFamilyMemberList", [])
    if len(members) > _MAX_FAMILY_MEMBERS:
        yield "leadFamilyMemberList", f"at most {_MAX_FAMILY_MEMBERS} family members"
    for index, member in enumerate(members):
        where = f"leadFamilyMemberList[{index}]"
        yield from _phone_problems(f"{where}.phones", member.get("phones", []))
        yield from _birthday_problems(f"{where}.birthday", member.get("birthday"))
    for block, low, high in _MIN_MAX_PAIRS:
        values = body.get(block, {})
        if low in values and high in values and values[low] > values[high]:
            yield f"{block}.{low}", f"must not exceed {high}"
    transaction = body.get("leadTransaction")
    if transaction is not None:
        name = transaction["transactionName"]
        if not name.strip():
            yield "leadTransaction.transactionName", "must not be blank"
        elif "<" in name or ">" in name:
            yield "leadTransaction.transactionName", "must not contain '<' or '>'"


def _phone_problems(where: str, phones: list[str]) -> Iterator[tuple[str, str]]:
    for index, phone in enumerate(phones):
        if len(phone) > _MAX_PHONE:
            yield f"{where}[{index}]", f"no more than {_MAX_PHONE} characters per phone"


def _birthday_problems(where: str, value: str | None) -> Iterator[tuple[str, str]]:
    if not value:  # absent, or an empty string that clears it
        return
    match = _BIRTHDAY.match(value)
    try:
        if match is None or match["month"] not in _MONTHS:
            raise ValueError
        date(int(match["year"]), _MONTHS.index(match["month"]) + 1, int(match["day"]))
    except ValueError:
        yield where, f"{value!r} is not a date like 'Jun 5, 2001' (MMM d, yyyy)"


def _path(parts: Iterable[str | int]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "body"


def _is_lead_id(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= _INT64_MAX


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# --- state --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Reply:
    status: int
    body: object
    headers: tuple[tuple[str, str], ...] = ()


# A reply that is no reply: the handler closes the connection without writing anything.
_DROP = None


class _State:
    """Everything the handler threads share, behind one lock."""

    def __init__(self, config: SandboxConfig, seeded: dict[int, dict[str, Any]] | None) -> None:
        self._config = config
        self._lock = threading.Lock()
        self._open = seeded is None  # without a seed file every lead id >= 1 exists
        self._leads: dict[int, dict[str, Any]] = seeded or {}
        self._random = random.Random(config.random_seed)
        self._window_start: float | None = None
        self._window_count = 0
        self._requests = 0
        self._puts: Counter[str] = Counter()
        self._status_counts: Counter[str] = Counter()
        self._faults = 0
        self._put_log: list[dict[str, Any]] = []
        self._first_request_at: float | None = None
        self._last_request_at: float | None = None

    # API requests: everything under /v1.0 goes through here.

    def arrive(self) -> None:
        with self._lock:
            now = time.time()
            self._requests += 1
            if self._first_request_at is None:
                self._first_request_at = now
            self._last_request_at = now

    def answered(self, reply: _Reply | None) -> None:
        with self._lock:
            self._status_counts["dropped" if reply is None else str(reply.status)] += 1

    def api(
        self, method: str, path: str, authorization: str | None, body: bytes
    ) -> tuple[_Reply | None, tuple[tuple[str, str], ...]]:
        """Answer one API request; returns the reply (None = drop) and the rate-limit headers."""
        with self._lock:
            allowed, limit_headers = self._take_from_window(time.time())
            if not allowed:
                return _Reply(429, {"message": "Too Many Requests"}), limit_headers
            if not self._authorized(authorization):
                return _Reply(401, "Unauthorized"), limit_headers
            match = _LEAD_PATH.match(path)
            if match is None:
                return _Reply(404, {"code": 404, "message": "Not Found"}), limit_headers
            if method not in ("GET", "PUT"):
                return _Reply(405, {"code": 405, "message": "Method Not Allowed"}), limit_headers
            lead_id = _parse_lead_id(match["lead_id"])
            if lead_id is None:
                reason = f"leadId: must be an integer >= 1, not {match['lead_id']!r}"
                return _Reply(400, Rejection(400, 20012, reason).body()), limit_headers
            if method == "GET":
                return self._get(lead_id), limit_headers
            return self._put(lead_id, body), limit_headers

    def _take_from_window(self, now: float) -> tuple[bool, tuple[tuple[str, str], ...]]:
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

    def _exists(self, lead_id: int) -> bool:
        return self._open or lead_id in self._leads

    def _get(self, lead_id: int) -> _Reply:
        if not self._exists(lead_id):
            return _Reply(404, _LEAD_NOT_EXIST.body())
        return _Reply(200, {"lead": self._view(lead_id)})

    def _put(self, lead_id: int, raw: bytes) -> _Reply | None:
        self._puts[str(lead_id)] += 1
        if self._config.fault_rate and self._random.random() < self._config.fault_rate:
            self._faults += 1
            kind = self._random.choice(("500", "503", "drop"))
            if kind == "500":
                return _Reply(500, {"code": 500, "message": "Internal Server Error"})
            if kind == "503":
                return _Reply(
                    503, {"code": 503, "message": "Service Unavailable"}, (("Retry-After", "1"),)
                )
            return _DROP
        try:
            body = json.loads(raw, parse_constant=_refuse_constant) if raw.strip() else None
        except ValueError as exc:
            return _Reply(400, {"code": 20012, "message": f"INVALID_PARAMETER: body: {exc}"})
        self._put_log.append({"leadId": lead_id, "body": body})
        rejection = check_update(body)
        if rejection is not None:
            return _Reply(rejection.status, rejection.body())
        if not self._exists(lead_id):
            return _Reply(404, _LEAD_NOT_EXIST.body())
        assert isinstance(body, dict)
        _store(self._leads.setdefault(lead_id, {}), body)
        return _Reply(200, {"leadId": lead_id})

    def _view(self, lead_id: int) -> dict[str, Any]:
        return {**copy.deepcopy(self._leads.get(lead_id, {})), "leadId": lead_id}

    # Admin: no auth, not counted, no latency.

    def stored_lead(self, lead_id: int) -> dict[str, Any] | None:
        with self._lock:
            return self._view(lead_id) if lead_id in self._leads else None

    def stored_leads(self) -> list[dict[str, Any]]:
        with self._lock:
            return [self._view(lead_id) for lead_id in sorted(self._leads)]

    def register(self, lead_ids: list[int]) -> None:
        with self._lock:
            for lead_id in lead_ids:
                self._leads.setdefault(lead_id, {})

    def put_log(self) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._put_log)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": self._requests,
                "puts": dict(self._puts),
                "status_counts": dict(self._status_counts),
                "faults": self._faults,
                "first_request_at": self._first_request_at,
                "last_request_at": self._last_request_at,
            }


_LEAD_NOT_EXIST = Rejection(404, 20006, "LEAD_NOT_EXIST")


def _parse_lead_id(text: str) -> int | None:
    if not text.isascii() or not text.isdigit():
        return None
    value = int(text)
    return value if _is_lead_id(value) else None


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def _store(stored: dict[str, Any], body: Mapping[str, Any]) -> None:
    """Merge an accepted body into a stored lead the way Lofty keeps it."""
    for name, value in body.items():
        if name in _TAG_FIELDS:
            continue
        if name in _TRUNCATED_STRINGS:
            value = value[:_NAME_LIMIT]
        elif name in _TRUNCATED_ITEMS:
            value = [item[:_NAME_LIMIT] for item in value]
        stored[name] = value  # nested objects and lists are replaced whole
    if not any(name in body for name in _TAG_FIELDS):
        return
    before: list[str] = stored.get("tags", [])
    tags = list(before)
    if "tags" in body:
        tags = _unique(tag[:_TAG_LIMIT] for tag in body["tags"])
    if "tagsAdd" in body:
        tags = _unique([*tags, *(tag[:_TAG_LIMIT] for tag in body["tagsAdd"])])
    # Only tags the lead had before this request are removed, matched literally.
    removed = set(body.get("tagsRemove", [])) & set(before)
    tags = [tag for tag in tags if tag not in removed]
    if body.get("clearAllTags") is True:
        tags = []
    stored["tags"] = tags


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


# --- HTTP ---------------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Benchmarks open 10-20 connections at once; a short backlog would make some wait a full
    # SYN retransmit (a second) before they are even accepted.
    request_queue_size = 128

    def __init__(self, config: SandboxConfig, state: _State) -> None:
        self.config = config
        self.state = state
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        host = "127.0.0.1" if config.host == "localhost" else config.host
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        super().__init__((host, config.port), _Handler)

    @property
    def url(self) -> str:
        host = str(self.server_address[0])
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.server_port}"

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """End idle keep-alive connections, so their threads and clients notice the stop."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already gone
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client hanging up mid-request is ordinary; anything else is a bug worth a traceback.
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive, as httpx expects from Lofty
    disable_nagle_algorithm = True  # headers and body are separate writes; don't delay the body
    timeout = 120  # idle keep-alive connections are closed after this many seconds

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default per-request stderr log."""

    def do_GET(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        body = self._read_body()
        if body is None:
            return
        path = urlsplit(self.path).path
        if path.startswith("/v1.0/"):
            self._api(path, body)
        elif path.startswith("/_sandbox/"):
            self._send(self._admin(path, body))
        else:
            self._send(_Reply(404, {"code": 404, "message": "Not Found"}))

    def _read_body(self) -> bytes | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            self._send(_Reply(411, {"code": 411, "message": "Length Required"}))
            return None
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY_BYTES:
            self.close_connection = True  # the rest of the stream cannot be trusted
            self._send(_Reply(413, {"code": 413, "message": "Payload Too Large"}))
            return None
        return self.rfile.read(length) if length else b""

    def _api(self, path: str, body: bytes) -> None:
        state = self.server.state
        state.arrive()
        if self.server.config.latency_ms:
            time.sleep(self.server.config.latency_ms / 1000)
        reply, limit_headers = state.api(
            self.command, path, self.headers.get("Authorization"), body
        )
        state.answered(reply)
        if reply is _DROP:
            self.close_connection = True
            return
        self._send(reply, limit_headers)

    def _admin(self, path: str, raw: bytes) -> _Reply:
        state = self.server.state
        if path == "/_sandbox/stats" and self.command == "GET":
            return _Reply(200, state.stats())
        if path == "/_sandbox/leads" and self.command == "GET":
            return _Reply(200, {"leads": state.stored_leads()})
        if path == "/_sandbox/puts" and self.command == "GET":
            return _Reply(200, {"puts": state.put_log()})
        if path == "/_sandbox/leads" and self.command == "POST":
            try:
                lead_ids = json.loads(raw)["leadIds"]
            except (ValueError, TypeError, KeyError):
                lead_ids = None
            if not isinstance(lead_ids, list) or not all(_is_lead_id(i) for i in lead_ids):
                return _Reply(400, {"message": 'expected {"leadIds": [integers >= 1]}'})
            state.register(lead_ids)
            return _Reply(200, {"leadIds": lead_ids})
        return _Reply(404, {"code": 404, "message": "Not Found"})

    def _send(self, reply: _Reply, extra_headers: tuple[tuple[str, str], ...] = ()) -> None:
        payload = json.dumps(reply.body, separators=(",", ":")).encode()
        self.send_response(reply.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (*extra_headers, *reply.headers):
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(payload)

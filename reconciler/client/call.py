"""The records the client's rooms hand each other: one logical request and its attempts
(:class:`Call`), an HTTP answer read up to a cap (:class:`Answer`), the two transient failures
worth another attempt (:class:`RetryableAnswer`, :class:`NoAnswer`), and the counters a
summary or benchmark reads (:class:`ClientStats`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx


@dataclass
class ClientStats:
    """Counters for summaries and benchmarks: every request sent, retries included."""

    requests_sent: int = 0
    responses_429: int = 0
    retries: int = 0
    requests_by_method: dict[str, int] = field(default_factory=dict)

    def count(self, method: str) -> None:
        """Count one request about to be sent."""
        self.requests_sent += 1
        self.requests_by_method[method] = self.requests_by_method.get(method, 0) + 1


class RetryableAnswer(Exception):
    """A 429 or 5xx: worth another attempt, after ``wait_hint`` seconds at least."""

    def __init__(self, message: str, *, status: int, code: int | None, wait_hint: float) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.wait_hint = wait_hint


class NoAnswer(Exception):
    """No (complete) answer: a connection failure or timeout; worth another attempt."""


@dataclass
class Call:
    """One logical request and the book-keeping of its attempts."""

    method: Literal["GET", "PUT"]
    path: str
    what: str  # for logs: "lead 7", "page 2 of the lead list"
    expect: str  # the key a successful answer holds; without it, code/message is an error
    cap: int  # the largest successful response body read, in bytes
    body: Mapping[str, Any] | None = None
    params: Mapping[str, str] | None = None
    one_lead: bool = False  # a 404 means that lead does not exist
    probe: bool = False  # check_access: an answer that is not Lofty's means a wrong URL
    started: float | None = None  # clock time of the first attempt
    attempts: int = 0
    last: Exception | None = None  # the latest transient failure

    def elapsed(self, now: float) -> float:
        return 0.0 if self.started is None else now - self.started


@dataclass(frozen=True)
class Answer:
    """An HTTP response, its body read up to a cap."""

    status: int
    reason: str
    headers: httpx.Headers
    body: bytes
    complete: bool  # False when the body was larger than the cap (and is cut off or empty)

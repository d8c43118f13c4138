"""Judging one HTTP answer from Lofty: the decoded JSON of a success, or the error it means.

* 429 and 5xx: :class:`~reconciler.client.call.RetryableAnswer`, with the wait the server asked
  for (``Retry-After``, else for a 429 ``X-RateLimit-Reset``); that wait holds off every other
  request too.
* 401/403: :class:`~reconciler.errors.AuthError`, which also ends the run (:mod:`.watch`).
* 404 (or ``20006 LEAD_NOT_EXIST``) for a lead: :class:`~reconciler.errors.LeadNotFoundError`.
* For the access check, an answer that cannot be Lofty's (404, a redirect, not JSON, too
  large): :class:`~reconciler.errors.ConfigError` saying ``LOFTY_API_URL`` looks wrong.
* Anything else, and a 2xx that is too large, not JSON or Lofty's error object:
  :class:`~reconciler.errors.ApiError` with the server's message.

Also the small readers of Lofty's JSON the rest of the client shares (:func:`lead_number`,
:func:`count`, :func:`json_kind`).
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Callable
from typing import Any

from reconciler.client.call import Answer, Call, ClientStats, RetryableAnswer
from reconciler.client.scrub import Voice
from reconciler.client.settings import DEFAULT_API_URL, ClientSettings
from reconciler.client.watch import Watch
from reconciler.errors import ApiError, AuthError, ConfigError, LeadNotFoundError
from reconciler.pacing import Pacer, read_rate_limit, read_retry_after

#: Lofty's code for a lead that does not exist or that the credential cannot see.
LEAD_NOT_EXIST = 20006

_AUTH_HINT = (
    "LOFTY_ACCESS_TOKEN is sent as `Authorization: Bearer …`, LOFTY_API_KEY as "
    "`Authorization: token …`; check which one you set and that it is current"
)

# A 429 without a usable hint still pauses everyone briefly rather than letting the flock retry.
_MIN_HOLD_OFF_429 = 1.0
_LEADING_CODE = re.compile(r"^\s*(\d+)\b")


class Judge:
    """Turns an :class:`Answer` into ``(status, payload)`` or raises what it means.

    Its side effects are the ones an answer calls for: a 429 is counted in ``stats``, a
    server's wait is passed to the ``pacer`` for everyone, a refusal is latched in the
    ``watch``, and an implausible header is said once through the ``voice``.
    """

    def __init__(
        self,
        settings: ClientSettings,
        *,
        voice: Voice,
        watch: Watch,
        pacer: Pacer,
        stats: ClientStats,
        wall: Callable[[], float],
    ) -> None:
        self._settings = settings
        self._voice = voice
        self._watch = watch
        self._pacer = pacer
        self._stats = stats
        self._wall = wall

    def judge(self, call: Call, answer: Answer) -> tuple[int, Any]:
        """The status and decoded JSON of a final, acceptable answer to ``call``."""
        status = answer.status
        if status == 429 or status >= 500:
            raise self._retryable(answer)
        if not 200 <= status < 300:
            raise self._refusal(call, answer)
        if not answer.complete:
            size = f"{call.cap / 1024 / 1024:g} MiB" if call.cap >= 1024 * 1024 else f"{call.cap} B"
            if call.probe:
                raise self.wrong_url(f"answered with more than {size}")
            raise self._voice.error(
                ApiError, f"HTTP {status} but the response is larger than {size}", status=status
            )
        payload = _decode(answer.body)
        if payload is _NOT_JSON:
            text = self._voice.clip(answer.body.decode("utf-8", "replace"))
            if call.probe:
                raise self.wrong_url(f"answered with something that is not JSON: '{text}'")
            raise self._voice.error(
                ApiError, f"HTTP {status} but the response is not JSON: '{text}'", status=status
            )
        if _is_error_object(payload, call.expect):
            detail, code = self._error_detail(answer)
            kind = LeadNotFoundError if call.one_lead and code == LEAD_NOT_EXIST else ApiError
            raise self._voice.error(
                kind, f"HTTP {status} but Lofty answered: {detail}", status=status, code=code
            )
        return status, payload

    def _retryable(self, answer: Answer) -> RetryableAnswer:
        status = answer.status
        if status == 429:
            self._stats.responses_429 += 1
        detail, code = self._error_detail(answer)
        hint = self._wait_hint(answer)
        # Whatever the server asked of this request holds for every other one too.
        hold = max(hint, _MIN_HOLD_OFF_429) if status == 429 else hint
        if hold:
            self._pacer.hold_off(hold, rate_limited=status == 429)
        return RetryableAnswer(f"HTTP {status}: {detail}", status=status, code=code, wait_hint=hint)

    def _refusal(self, call: Call, answer: Answer) -> Exception:
        """The error for a final non-2xx answer (other than 429/5xx)."""
        status = answer.status
        detail, code = self._error_detail(answer)
        if status in (401, 403):
            variable = self._settings.credentials.variable()
            refused = self._voice.error(
                AuthError,
                f"HTTP {status}: {detail}; Lofty refused the credential in {variable}. "
                f"{_AUTH_HINT}",
                status=status,
                code=code,
            )
            self._watch.refused(refused)
            return refused
        if 300 <= status < 400:
            location = answer.headers.get("location")
            if location is not None:
                detail = f"redirected to {self._voice.clip(location)}"
                if call.probe:
                    return self.wrong_url(f"was {detail}")
                detail += "; set LOFTY_API_URL to the address the API really answers at"
        elif call.one_lead and (status == 404 or code == LEAD_NOT_EXIST):
            return self._voice.error(
                LeadNotFoundError, f"HTTP {status}: {detail}", status=status, code=code
            )
        elif call.probe and status == 404:
            return self.wrong_url(f"answered HTTP 404: {detail}")
        return self._voice.error(ApiError, f"HTTP {status}: {detail}", status=status, code=code)

    def wrong_url(self, what: str) -> ConfigError:
        """The error for an access check that shows ``LOFTY_API_URL`` is not Lofty's API."""
        url = self._settings.base_url
        path = urllib.parse.urlsplit(url).path.rstrip("/").lower()
        if path.endswith("/v1.0"):
            hint = f"LOFTY_API_URL should be the host only, e.g. {DEFAULT_API_URL}"
        else:
            hint = f"Set it to the address of the Lofty API, e.g. {DEFAULT_API_URL}"
        return ConfigError(
            self._voice.scrub(
                f"LOFTY_API_URL looks wrong: GET {url.rstrip('/')}/v1.0/leads {what}. {hint}"
            )
        )

    def _error_detail(self, answer: Answer) -> tuple[str, int | None]:
        """The server's message and numeric code, from either error shape Lofty uses."""
        payload = _decode(answer.body)
        code: int | None = None
        if isinstance(payload, dict) and ("code" in payload or "message" in payload):
            raw_code, message = payload.get("code"), payload.get("message")
            detail = " ".join(str(part) for part in (raw_code, message) if part is not None)
            code = count(raw_code)
        elif isinstance(payload, str):
            detail = payload
        else:
            detail = answer.body.decode("utf-8", "replace")
        detail = self._voice.clip(detail.strip()) or answer.reason
        if code is None and (match := _LEADING_CODE.match(detail)):
            code = int(match.group(1)[:18])  # a bare string such as "20006 LEAD_NOT_EXIST"
        return detail, code

    def _wait_hint(self, answer: Answer) -> float:
        """Seconds the server asked us to wait: Retry-After, else (for 429) until Reset."""
        now = self._wall()
        retry_after = answer.headers.get("retry-after")
        if retry_after is not None and retry_after.strip():
            seconds, problem = read_retry_after(
                retry_after, now=now, max_wait=self._settings.max_wait
            )
            if problem is not None:
                self._voice.header_notice(problem)
            if problem is None or seconds > 0:
                return seconds
        if answer.status == 429:
            # The pacer reads (and remarks on) these headers too; a second remark is dropped.
            window, _problem = read_rate_limit(
                answer.headers, now=now, max_wait=self._settings.max_wait
            )
            if window is not None:  # the pacer adds its margin past Reset itself
                return max(window.reset - now, 0.0)
        return 0.0


_NOT_JSON: Any = object()


def _decode(body: bytes) -> Any:
    """The JSON in ``body``, or ``_NOT_JSON`` (also for nesting too deep to parse)."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return _NOT_JSON


def _is_error_object(payload: Any, expected: str) -> bool:
    """A 2xx body that is Lofty's error shape rather than the answer (no ``expected`` key)."""
    return (
        isinstance(payload, dict)
        and expected not in payload
        and ("code" in payload or "message" in payload)
    )


def json_kind(value: Any) -> str:
    """What a JSON value is, for a message: "an object", "a list", "nothing", ..."""
    if value is None:
        return "nothing"
    kind = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    return kind.get(type(value), "a number")


def lead_number(value: Any) -> int | None:
    """A lead id as Lofty may spell it: a positive integer or a string of digits."""
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,19}", value):
        value = int(value)
    if type(value) is int and value > 0:
        return value
    return None


def count(value: Any) -> int | None:
    """A non-negative integer from a number or a string of digits; None otherwise."""
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,18}", value):
        return int(value)
    if type(value) is int and value >= 0:
        return value
    return None

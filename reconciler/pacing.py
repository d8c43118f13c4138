"""When the next request to Lofty may go out, so that a large apply runs at the allowed rate.

Lofty reports ``X-RateLimit-Remaining`` and ``X-RateLimit-Reset`` on every response and answers
429 beyond them. The :class:`Pacer` turns those headers into waits:

* While the current window has budget left -- ``Remaining`` minus the requests still in flight,
  which the server may or may not have counted yet -- requests go out at once, so pacing costs
  nothing while the budget is plentiful.
* When the budget is spent, nobody sends until the window resets. Once it has, one request goes
  out alone and its response tells the new window's ``Remaining``; the rest follow.
* At the start, before anything is known, the first request also goes out alone, so a client
  that starts near the end of a window cannot trip a burst of 429s.
* A server that sends no such headers is not paced by them.

An optional ceiling (``--rate-limit`` per minute) spaces requests evenly on top of that, and a
server's 429 or ``Retry-After`` holds every request off for a while (:meth:`Pacer.hold_off`).

Headers are read defensively (:func:`read_rate_limit`, :func:`read_retry_after`): ``Reset`` may
be epoch seconds, epoch milliseconds or a delta in seconds (in milliseconds when only that fits
a window, as in the vendor's example ``21000``), and ``Retry-After`` seconds or an HTTP date.
Whatever they say, no single wait is longer than ``max_wait`` (the one-minute rate window plus a
margin, :data:`DEFAULT_MAX_WAIT`); a value that had to be capped or ignored comes back as a
:class:`HeaderProblem` for the client to mention once.
"""

from __future__ import annotations

import asyncio
import email.utils
import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

# Lofty's rate window is one minute; a wait longer than that plus a margin cannot be meant.
RATE_WINDOW = 60.0
DEFAULT_MAX_WAIT = 65.0

# How long past Reset to wait before a new window is assumed. Reset is whole epoch seconds: a
# server that rounds its window's end up (as the sandbox does) is safe to call right at Reset,
# one that rounds down is not until up to a second later. Start eager and, once a 429 shows the
# server disagrees, wait the full second from then on.
_EAGER_MARGIN = 0.05
_CAUTIOUS_MARGIN = 1.0

# Reset values this small cannot be a current epoch timestamp: such a server sends a delta.
# Values this large are epoch milliseconds (1e12 ms is 2001; 1e12 s is 33,000 years away).
_EPOCH_SECONDS = 1e9
_EPOCH_MILLISECONDS = 1e12


@dataclass(frozen=True, slots=True)
class HeaderProblem:
    """A rate-limit header whose value was implausible, and what was done about it.

    ``value`` is the server's raw text: whoever shows it must scrub, escape and cut it.
    """

    header: str
    value: str
    action: str  # e.g. "is further away than a rate window; waiting at most 65 s at a time"


@dataclass(frozen=True, slots=True)
class RateWindow:
    """What the server said about the current window: requests left and when it ends."""

    remaining: int
    reset: float  # epoch seconds, never further than ``max_wait`` from when it was read


def read_rate_limit(
    headers: Mapping[str, str], *, now: float, max_wait: float = DEFAULT_MAX_WAIT
) -> tuple[RateWindow | None, HeaderProblem | None]:
    """Read ``X-RateLimit-Remaining``/``-Reset`` (epoch seconds or ms, or a delta in seconds).

    Returns no window when either header is absent or unusable (with a problem when present but
    unusable), and caps a Reset further than ``max_wait`` from ``now`` (with a problem). A delta
    too large for seconds but within ``max_wait`` as milliseconds is read as milliseconds.
    """
    raw_remaining = headers.get("x-ratelimit-remaining")
    raw_reset = headers.get("x-ratelimit-reset")
    if raw_remaining is None or raw_reset is None:
        return None, None
    try:
        remaining = int(raw_remaining.strip())
    except ValueError:
        remaining = -1
    if remaining < 0:
        return None, HeaderProblem(
            "X-RateLimit-Remaining", raw_remaining, "is not a count of requests; ignored"
        )
    try:
        reset = float(raw_reset.strip())
    except ValueError:
        reset = math.nan
    if not math.isfinite(reset) or reset < 0:
        return None, HeaderProblem(
            "X-RateLimit-Reset", raw_reset, "is not a time or a number of seconds; ignored"
        )
    problem = None
    if reset >= _EPOCH_MILLISECONDS:
        reset /= 1000.0
    elif reset < _EPOCH_SECONDS:
        if reset > max_wait and reset / 1000.0 <= max_wait:
            # Too far for seconds, but within a window as milliseconds (the vendor's example
            # 429 carries "21000"): read it so rather than stall for the longest wait.
            problem = HeaderProblem(
                "X-RateLimit-Reset",
                raw_reset,
                f"is too far away in seconds; read as milliseconds ({reset / 1000.0:g} s)",
            )
            reset /= 1000.0
        reset += now
    if reset - now > max_wait:
        return RateWindow(remaining, now + max_wait), HeaderProblem(
            "X-RateLimit-Reset",
            raw_reset,
            f"is further away than a rate window; waiting at most {max_wait:g} s at a time",
        )
    return RateWindow(remaining, reset), problem


def read_retry_after(
    value: str, *, now: float, max_wait: float = DEFAULT_MAX_WAIT
) -> tuple[float, HeaderProblem | None]:
    """Seconds to wait from a ``Retry-After`` value (seconds or an HTTP date), at most ``max_wait``.

    ``now`` is the wall clock (epoch seconds), for dates. An unreadable value means no wait.
    """
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            when = None
        if when is None or when.tzinfo is None:
            return 0.0, HeaderProblem(
                "Retry-After", value, "is neither a number of seconds nor an HTTP date; ignored"
            )
        seconds = when.timestamp() - now
    if math.isnan(seconds):
        return 0.0, HeaderProblem("Retry-After", value, "is not a number of seconds; ignored")
    if seconds > max_wait:
        return max_wait, HeaderProblem(
            "Retry-After",
            value,
            f"asks for more than a rate window; waiting at most {max_wait:g} s at a time",
        )
    return max(seconds, 0.0), None


class Pacer:
    """Decides when each request may be sent; shared by every task of one client.

    Call :meth:`acquire` right before sending and :meth:`release` with the response headers
    (or None when no response came) once it is over -- always, so in-flight counts stay true.
    """

    def __init__(
        self,
        *,
        rate_limit_per_minute: float | None,
        sleep: Callable[[float], Awaitable[None]],
        clock: Callable[[], float],
        wall: Callable[[], float],
        max_wait: float = DEFAULT_MAX_WAIT,
        notice: Callable[[HeaderProblem], None] | None = None,
    ) -> None:
        self._interval = RATE_WINDOW / rate_limit_per_minute if rate_limit_per_minute else 0.0
        self._sleep = sleep
        self._clock = clock
        self._wall = wall
        self._max_wait = max_wait
        self._notice = notice
        self.in_flight = 0
        # What the server last said about the current window; None until it says something.
        self._remaining = 0
        self._reset: float | None = None
        # True once a response carried no rate-limit headers while no window was known.
        self._unpaced = False
        self._blocked_until = 0.0  # clock time before which nobody sends (Retry-After)
        self._next_slot = 0.0  # clock time of the next --rate-limit slot
        self._margin = _EAGER_MARGIN
        self._changed = asyncio.Event()

    async def acquire(self) -> None:
        """Wait until a request may be sent, and count it as in flight."""
        while True:
            delay = self._delay()
            if delay == 0.0:
                break
            if delay is None:  # only a response (or a request ending) can change the answer
                changed = self._changed
                await changed.wait()
            else:
                await self._sleep(delay)
        self.in_flight += 1
        if self._interval:
            now = self._clock()
            slot = max(now, self._next_slot)
            self._next_slot = slot + self._interval
            if slot > now:
                try:
                    await self._sleep(slot - now)
                except BaseException:
                    self.release(None)
                    raise

    def release(self, headers: Mapping[str, str] | None) -> None:
        """A request is over; learn what its response headers say about the window."""
        self.in_flight -= 1
        if headers is not None:
            self._observe(headers)
        # Wake everyone waiting on a response; each re-checks for itself.
        self._changed.set()
        self._changed = asyncio.Event()

    def hold_off(self, seconds: float, *, rate_limited: bool) -> None:
        """Let no request out for ``seconds`` (at most ``max_wait``); ``rate_limited`` on a 429."""
        seconds = min(seconds, self._max_wait)
        self._blocked_until = max(self._blocked_until, self._clock() + seconds)
        if rate_limited:
            self._margin = _CAUTIOUS_MARGIN

    def _window_over(self) -> bool:
        return self._reset is None or self._wall() >= self._reset + self._margin

    def _observe(self, headers: Mapping[str, str]) -> None:
        window, problem = read_rate_limit(headers, now=self._wall(), max_wait=self._max_wait)
        if problem is not None and self._notice is not None:
            self._notice(problem)
        if window is None:
            if self._window_over():
                self._unpaced, self._reset = True, None
            return
        remaining, reset = window.remaining, window.reset
        self._unpaced = False
        if self._reset is None or reset > self._reset:  # a newer window
            self._remaining, self._reset = remaining, reset
        elif reset == self._reset:
            # Responses arrive out of order; within a window the lowest count is the latest.
            self._remaining = min(self._remaining, remaining)
        # else: a late response from a window already over tells nothing now.

    def _delay(self) -> float | None:
        """0 to send now, seconds to sleep, or None to wait for a request in flight to end."""
        blocked = self._blocked_until - self._clock()
        if blocked > 0:
            return blocked
        if self._unpaced:
            return 0.0
        if self._window_over():
            # Nothing known about the window we are in: one request finds out for everyone.
            return 0.0 if self.in_flight == 0 else None
        if self._remaining - self.in_flight > 0:
            return 0.0
        if self.in_flight:
            return None
        assert self._reset is not None  # _window_over() is False
        # Reset was capped when read; the margin on top must not stretch one wait past the cap.
        return min(self._reset + self._margin - self._wall(), self._max_wait)

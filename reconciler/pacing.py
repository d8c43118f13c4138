"""When the next request to Lofty may go out, so that a large apply runs at the allowed rate.

Lofty reports ``X-RateLimit-Remaining`` and ``X-RateLimit-Reset`` (epoch seconds) on every
response and answers 429 beyond them. The :class:`Pacer` turns those headers into waits:

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
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Mapping

# How long past Reset to wait before a new window is assumed. Reset is whole epoch seconds: a
# server that rounds its window's end up (as the sandbox does) is safe to call right at Reset,
# one that rounds down is not until up to a second later. Start eager and, once a 429 shows the
# server disagrees, wait the full second from then on.
_EAGER_MARGIN = 0.05
_CAUTIOUS_MARGIN = 1.0

# Values this small cannot be a current epoch timestamp; such a server sends seconds-until-reset.
_EPOCH_THRESHOLD = 1e9


def parse_rate_limit(headers: Mapping[str, str], *, now: float) -> tuple[int, float] | None:
    """Return ``(remaining, reset_epoch)`` from the headers, or None when either is absent/bad."""
    try:
        remaining = int(headers["x-ratelimit-remaining"])
        reset = float(headers["x-ratelimit-reset"])
    except (KeyError, ValueError):
        return None
    if remaining < 0 or not math.isfinite(reset):
        return None
    return remaining, (now + reset if reset < _EPOCH_THRESHOLD else reset)


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
    ) -> None:
        self._interval = 60.0 / rate_limit_per_minute if rate_limit_per_minute else 0.0
        self._sleep = sleep
        self._clock = clock
        self._wall = wall
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
        """Let no request out for ``seconds``; ``rate_limited`` when the server answered 429."""
        self._blocked_until = max(self._blocked_until, self._clock() + seconds)
        if rate_limited:
            self._margin = _CAUTIOUS_MARGIN

    def _window_over(self) -> bool:
        return self._reset is None or self._wall() >= self._reset + self._margin

    def _observe(self, headers: Mapping[str, str]) -> None:
        parsed = parse_rate_limit(headers, now=self._wall())
        if parsed is None:
            if self._window_over():
                self._unpaced, self._reset = True, None
            return
        remaining, reset = parsed
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
        return self._reset + self._margin - self._wall()

"""The retry policy, on tenacity: which failures are tried again, how long to wait before the
next attempt, and when to stop.

* **Retried**: a 429 or 5xx (:class:`~reconciler.client.call.RetryableAnswer`) and no answer at
  all (:class:`~reconciler.client.call.NoAnswer`: a connection failure or timeout). Every other
  outcome ends the call at once, as it came.
* **Wait**: full-jitter exponential backoff -- uniform in ``[0, min(10, 0.5 * 2**(n-1))]``
  seconds before retry ``n`` -- but at least what the server asked for (``Retry-After``, or
  until ``X-RateLimit-Reset`` for a 429), and never more than ``max_wait``.
* **Stop**, judged against when the next attempt would start: once the run is over (the
  credential was refused, or the silence could outlast ``unreachable_deadline``, see
  :mod:`.watch`), after ``max_attempts``, or when ``lead_deadline`` would have passed.
* **Before each wait**: the retry is counted and logged at INFO.

The sleep is the client's own (injectable), so tests that retry cost no real time.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    RetryError,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from reconciler.client.call import Call, ClientStats, NoAnswer, RetryableAnswer
from reconciler.client.scrub import Voice
from reconciler.client.settings import ClientSettings
from reconciler.client.watch import Watch
from reconciler.errors import ApiError

# The package's one logger, as before it was split: users filter on "reconciler.client".
log = logging.getLogger("reconciler.client")

# Backoff before retry n (from 1) is uniform in [0, min(cap, base * 2**(n-1))] ("full jitter").
_BACKOFF_BASE = 0.5
_BACKOFF_CAP = 10.0

_T = TypeVar("_T")


class RetryPolicy:
    """Runs each request's attempts under the policy above; one per client."""

    def __init__(
        self,
        settings: ClientSettings,
        *,
        watch: Watch,
        voice: Voice,
        stats: ClientStats,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]],
    ) -> None:
        self._settings = settings
        self._watch = watch
        self._voice = voice
        self._stats = stats
        self._clock = clock
        self._sleep = sleep
        self._wait = _WaitForServer(
            wait_random_exponential(multiplier=_BACKOFF_BASE, max=_BACKOFF_CAP),
            cap=settings.max_wait,
        )
        self._stop_when_over = _StopWhenRunOver(watch, clock)

    async def run(self, call: Call, attempt: Callable[[Call], Awaitable[_T]]) -> _T:
        """``attempt(call)`` until it succeeds, fails for good, or the policy gives up on it.

        Giving up raises :class:`~reconciler.errors.ApiError` ("gave up after ..."), or the
        run's own error once the run is over (:meth:`Watch.run_over`).
        """
        self._watch.check_open()
        # A fresh AsyncRetrying per call: tenacity keeps a run's state (its statistics, the
        # steps of the decision under way) on the object, shared by every task of a thread.
        retrying = AsyncRetrying(
            sleep=self._sleep,
            retry=retry_if_exception_type((RetryableAnswer, NoAnswer)),
            after=partial(_remember_failure, call),
            wait=self._wait,
            stop=(
                # The watch first: it must see every failure, to declare the API unreachable.
                self._stop_when_over
                | stop_after_attempt(self._settings.max_attempts)
                | _StopAtDeadline(call, self._settings.lead_deadline, self._clock)
            ),
            before_sleep=partial(self._before_sleep, call),
        )
        try:
            return await retrying(attempt, call)
        except RetryError:
            if self._watch.ended:
                raise self._watch.run_over() from None
            raise gave_up(call, voice=self._voice, now=self._clock()) from None

    def _before_sleep(self, call: Call, state: RetryCallState) -> None:
        self._stats.retries += 1
        log.info(
            "%s: %s; retrying in %.1f s (attempt %d of %d)",
            call.what,
            call.last,
            state.upcoming_sleep,
            call.attempts + 1,
            self._settings.max_attempts,
        )


def gave_up(call: Call, *, voice: Voice, now: float) -> ApiError:
    """The error for a call out of attempts or time, naming its last transient failure."""
    last = call.last
    attempts, elapsed = call.attempts, call.elapsed(now)
    return voice.error(
        ApiError,
        f"gave up after {attempts} attempt{'s' if attempts != 1 else ''} "
        f"in {elapsed:.0f} s; last: {last}",
        status=last.status if isinstance(last, RetryableAnswer) else None,
        code=last.code if isinstance(last, RetryableAnswer) else None,
    )


class _WaitForServer(wait_base):
    """``backoff``, or longer if the server asked for longer; never more than ``cap``."""

    def __init__(self, backoff: wait_base, *, cap: float) -> None:
        self._backoff = backoff
        self._cap = cap

    def __call__(self, retry_state: RetryCallState) -> float:
        failure = _failure(retry_state)
        hint = failure.wait_hint if isinstance(failure, RetryableAnswer) else 0.0
        return min(max(self._backoff(retry_state), hint), self._cap)


class _StopWhenRunOver(stop_base):
    """Stop once the run is over: the credential was refused, or Lofty has been silent so long
    that the next attempt could still be failing when ``unreachable_deadline`` passes.
    """

    def __init__(self, watch: Watch, clock: Callable[[], float]) -> None:
        self._watch = watch
        self._clock = clock

    def __call__(self, retry_state: RetryCallState) -> bool:
        now = self._clock()
        return self._watch.silence_ends_run(
            now=now, resumes=now + retry_state.upcoming_sleep, last=_failure(retry_state)
        )


class _StopAtDeadline(stop_base):
    """Stop when the next attempt would start ``deadline`` seconds or more after the first."""

    def __init__(self, call: Call, deadline: float, clock: Callable[[], float]) -> None:
        self._call = call
        self._deadline = deadline
        self._clock = clock

    def __call__(self, retry_state: RetryCallState) -> bool:
        resumes = self._clock() + retry_state.upcoming_sleep
        return self._call.elapsed(resumes) >= self._deadline


def _remember_failure(call: Call, retry_state: RetryCallState) -> None:
    # A later attempt that pacing holds back past the deadline gives up naming this failure.
    call.last = _failure(retry_state)


def _failure(retry_state: RetryCallState) -> RetryableAnswer | NoAnswer:
    """The failure of the attempt just made: one of the two kinds the policy retries."""
    outcome = retry_state.outcome
    failure = outcome.exception() if outcome is not None else None
    assert isinstance(failure, RetryableAnswer | NoAnswer), failure
    return failure

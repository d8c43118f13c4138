"""What ends a whole run rather than one request: the first refused credential (401/403), and
an API that has given no answer at all for ``unreachable_deadline``.

Once either happened every call, in flight or new, fails at once with the same error
(:class:`~reconciler.errors.AuthError` or :class:`~reconciler.errors.ApiUnreachableError`),
so a run with a wrong credential or a dead endpoint stops in one step instead of failing lead
by lead.
"""

from __future__ import annotations

from reconciler.client.scrub import Voice
from reconciler.client.settings import ClientSettings
from reconciler.errors import ApiError, ApiUnreachableError, AuthError


class Watch:
    """The two run-ending watches, shared by every request of one client."""

    def __init__(self, settings: ClientSettings, voice: Voice) -> None:
        self._settings = settings
        self._voice = voice
        self._last_answer: float | None = None  # clock time of the latest HTTP response
        self._silent_since: float | None = None  # start of the current run of no answers
        self._unreachable: str | None = None  # the error message, once declared unreachable
        self._refused: AuthError | None = None  # the first 401/403, which ends the run

    @property
    def ended(self) -> bool:
        """Whether the credential was refused or Lofty was declared unreachable."""
        return self._refused is not None or self._unreachable is not None

    def answered(self, now: float) -> None:
        """An HTTP response (any status) arrived at clock time ``now``: Lofty is up."""
        self._last_answer, self._silent_since = now, None

    def no_answer(self, *, since: float) -> None:
        """A request sent at clock time ``since`` got no (complete) answer."""
        # A response that arrived after this request went out proves the server was up then.
        if self._last_answer is not None:
            since = max(since, self._last_answer)
        if self._silent_since is None:
            self._silent_since = since

    def refused(self, error: AuthError) -> None:
        """Lofty refused the credential; later calls all end with the first refusal."""
        if self._refused is None:
            self._refused = error

    def silence_ends_run(self, *, now: float, resumes: float, last: object) -> bool:
        """Whether the run is over, declaring Lofty unreachable first if, with the next attempt
        starting at ``resumes``, the silence could outlast ``unreachable_deadline``.
        """
        if self._unreachable is None and self._silent_since is not None:
            # Stop now if the next attempt could still be failing when the deadline passes.
            silent_for = resumes + self._settings.attempt_deadline - self._silent_since
            if silent_for >= self._settings.unreachable_deadline:
                self._unreachable = self._voice.scrub(
                    f"Lofty at {self._settings.base_url} has not answered for "
                    f"{now - self._silent_since:.0f} s (last: {last}); stopping. "
                    "Check LOFTY_API_URL and the network, then try again"
                )
        return self.ended

    def check_open(self) -> None:
        """Fail at once when an earlier answer already ended the run."""
        if self.ended:
            raise self.run_over()

    def run_over(self) -> ApiError:
        """The error every call ends with once the credential was refused or Lofty went silent."""
        if self._refused is not None:
            refused = self._refused
            return AuthError(str(refused), status=refused.status, code=refused.code)
        assert self._unreachable is not None
        return ApiUnreachableError(self._unreachable)

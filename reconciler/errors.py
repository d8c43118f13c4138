"""The exceptions a user can meet, under one base the CLI maps to exit code 1.

Messages say what went wrong and what to do about it. None of them may carry a credential.
"""

from __future__ import annotations

from dataclasses import dataclass


class ReconcilerError(Exception):
    """Base of every error the CLI reports as a clean message (exit code 1)."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem in one lead file: where it is and what is wrong."""

    file: str
    line: int | None
    field: str | None
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return (
            f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )


class InvalidLeadFilesError(ReconcilerError):
    """One or more lead files are invalid; nothing may be sent while any is."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class StateError(ReconcilerError):
    """The state cannot be read or written (corrupt, unknown version, unreachable)."""


class StateLockedError(StateError):
    """Another process holds the state lock; wait for it or raise --lock-timeout."""


class StalePlanError(ReconcilerError):
    """A saved plan was made against a state that has moved on since; plan again."""


class PlanFileError(ReconcilerError):
    """A saved plan file cannot be read (missing, corrupt, or of an unknown format)."""


class ConfigError(ReconcilerError):
    """Settings are missing or unsafe (no credential, plain http to a remote host, ...)."""


class ApiError(ReconcilerError):
    """Lofty refused a request for good (a 4xx other than 429), or retries ran out."""

    def __init__(self, message: str, *, status: int | None = None, code: int | None = None) -> None:
        self.status = status
        self.code = code
        super().__init__(message)


class LeadsFolderError(ReconcilerError):
    """The folder of lead files (`--dir`) does not exist or is not a folder; pass the right one."""


class UnknownTargetError(ReconcilerError):
    """A `--target` names no lead or lead file in the tree or the state; check for a typo."""


class UsageError(ReconcilerError):
    """Options that cannot be used together, or a command used in a way it cannot honour."""


class ApiUnreachableError(ApiError):
    """Lofty gave no answer at all for too long; the run stops instead of failing lead by lead.

    Check ``LOFTY_API_URL`` and the network (proxy, firewall, DNS), then apply again: leads not
    applied stay pending in the state.
    """


class AuthError(ApiError):
    """Lofty refused the credential (401/403); every later request would fail the same way.

    The message says which variable was in use and how each one is sent, so a key put in the
    wrong variable (or an expired token) is easy to spot.
    """


class LeadNotFoundError(ApiError):
    """Lofty has no such lead, or the credential cannot see it (404 / ``20006 LEAD_NOT_EXIST``)."""


class SandboxError(ReconcilerError):
    """The sandbox cannot start or cannot do what it was asked: a seed file that is not a list
    of valid leads, a port already in use, an admin request about a lead it does not hold."""


class WriteBackError(ReconcilerError):
    """Lofty's value cannot be written into a lead file (`plan --write-drift`): the lead or the
    field is not in the file any more, the file cannot be written, or the value would not read
    back as itself or would make the file invalid. The file is left as it was: plan again, or
    edit it by hand."""

"""Text the client shows, made safe: the credential scrubbed out in every form a server or proxy
might echo it in (:class:`Scrubber`), then escaped and cut (:class:`Voice`).

Order matters: server text is scrubbed *before* it is cut, so a secret cut in half cannot slip
through as a fragment, and scrubbed again after escaping. Every error the client raises and
every one-time notice it gives goes through the one :class:`Voice`.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import urllib.parse
from collections.abc import Callable
from typing import TypeVar

from reconciler.client.settings import Credentials
from reconciler.errors import ApiError
from reconciler.pacing import HeaderProblem
from reconciler.sanitize import clean

# The package's one logger, as before it was split: users filter on "reconciler.client".
log = logging.getLogger("reconciler.client")

# Server text shown in a message: scrubbed within a window well past the cut, then cut.
_ERROR_TEXT_LIMIT = 200
_SCRUB_WINDOW = 4096

_E = TypeVar("_E", bound=ApiError)


class Scrubber:
    """Removes the credential from text in any form a server or proxy might echo it in.

    The forms: the secret itself, URL- and JSON-encoded, and base64 (standard and URL-safe) of
    the secret and of the whole header value at each of the three byte alignments -- only the
    characters that depend on nothing but the secret, so a surrounding byte cannot hide it. Any
    run of :data:`RUN` characters of a form is removed too, so a form cut short leaks nothing.
    """

    RUN = 8

    def __init__(self, credentials: Credentials) -> None:
        secret = credentials.secret
        quoted = urllib.parse.quote(secret, safe="")
        forms = {
            secret,
            quoted,
            re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), quoted),
            urllib.parse.quote_plus(secret),
            json.dumps(secret)[1:-1],
        }
        for data in (secret.encode(), credentials.header().encode()):
            for shift in range(3):
                for encode in (base64.b64encode, base64.urlsafe_b64encode):
                    forms.add(_base64_core(data, shift, encode))
        self._secret = secret
        self._runs = {
            form[i : i + self.RUN]
            for form in forms
            if len(form) >= self.RUN
            for i in range(len(form) - self.RUN + 1)
        }

    def __call__(self, text: str) -> str:
        text = text.replace(self._secret, "***")  # however short the secret, the whole of it
        hits = bytearray(len(text))
        for i in range(len(text) - self.RUN + 1):
            if text[i : i + self.RUN] in self._runs:
                hits[i : i + self.RUN] = b"\x01" * self.RUN
        if not any(hits):
            return text
        out: list[str] = []
        for i, ch in enumerate(text):
            if not hits[i]:
                out.append(ch)
            elif i == 0 or not hits[i - 1]:
                out.append("***")
        return "".join(out)


def _base64_core(data: bytes, shift: int, encode: Callable[[bytes], bytes]) -> str:
    """The base64 characters of ``data`` that stay the same wherever ``data`` starts, mod 3."""
    encoded = encode(b"\0" * shift + data).decode()
    first = -(-8 * shift // 6)  # the first character made of data bits only
    end = 8 * (shift + len(data)) // 6  # past the last one
    return encoded[first:end]


class Voice:
    """Everything the client says: server text (:meth:`clip`), errors (:meth:`error`) and the
    one-time remarks about implausible rate-limit headers (:meth:`header_notice`), which go to
    ``notice`` or, without it, to the log as warnings.
    """

    def __init__(self, credentials: Credentials, notice: Callable[[str], None] | None) -> None:
        self.scrub = Scrubber(credentials)
        self._notice = notice
        self._said: set[str] = set()

    def clip(self, text: str, limit: int = _ERROR_TEXT_LIMIT) -> str:
        """Server text made safe to show: credential scrubbed *before* it is cut, escaped."""
        text = self.scrub(clean(self.scrub(text[:_SCRUB_WINDOW])))
        return text if len(text) <= limit else text[: limit - 1] + "…"

    def error(
        self,
        kind: type[_E],
        message: str,
        *,
        status: int | None = None,
        code: int | None = None,
    ) -> _E:
        # Every piece was scrubbed already; the whole is scrubbed once more as a last line.
        return kind(self.scrub(message), status=status, code=code)

    def header_notice(self, problem: HeaderProblem) -> None:
        """Say once per header that its value was implausible and what was done instead."""
        if problem.header in self._said:
            return
        self._said.add(problem.header)
        text = f"Lofty's {problem.header} header '{self.clip(problem.value, 40)}' {problem.action}"
        if self._notice is not None:
            self._notice(text)
        else:
            log.warning("%s", text)

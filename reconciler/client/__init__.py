"""The Lofty API client that ``apply`` and ``import`` drive: one pooled httpx client, paced and
retried, with every wait bounded, every read capped and the credential never shown.

Settings come from the environment (:func:`settings_from_env`): ``LOFTY_API_URL`` (default
``https://api.lofty.com``; plain http only to loopback) and a credential, ``LOFTY_ACCESS_TOKEN``
(sent as ``Authorization: Bearer ...``) or ``LOFTY_API_KEY`` (``Authorization: token ...``).
A proxy comes from ``HTTPS_PROXY``/``ALL_PROXY`` (``NO_PROXY`` honoured); a loopback API URL
never goes through one, so the credential never crosses a network in clear.

What :class:`LoftyClient` offers (use it as ``async with LoftyClient(settings) as client``):

* :meth:`~LoftyClient.check_access` -- one cheap authenticated request, made before a plan is
  shown for confirmation, so a wrong credential or URL is said at once.
* :meth:`~LoftyClient.update_lead` -- ``PUT /v1.0/leads/{leadId}``.
* :meth:`~LoftyClient.get_lead` -- ``GET /v1.0/leads/{leadId}``, the raw ``lead`` object.
* :meth:`~LoftyClient.list_leads` -- ``GET /v1.0/leads``, every matching raw lead across pages.
* ``stats`` -- requests sent (in all and per method), 429s and retries, for summaries and
  benchmarks.

Every request takes the same path: paced from the server's rate-limit headers
(:mod:`reconciler.pacing`); 429, 5xx, timeouts and dropped connections retried with jittered
exponential backoff, honouring ``Retry-After`` and ``X-RateLimit-Reset``, until ``max_attempts``
or ``lead_deadline``; no single wait longer than ``max_wait``; each attempt (request and whole
response) within ``attempt_deadline``; a response body read only up to a cap. Other answers fail
at once with the server's message:

* 401/403: :class:`~reconciler.errors.AuthError`, and every later call fails at once with it.
* 404 (or ``20006 LEAD_NOT_EXIST``) for a lead: :class:`~reconciler.errors.LeadNotFoundError`.
* No answer at all for ``unreachable_deadline``: :class:`~reconciler.errors.ApiUnreachableError`,
  and every later call fails at once with it.
* Anything else: :class:`~reconciler.errors.ApiError` (``status``/``code`` set when known).

Server text in a message is scrubbed of the credential (also base64 and URL-encoded forms, and
any run of 8 of its characters) *before* it is cut to length, and control characters are
escaped (:func:`reconciler.sanitize.clean`). A header that had to be capped or ignored is said
once, through ``notice``.

Where each part lives:

* :mod:`.settings` -- :class:`ClientSettings`, :class:`Credentials`, :func:`settings_from_env`,
  the URL and proxy checks.
* :mod:`.lofty` -- :class:`LoftyClient`, which builds the parts below and offers the calls.
* :mod:`.reads` -- the access check, one lead, the lead list and its paging.
* :mod:`.retry` -- the retry policy on tenacity: what is retried, the wait, when to stop.
* :mod:`.attempts` -- one attempt: connection slot, pacing, deadline, capped body.
* :mod:`.answers` -- judging an answer: the payload, or the error it means.
* :mod:`.watch` -- the refused credential and the silent API, which end a whole run.
* :mod:`.scrub` -- the credential scrubbed from anything shown; errors and notices.
* :mod:`.call` -- the records passed between them, and :class:`ClientStats`.
"""

from __future__ import annotations

from reconciler.client.answers import LEAD_NOT_EXIST
from reconciler.client.call import ClientStats
from reconciler.client.lofty import LoftyClient
from reconciler.client.reads import LIST_FILTERS, MAX_PAGE_SIZE, Page
from reconciler.client.settings import (
    DEFAULT_API_URL,
    ClientSettings,
    Credentials,
    settings_from_env,
)

__all__ = [
    "DEFAULT_API_URL",
    "LEAD_NOT_EXIST",
    "LIST_FILTERS",
    "MAX_PAGE_SIZE",
    "ClientSettings",
    "ClientStats",
    "Credentials",
    "LoftyClient",
    "Page",
    "settings_from_env",
]

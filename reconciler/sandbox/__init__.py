"""`reconciler sandbox`: a Lofty-compatible HTTP server on loopback, for demos, dry runs, tests
and benchmarks.

It behaves as the vendor documents its lead endpoints (`reference/lofty-update-lead.txt` and the
OpenAPI file shipped as `reconciler/data/lofty-openapi-leads.json`): `PUT /v1.0/leads/{leadId}`
with the documented validation, merging and silent truncation; `GET /v1.0/leads/{leadId}` and
`GET /v1.0/leads` in the vendor's response shape; both auth schemes; 404 `LEAD_NOT_EXIST`;
`X-RateLimit-*` headers and 429 past the limit; optional latency and injected faults; and admin
endpoints (no auth) to seed leads, read counters and edit or delete a lead as an agent would.

Its rooms, in the order a request meets them:
    config   SandboxConfig: how it listens, what it holds at start, how it misbehaves
    runner   Sandbox: start, stop, and the admin actions as Python; serve() for the CLI
    server   HTTP: the threading server, its bounds (body cap, timeouts), the request log
    api      routes, auth, rate limit, faults, counters, the admin endpoints
    rules    what Lofty refuses in an Update Lead body (an independent copy of the model's
             rules, on purpose: see its docstring), and how it cuts what it keeps
    store    the leads held, how a PUT or an agent's edit changes them, the response shape
    listing  the list endpoint: filters, returnFields, offset and scroll paging, short pages
    seed     seed files and realistic generated leads
"""

from __future__ import annotations

from reconciler.errors import SandboxError
from reconciler.sandbox.api import UNLIMITED
from reconciler.sandbox.config import SandboxConfig
from reconciler.sandbox.rules import Rejection, check_update
from reconciler.sandbox.runner import Sandbox, serve
from reconciler.sandbox.seed import GeneratedLead, generate_leads, load_seed
from reconciler.sandbox.server import MAX_BODY_BYTES
from reconciler.sandbox.store import PIPELINE

__all__ = [
    "MAX_BODY_BYTES",
    "PIPELINE",
    "UNLIMITED",
    "GeneratedLead",
    "Rejection",
    "Sandbox",
    "SandboxConfig",
    "SandboxError",
    "check_update",
    "generate_leads",
    "load_seed",
    "serve",
]

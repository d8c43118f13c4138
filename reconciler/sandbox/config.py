"""How a sandbox listens, what it holds at start, and how it misbehaves: one frozen settings object.

Every setting has a default that behaves like a well-mannered Lofty: no latency, no faults, no
rate limit, every lead id exists. Invalid values raise ValueError on construction, so a bad
setting is reported before anything listens.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

MetadataKey = Literal["_metadata", "get_metadata"]
METADATA_KEYS: tuple[MetadataKey, ...] = ("_metadata", "get_metadata")


@dataclass(frozen=True, kw_only=True)
class SandboxConfig:
    """How a sandbox listens and misbehaves. Invalid values raise ValueError on construction."""

    host: str = "127.0.0.1"
    port: int = 0  # 0 = pick a free port
    latency_ms: float = 0.0  # added to every API request (PUT, GET and list alike)
    fault_rate: float = 0.0  # fraction of API requests answered with an injected fault
    rate_limit: int | None = None  # requests allowed per window; None = unlimited
    rate_window: float = 60.0  # seconds per window (tests use short windows)
    seed_file: Path | None = None  # when given, only seeded (and later registered) leads exist
    generate: int = 0  # realistic leads to create at start; like a seed file, closes the world
    credentials: frozenset[str] = frozenset()  # accepted secrets; empty = any non-empty secret
    random_seed: int | None = None  # makes faults, short pages and generated leads reproducible
    # Where the list endpoint puts its paging metadata: Lofty answers `_metadata`, while the
    # vendor's own schema names it `get_metadata`; clients are tested against both.
    metadata_key: MetadataKey = "_metadata"
    short_page_rate: float = 0.25  # fraction of list pages cut below `limit` before the end
    request_timeout: float = 30.0  # seconds from a request's first byte to its last answer byte

    def __post_init__(self) -> None:
        if not is_loopback(self.host):
            raise ValueError(
                f"the sandbox only listens on loopback, not {self.host!r}: use 127.0.0.1 or ::1"
            )
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be between 0 and 65535, not {self.port}")
        if not (self.latency_ms >= 0 and math.isfinite(self.latency_ms)):
            raise ValueError(f"latency must be a non-negative number of ms, not {self.latency_ms}")
        _check_fraction("fault rate", self.fault_rate)
        _check_fraction("short page rate", self.short_page_rate)
        if self.rate_limit is not None and self.rate_limit < 1:
            raise ValueError(f"rate limit must be at least 1 request, not {self.rate_limit}")
        if not (self.rate_window > 0 and math.isfinite(self.rate_window)):
            raise ValueError(f"rate window must be a positive number of s, not {self.rate_window}")
        if self.generate < 0:
            raise ValueError(f"the number of leads to generate must be >= 0, not {self.generate}")
        if self.metadata_key not in METADATA_KEYS:
            raise ValueError(f"metadata key must be one of {', '.join(METADATA_KEYS)}")
        # Latency is served inside a request's time, so it must leave room for the answer.
        if not (
            self.request_timeout > self.latency_ms / 1000 and math.isfinite(self.request_timeout)
        ):
            raise ValueError(
                f"request timeout must be a number of s above the latency, "
                f"not {self.request_timeout}"
            )

    @property
    def closed_world(self) -> bool:
        """Whether only seeded, generated and registered leads exist (else every leadId does)."""
        return self.seed_file is not None or self.generate > 0


def is_loopback(host: str) -> bool:
    """Whether `host` names this machine only (`localhost`, 127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_fraction(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be between 0 and 1, not {value}")

"""Sandbox settings: a bad one is refused before anything listens."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.sandbox import SandboxConfig


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "example.com", "::"])
def test_non_loopback_host_is_refused(host: str) -> None:
    with pytest.raises(ValueError, match="loopback"):
        SandboxConfig(host=host)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_loopback_hosts_are_accepted(host: str) -> None:
    assert SandboxConfig(host=host).host == host


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"port": 70000}, "port must be between 0 and 65535"),
        ({"latency_ms": -1}, "latency must be a non-negative number"),
        ({"latency_ms": float("nan")}, "latency must be a non-negative number"),
        ({"fault_rate": 1.5}, "fault rate must be between 0 and 1"),
        ({"short_page_rate": -0.1}, "short page rate must be between 0 and 1"),
        ({"rate_limit": 0}, "rate limit must be at least 1"),
        ({"rate_window": 0}, "rate window must be a positive number"),
        ({"generate": -3}, "number of leads to generate must be >= 0"),
        ({"metadata_key": "metadata"}, "metadata key must be one of _metadata, get_metadata"),
        ({"request_timeout": 0.1, "latency_ms": 200}, "request timeout must be a number of s"),
        ({"request_timeout": float("inf")}, "request timeout must be a number of s"),
    ],
)
def test_invalid_settings_are_value_errors(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SandboxConfig(**settings)


def test_a_seed_or_generated_leads_close_the_world(tmp_path: Any) -> None:
    assert not SandboxConfig().closed_world
    assert SandboxConfig(generate=1).closed_world
    assert SandboxConfig(seed_file=tmp_path / "seed.yaml").closed_world

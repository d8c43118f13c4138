"""`reconciler sandbox`: serve a Lofty-compatible API on loopback until interrupted."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from reconciler.commands import EXIT_OK
from reconciler.console import Console, secrets_in
from reconciler.errors import ConfigError


@dataclass(frozen=True, kw_only=True)
class SandboxOptions:
    port: int = 0
    latency_ms: float = 0.0
    fault_rate: float = 0.0
    rate_limit: int | None = None
    rate_window: float = 60.0
    seed: Path | None = None
    random_seed: int | None = None
    generate: int = 0
    metadata_key: Literal["_metadata", "get_metadata"] = "_metadata"
    short_page_rate: float = 0.25


def sandbox(options: SandboxOptions, console: Console) -> int:
    """Serve until Ctrl-C or SIGTERM; with a credential in the environment, only it is accepted."""
    from reconciler.sandbox import SandboxConfig, serve

    secrets = frozenset(secrets_in(console.env))
    try:
        config = SandboxConfig(
            port=options.port,
            latency_ms=options.latency_ms,
            fault_rate=options.fault_rate,
            rate_limit=options.rate_limit,
            rate_window=options.rate_window,
            seed_file=options.seed,
            credentials=secrets,
            random_seed=options.random_seed,
            generate=options.generate,
            metadata_key=options.metadata_key,
            short_page_rate=options.short_page_rate,
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None

    def ready(url: str) -> None:
        console.say(f"Sandbox listening on {url}")
        console.note(f"Point the tool at it: export LOFTY_API_URL={url}  (Ctrl-C stops it)")

    serve(config, ready=ready, log=console.note)
    return EXIT_OK

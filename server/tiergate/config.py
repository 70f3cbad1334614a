"""Service configuration: ``TIERGATE_*`` environment variables, overridable by flags.

Every setting is one field of :class:`Settings`, documented where it is declared; the
environment variable is the field name upper-cased with the ``TIERGATE_`` prefix (the
Anthropic key and base URL keep their standard ``ANTHROPIC_*`` names).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from tiergate.ledger import PriceTable
from tiergate.tiers import DEFAULT_MODELS, Tier

CacheTtl = Literal["5m", "1h", "auto"]
EmulatorLatency = Literal["none", "seed"]
Upstream = Literal["anthropic", "emulator"]


@dataclass(frozen=True)
class Settings:
    """Everything the service can be told at start-up."""

    host: str = "0.0.0.0"
    """Interface the gRPC server and /metrics listen on. The default, all interfaces, is what a
    container needs (the pod's network is its boundary); on a workstation bind ``127.0.0.1``
    so nothing else on the network reaches the service."""
    port: int = 50051
    """gRPC port."""
    fast_model: str = DEFAULT_MODELS[Tier.FAST]
    """Model serving the fast tier (Classify, Summarize, Extract, Answer, Moderate)."""
    balanced_model: str = DEFAULT_MODELS[Tier.BALANCED]
    """Model serving the balanced tier (Reason)."""
    frontier_model: str = DEFAULT_MODELS[Tier.FRONTIER]
    """Model serving the frontier tier (no RPC uses it yet; still priced at start-up)."""
    cache_ttl: CacheTtl = "auto"
    """TTL of the prompt-cache breakpoints: 5m (writes at 1.25x), 1h (writes at 2x), or auto:
    per stable prefix, 1h while its observed reuse gap lies between five minutes and an hour
    (one 2x write then reads, instead of a 1.25x write on every call), else 5m."""
    upstream_timeout_s: float = 60.0
    """Longest single upstream attempt; the caller's deadline shortens it further."""
    max_attempts: int = 3
    """Upstream attempts per model call (first try plus retries on 429/5xx/connection errors)."""
    max_reasks: int = 1
    """Extra billed calls allowed when the model's output is truncated, malformed or invalid."""
    max_message_bytes: int = 4 * 1024 * 1024
    """Largest gRPC request accepted."""
    max_concurrency: int = 1024
    """Model calls in flight per tier on this replica; beyond it callers queue."""
    max_queue: int = 4096
    """Calls that may wait for a slot per tier; beyond it RESOURCE_EXHAUSTED at once."""
    queue_timeout_s: float = 30.0
    """Longest wait for a slot of a call without a deadline; a caller's deadline bounds the
    wait of its own call instead."""
    drain_delay_s: float = 0.0
    """On SIGTERM, how long to keep serving while health says NOT_SERVING, so load balancers
    that watch health stop sending first (Kubernetes' preStop sleep does this job there)."""
    drain_grace_s: float = 25.0
    """On SIGTERM, how long in-flight RPCs may take to finish before the process exits."""
    max_connection_age_s: float = 300.0
    """Clients reconnect after this long, so new replicas get traffic behind kube-proxy."""
    max_connection_age_grace_s: float = 120.0
    """After max_connection_age_s, how long an open connection's calls may still finish."""
    tls_cert_file: str | None = None
    """PEM certificate chain of the server; with tls_key_file, the server speaks TLS only."""
    tls_key_file: str | None = None
    """PEM private key of the server certificate."""
    tls_client_ca_file: str | None = None
    """PEM CA bundle; when set, callers must present a certificate it signed (mTLS)."""
    auth_tokens_file: str | None = None
    """File of ``caller=token`` lines; when set, task RPCs need ``authorization: Bearer``."""
    metrics_port: int = 0
    """Port of the Prometheus /metrics endpoint; 0 turns it off."""
    upstream: Upstream = "anthropic"
    """Where model calls go: ``anthropic`` (the Messages API, needs ANTHROPIC_API_KEY) or
    ``emulator``, the embedded emulator's heuristic answers (development and tests only)."""
    emulator_port: int = 0
    """Port of the embedded emulator (0 = any free port); used only with upstream=emulator."""
    emulator_latency: EmulatorLatency = "none"
    """Simulated latency of the embedded emulator: none, or the seed article's per-model figures."""
    emulator_fixed_delay_s: float = 0.0
    """Extra delay the embedded emulator adds to every answer (for load tests)."""
    anthropic_api_key: str | None = field(default=None, repr=False)
    """ANTHROPIC_API_KEY: required with upstream=anthropic; without it the service refuses to
    start."""
    anthropic_base_url: str | None = None
    """ANTHROPIC_BASE_URL: where the real API is (the SDK default when unset)."""
    shadow: str = ""
    """Mirror a share of successful calls to another tier and score agreement, after the reply:
    ``Classify=balanced:0.05,Extract=balanced:0.02`` (task=tier:fraction); empty = off."""
    shadow_budget_usd: str = ""
    """Most that shadow calls may spend per UTC day, in US dollars (required with shadow)."""
    shadow_concurrency: int = 4
    """Shadow calls in flight at once; a call that finds them all busy is dropped, counted."""

    def __post_init__(self) -> None:
        # Flags and environment both land here, so every value is checked once, in one place.
        if self.cache_ttl not in ("5m", "1h", "auto"):
            raise ValueError(f"cache_ttl must be 5m, 1h or auto, not {self.cache_ttl!r}")
        if self.upstream not in ("anthropic", "emulator"):
            raise ValueError(f"upstream must be anthropic or emulator, not {self.upstream!r}")
        if self.emulator_latency not in ("none", "seed"):
            raise ValueError(
                f"emulator_latency must be none or seed, not {self.emulator_latency!r}"
            )
        for name in ("port", "metrics_port", "emulator_port"):
            if not 0 <= getattr(self, name) <= 65535:
                raise ValueError(f"{name} must be a port number from 0 to 65535")
        for name in ("max_attempts", "max_concurrency", "max_message_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        for name in ("max_reasks", "max_queue"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be 0 or more")
        if self.queue_timeout_s <= 0:
            raise ValueError("queue_timeout_s must be more than 0")
        if bool(self.tls_cert_file) != bool(self.tls_key_file):
            raise ValueError("tls_cert_file and tls_key_file go together")
        if self.tls_client_ca_file and not self.tls_cert_file:
            raise ValueError("tls_client_ca_file (mTLS) needs tls_cert_file and tls_key_file")

    def model_for(self, tier: Tier) -> str:
        return {
            Tier.FAST: self.fast_model,
            Tier.BALANCED: self.balanced_model,
            Tier.FRONTIER: self.frontier_model,
        }[tier]

    @property
    def uses_emulator(self) -> bool:
        return self.upstream == "emulator"

    def check_upstream(self) -> None:
        """Refuse to call the real API without a key, rather than fall back to the emulator."""
        if self.upstream == "anthropic" and not (self.anthropic_api_key or "").strip():
            raise ValueError(
                "ANTHROPIC_API_KEY is missing or empty; set it, or set TIERGATE_UPSTREAM=emulator"
                " to serve the embedded emulator's heuristic answers"
            )

    def check_priced(self, table: PriceTable) -> None:
        """Refuse to run a model the ledger cannot price (raises UnpricedModelError)."""
        for tier in Tier:
            table.facts(self.model_for(tier))

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


_STANDARD_NAMES = {
    "anthropic_api_key": "ANTHROPIC_API_KEY",
    "anthropic_base_url": "ANTHROPIC_BASE_URL",
}


def env_name(field_name: str) -> str:
    return _STANDARD_NAMES.get(field_name, f"TIERGATE_{field_name.upper()}")


def from_env(environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from the environment; unknown values raise ValueError naming the variable."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for f in dataclasses.fields(Settings):
        raw = env.get(env_name(f.name))
        if raw is None or raw == "":
            continue
        values[f.name] = _parse(f, raw)
    return Settings(**values)


def _parse(f: dataclasses.Field[Any], raw: str) -> Any:
    default = f.default
    try:
        if isinstance(default, bool):
            return raw.strip().lower() in {"1", "true", "yes", "on"}
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
    except ValueError:
        raise ValueError(
            f"{env_name(f.name)}={raw!r} is not a valid {type(default).__name__}"
        ) from None
    return raw

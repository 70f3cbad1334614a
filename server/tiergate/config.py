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
StoreFailure = Literal["closed", "open"]
ROAD_NAMES = ("anthropic", "bedrock", "bedrock-invoke", "vertex", "foundry")
BEDROCK_SCOPES = ("global", "us", "eu", "jp", "apac", "au", "regional")


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
    """Model serving the frontier tier (Read)."""
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
    """Largest gRPC request accepted (tasks that send files take upload_max_bytes)."""
    upload_max_bytes: int = 32 * 1024 * 1024
    """The provider's request-size limit for tasks that send files (Read): the request as the
    API receives it, files base64-encoded, must stay within it, and gRPC takes Read messages up
    to it. 32 MB on the Claude API; set it lower where a cloud's limit is lower."""
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
    upstream: str = "anthropic"
    """Where model calls go: an ordered, comma-separated list of roads to Claude, ``anthropic``
    (the Claude API), ``bedrock`` (Amazon Bedrock's Messages API endpoint), ``bedrock-invoke``
    (Bedrock InvokeModel), ``vertex`` (Google Vertex AI), ``foundry`` (Microsoft Foundry), each
    configured by its SDK's own variables (docs/providers.md); or ``emulator`` alone, the
    embedded emulator's heuristic answers (development and tests only)."""
    bedrock_scope: str = "global"
    """Endpoint scope on Amazon Bedrock: ``global`` (the ``global.`` inference profile, list
    price), a geography profile (``us``, ``eu``, ``jp``, ``apac``, ``au``) or ``regional`` (the
    in-Region base id); every scope but global costs the regional price."""
    vertex_access_token: str | None = field(default=None, repr=False)
    """A Google access token for Vertex AI where no application default credentials exist
    (tests, short jobs); unset, the SDK uses ADC (Workload Identity on GKE)."""
    breaker_failures: int = 5
    """Failures in a row (429, 529, 5xx, network, timeouts) that open a road's breaker: the
    road is skipped until its cool-down ends, then probed by one call at a time."""
    breaker_cooldown_s: float = 10.0
    """How long an open road is skipped before one call probes it."""
    foundry_deployments: str = ""
    """Microsoft Foundry deployments not named after their model: ``model=deployment,...``."""
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
    redis_url: str | None = field(default=None, repr=False)
    """Redis holding budgets, the response cache and the rate-limit readings shared by every
    replica (``redis://host:6379/0``); unset = held in this process (one replica)."""
    budgets_file: str | None = None
    """TOML of spend limits per verified caller (``[callers.NAME]`` ``daily_usd``,
    ``monthly_usd``, optional ``[callers.NAME.tasks.TASK]``); unset = no budgets."""
    budget_store_failure: StoreFailure = "closed"
    """When the shared store is unreachable: ``closed`` refuses budgeted calls (UNAVAILABLE),
    ``open`` serves them and stores their cost once the store is back."""
    settlement_queue: int = 10000
    """Settlements held for retry while the shared store is unreachable; beyond it the oldest
    is dropped and logged."""
    response_cache_ttl_s: float = 3600.0
    """How long a cached task response is served (Classify, Extract, Moderate, Answer); 0 turns
    the response cache and in-flight coalescing off."""
    response_cache_max_entries: int = 100000
    """Most responses the cache holds; beyond it the oldest are evicted."""
    rate_limit_pacing: bool = True
    """Hold calls that the last ``anthropic-ratelimit-*`` readings say would be rate-limited,
    within the caller's deadline, instead of sending them into a 429."""

    batch_dir: str = ""
    """Directory of the embedded batch store (SQLite); empty: BatchService is not served. One
    replica only: several replicas need a shared store."""
    batch_redis_url: str = ""
    """``redis://host:port/db`` of a batch store shared by every replica; when set it replaces
    ``batch_dir`` (several replicas then serve and finish batches together)."""
    batch_poll_s: float = 5.0
    """How often the batch worker polls running upstream batches."""
    batch_lease_s: float = 60.0
    """How long a replica owns a running batch without renewing; another one then takes it
    over (a replica killed mid-batch is replaced after at most this long)."""
    batch_retention_s: float = 29 * 24 * 3600.0
    """How long a batch and its results are kept after it ends."""
    batch_max_items: int = 100_000
    """Most items one CreateBatch may carry."""
    batch_max_bytes: int = 64 * 1024 * 1024
    """Largest CreateBatch request accepted. gRPC's receive limit rises to it for every RPC
    (task RPCs still refuse more than max_message_bytes, Read more than upload_max_bytes, after
    reading it), so it bounds what one caller can make the server buffer: larger jobs are
    several batches."""
    batch_upstream_max_items: int = 100_000
    """Most requests per upstream message batch (the API's limit); larger batches are split."""
    batch_upstream_max_bytes: int = 256 * 1024 * 1024
    """Most bytes per upstream message batch (the API's limit); larger batches are split."""

    def __post_init__(self) -> None:
        # Flags and environment both land here, so every value is checked once, in one place.
        if self.cache_ttl not in ("5m", "1h", "auto"):
            raise ValueError(f"cache_ttl must be 5m, 1h or auto, not {self.cache_ttl!r}")
        roads = self.roads
        unknown = [road for road in roads if road not in (*ROAD_NAMES, "emulator")]
        if unknown or not roads or len(set(roads)) != len(roads):
            raise ValueError(
                f"upstream must list roads from {', '.join(ROAD_NAMES)} (each once), or be"
                f" emulator alone, not {self.upstream!r}"
            )
        if "emulator" in roads and len(roads) > 1:
            raise ValueError("upstream=emulator stands alone; list roads to Claude instead")
        if self.bedrock_scope not in BEDROCK_SCOPES:
            raise ValueError(
                f"bedrock_scope must be one of {', '.join(BEDROCK_SCOPES)},"
                f" not {self.bedrock_scope!r}"
            )
        if self.emulator_latency not in ("none", "seed"):
            raise ValueError(
                f"emulator_latency must be none or seed, not {self.emulator_latency!r}"
            )
        for name in ("port", "metrics_port", "emulator_port"):
            if not 0 <= getattr(self, name) <= 65535:
                raise ValueError(f"{name} must be a port number from 0 to 65535")
        for name in (
            "max_attempts",
            "max_concurrency",
            "max_message_bytes",
            "upload_max_bytes",
            "batch_max_items",
            "batch_max_bytes",
            "batch_upstream_max_items",
            "batch_upstream_max_bytes",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.budget_store_failure not in ("closed", "open"):
            raise ValueError(
                f"budget_store_failure must be closed or open, not {self.budget_store_failure!r}"
            )
        if self.response_cache_ttl_s < 0:
            raise ValueError("response_cache_ttl_s must be 0 or more")
        if self.redis_url and not self.redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("redis_url must start with redis://, rediss:// or unix://")
        for name in ("max_reasks", "max_queue", "settlement_queue", "response_cache_max_entries"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be 0 or more")
        if self.breaker_failures < 1:
            raise ValueError("breaker_failures must be at least 1")
        for name in (
            "queue_timeout_s",
            "batch_poll_s",
            "batch_lease_s",
            "batch_retention_s",
            "breaker_cooldown_s",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be more than 0")
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

    @property
    def roads(self) -> tuple[str, ...]:
        """The upstream roads in the order calls try them."""
        return tuple(road.strip() for road in self.upstream.split(",") if road.strip())

    def check_upstream(self) -> None:
        """Refuse to call the real API without a key, rather than fall back to the emulator."""
        if "anthropic" in self.roads and not (self.anthropic_api_key or "").strip():
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
"""The other providers' variables are read by their SDK clients (:mod:`tiergate.upstream.roads`)."""


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

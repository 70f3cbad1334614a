"""What one task RPC is, decided once when it arrives and passed down explicitly.

rpc = RpcContext(task="Classify", tier=Tier.FAST, model="claude-haiku-4-5",
                 caller=Caller("billing-service", verified=True), deadline=None)
"""

from __future__ import annotations

from dataclasses import dataclass

from tiergate.tiers import Tier

ANONYMOUS = "anonymous"
"""Metric label of callers that neither authenticate nor name themselves."""
UNVERIFIED = "unverified"
"""Metric label of every caller that only names itself (``x-tiergate-caller``)."""
UNAUTHENTICATED = "unauthenticated"
"""Metric label of calls refused for a missing or wrong bearer token."""


@dataclass(frozen=True)
class Caller:
    """Who is calling, as far as the service can tell."""

    label: str
    """Metric label: a verified name (token or certificate), else one of the fixed labels
    above, so callers cannot grow the metrics."""
    verified: bool = False
    """True when a bearer token or an mTLS client certificate proved the name."""
    claimed: str = ""
    """The ``x-tiergate-caller`` value, sanitized and truncated: logged, never a metric label."""


@dataclass(frozen=True)
class RpcContext:
    """One task RPC: what it runs, on which tier and model, for whom, until when."""

    task: str
    """The RPC name in ``tiergate.v1.TaskService``."""
    tier: Tier
    model: str
    caller: Caller
    deadline: float | None
    """The caller's deadline as a ``time.monotonic()`` instant; None when it set none."""
    response_cache: bool = True
    """False when the caller sent ``x-tiergate-cache: off``: no cached or coalesced answer."""

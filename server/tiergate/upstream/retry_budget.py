"""One retry budget per upstream, shared by every call to it: retries only while most recent
attempts succeed, so an outage is not multiplied by each call's retries.

It is gRPC's retry throttling (gRFC A6): a bucket of ``max_tokens`` tokens, full at start.
Each attempt that fails because the upstream is in trouble (529, 5xx, a dropped connection, an
answer that cannot be a bill) takes one token; a 429 takes none, since it says when to come
back; each answered attempt gives back ``token_ratio``. A
retry is allowed only while more than half the tokens are left. So an isolated failure is
retried at once, and a sustained outage gets fewer than ``max_tokens / 2`` retries (4) before they
stop, however many calls arrive (60 calls against a 529 on every request: 64 upstream
requests, not 180). Once the upstream answers again, every ``1 / token_ratio`` answers earn
back one failure's worth, so retries resume only when calls mostly succeed again; first
attempts are never held back.

    budget = RetryBudget()
    budget.failed()
    if budget.may_retry(): ...
    budget.answered()
"""

from __future__ import annotations

from collections.abc import Iterable

from opentelemetry.metrics import CallbackOptions, Meter, Observation

MAX_TOKENS = 10.0
TOKEN_RATIO = 0.1

TOKENS = "tiergate.upstream.retry_budget.tokens"
THROTTLED = "tiergate.upstream.retry_budget.throttled"


class RetryBudget:
    """The retry throttle of one upstream; one event loop, so no lock."""

    def __init__(self, *, max_tokens: float = MAX_TOKENS, token_ratio: float = TOKEN_RATIO) -> None:
        if max_tokens <= 0 or not 0 < token_ratio <= max_tokens:
            raise ValueError("max_tokens must be positive and token_ratio in (0, max_tokens]")
        self.max_tokens = max_tokens
        self.token_ratio = token_ratio
        self.tokens = max_tokens
        self.throttled = 0
        """Retries refused since start."""

    def answered(self) -> None:
        """An attempt got an answer (a bill, or an error no retry could fix)."""
        self.tokens = min(self.max_tokens, self.tokens + self.token_ratio)

    def failed(self) -> None:
        """An attempt failed in a way a retry might fix."""
        self.tokens = max(0.0, self.tokens - 1.0)

    @property
    def spent(self) -> bool:
        """Whether retries are held back now: most recent attempts failed."""
        return self.tokens <= self.max_tokens / 2

    def may_retry(self) -> bool:
        """Whether the failed attempt just counted may be retried; counts a refusal."""
        if self.spent:
            self.throttled += 1
            return False
        return True


class RetryBudgetMetrics:
    """The budgets' state as metrics: the tokens left, and the retries refused."""

    def __init__(self, meter: Meter, budgets: dict[str, RetryBudget]) -> None:
        self._budgets = budgets
        meter.create_observable_gauge(
            TOKENS,
            callbacks=[self._tokens],
            unit="{token}",
            description="Tokens left in each upstream's retry budget; retries stop at half of"
            f" {MAX_TOKENS:g}.",
        )
        meter.create_observable_counter(
            THROTTLED,
            callbacks=[self._throttled],
            unit="{retry}",
            description="Upstream retries the retry budget refused, since start.",
        )

    def _tokens(self, _options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(b.tokens, {"tiergate.upstream": n}) for n, b in self._budgets.items()]

    def _throttled(self, _options: CallbackOptions) -> Iterable[Observation]:
        return [
            Observation(b.throttled, {"tiergate.upstream": n}) for n, b in self._budgets.items()
        ]

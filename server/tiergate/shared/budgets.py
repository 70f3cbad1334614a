"""Spend limits per verified caller: reserve the worst case before the call, settle after.

``TIERGATE_BUDGETS_FILE`` names a TOML file of limits in US dollars, written as decimal
strings and held as integer nano-dollars (never a float)::

    [callers.billing-service]
    daily_usd = "25.00"
    monthly_usd = "500"

    [callers.billing-service.tasks.Reason]   # optional: a tighter limit for one task
    daily_usd = "5"

Days and months are UTC. A call reserves its worst case in every period that limits it (the
caller's, and the task's when set) in one atomic step; after the call it settles to the exact
cost. When the reservation does not fit but would once the caller's outstanding reservations
settle, the call waits for them within its deadline; when it cannot fit, it is refused with
BUDGET_EXCEEDED before any model call. Spend therefore never exceeds a limit, whatever the
concurrency and however many replicas share the store.
"""

from __future__ import annotations

import asyncio
import datetime
import re
import tomllib
import uuid
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from tiergate import errors
from tiergate.shared.backends import PeriodState, Store, StoreUnavailable, Verdict

log = structlog.get_logger("tiergate.budgets")

NANOS_PER_USD = 1_000_000_000
_USD = re.compile(r"^(0|[1-9][0-9]{0,11})(\.[0-9]{1,9})?$")
_PERIODS = ("daily_usd", "monthly_usd")
# A reservation outlives the longest call it covers; one left by a replica that died is then
# given back to its caller instead of holding the budget for ever.
_RESERVATION_MARGIN_S = 120.0
# Budget keys outlive their period by this much, so `tiergate spend` still sees yesterday.
_KEY_TTL_S = 40 * 24 * 3600
# How often a waiting call looks again at its caller's reservations.
_WAIT_POLL_S = 0.02
_SETTLE_RETRY_S = 0.5


def parse_usd(text: str, *, where: str) -> int:
    """``"25.00"`` -> 25_000_000_000 nano-dollars, exactly; at most 9 decimal places."""
    if not isinstance(text, str) or not _USD.match(text.strip()):
        raise ValueError(f'{where} must be a decimal string of US dollars such as "25.00"')
    whole, _, fraction = text.strip().partition(".")
    return int(whole) * NANOS_PER_USD + int(fraction.ljust(9, "0") or "0")


def usd(nanos: int) -> str:
    """Nano-dollars as an exact decimal string of US dollars."""
    sign = "-" if nanos < 0 else ""
    whole, fraction = divmod(abs(nanos), NANOS_PER_USD)
    return f"{sign}{whole}.{fraction:09d}"


@dataclass(frozen=True)
class Limits:
    """One scope's limits in nano-dollars; None = unlimited in that period."""

    daily: int | None = None
    monthly: int | None = None


@dataclass(frozen=True)
class BudgetPolicy:
    """Every caller's limits, and per task where the file sets them."""

    callers: Mapping[str, Limits] = field(default_factory=dict)
    tasks: Mapping[tuple[str, str], Limits] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> BudgetPolicy:
        """Parse the budgets file; ValueError naming the file and the entry when invalid."""
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ValueError(f"budgets file {path}: {exc}") from None
        unknown = set(data) - {"callers"}
        if unknown:
            raise ValueError(f"budgets file {path}: unknown tables {sorted(unknown)}")
        callers: dict[str, Limits] = {}
        tasks: dict[tuple[str, str], Limits] = {}
        for name, table in data.get("callers", {}).items():
            where = f"budgets file {path}: callers.{name}"
            callers[name] = _limits(table, where, nested={"tasks"})
            for task, task_table in table.get("tasks", {}).items():
                tasks[(name, task)] = _limits(task_table, f"{where}.tasks.{task}", nested=set())
        return cls(callers=callers, tasks=tasks)

    def scopes(self, caller: str, task: str) -> list[tuple[str, Limits]]:
        """The (scope, limits) pairs that bound one call: the caller's, then the task's."""
        found = []
        if caller in self.callers:
            found.append((caller, self.callers[caller]))
        if (caller, task) in self.tasks:
            found.append((f"{caller}/{task}", self.tasks[(caller, task)]))
        return found


def _limits(table: object, where: str, *, nested: set[str]) -> Limits:
    if not isinstance(table, dict):
        raise ValueError(f"{where} must be a table")
    unknown = set(table) - set(_PERIODS) - nested
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)} (expected {list(_PERIODS)})")
    values = {k: parse_usd(table[k], where=f"{where}.{k}") for k in _PERIODS if k in table}
    return Limits(daily=values.get("daily_usd"), monthly=values.get("monthly_usd"))


def period_keys(scope: str, limits: Limits, now: datetime.datetime) -> list[tuple[str, int]]:
    """The store keys and limits of ``scope``'s current UTC day and month."""
    keys = []
    if limits.daily is not None:
        keys.append((f"budget:{scope}:day:{now:%Y-%m-%d}", limits.daily))
    if limits.monthly is not None:
        keys.append((f"budget:{scope}:month:{now:%Y-%m}", limits.monthly))
    return keys


def seconds_to_next_period(key: str, now: datetime.datetime) -> float:
    """Seconds until the UTC day or month of ``key`` ends."""
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if ":day:" in key:
        end = day + datetime.timedelta(days=1)
    else:
        first = day.replace(day=1)
        end = (first + datetime.timedelta(days=32)).replace(day=1)
    return max(1.0, (end - now).total_seconds())


@dataclass
class Reservation:
    """What one call holds: settle it exactly once with the call's exact cost."""

    id: str
    keys: list[str]
    amount: int


@dataclass(frozen=True)
class Spend:
    """One period of one scope, as ``tiergate spend`` shows it."""

    scope: str
    period: str
    limit: int
    spent: int
    reserved: int

    @property
    def left(self) -> int:
        return max(0, self.limit - self.spent - self.reserved)


class Budgets:
    """Reservations and settlements against a :class:`BudgetPolicy` in a shared store."""

    def __init__(
        self,
        policy: BudgetPolicy,
        store: Store,
        *,
        fail_open: bool = False,
        max_pending: int = 10000,
    ) -> None:
        self.policy = policy
        self._store = store
        self._fail_open = fail_open
        self._pending: deque[tuple[Reservation, int]] = deque(maxlen=max_pending)
        self._flusher: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    def limits(self, caller: str, task: str) -> list[tuple[str, int]]:
        now = datetime.datetime.now(datetime.UTC)
        return [
            key
            for scope, limits in self.policy.scopes(caller, task)
            for key in period_keys(scope, limits, now)
        ]

    async def reserve(
        self, caller: str, task: str, amount: int, *, wait_until: float, hold_s: float
    ) -> Reservation | None:
        """Hold ``amount`` nano-dollars for one call of ``task`` by ``caller``; None when no
        budget limits it. ``wait_until`` is the ``loop.time()`` the call may wait until;
        ``hold_s`` how long the call may run once reserved."""
        keyed = self.limits(caller, task)
        if not keyed:
            return None
        keys = [k for k, _ in keyed]
        limits = [limit for _, limit in keyed]
        loop = asyncio.get_running_loop()
        reservation = Reservation(uuid.uuid4().hex, keys, amount)
        while True:
            try:
                verdict = await self._store.reserve(
                    keys,
                    limits,
                    amount=amount,
                    reservation=reservation.id,
                    expires_at=_wall() + max(0.0, hold_s) + _RESERVATION_MARGIN_S,
                    ttl_s=_KEY_TTL_S,
                )
            except StoreUnavailable as exc:
                log.warning("budget.store_unavailable", caller=caller, error=str(exc))
                if self._fail_open:
                    # Served unbudgeted; its cost is still stored once the store is back.
                    return reservation
                raise errors.SharedStateUnavailable(
                    "the budget store is unreachable; retry shortly",
                    retry_after_s=errors.DEFAULT_RETRY_AFTER_S,
                ) from None
            if verdict is Verdict.RESERVED:
                return reservation
            if verdict is Verdict.WAIT and loop.time() + _WAIT_POLL_S < wait_until:
                await asyncio.sleep(_WAIT_POLL_S)
                continue
            raise await self._exceeded(caller, keyed, amount, verdict)

    async def _exceeded(
        self, caller: str, keyed: list[tuple[str, int]], amount: int, verdict: Verdict
    ) -> errors.BudgetExceeded:
        now = datetime.datetime.now(datetime.UTC)
        try:
            states = await self._store.periods([k for k, _ in keyed])
        except StoreUnavailable:
            states = [PeriodState(k, 0, 0) for k, _ in keyed]
        violations = []
        retry = 1.0
        for (key, limit), state in zip(keyed, states, strict=True):
            if state.spent + state.reserved + amount <= limit:
                continue
            left = max(0, limit - state.spent - state.reserved)
            violations.append(
                errors.QuotaViolation(
                    subject=f"caller:{caller}",
                    description=f"{_period_name(key)} budget {usd(limit)} USD: this call may cost"
                    f" up to {usd(amount)} USD and {usd(left)} USD is left",
                )
            )
            if state.spent + amount > limit:
                retry = max(retry, seconds_to_next_period(key, now))
        waiting = verdict is Verdict.WAIT
        return errors.BudgetExceeded(
            f"caller {caller!r} has no budget left for this call"
            + (" before its deadline (its calls in flight hold the rest)" if waiting else ""),
            violations=violations,
            retry_after_s=retry,
        )

    async def settle(self, reservation: Reservation, actual: int) -> None:
        """Record the call's exact cost; when the store is unreachable, keep it for retry."""
        try:
            await self._store.settle(
                reservation.keys, reservation=reservation.id, actual=actual, ttl_s=_KEY_TTL_S
            )
        except StoreUnavailable as exc:
            self._hold(reservation, actual, str(exc))

    def _hold(self, reservation: Reservation, actual: int, error: str) -> None:
        if len(self._pending) == self._pending.maxlen:
            dropped, nanos = self._pending[0]
            log.error("budget.settlement_dropped", reservation=dropped.id, cost_nanos=nanos)
        self._pending.append((reservation, actual))
        log.warning("budget.settlement_held", reservation=reservation.id, error=error)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())

    @property
    def pending(self) -> int:
        """Settlements waiting for the store to come back."""
        return len(self._pending)

    async def _flush(self) -> None:
        while self._pending:
            reservation, actual = self._pending[0]
            try:
                await self._store.settle(
                    reservation.keys, reservation=reservation.id, actual=actual, ttl_s=_KEY_TTL_S
                )
            except StoreUnavailable:
                await asyncio.sleep(_SETTLE_RETRY_S)
                continue
            self._pending.popleft()
            log.info("budget.settlement_stored", reservation=reservation.id)

    async def close(self, timeout_s: float = 2.0) -> None:
        """Give held settlements a last chance to reach the store; log what is left."""
        if self._flusher is not None and not self._flusher.done():
            try:
                await asyncio.wait_for(asyncio.shield(self._flusher), timeout_s)
            except TimeoutError:
                self._flusher.cancel()
        for reservation, nanos in self._pending:
            log.error("budget.settlement_lost", reservation=reservation.id, cost_nanos=nanos)

    async def spend(self, caller: str | None = None) -> list[Spend]:
        """Every budgeted scope's current day and month (one caller's when named)."""
        now = datetime.datetime.now(datetime.UTC)
        scopes = [(name, limits) for name, limits in self.policy.callers.items()]
        scopes += [(f"{c}/{t}", limits) for (c, t), limits in self.policy.tasks.items()]
        rows: list[Spend] = []
        for scope, limits in sorted(scopes):
            if caller is not None and scope.split("/")[0] != caller:
                continue
            keyed = period_keys(scope, limits, now)
            states = await self._store.periods([k for k, _ in keyed])
            for (key, limit), state in zip(keyed, states, strict=True):
                rows.append(Spend(scope, _period_name(key), limit, state.spent, state.reserved))
        return rows


def _period_name(key: str) -> str:
    kind, stamp = key.rsplit(":", 2)[-2:]
    return f"{'daily' if kind == 'day' else 'monthly'} {stamp}"


def _wall() -> float:
    return datetime.datetime.now(datetime.UTC).timestamp()

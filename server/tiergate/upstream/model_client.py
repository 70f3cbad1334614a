"""The model client: the only code that talks to the Messages API.

It sends a laid-out :class:`~tiergate.calls.prompt.Prompt`, keeps every attempt inside the caller's
deadline, retries what may succeed on a second try, re-asks (billed) when the output is
truncated, malformed or invalid, and sums the usage of every billed call, each with the
inference geo its response reports::

    client = ModelClient(anthropic.AsyncAnthropic(base_url=url, api_key=key), settings)
    completion = await client.complete(
        prompt, facts=prices.facts("claude-haiku-4-5"), check=task.check, size_field=name
    )
    completion.output, completion.usage

An answer that cannot be a bill (:mod:`tiergate.upstream.answers`) is the upstream's fault:
retried like a 5xx, counted in ``Completion.unreadable_bills`` and never billed from. Every
retry asks the upstream's shared :class:`~tiergate.upstream.retry_budget.RetryBudget` first.

When every re-ask is spent, OUTPUT_INVALID carries RetryInfo only when another try may help:
not after a truncation at the model's largest output, and not when the last two answers broke
the same rule (the caller's constraints then look unsatisfiable). Error messages never quote
the model's output: a schema violation is named by its path and failing keyword.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import time
from dataclasses import dataclass, field
from typing import Any

import anthropic
import structlog
from anthropic.types import Message

from tiergate import errors
from tiergate.calls.prompt import JsonObject, Prompt, canonical_json, render_params
from tiergate.calls.reuse import ReuseTracker
from tiergate.config import Settings
from tiergate.ledger import ModelFacts, TokenUsage
from tiergate.telemetry import Telemetry
from tiergate.upstream import errors as upstream_errors
from tiergate.upstream.answers import InvalidAnswer, checked_bill
from tiergate.upstream.output import (
    BadOutput,
    OutputCheck,
    SizeField,
    output_invalid,
    parse_output,
    reask_params,
    stop_error,
)
from tiergate.upstream.retry_budget import RetryBudget
from tiergate.upstream.stream_errors import as_status
from tiergate.upstream.streamed import Attempt, PartialSink, read
from tiergate.upstream.transport import REQUESTED_MODEL

log = structlog.get_logger("tiergate.model")

# Backoff without a retry-after hint: min(0.5 * 2^n, 8) s, with full jitter, as the SDK does.
_BACKOFF_BASE_S = 0.5
_BACKOFF_CAP_S = 8.0
_JITTER = random.Random()
"""The backoff's own generator: the global one is the caller's (tests seed and replay it)."""


def _prefix_key(params: dict[str, Any]) -> bytes:
    """The identity of the longest cached prefix: model, output schema, system blocks up to the
    last breakpoint (what the API matches byte for byte)."""
    system = params["system"]
    last = max(i for i, block in enumerate(system) if "cache_control" in block)
    digest = hashlib.blake2b(digest_size=16)
    digest.update(params["model"].encode())
    digest.update(canonical_json(params.get("output_config")).encode())
    for block in system[: last + 1]:
        digest.update(b"\0" + block["text"].encode())
    return digest.digest()


@dataclass
class Completion:
    """A validated model output and what it took to get it."""

    output: JsonObject
    model: str
    usage: TokenUsage = field(default_factory=TokenUsage)
    billed_calls: int = 0
    attempts: int = 0
    request_id: str = ""
    unreadable_bills: int = 0
    """Answers that could not be a bill: the upstream may have charged for them, unknown how
    much (a budget reservation then settles at its worst case)."""
    provider: str = "anthropic"
    """The road that answered (``tiergate.upstream.roads``)."""
    scope: str = "global"
    """That road's endpoint scope."""
    priced: ModelFacts | None = None
    """The facts the road bills at; None: the Claude API's list facts."""
    bounded: bool = False
    """A stream cut short by its caller: ``usage`` holds its input as billed and its whole
    ``max_tokens`` as output, the most the upstream may charge (budgets settle at that)."""


class ModelClient:
    """Calls one Messages API endpoint for every tier."""

    def __init__(
        self,
        client: anthropic.AsyncAnthropic,
        settings: Settings,
        telemetry: Telemetry | None = None,
        reuse: ReuseTracker | None = None,
        retry_budget: RetryBudget | None = None,
    ) -> None:
        # Retries are ours (deadline-aware), so the SDK's own are off.
        self._client = client.with_options(max_retries=0)
        self.retry_budget = retry_budget or RetryBudget()
        self._settings = settings
        self._telemetry = telemetry or Telemetry()
        self._reuse = reuse if reuse is not None else ReuseTracker()

    async def close(self) -> None:
        await self._client.close()

    def road_facts(self, facts: ModelFacts) -> list[ModelFacts]:
        """``facts`` as billed on each road a call may take: one road, the Claude API's."""
        return [facts]

    async def complete(
        self,
        prompt: Prompt,
        *,
        facts: ModelFacts,
        check: OutputCheck,
        size_field: SizeField,
        deadline: float | None = None,
    ) -> Completion:
        """Ask ``facts.model`` for ``prompt``'s output; ``deadline`` is a ``time.monotonic()``
        instant."""
        params = self._render(prompt, facts)
        completion = Completion(output={}, model=facts.model)
        previous: BadOutput | None = None
        for reask in range(self._settings.max_reasks + 1):
            message = await self._call(params, facts, completion, deadline, size_field)
            bare = None if "output_config" in params else prompt.bare_key
            try:
                completion.output = parse_output(
                    message, prompt.output_schema, check, bare, prompt.bare_reading
                )
                return completion
            except BadOutput as bad:
                at_limit = bad.truncated and params["max_tokens"] >= facts.max_output_tokens
                if reask == self._settings.max_reasks or at_limit:
                    failure = output_invalid(bad, previous, at_limit, completion.billed_calls)
                    raise _with_usage(failure, completion) from None
                if bare and prompt.fallback is not None:
                    # A bad bare answer: ask again, this time with structured outputs.
                    prompt = prompt.fallback
                    params = self._render(prompt, facts)
                else:
                    params = reask_params(params, message, bad, facts)
                previous = bad
        raise AssertionError("unreachable")  # pragma: no cover

    async def stream(
        self,
        prompt: Prompt,
        *,
        facts: ModelFacts,
        check: OutputCheck,
        size_field: SizeField,
        on_partial: PartialSink,
        deadline: float | None = None,
        completion: Completion | None = None,
    ) -> Completion:
        """As :meth:`complete`, streamed: ``on_partial`` sees the output as the model writes it.

        One billed call, no re-ask: a re-ask would write a different answer over the partials
        already forwarded. Failures before the first partial are retried as :meth:`complete`
        retries them (an ``overloaded_error`` event like a 529); after it, the stream ends with
        UNAVAILABLE. A cancellation closes the upstream stream at once; ``completion`` (pass
        one to read it then) keeps what is known of the bill.
        """
        if prompt.bare_key is not None and prompt.fallback is not None:
            # Partials are read from the JSON as it is written: a stream always asks with
            # structured outputs, never for a bare answer.
            prompt = prompt.fallback
        params = self._render(prompt, facts)
        completion = completion or Completion(output={}, model=facts.model)
        for attempt in range(1, self._settings.max_attempts + 1):
            timeout = self._remaining(deadline, completion)
            completion.attempts += 1
            streamed = Attempt()
            failure: anthropic.AnthropicError | InvalidAnswer
            try:
                message = await self._stream_once(
                    params, facts, attempt, timeout, completion, on_partial, streamed
                )
            except (anthropic.AnthropicError, InvalidAnswer) as exc:
                if isinstance(exc, anthropic.APITimeoutError) and _expired(deadline):
                    raise _with_usage(_deadline_error(), completion) from exc
                failure = as_status(exc) if isinstance(exc, anthropic.APIStatusError) else exc
                if streamed.forwarded:
                    # The caller holds partials: another attempt would write a different answer.
                    if not isinstance(exc, InvalidAnswer):  # an invalid one is counted already
                        completion.unreadable_bills += 1  # billed, by an output never known
                    self.retry_budget.failed()
                    raise _with_usage(
                        errors.UpstreamUnavailable(
                            "the model's stream broke off after part of the answer was sent",
                            retry_after_s=errors.DEFAULT_RETRY_AFTER_S,
                        ),
                        completion,
                    ) from exc
                await self._before_retry(failure, attempt, completion, deadline, size_field)
                continue
            try:
                completion.output = parse_output(message, prompt.output_schema, check, None)
            except BadOutput as bad:
                at_limit = bad.truncated and params["max_tokens"] >= facts.max_output_tokens
                raise _with_usage(
                    output_invalid(bad, None, at_limit, completion.billed_calls), completion
                ) from None
            return completion
        raise AssertionError("unreachable")  # pragma: no cover

    async def _stream_once(
        self,
        params: dict[str, Any],
        facts: ModelFacts,
        attempt: int,
        limit_s: float,
        completion: Completion,
        on_partial: PartialSink,
        streamed: Attempt,
    ) -> Message:
        """One streamed attempt; its output goes to ``on_partial`` as it is written."""
        requested = REQUESTED_MODEL.set(params["model"])
        try:
            with self._telemetry.model_call(params, attempt=attempt) as call:
                async with self._client.messages.stream(**params, timeout=limit_s) as stream:
                    try:
                        found = await read(
                            stream,
                            facts=facts,
                            max_tokens=params["max_tokens"],
                            on_partial=on_partial,
                            attempt=streamed,
                        )
                    except asyncio.CancelledError:
                        if streamed.bound is not None:  # settled at the most it may cost
                            completion.usage = completion.usage + streamed.bound
                            completion.billed_calls += 1
                            completion.bounded = True
                        raise
                    except InvalidAnswer:
                        completion.unreadable_bills += 1
                        raise
                try:
                    message, tokens = checked_bill(found, facts)
                except InvalidAnswer:
                    completion.unreadable_bills += 1
                    raise
                call.answered(message, tokens)
        finally:
            REQUESTED_MODEL.reset(requested)
        self.retry_budget.answered()
        _bill(completion, message, tokens)
        stopped = stop_error(message, lambda: "")
        if stopped is not None:
            raise _with_usage(stopped, completion)
        return message

    def _render(self, prompt: Prompt, facts: ModelFacts) -> dict[str, Any]:
        ttl = self._settings.cache_ttl
        params = render_params(prompt, facts=facts, ttl="5m" if ttl == "auto" else ttl)
        if ttl == "auto":
            cached = [b for b in params["system"] if "cache_control" in b]
            if cached:  # only a prefix that can be cached has a lifetime to choose
                chosen = self._reuse.observe(_prefix_key(params))
                for block in cached:
                    block["cache_control"]["ttl"] = chosen
        return params

    async def count_tokens(
        self, prompt: Prompt, *, facts: ModelFacts, deadline: float | None = None
    ) -> int | None:
        """The prompt's exact input tokens from the free ``count_tokens`` endpoint, output
        schema included; None when it cannot say (the call itself then decides)."""
        params = render_params(prompt, facts=facts, ttl="5m")  # counting ignores breakpoints
        timeout = self._settings.upstream_timeout_s
        if deadline is not None:
            timeout = min(timeout, deadline - time.monotonic())
            if timeout <= 0:
                return None
        try:
            counted: Any = await self._client.messages.count_tokens(
                model=params["model"],
                system=params["system"],
                messages=params["messages"],
                **({"output_config": params["output_config"]} if "output_config" in params else {}),
                timeout=timeout,
            )
        except (anthropic.AnthropicError, *_UNREADABLE) as exc:
            log.info("count_tokens.failed", model=facts.model, error=type(exc).__name__)
            return None
        found = getattr(counted, "input_tokens", None)
        # A count no prompt can have (negative, not an integer) is no count: the call itself
        # then decides. A count beyond the window is a real answer: the prompt is too large.
        if not isinstance(found, int) or isinstance(found, bool) or found < 0:
            return None
        return found

    async def _call(
        self,
        params: dict[str, Any],
        facts: ModelFacts,
        completion: Completion,
        deadline: float | None,
        size_field: SizeField,
    ) -> Message:
        """One billed call, after as many unbilled retries as the deadline and the upstream's
        retry budget allow."""
        for attempt in range(1, self._settings.max_attempts + 1):
            timeout = self._remaining(deadline, completion)
            completion.attempts += 1
            failure: anthropic.AnthropicError | InvalidAnswer
            try:
                requested = REQUESTED_MODEL.set(params["model"])
                try:
                    with self._telemetry.model_call(params, attempt=attempt) as call:
                        try:
                            found: object = await self._client.messages.create(
                                **params, timeout=timeout
                            )
                        except _UNREADABLE as exc:
                            raise InvalidAnswer(
                                f"the body is not JSON ({type(exc).__name__})"
                            ) from exc
                        message, tokens = checked_bill(found, facts)
                        call.answered(message, tokens)
                finally:
                    REQUESTED_MODEL.reset(requested)
            except (InvalidAnswer, anthropic.APIResponseValidationError) as exc:
                completion.unreadable_bills += 1
                log.warning("upstream.invalid_answer", model=params["model"], problem=str(exc))
                failure = exc if isinstance(exc, InvalidAnswer) else InvalidAnswer(str(exc))
            except anthropic.AnthropicError as exc:
                if isinstance(exc, anthropic.APITimeoutError) and _expired(deadline):
                    raise _with_usage(_deadline_error(), completion) from exc
                failure = exc
            else:
                self.retry_budget.answered()
                _bill(completion, message, tokens)
                stopped = stop_error(message, size_field)
                if stopped is not None:
                    raise _with_usage(stopped, completion)
                return message
            await self._before_retry(failure, attempt, completion, deadline, size_field)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _before_retry(
        self,
        failure: anthropic.AnthropicError | InvalidAnswer,
        attempt: int,
        completion: Completion,
        deadline: float | None,
        size_field: SizeField,
    ) -> None:
        """Wait for the retry of a failed attempt, or raise the caller's error when there is
        none: not retryable, out of attempts, past the deadline, or the retry budget spent."""

        def error() -> errors.TiergateError:  # built only when raised: size_field() costs
            if isinstance(failure, InvalidAnswer):
                mapped: errors.TiergateError = _invalid_answer_error()
            else:
                mapped = upstream_errors.from_upstream(failure, size_field=size_field())
            # With the budget spent, the caller's client must not retry automatically either:
            # its retries would multiply the outage just as ours would.
            mapped.retry_budget_spent = self.retry_budget.spent
            return _with_usage(mapped, completion)

        if not isinstance(failure, InvalidAnswer) and not upstream_errors.is_retryable_upstream(
            failure
        ):
            self.retry_budget.answered()  # the upstream is up; the call itself was wrong
            raise error() from failure
        # A 429 says when to come back (retry-after, and the readings pace every call): waiting
        # for it adds no load, so only failures of an upstream in trouble spend the budget.
        budgeted = not isinstance(failure, anthropic.RateLimitError)
        if budgeted:
            self.retry_budget.failed()
        wait = _wait_before_retry(failure, attempt)
        # Never sleep past the caller's deadline: fail now, saying how long to wait.
        past_deadline = deadline is not None and time.monotonic() + wait >= deadline
        if attempt == self._settings.max_attempts or past_deadline:
            raise error() from failure
        if budgeted and not self.retry_budget.may_retry():
            raise error() from failure
        await asyncio.sleep(wait)

    def _remaining(self, deadline: float | None, completion: Completion) -> float:
        limit = self._settings.upstream_timeout_s
        if deadline is None:
            return limit
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _with_usage(_deadline_error(), completion)
        return min(limit, remaining)


def _bill(completion: Completion, message: Message, tokens: TokenUsage) -> None:
    completion.usage = completion.usage + tokens
    completion.billed_calls += 1
    completion.model = message.model
    completion.request_id = getattr(message, "_request_id", None) or message.id


# What the SDK raises when a 200's body is not JSON at all (cut, or bytes that are no text).
_UNREADABLE = (json.JSONDecodeError, UnicodeDecodeError)


def _invalid_answer_error() -> errors.UpstreamInvalidResponse:
    return errors.UpstreamInvalidResponse(
        "the model API answered with something that is not a valid response",
        retry_after_s=errors.DEFAULT_RETRY_AFTER_S,
    )


def _wait_before_retry(exc: anthropic.AnthropicError | InvalidAnswer, attempt: int) -> float:
    if isinstance(exc, anthropic.APIStatusError):
        hint = upstream_errors.retry_after_s(exc)
        if hint is not None:
            return hint
    return _JITTER.uniform(0, min(_BACKOFF_BASE_S * 2 ** (attempt - 1), _BACKOFF_CAP_S))


def _expired(deadline: float | None) -> bool:
    return deadline is not None and time.monotonic() >= deadline


def _deadline_error() -> errors.DeadlineExceeded:
    return errors.DeadlineExceeded("the call's deadline passed before the model answered")


def _with_usage(err: errors.TiergateError, completion: Completion) -> errors.TiergateError:
    """Attach what was billed so far: a failed RPC may still have cost money."""
    err.completion = completion
    return err

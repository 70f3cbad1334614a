"""The model client: the only code that talks to the Messages API.

It sends a laid-out :class:`~tiergate.prompt.Prompt`, keeps every attempt inside the caller's
deadline, retries what may succeed on a second try, re-asks (billed) when the output is
truncated, malformed or invalid, and sums the usage of every billed call::

    client = ModelClient(anthropic.AsyncAnthropic(base_url=url, api_key=key), settings)
    completion = await client.complete(prompt, model="claude-haiku-4-5", check=task.check)
    completion.output, completion.usage
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anthropic
import httpx2
import jsonschema
from anthropic.types import Message

from tiergate import errors, upstream_errors
from tiergate.config import Settings
from tiergate.ledger import TokenUsage
from tiergate.prompt import JsonObject, Prompt, render_params
from tiergate.schema import wire_validator
from tiergate.telemetry import Telemetry
from tiergate.tiers import Tier

OutputCheck = Callable[[JsonObject], list[str]]

# Backoff without a retry-after hint: min(0.5 * 2^n, 8) s, with full jitter, as the SDK does.
_BACKOFF_BASE_S = 0.5
_BACKOFF_CAP_S = 8.0


def upstream_client(
    *, api_key: str, base_url: str | None, settings: Settings
) -> anthropic.AsyncAnthropic:
    """The SDK client for the Messages API, on the SDK's aiohttp transport.

    aiohttp's C parser and simpler pool cost about a third less CPU per call than the default
    httpx transport (``make bench``'s profile). The pool holds every call the concurrency limit
    admits, so the limit, not the pool, decides what waits.
    """
    limits = httpx2.Limits(
        max_connections=settings.max_concurrency * len(Tier),
        max_keepalive_connections=settings.max_concurrency * len(Tier),
    )
    return anthropic.AsyncAnthropic(
        api_key=api_key,
        base_url=base_url,
        http_client=anthropic.DefaultAioHttpClient(limits=limits),
    )


@dataclass
class Completion:
    """A validated model output and what it took to get it."""

    output: JsonObject
    model: str
    usage: TokenUsage = field(default_factory=TokenUsage)
    billed_calls: int = 0
    attempts: int = 0
    request_id: str = ""
    stop_reason: str = ""


class _BadOutput(Exception):
    """The model answered, but not with something usable; a re-ask may fix it."""

    def __init__(self, problem: str, *, truncated: bool = False) -> None:
        super().__init__(problem)
        self.problem = problem
        self.truncated = truncated


class ModelClient:
    """Calls one Messages API endpoint for every tier."""

    def __init__(
        self,
        client: anthropic.AsyncAnthropic,
        settings: Settings,
        telemetry: Telemetry | None = None,
    ) -> None:
        # Retries are ours (deadline-aware), so the SDK's own are off.
        self._client = client.with_options(max_retries=0)
        self._settings = settings
        self._telemetry = telemetry or Telemetry()

    async def close(self) -> None:
        await self._client.close()

    async def complete(
        self,
        prompt: Prompt,
        *,
        model: str,
        check: OutputCheck,
        deadline: float | None = None,
    ) -> Completion:
        """Ask ``model`` for ``prompt``'s output; ``deadline`` is a ``time.monotonic()`` instant."""
        params = render_params(prompt, model=model, ttl=self._settings.cache_ttl)
        completion = Completion(output={}, model=model)
        for reask in range(self._settings.max_reasks + 1):
            message = await self._call(params, completion, deadline)
            try:
                completion.output = _parse(message, prompt.output_schema, check)
                return completion
            except _BadOutput as bad:
                if reask == self._settings.max_reasks:
                    raise _with_usage(
                        errors.OutputInvalid(
                            f"the model's output was unusable after {reask + 1} billed calls:"
                            f" {bad.problem}",
                            retry_after_s=errors.DEFAULT_RETRY_AFTER_S,
                        ),
                        completion,
                    ) from None
                params = _reask_params(params, message, bad)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _call(
        self, params: dict[str, Any], completion: Completion, deadline: float | None
    ) -> Message:
        """One billed call, after as many unbilled retries as the deadline allows."""
        for attempt in range(1, self._settings.max_attempts + 1):
            timeout = self._remaining(deadline, completion)
            completion.attempts += 1
            try:
                with self._telemetry.model_call(params, attempt=attempt) as call:
                    message: Message = await self._client.messages.create(**params, timeout=timeout)
                    call.answered(message, billed_usage(message))
            except anthropic.AnthropicError as exc:
                mapped = _with_usage(upstream_errors.from_upstream(exc), completion)
                if isinstance(exc, anthropic.APITimeoutError) and _expired(deadline):
                    raise _with_usage(_deadline_error(), completion) from exc
                if (
                    not upstream_errors.is_retryable_upstream(exc)
                    or attempt == self._settings.max_attempts
                ):
                    raise mapped from exc
                wait = _wait_before_retry(exc, attempt)
                if deadline is not None and time.monotonic() + wait >= deadline:
                    # Never sleep past the caller's deadline: fail now, saying how long to wait.
                    raise mapped from exc
                await asyncio.sleep(wait)
                continue
            _bill(completion, message)
            if message.stop_reason == "refusal":
                details = message.stop_details
                category = getattr(details, "category", None) or "unspecified"
                raise _with_usage(
                    errors.ModelRefused(
                        f"the model refused the request (category: {category})",
                        metadata={"category": str(category)},
                    ),
                    completion,
                )
            return message
        raise AssertionError("unreachable")  # pragma: no cover

    def _remaining(self, deadline: float | None, completion: Completion) -> float:
        limit = self._settings.upstream_timeout_s
        if deadline is None:
            return limit
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _with_usage(_deadline_error(), completion)
        return min(limit, remaining)


def billed_usage(message: Message) -> TokenUsage:
    """What one answered call billed, by billing category."""
    usage = message.usage
    created = usage.cache_creation_input_tokens or 0
    split = usage.cache_creation
    write_1h = split.ephemeral_1h_input_tokens if split is not None else 0
    return TokenUsage(
        input_tokens=usage.input_tokens,
        cache_write_5m_tokens=created - write_1h,
        cache_write_1h_tokens=write_1h,
        cache_read_tokens=usage.cache_read_input_tokens or 0,
        output_tokens=usage.output_tokens,
    )


def _bill(completion: Completion, message: Message) -> None:
    completion.usage = completion.usage + billed_usage(message)
    completion.billed_calls += 1
    completion.model = message.model
    completion.request_id = getattr(message, "_request_id", None) or message.id
    completion.stop_reason = message.stop_reason or ""


def _parse(message: Message, schema: JsonObject, check: OutputCheck) -> JsonObject:
    # Newer models may open with a thinking block: the answer is the first text block.
    text = next((block.text for block in message.content if block.type == "text"), None)
    if message.stop_reason == "max_tokens":
        raise _BadOutput("output truncated at max_tokens", truncated=True)
    if not text or not text.strip():
        raise _BadOutput("empty output")
    try:
        output = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _BadOutput(f"output is not JSON ({exc.msg})") from None
    if not isinstance(output, dict):
        raise _BadOutput("output is not a JSON object")
    error = jsonschema.exceptions.best_match(wire_validator(schema).iter_errors(output))
    if error is not None:
        raise _BadOutput(f"output does not match the schema at {error.json_path}: {error.message}")
    problems = check(output)
    if problems:
        raise _BadOutput("; ".join(problems))
    return output


def _reask_params(params: dict[str, Any], message: Message, bad: _BadOutput) -> dict[str, Any]:
    """The next billed call: more room when truncated, else a correction after the bad answer."""
    if bad.truncated:
        return {**params, "max_tokens": params["max_tokens"] * 2}
    answer = next((b.text for b in message.content if b.type == "text"), "") or "(empty)"
    first = params["messages"][0]
    return {
        **params,
        "messages": [
            first,
            {"role": "assistant", "content": [{"type": "text", "text": answer}]},
            {
                "role": "user",
                "content": [
                    {
                        "type": "text",
                        "text": f"That answer was not usable: {bad.problem}. Answer again with"
                        " only a JSON object that follows the schema and the instructions.",
                    }
                ],
            },
        ],
    }


def _wait_before_retry(exc: anthropic.AnthropicError, attempt: int) -> float:
    if isinstance(exc, anthropic.APIStatusError):
        hint = upstream_errors.retry_after_s(exc)
        if hint is not None:
            return hint
    return random.uniform(0, min(_BACKOFF_BASE_S * 2 ** (attempt - 1), _BACKOFF_CAP_S))


def _expired(deadline: float | None) -> bool:
    return deadline is not None and time.monotonic() >= deadline


def _deadline_error() -> errors.DeadlineExceeded:
    return errors.DeadlineExceeded("the call's deadline passed before the model answered")


def _with_usage(err: errors.TiergateError, completion: Completion) -> errors.TiergateError:
    """Attach what was billed so far: a failed RPC may still have cost money."""
    err.completion = completion
    return err

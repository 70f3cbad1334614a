"""Faults that decide whether a client retries: spend limits, x-should-retry, HTTP-date waits.

Driven through the real anthropic SDK, whose own retry rules are what the headers steer.
"""

from __future__ import annotations

import email.utils
import json
import math
import time
from typing import Any

import anthropic
import pytest
from anthropic.types.shared import (
    ContractSpendLimitReachedErrorDetails,
    EnforcedSpendLimitReachedErrorDetails,
)
from emulator_calls import QUESTION, SONNET, ask

from tiergate.emulator import Emulator, Fault
from tiergate.emulator.testing import ThreadedEmulator


def retrying(served: ThreadedEmulator, retries: int = 2) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=served.base_url, api_key="k", max_retries=retries)


class TestSpendLimit:
    def test_enforced_spend_limit_is_the_sdk_shape(
        self, client: anthropic.Anthropic, emulator: Emulator
    ) -> None:
        """A 429 rate_limit_error whose details carry enforced_spend_limit_reached, no wait."""
        emulator.inject(Fault("spend_limit"))
        with pytest.raises(anthropic.RateLimitError) as caught:
            ask(client)
        error = caught.value
        assert error.status_code == 429
        assert error.type == "rate_limit_error"
        assert error.error_code == "enforced_spend_limit_reached"
        assert isinstance(error.details, EnforcedSpendLimitReachedErrorDetails)
        assert "retry-after" not in error.response.headers

    def test_contract_spend_limit(self, client: anthropic.Anthropic, emulator: Emulator) -> None:
        """error_code selects the contract spend limit, which the SDK models as its own type."""
        emulator.inject(Fault("spend_limit", error_code="contract_spend_limit_reached"))
        with pytest.raises(anthropic.RateLimitError) as caught:
            ask(client)
        assert caught.value.error_code == "contract_spend_limit_reached"
        assert isinstance(caught.value.details, ContractSpendLimitReachedErrorDetails)

    def test_unknown_code_is_refused(self) -> None:
        """Only the two documented spend-limit codes exist."""
        with pytest.raises(ValueError, match="spend-limit error_code"):
            Fault("spend_limit", error_code="budget_gone")


class TestShouldRetry:
    def test_false_stops_the_sdk_retrying_a_529(
        self, served: ThreadedEmulator, emulator: Emulator
    ) -> None:
        """x-should-retry: false makes the SDK give up on a status it would otherwise retry."""
        emulator.inject(Fault("overloaded", count=3, should_retry=False))
        with pytest.raises(anthropic.OverloadedError) as caught:
            ask(retrying(served))
        assert caught.value.response.headers["x-should-retry"] == "false"
        assert len(emulator.requests) == 1

    def test_true_makes_the_sdk_retry_a_403(
        self, served: ThreadedEmulator, emulator: Emulator
    ) -> None:
        """x-should-retry: true makes the SDK retry a status it would otherwise not."""
        emulator.inject(Fault("forbidden", should_retry=True))
        message = ask(retrying(served, retries=1))
        assert message.stop_reason == "end_turn"
        assert len(emulator.requests) == 2

    def test_only_error_faults_take_it(self) -> None:
        """should_retry on a fault that answers normally is a mistake, refused when built."""
        with pytest.raises(ValueError, match="error faults only"):
            Fault("slow", should_retry=False)


class TestRetryAfterDate:
    def test_rate_limit_can_send_an_http_date(
        self, client: anthropic.Anthropic, emulator: Emulator
    ) -> None:
        """retry-after is an HTTP date at least the wait ahead, with no retry-after-ms."""
        emulator.inject(Fault("rate_limit", retry_after_s=2.5, retry_after_http_date=True))
        before = math.floor(time.time())
        with pytest.raises(anthropic.RateLimitError) as caught:
            ask(client)
        headers = caught.value.response.headers
        assert "retry-after-ms" not in headers
        when = email.utils.parsedate_to_datetime(headers["retry-after"])
        assert when.tzinfo is not None
        assert when.timestamp() >= before + 3

    def test_date_only_on_rate_limits(self) -> None:
        """An HTTP-date wait belongs to rate limits only."""
        with pytest.raises(ValueError, match="rate_limit faults only"):
            Fault("overloaded", retry_after_http_date=True)


class TestFaultJson:
    def test_new_fields_round_trip(self) -> None:
        """to_json and from_json keep every new field."""
        for fault in (
            Fault("spend_limit", error_code="contract_spend_limit_reached", should_retry=False),
            Fault("rate_limit", retry_after_s=3, retry_after_http_date=True, should_retry=True),
        ):
            assert Fault.from_json(fault.to_json()) == fault
        for fault in (
            Fault("headers", headers={"anthropic-ratelimit-requests-remaining": "NaN"}),
            Fault("raw_body", body="<html></html>", status=502, content_type="text/html"),
            Fault("rewritten", usage={"input_tokens": -5}, message_fields={"type": "error"}),
        ):
            assert Fault.from_json(fault.to_json()) == fault


class TestWrongAnswers:
    """Faults of an upstream that answers, but wrongly: the SDK gets what a broken proxy or
    endpoint would send, with the emulator's request id and rate-limit headers around it."""

    def test_headers_replace_the_rate_limit_readings(
        self, client: anthropic.Anthropic, emulator: Emulator
    ) -> None:
        """A normal answer whose rate-limit headers say what the fault says."""
        emulator.inject(
            Fault("headers", headers={"anthropic-ratelimit-requests-reset": "2099-01-01T00:00:00Z"})
        )
        raw = client.messages.with_raw_response.create(
            model=SONNET, max_tokens=400, messages=QUESTION
        )
        assert raw.headers["anthropic-ratelimit-requests-reset"] == "2099-01-01T00:00:00Z"
        assert "anthropic-ratelimit-input-tokens-reset" in raw.headers
        assert raw.parse().usage.input_tokens > 0

    def test_raw_body_is_sent_verbatim(
        self, client: anthropic.Anthropic, emulator: Emulator
    ) -> None:
        """An HTML page with 200 reaches the SDK as text: it parses no message from it."""
        emulator.inject(Fault("raw_body", body="<html>hello</html>"))
        found: object = ask(client)
        assert found == "<html>hello</html>"
        assert len(emulator.requests) == 1

    def test_cut_body_stops_half_way(self, client: anthropic.Anthropic, emulator: Emulator) -> None:
        """A 200 whose JSON ends half-way: the SDK cannot decode it."""
        emulator.inject(Fault("cut_body"))
        with pytest.raises(json.JSONDecodeError):
            ask(client)

    def test_rewritten_usage_and_fields(
        self, client: anthropic.Anthropic, emulator: Emulator
    ) -> None:
        """Any JSON value replaces a usage field or a top-level field; the rest is computed."""
        emulator.inject(
            Fault("rewritten", usage={"input_tokens": -5, "output_tokens": "many"}),
            Fault("rewritten", message_fields={"usage": None, "type": "error"}),
        )
        # The SDK builds a message from these without checking them: as loose objects here.
        first: Any = ask(client)
        assert (first.usage.input_tokens, first.usage.output_tokens) == (-5, "many")
        assert first.usage.cache_read_input_tokens == 0
        second: Any = ask(client)
        assert (second.type, second.usage) == ("error", None)

    @pytest.mark.parametrize(
        ("fields", "match"),
        [
            ({"kind": "overloaded", "body": "x"}, "raw_body faults only"),
            ({"kind": "raw_body", "status": 700}, "HTTP status"),
            ({"kind": "headers", "usage": {"input_tokens": 1}}, "rewritten faults only"),
            ({"kind": "headers", "headers": {"x": 1}}, "strings to strings"),
        ],
    )
    def test_fields_of_another_kind_are_refused(self, fields: dict[str, Any], match: str) -> None:
        """Each field belongs to its kind; a misplaced one is refused, not ignored."""
        with pytest.raises(ValueError, match=match):
            Fault(**fields)

"""How the emulator behaves: keys, latency, models, limits and the roads' credentials."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from .models import MODELS, ModelLimits
from .ratelimits import RateLimits
from .roads import RoadKeys
from .validation import INFERENCE_GEOS


@dataclass(frozen=True)
class EmulatorConfig:
    """How the emulator behaves; the defaults answer at once and accept any key."""

    api_key: str | None = None
    """When set, requests must carry it (``x-api-key`` or ``Authorization: Bearer``), else 401."""
    latency: Literal["none", "seed"] = "none"
    """``seed`` simulates the seed article's per-family first-token time and output rate."""
    latency_scale: float = 1.0
    """Multiplies the seed latency (tests use small values)."""
    fixed_delay_s: float = 0.0
    """Seconds added before every response begins, in either latency mode."""
    models: Mapping[str, ModelLimits] = field(default_factory=lambda: dict(MODELS))
    """Context window, max output and cache minimum per model; its keys are the known models
    (others get 404). Defaults to the emulator's own table (:mod:`tiergate.emulator.models`)."""
    default_inference_geo: str = "global"
    """The workspace's ``default_inference_geo``: ``usage.inference_geo`` when a request sets
    none (``global`` or ``us``)."""
    rate_limits: RateLimits = field(default_factory=RateLimits)
    """Requests, input and output tokens per minute, one set of buckets per model."""
    clock: Callable[[], float] = time.monotonic
    """Clock for cache TTLs, injectable so tests can advance time."""
    batch_delay_s: float = 0.0
    """Seconds a message batch waits before its requests are answered (then all at once)."""
    road_keys: RoadKeys = field(default_factory=RoadKeys)
    """Credentials and policies of the cloud roads (:mod:`tiergate.emulator.roads`)."""
    max_recorded_requests: int = 1000
    """How many request bodies ``requests`` keeps, newest last; a long-running emulator
    (``tiergate serve`` without a key) must not grow without bound."""

    def __post_init__(self) -> None:
        if self.default_inference_geo not in INFERENCE_GEOS:
            raise ValueError(f"default_inference_geo must be one of {INFERENCE_GEOS}")
        if not self.models:
            raise ValueError("models must name at least one model")

"""An emulator of the Anthropic Messages API, served over real HTTP.

It is not a language model. It speaks the API's wire format so the real ``anthropic`` SDK runs end
to end, answers with schema-valid, input-aware heuristics (:mod:`.responder`), counts tokens
deterministically (:mod:`.tokens`), keeps a real prefix cache with the API's breakpoint, TTL,
minimum-length and lookback rules (:mod:`.cache`), reports usage as the API does, can simulate the
seed article's latency (:mod:`.latency`), injects faults on demand (:mod:`.faults`) and answers
scripted replies when told to (:mod:`.scripts`). Responses say where they come from: ids start
with ``msg_emu_`` and carry ``x-tiergate-emulator: 1``.

    >>> emulator = Emulator(EmulatorConfig(latency="seed", latency_scale=0.1))
    >>> base_url = await emulator.start()  # doctest: +SKIP
    >>> client = anthropic.AsyncAnthropic(base_url=base_url, api_key="anything")  # doctest: +SKIP
    >>> emulator.inject(Fault("overloaded"))  # the next request gets a 529
    >>> emulator.script(Script(text='{"label": "billing"}'))  # the next answer, exactly
"""

from __future__ import annotations

from .app import Emulator, EmulatorConfig
from .cache import DEFAULT_MIN_CACHEABLE_TOKENS, CachePlan, PrefixCache
from .edge import EMULATOR_HEADER
from .errors import ApiError
from .faults import Fault, FaultKind
from .models import MODELS, ModelLimits
from .ratelimits import RateLimits
from .scripts import Script
from .tokens import count_tokens

__all__ = [
    "DEFAULT_MIN_CACHEABLE_TOKENS",
    "EMULATOR_HEADER",
    "MODELS",
    "ApiError",
    "CachePlan",
    "Emulator",
    "EmulatorConfig",
    "Fault",
    "FaultKind",
    "ModelLimits",
    "PrefixCache",
    "RateLimits",
    "Script",
    "count_tokens",
]

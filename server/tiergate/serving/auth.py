"""Who is calling: optional bearer-token authentication and the caller identity for cost
attribution.

With a tokens file (``TIERGATE_AUTH_TOKENS_FILE``), every task RPC needs ``authorization:
Bearer <token>``; each line of the file is ``caller=token`` (or a bare token, whose caller is
``token-N`` by line). Tokens are compared in constant time. Health and reflection stay open:
probes cannot send credentials, and neither reveals data.

Only verified names become metric labels: the token's caller, else the subject CN of the mTLS
client certificate. A caller that only names itself in ``x-tiergate-caller`` is counted as
``unverified``; the name it claims is logged, sanitized and truncated.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import grpc

from tiergate.serving.rpc import ANONYMOUS, UNAUTHENTICATED, UNVERIFIED, Caller

CALLER_METADATA = "x-tiergate-caller"
MAX_NAME_CHARS = 64
"""Longest caller name kept (claimed or from a certificate); the rest is cut."""


def load_tokens(path: Path) -> dict[str, str]:
    """token -> caller name, from a file of ``caller=token`` or bare-token lines."""
    tokens: dict[str, str] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        caller, sep, token = line.partition("=")
        if not sep:
            caller, token = f"token-{number}", line
        if not token.strip():
            raise ValueError(f"{path}:{number}: empty token")
        tokens[token.strip()] = caller.strip()
    if not tokens:
        raise ValueError(f"{path}: no tokens")
    return tokens


def sanitize(value: str | bytes) -> str:
    """``value`` cut to :data:`MAX_NAME_CHARS`, every character outside printable ASCII
    replaced by ``?``: safe in a log line whatever the caller sent."""
    if isinstance(value, bytes):
        value = value[: MAX_NAME_CHARS * 4].decode("utf-8", errors="replace")
    cut = value[:MAX_NAME_CHARS]
    return "".join(c if " " <= c <= "~" else "?" for c in cut).strip()


class Authenticator:
    """Identifies the caller of a task RPC; with tokens, only a valid bearer token passes."""

    def __init__(self, tokens: Mapping[str, str] | None = None) -> None:
        self._tokens = dict(tokens) if tokens is not None else None

    @property
    def required(self) -> bool:
        """True when a call without a valid bearer token must be refused."""
        return self._tokens is not None

    def identify(
        self,
        context: grpc.aio.ServicerContext[Any, Any],
        metadata: Sequence[tuple[str, str | bytes]] | None = None,
    ) -> Caller:
        """The caller of the RPC; ``metadata`` is its invocation metadata when already read."""
        if metadata is None:
            metadata = tuple(context.invocation_metadata() or ())
        claimed = next((sanitize(value) for key, value in metadata if key == CALLER_METADATA), "")
        if self._tokens is not None:
            name = self._match(_bearer(metadata))
            if name is None:
                return Caller(UNAUTHENTICATED, claimed=claimed)
            return Caller(name, verified=True, claimed=claimed)
        subject = _certificate_subject(context)
        if subject:
            return Caller(subject, verified=True, claimed=claimed)
        return Caller(UNVERIFIED if claimed else ANONYMOUS, claimed=claimed)

    def _match(self, presented: str) -> str | None:
        """The caller whose token equals ``presented``; every token is compared, in constant
        time."""
        if not presented or self._tokens is None:
            return None
        found = None
        for token, caller in self._tokens.items():
            if hmac.compare_digest(token.encode(), presented.encode()):
                found = caller
        return found


def _bearer(metadata: Sequence[tuple[str, str | bytes]]) -> str:
    for key, value in metadata:
        if key == "authorization" and isinstance(value, str):
            scheme, _, credential = value.partition(" ")
            if scheme.lower() == "bearer":
                return credential.strip()
    return ""


def _certificate_subject(context: grpc.aio.ServicerContext[Any, Any]) -> str:
    # gRPC fills x509_common_name only from a client certificate it verified against the
    # configured client CA (require_client_auth), so the name is proven.
    names: Iterable[bytes] = context.auth_context().get("x509_common_name") or ()
    first = next(iter(names), b"")
    return sanitize(first) if first else ""

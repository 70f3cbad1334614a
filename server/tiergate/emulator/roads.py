"""The cloud roads to Claude as the emulator plays them: Amazon Bedrock (the Messages API
endpoint and InvokeModel), Google Vertex AI and Microsoft Foundry.

One emulator process serves every road under its own path prefix, so a test points each SDK
client at ``{base_url}{prefix}``; every road then shares the one Messages API core (validation,
prefix cache, usage, faults, scripts). What differs per road is checked here, before the core:
where the model is named and in which form, the version field, the credentials, and the
features the provider lacks for a model.

    >>> translate_model("bedrock", "global.anthropic.claude-haiku-4-5-20251001-v1:0")
    'claude-haiku-4-5'
    >>> translate_model("vertex", "claude-haiku-4-5@20251001")
    'claude-haiku-4-5'

Sources (read 2026-12-06): Anthropic's "Claude in Amazon Bedrock" and "Claude on Amazon Bedrock
(legacy)" pages, AWS's "Inference using Anthropic Messages API", Anthropic's and Google's
"Claude on Vertex AI" pages, Anthropic's "Claude in Microsoft Foundry"; see docs/api-fidelity.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .cloud_auth import IssuedKeys, check_sigv4
from .errors import ApiError, invalid_request, not_found

Road = Literal["anthropic", "bedrock", "bedrock-invoke", "vertex", "foundry"]
ROADS: tuple[Road, ...] = ("anthropic", "bedrock", "bedrock-invoke", "vertex", "foundry")

PREFIXES: Mapping[Road, str] = {
    "anthropic": "",
    "bedrock": "/bedrock-mantle/anthropic",
    "bedrock-invoke": "/bedrock-runtime",
    "vertex": "/vertex/v1",
    "foundry": "/foundry/anthropic",
}
"""Where each road lives in the one emulator process: the base URL its SDK client takes."""

# Bedrock base model ids (Anthropic's Bedrock model table).
BEDROCK_BASE_IDS: Mapping[str, str] = {
    "claude-haiku-4-5": "anthropic.claude-haiku-4-5-20251001-v1:0",
    "claude-sonnet-4-5": "anthropic.claude-sonnet-4-5-20250929-v1:0",
    "claude-sonnet-4-6": "anthropic.claude-sonnet-4-6",
    "claude-opus-4-5": "anthropic.claude-opus-4-5-20251101-v1:0",
    "claude-opus-4-6": "anthropic.claude-opus-4-6-v1",
    "claude-opus-4-7": "anthropic.claude-opus-4-7",
}
BEDROCK_PROFILES = ("global", "us", "eu", "jp", "apac", "au")
"""Cross-region inference profiles: the base id prefixed with ``{profile}.``."""
BEDROCK_LEGACY_MODELS = frozenset(
    {
        "claude-haiku-4-5",
        "claude-sonnet-4-5",
        "claude-sonnet-4-6",
        "claude-opus-4-5",
        "claude-opus-4-6",
    }
)
"""The legacy (ARN-versioned) InvokeModel models: they refuse the SDK's ``2026-10-21``."""

VERTEX_IDS: Mapping[str, str] = {
    "claude-haiku-4-5": "claude-haiku-4-5@20251001",
    "claude-sonnet-4-5": "claude-sonnet-4-5@20250929",
    "claude-opus-4-5": "claude-opus-4-5@20251101",
    "claude-sonnet-4-6": "claude-sonnet-4-6",
    "claude-opus-4-6": "claude-opus-4-6",
    "claude-opus-4-7": "claude-opus-4-7",
}
VERTEX_STRUCTURED_OUTPUTS = frozenset({"claude-sonnet-4-6", "claude-opus-4-6", "claude-opus-4-7"})
"""Models with structured outputs on Vertex AI (Haiku 4.5 and the 4.5 Sonnet/Opus: coming soon)."""

BEDROCK_INVOKE_VERSION = "bedrock-2023-05-31"
VERTEX_VERSION = "vertex-2023-10-16"
API_VERSIONS = ("2023-06-01", "2026-10-21")
"""``anthropic-version`` values the Messages API endpoints (Claude API, Bedrock's, Foundry) take."""
BASE64_ONLY: frozenset[Road] = frozenset({"bedrock", "bedrock-invoke", "vertex"})
"""Roads that take only base64 image and document sources (no URL, no Files API id)."""


@dataclass(frozen=True)
class RoadKeys:
    """The credential each road expects; None accepts any credential of the right kind."""

    bedrock: str | None = None
    """Bedrock API key (``Authorization: Bearer``)."""
    aws_secrets: Mapping[str, str] = field(default_factory=dict)
    """AWS access key id -> secret access key: SigV4 signatures by these keys are recomputed
    and must match; empty checks a signature's form and scope only."""
    vertex: str | None = None
    """Google access token (``Authorization: Bearer``); the token endpoint issues it."""
    aws_web_identities: Mapping[str, str] = field(default_factory=dict)
    """Role ARN -> the web identity token its trust policy accepts: the emulator's STS
    (``POST /sts``) issues temporary credentials for it, as IRSA on EKS obtains them."""
    google_accounts: Mapping[str, str] = field(default_factory=dict)
    """Service account ``client_email`` -> its public key (PEM): the token endpoint
    (``POST /oauth2/token``) grants an access token to a JWT signed by one of them."""
    foundry: str | None = None
    """Foundry key (``x-api-key`` or ``api-key``)."""
    vertex_structured_outputs: bool = True
    """The organisation policy ``constraints/vertexai.allowedPartnerModelFeatures`` allows
    structured outputs (they are off by default on Vertex AI)."""
    foundry_deployments: Mapping[str, str] = field(default_factory=dict)
    """Foundry deployment name -> model; a model's own name is always a deployment."""


def translate_model(road: Road, wire_model: str, keys: RoadKeys | None = None) -> str:
    """The emulator's model name for the id a road's request carries; 404 for any other form."""
    if road == "bedrock" or road == "bedrock-invoke":
        profile, _, rest = wire_model.partition(".")
        base = rest if profile in BEDROCK_PROFILES else wire_model
        for model, base_id in BEDROCK_BASE_IDS.items():
            if base == base_id:
                return model
        raise ApiError(
            400 if road == "bedrock-invoke" else 404,
            "invalid_request_error" if road == "bedrock-invoke" else "not_found_error",
            f"The provided model identifier is invalid: {wire_model}",
        )
    if road == "vertex":
        for model, vertex_id in VERTEX_IDS.items():
            if wire_model == vertex_id:
                return model
        raise not_found(f"Publisher Model `publishers/anthropic/models/{wire_model}` not found.")
    if road == "foundry":
        # A deployment is named after its model unless the emulator is told otherwise.
        deployments = {} if keys is None else keys.foundry_deployments
        return deployments.get(wire_model, wire_model)
    return wire_model


def authenticate(
    road: Road,
    headers: Mapping[str, str],
    keys: RoadKeys,
    *,
    method: str = "POST",
    target: str = "",
    body: bytes = b"",
    issued: IssuedKeys | None = None,
) -> None:
    """Each road's credentials: 401/403 as the provider answers a missing or wrong one.
    ``method``, ``target`` (path and query as sent) and ``body`` are what SigV4 signs."""
    bearer = headers.get("authorization", "")
    if road in ("bedrock", "bedrock-invoke"):
        service = "bedrock-mantle" if road == "bedrock" else "bedrock"
        if bearer.startswith("AWS4-HMAC-SHA256 "):
            check_sigv4(
                bearer,
                headers,
                method=method,
                target=target,
                body=body,
                service=service,
                secrets=keys.aws_secrets,
                issued=issued,
            )
            return
        if not bearer.startswith("Bearer "):
            raise ApiError(403, "permission_error", "Missing Authentication Token")
        if keys.bedrock is not None and bearer != f"Bearer {keys.bedrock}":
            raise ApiError(403, "permission_error", "The security token included is invalid.")
        return
    if road == "vertex":
        if not bearer.startswith("Bearer "):
            raise ApiError(401, "authentication_error", "Request is missing an access token.")
        if keys.vertex is not None and bearer != f"Bearer {keys.vertex}":
            raise ApiError(401, "authentication_error", "Request had invalid credentials.")
        return
    if road == "foundry":
        key = headers.get("x-api-key") or headers.get("api-key")
        if key is None and not bearer.startswith("Bearer "):
            raise ApiError(401, "authentication_error", "Missing api-key or Entra ID token.")
        if keys.foundry is not None and key is not None and key != keys.foundry:
            raise ApiError(401, "authentication_error", "Invalid api-key.")
        return


def road_body(
    road: Road,
    body: Any,
    headers: Mapping[str, str],
    path_model: str | None,
    keys: RoadKeys,
    streamed: bool = False,
) -> tuple[dict[str, Any], str]:
    """The Messages API body the core validates, and the model id as the road's caller named it.

    Raises the road's 400 for a body ``model`` where the path names the model, a missing or
    wrong version field, a model id of another form, or a feature the road lacks. On Bedrock
    InvokeModel the path alone asks for a stream (``streamed``): the body names none.
    """
    if not isinstance(body, dict):
        raise invalid_request("The request body must be a JSON object.")
    body = dict(body)
    if road in ("bedrock-invoke", "vertex"):
        assert path_model is not None
        if "model" in body:
            raise invalid_request("model: Extra inputs are not permitted (the URL names the model)")
        if road == "bedrock-invoke":
            if "stream" in body:
                raise invalid_request(
                    "stream: Extra inputs are not permitted (invoke-with-response-stream streams)"
                )
            body["stream"] = streamed
        version = body.pop("anthropic_version", None)
        wire_model = path_model
        model = translate_model(road, wire_model, keys)
        _check_body_version(road, model, version)
    else:
        version = headers.get("anthropic-version")
        if road != "anthropic" and version not in API_VERSIONS:
            raise invalid_request(
                f"anthropic-version: header must be one of {list(API_VERSIONS)}, got {version!r}"
            )
        if "anthropic_version" in body:
            raise invalid_request("anthropic_version: Extra inputs are not permitted")
        wire_model = body.get("model")
        if not isinstance(wire_model, str) or not wire_model:
            raise invalid_request("model: Field required")
        model = translate_model(road, wire_model, keys)
    _check_features(road, model, body, keys)
    body["model"] = model
    return body, wire_model


def _check_body_version(road: Road, model: str, version: Any) -> None:
    if version is None:
        raise invalid_request("anthropic_version: Field required")
    if road == "vertex":
        if version != VERTEX_VERSION:
            raise invalid_request(f"anthropic_version: must be {VERTEX_VERSION!r}, got {version!r}")
        return
    accepted = {BEDROCK_INVOKE_VERSION}
    if model not in BEDROCK_LEGACY_MODELS:
        accepted.add(API_VERSIONS[-1])
    if version not in accepted:
        raise invalid_request(
            f"anthropic_version: {version!r} is not supported for this model; "
            f"use {BEDROCK_INVOKE_VERSION!r}"
        )


def _check_features(road: Road, model: str, body: dict[str, Any], keys: RoadKeys) -> None:
    output_config = body.get("output_config")
    wants_format = isinstance(output_config, dict) and output_config.get("format") is not None
    if road == "vertex" and wants_format:
        if not keys.vertex_structured_outputs:
            raise invalid_request(
                "output_config.format: structured outputs are disabled by the organisation "
                "policy constraints/vertexai.allowedPartnerModelFeatures"
            )
        if model not in VERTEX_STRUCTURED_OUTPUTS:
            raise invalid_request(
                f"output_config.format: structured outputs are not supported for {model} on "
                "Vertex AI"
            )
    if road in BASE64_ONLY:
        for where, source in _sources(body):
            if source.get("type") != "base64":
                raise invalid_request(f"{where}.source.type: only 'base64' is supported")


def _sources(body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    messages = body.get("messages")
    if not isinstance(messages, list):
        return found
    for i, message in enumerate(messages):
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, list):
            continue
        for j, block in enumerate(content):
            if isinstance(block, dict) and block.get("type") in ("image", "document"):
                source = block.get("source")
                if isinstance(source, dict):
                    found.append((f"messages.{i}.content.{j}", source))
    return found


def credential_kind(headers: Mapping[str, str]) -> str:
    """How a request authenticated, for the recorded requests: ``sigv4``, ``bearer``,
    ``api-key`` or ``x-api-key``."""
    authorization = headers.get("authorization", "")
    if authorization.startswith("AWS4-HMAC-SHA256 "):
        return "sigv4"
    if authorization.startswith("Bearer "):
        return "bearer"
    if "api-key" in headers:
        return "api-key"
    return "x-api-key" if "x-api-key" in headers else ""

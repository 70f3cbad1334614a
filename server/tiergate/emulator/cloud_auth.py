"""The clouds' own credentials, checked as the clouds check them: AWS Signature Version 4 on the
Bedrock roads, AWS STS's ``AssumeRoleWithWebIdentity`` (what IRSA calls) issuing temporary keys,
and Google's OAuth 2.0 token endpoint that turns a service account's signed JWT into the access
token Vertex AI takes.

A SigV4 signature is recomputed from the request as received, with the secret of the access key
it names, by botocore's own signer (the reference implementation; imported only when a secret is
configured, so the emulator runs without it)::

    check_sigv4(authorization, headers, method="POST", target="/model/x/invoke", body=b"{}",
                service="bedrock", secrets={"AKIDEXAMPLE": "secret"})

A service account's JWT grant is verified against the public key configured for its
``client_email`` with google-auth's verifier, and answered with the Vertex road's token
(:func:`grant`, behind ``POST /oauth2/token``).

Sources (read 2026-12-06): AWS, "Create a signed AWS API request" and "Elements of an AWS API
request signature" (the canonical request, the 5-minute window, the error messages); the STS
API reference for ``AssumeRoleWithWebIdentity``; Google,
"Using OAuth 2.0 for Server to Server Applications" (the JWT grant, its claims and errors); see
docs/api-fidelity.md.
"""

from __future__ import annotations

import datetime
import hmac
import re
import secrets as random_tokens
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .errors import ApiError

SIGV4_WINDOW = datetime.timedelta(minutes=5)
"""How far a request's ``x-amz-date`` may be from the server's clock."""
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
"""A JWT grant's ``aud``, always, whatever address the token endpoint is reached at."""
TOKEN_LIFETIME_S = 3600

_SIGV4 = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<key>[A-Z0-9]+)/(?P<date>\d{8})/(?P<region>[a-z0-9-]+)/"
    r"(?P<service>[a-z-]+)/aws4_request, ?SignedHeaders=(?P<signed>[a-z0-9;-]+), ?"
    r"Signature=(?P<signature>[0-9a-f]{64})$"
)
_STAMP = "%Y%m%dT%H%M%SZ"
_INVALID_TOKEN = "The security token included in the request is invalid."
_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your"
    " AWS Secret Access Key and signing method."
)


def check_sigv4(
    authorization: str,
    headers: Mapping[str, str],
    *,
    method: str,
    target: str,
    body: bytes,
    service: str,
    secrets: Mapping[str, str],
    issued: IssuedKeys | None = None,
    now: datetime.datetime | None = None,
) -> None:
    """403 unless ``authorization`` is a SigV4 signature of this request, scoped to
    ``service``; with ``secrets`` (access key id -> secret access key) the signature itself is
    recomputed, without them only its form and scope are checked. Temporary keys the
    emulator's STS ``issued`` are checked too, with their session token. ``target`` is the
    path and query exactly as sent."""
    signed = _SIGV4.match(authorization)
    stamp = headers.get("x-amz-date", "")
    if signed is None or not stamp:
        raise ApiError(403, "permission_error", "The request signature is malformed.")
    if signed["service"] != service:
        raise ApiError(403, "permission_error", f"Credential should be scoped to '{service}'.")
    temporary = issued.keys.get(signed["key"]) if issued is not None else None
    if not secrets and temporary is None:
        return
    secret = secrets.get(signed["key"])
    if temporary is not None:
        secret, session = temporary
        if headers.get("x-amz-security-token") != session:
            secret = None
    if secret is None:
        raise ApiError(403, "permission_error", _INVALID_TOKEN)
    _check_time(stamp, signed["date"], now or datetime.datetime.now(datetime.UTC))
    names = signed["signed"].split(";")
    if "host" not in names or any(name not in headers for name in names):
        raise ApiError(403, "permission_error", _MISMATCH)
    expected = _signature(
        method=method,
        url=f"http://{headers['host']}{target}",
        headers={name: headers[name] for name in names},
        body=body,
        key=signed["key"],
        secret=secret,
        session_token=headers.get("x-amz-security-token"),
        region=signed["region"],
        service=service,
        stamp=stamp,
    )
    if not hmac.compare_digest(expected, signed["signature"]):
        raise ApiError(403, "permission_error", _MISMATCH)


def _check_time(stamp: str, scope_date: str, now: datetime.datetime) -> None:
    try:
        when = datetime.datetime.strptime(stamp, _STAMP).replace(tzinfo=datetime.UTC)
    except ValueError:
        raise ApiError(403, "permission_error", "The request signature is malformed.") from None
    if stamp[:8] != scope_date:
        raise ApiError(403, "permission_error", "Date in Credential scope does not match.")
    if abs(now - when) > SIGV4_WINDOW:
        raise ApiError(
            403,
            "permission_error",
            f"Signature expired: {stamp} is now earlier than "
            f"{(now - SIGV4_WINDOW).strftime(_STAMP)} ({now.strftime(_STAMP)} - 5 min.)",
        )


def _signature(
    *,
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes,
    key: str,
    secret: str,
    session_token: str | None,
    region: str,
    service: str,
    stamp: str,
) -> str:
    try:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials
    except ImportError:  # pragma: no cover - configured secrets need botocore (see docstring)
        raise ApiError(
            500, "api_error", "verifying SigV4 signatures needs botocore in the emulator"
        ) from None
    request = AWSRequest(method=method, url=url, headers=headers, data=body)
    request.context["timestamp"] = stamp
    signer = SigV4Auth(Credentials(key, secret, session_token), service, region)
    canonical = signer.canonical_request(request)
    signature: str = signer.signature(signer.string_to_sign(request, canonical), request)
    return signature


def grant(form: Mapping[str, str], accounts: Mapping[str, str]) -> dict[str, Any]:
    """The token endpoint's answer to a JWT bearer grant, as ``{"access_token", ...}``.

    ``accounts`` maps a service account's ``client_email`` to its public key (PEM); the
    assertion must be signed by it, issued by it, for :data:`GOOGLE_TOKEN_URI`, unexpired and
    asking for the cloud-platform scope. Errors are OAuth's 400 bodies (``invalid_grant``,
    ``unsupported_grant_type``, ``invalid_scope``).
    """
    if form.get("grant_type") != JWT_BEARER:
        raise _oauth_error("unsupported_grant_type", "Invalid grant_type.")
    assertion = form.get("assertion", "")
    try:
        from google.auth import jwt
    except ImportError:  # pragma: no cover - configured accounts need google-auth
        raise ApiError(500, "api_error", "verifying JWT grants needs google-auth") from None
    decode: Callable[..., dict[str, Any]] = jwt.decode
    try:
        issuer = decode(assertion, verify=False).get("iss")
        if not isinstance(issuer, str) or issuer not in accounts:
            raise _oauth_error("invalid_grant", "Invalid JWT Signature.")
        claims = decode(assertion, certs=accounts[issuer], audience=GOOGLE_TOKEN_URI)
    except ValueError as exc:
        # google-auth's verifier: a bad signature, an expired token or another audience.
        raise _oauth_error("invalid_grant", f"Invalid JWT: {exc}") from None
    if CLOUD_PLATFORM not in str(claims.get("scope", "")).split():
        raise _oauth_error("invalid_scope", "The JWT asks for no scope Vertex AI takes.")
    return {"token_type": "Bearer", "expires_in": TOKEN_LIFETIME_S, "iss": issuer}


def token_route(accounts: Mapping[str, str], token: str | None, granted: list[str]) -> web.RouteDef:
    """``POST /oauth2/token``: Google's token endpoint for the service accounts in
    ``accounts``; it hands out ``token`` (a fresh one when None) and appends each granted
    account's email to ``granted``."""

    async def handle(request: web.Request) -> web.StreamResponse:
        form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
        try:
            answer = grant(form, accounts)
        except ApiError as error:
            body = {"error": error.error_type, "error_description": error.message}
            return web.json_response(body, status=error.status)
        granted.append(answer.pop("iss"))
        return web.json_response({"access_token": token or new_access_token(), **answer})

    return web.post("/oauth2/token", handle)


def new_access_token() -> str:
    """An access token the emulator makes up (when the Vertex road expects none in particular)."""
    return "ya29.emu-" + random_tokens.token_urlsafe(24)


def _oauth_error(error: str, description: str) -> ApiError:
    # The token endpoint answers OAuth's body ({"error", "error_description"}), not the API's;
    # the route writes it from these fields.
    return ApiError(400, error, description)


STS_NAMESPACE = "https://sts.amazonaws.com/doc/2011-06-15/"
STS_LIFETIME = datetime.timedelta(hours=1)


@dataclass
class IssuedKeys:
    """Temporary AWS credentials the emulator's STS issued: what IRSA's web identity yields."""

    keys: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Access key id -> (secret access key, session token)."""
    roles: list[str] = field(default_factory=list)
    """Role ARNs assumed, in order."""

    def clear(self) -> None:
        self.keys.clear()
        self.roles.clear()


def sts_routes(trusted: Mapping[str, str], issued: IssuedKeys) -> list[web.RouteDef]:
    """``POST /sts``: AWS STS ``AssumeRoleWithWebIdentity`` (the call botocore's web identity
    provider makes for IRSA, pointed here by ``AWS_ENDPOINT_URL_STS``). ``trusted`` maps a role
    ARN to the web identity token its trust policy accepts; the answer's temporary credentials
    are then accepted by the Bedrock roads' SigV4 check."""

    async def handle(request: web.Request) -> web.StreamResponse:
        form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
        if form.get("Action") != "AssumeRoleWithWebIdentity":
            return _sts_error(400, "InvalidAction", "Only AssumeRoleWithWebIdentity is served.")
        role = form.get("RoleArn", "")
        if role not in trusted:
            return _sts_error(
                403, "AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity"
            )
        if not hmac.compare_digest(form.get("WebIdentityToken", ""), trusted[role]):
            return _sts_error(
                400, "InvalidIdentityToken", "The web identity token that was passed is invalid."
            )
        key = "ASIA" + random_tokens.token_hex(8).upper()
        secret, session = random_tokens.token_urlsafe(30), random_tokens.token_urlsafe(60)
        issued.keys[key] = (secret, session)
        issued.roles.append(role)
        expires = datetime.datetime.now(datetime.UTC) + STS_LIFETIME
        root = ElementTree.Element("AssumeRoleWithWebIdentityResponse", xmlns=STS_NAMESPACE)
        result = ElementTree.SubElement(root, "AssumeRoleWithWebIdentityResult")
        credentials = ElementTree.SubElement(result, "Credentials")
        for tag, text in (
            ("AccessKeyId", key),
            ("SecretAccessKey", secret),
            ("SessionToken", session),
            ("Expiration", expires.strftime("%Y-%m-%dT%H:%M:%SZ")),
        ):
            ElementTree.SubElement(credentials, tag).text = text
        user = ElementTree.SubElement(result, "AssumedRoleUser")
        ElementTree.SubElement(user, "Arn").text = role
        ElementTree.SubElement(user, "AssumedRoleId").text = "AROAEMULATOR:" + form.get(
            "RoleSessionName", ""
        )
        return _xml(200, root)

    return [web.post("/sts", handle), web.post("/sts/", handle)]


def _sts_error(status: int, code: str, message: str) -> web.Response:
    root = ElementTree.Element("ErrorResponse", xmlns=STS_NAMESPACE)
    error = ElementTree.SubElement(root, "Error")
    for tag, text in (("Type", "Sender"), ("Code", code), ("Message", message)):
        ElementTree.SubElement(error, tag).text = text
    ElementTree.SubElement(root, "RequestId").text = random_tokens.token_hex(16)
    return _xml(status, root)


def _xml(status: int, root: ElementTree.Element) -> web.Response:
    return web.Response(
        status=status,
        body=ElementTree.tostring(root, encoding="utf-8", xml_declaration=False),
        content_type="text/xml",
    )

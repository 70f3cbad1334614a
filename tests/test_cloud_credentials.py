"""The clouds' own credential chains, really exercised: the SDK signs Bedrock calls with SigV4
from the AWS credential chain (static keys in the environment, as IRSA's web identity yields
them, with a session token), and Vertex AI calls with a Google access token it obtains from a
service account's key file (application default credentials), both against the emulator, which
recomputes the signature with the test secret and verifies the JWT grant with the account's
public key at its own token endpoint. No network beyond loopback."""

from __future__ import annotations

import datetime
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import grpc
import pytest
from anthropic.lib.aws._auth import _get_session
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from harness import BackgroundLoop
from tiergate.config import Settings
from tiergate.emulator import Emulator, EmulatorConfig, Script
from tiergate.emulator.roads import PREFIXES, RoadKeys
from tiergate.serving.app import App
from tiergate.v1 import task_service_pb2 as pb
from tiergate.v1 import task_service_pb2_grpc

KEY_ID, SECRET, SESSION = "ASIAEMULATOREXAMPLE", "emulator/secret/key", "session-token-from-sts"
ROLE = "arn:aws:iam::123456789012:role/tiergate"
WEB_IDENTITY = "eyJhbGciOiJSUzI1NiJ9.a-projected-service-account-token.sig"
ACCOUNT = "tiergate@acme.iam.gserviceaccount.com"
VERTEX_TOKEN = "ya29.issued-by-the-emulator"
ANSWER = json.dumps({"label": "billing"})
CLASSIFY = pb.ClassifyRequest(
    text="My invoice is wrong.", labels=[pb.Label(name="billing"), pb.Label(name="other")]
)
# Variables of other credential sources, cleared so only the one under test applies (and
# nothing reaches for a metadata server or a profile on this machine).
FOREIGN = (
    "AWS_BEARER_TOKEN_BEDROCK",
    "ANTHROPIC_AWS_API_KEY",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "TIERGATE_VERTEX_ACCESS_TOKEN",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "GOOGLE_CLOUD_PROJECT",
)


def _private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


ACCOUNT_KEY = _private_key()


def _public_pem(key: rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@pytest.fixture(scope="module")
def clouds(background: BackgroundLoop) -> Iterator[Emulator]:
    """An emulator that knows the test's AWS secret and the service account's public key."""
    keys = RoadKeys(
        aws_secrets={KEY_ID: SECRET},
        aws_web_identities={ROLE: WEB_IDENTITY},
        vertex=VERTEX_TOKEN,
        google_accounts={ACCOUNT: _public_pem(ACCOUNT_KEY)},
    )
    emulator = Emulator(EmulatorConfig(road_keys=keys))
    background.run(emulator.start())
    yield emulator
    background.run(emulator.stop())


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    for name in FOREIGN:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("NO_GCE_CHECK", "True")
    # The SDK keeps one boto3 session (and its resolved credentials) per process and
    # arguments, as a long-running service wants; between tests it would carry one test's keys
    # into the next.
    cast(Any, _get_session).cache_clear()
    return monkeypatch


def _serve(
    background: BackgroundLoop, road: str
) -> tuple[App, task_service_pb2_grpc.TaskServiceStub]:
    app = App(Settings(host="127.0.0.1", port=0, upstream=road, response_cache_ttl_s=0.0))
    background.run(app.start())
    channel = grpc.insecure_channel(f"127.0.0.1:{app.port}")
    return app, task_service_pb2_grpc.TaskServiceStub(channel)


def _call(background: BackgroundLoop, road: str, times: int = 1) -> list[pb.ClassifyResponse]:
    app, stub = _serve(background, road)
    try:
        return [stub.Classify(CLASSIFY, timeout=20) for _ in range(times)]
    finally:
        background.run(app.stop(grace=1))


def _bedrock_env(env: pytest.MonkeyPatch, url: str, road: str, secret: str = SECRET) -> None:
    env.setenv("AWS_REGION", "us-east-1")
    env.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    env.setenv("AWS_SECRET_ACCESS_KEY", secret)
    env.setenv("AWS_SESSION_TOKEN", SESSION)
    variable = (
        "ANTHROPIC_BEDROCK_MANTLE_BASE_URL" if road == "bedrock" else "ANTHROPIC_BEDROCK_BASE_URL"
    )
    env.setenv(variable, url + PREFIXES[road])  # type: ignore[index]


class TestSigV4:
    @pytest.mark.parametrize("road", ["bedrock", "bedrock-invoke"])
    def test_the_aws_credential_chain_signs_each_bedrock_road(
        self, road: str, clouds: Emulator, clean_env: pytest.MonkeyPatch, background: BackgroundLoop
    ) -> None:
        """No Bedrock API key: botocore signs with the environment's temporary credentials
        (key, secret, session token) and the emulator's recomputed signature matches."""
        clouds.reset()
        _bedrock_env(clean_env, clouds.base_url, road)
        clouds.script(Script(text=ANSWER))
        [reply] = _call(background, road)
        assert reply.label == "billing"
        assert reply.usage.provider == road
        [sent] = clouds.road_requests
        assert (sent["road"], sent["credential"]) == (road, "sigv4")

    def test_a_wrong_secret_is_refused_and_reported_as_such(
        self, clouds: Emulator, clean_env: pytest.MonkeyPatch, background: BackgroundLoop
    ) -> None:
        """Signed with another secret: the emulator's 403 (the signature does not match) is
        UPSTREAM_AUTH_FAILED (the service's own credentials, INTERNAL to the caller), not a
        retry or an outage."""
        clouds.reset()
        _bedrock_env(clean_env, clouds.base_url, "bedrock", secret="not-the-secret")
        with pytest.raises(grpc.RpcError) as refused:
            _call(background, "bedrock")
        assert refused.value.code() == grpc.StatusCode.INTERNAL
        assert "credentials were refused" in (refused.value.details() or "")
        assert not clouds.road_requests

    @pytest.mark.parametrize("trusted", [True, False], ids=["trusted", "untrusted"])
    def test_irsa_web_identity_yields_the_keys_that_sign(
        self,
        trusted: bool,
        clouds: Emulator,
        clean_env: pytest.MonkeyPatch,
        background: BackgroundLoop,
        tmp_path: Path,
    ) -> None:
        """As on EKS with IRSA: only a role ARN and a projected token file. botocore asks STS
        (the emulator's, by ``AWS_ENDPOINT_URL_STS``) for temporary credentials and signs with
        them; a token the role does not trust gets none, and the call fails as
        UPSTREAM_AUTH_FAILED before reaching Bedrock."""
        clouds.reset()
        token = tmp_path / "token"
        token.write_text(WEB_IDENTITY if trusted else "another-token")
        clean_env.setenv("AWS_REGION", "us-east-1")
        clean_env.setenv("AWS_ROLE_ARN", ROLE)
        clean_env.setenv("AWS_WEB_IDENTITY_TOKEN_FILE", str(token))
        clean_env.setenv("AWS_ENDPOINT_URL_STS", clouds.base_url + "/sts")
        clean_env.setenv("ANTHROPIC_BEDROCK_MANTLE_BASE_URL", clouds.base_url + PREFIXES["bedrock"])
        if not trusted:
            with pytest.raises(grpc.RpcError) as refused:
                _call(background, "bedrock")
            assert refused.value.code() == grpc.StatusCode.INTERNAL
            assert "could not load its model API credentials" in (refused.value.details() or "")
            assert (clouds.aws_issued.roles, clouds.road_requests) == ([], [])
            return
        clouds.script(Script(text=ANSWER))
        [reply] = _call(background, "bedrock")
        assert reply.label == "billing"
        assert clouds.aws_issued.roles == [ROLE]
        assert [r["credential"] for r in clouds.road_requests] == ["sigv4"]

    def test_no_aws_credentials_at_all_is_an_auth_failure(
        self, clouds: Emulator, clean_env: pytest.MonkeyPatch, background: BackgroundLoop
    ) -> None:
        """Neither a key, a profile nor a web identity: the SDK cannot sign, and the call is
        UPSTREAM_AUTH_FAILED (not a bug, not retried)."""
        clouds.reset()
        clean_env.setenv("AWS_REGION", "us-east-1")
        clean_env.setenv("ANTHROPIC_BEDROCK_MANTLE_BASE_URL", clouds.base_url + PREFIXES["bedrock"])
        with pytest.raises(grpc.RpcError) as refused:
            _call(background, "bedrock")
        assert refused.value.code() == grpc.StatusCode.INTERNAL
        assert "could not load its model API credentials" in (refused.value.details() or "")
        assert not clouds.road_requests

    def test_the_emulator_checks_the_signature_of_what_was_sent(self, clouds: Emulator) -> None:
        """botocore's own signer: a signed request passes; the same headers over another body,
        an unknown key and a signature older than 5 minutes are each refused with AWS's words."""
        clouds.reset()
        url = clouds.base_url + PREFIXES["bedrock"] + "/v1/messages"
        body = json.dumps(
            {
                "model": "global.anthropic.claude-haiku-4-5-20251001-v1:0",
                "max_tokens": 16,
                "messages": [{"role": "user", "content": "hi"}],
            }
        ).encode()
        assert _post_signed(url, body)[0] == 200
        status, error = _post_signed(url, body, sent=body.replace(b"hi", b"ho"))
        assert (status, error["type"]) == (403, "permission_error")
        assert "signature we calculated does not match" in error["message"]
        status, error = _post_signed(url, body, key_id="AKIAUNKNOWNKEY")
        assert "security token included in the request is invalid" in error["message"]
        stale = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=6)
        status, error = _post_signed(url, body, when=stale)
        assert (status, error["message"].split(":")[0]) == (403, "Signature expired")
        # A temporary key (as STS issues) signs only with its session token.
        clouds.aws_issued.keys["ASIATEMPORARYKEY"] = ("temporary-secret", "its-session")
        temporary = ("ASIATEMPORARYKEY", "temporary-secret")
        signed = _post_signed(
            url, body, key_id=temporary[0], secret=temporary[1], token="its-session"
        )
        assert signed[0] == 200
        status, error = _post_signed(url, body, key_id=temporary[0], secret=temporary[1])
        assert "security token included in the request is invalid" in error["message"]


def _post_signed(
    url: str,
    body: bytes,
    *,
    sent: bytes | None = None,
    key_id: str = KEY_ID,
    secret: str = SECRET,
    token: str | None = None,
    when: datetime.datetime | None = None,
) -> tuple[int, dict[str, Any]]:
    request = AWSRequest(
        method="POST",
        url=url,
        data=body,
        headers={"content-type": "application/json", "anthropic-version": "2023-06-01"},
    )
    signer = SigV4Auth(Credentials(key_id, secret, token), "bedrock-mantle", "us-east-1")
    if when is None:
        signer.add_auth(request)
    else:  # signed as add_auth signs, at another time
        stamp = when.strftime("%Y%m%dT%H%M%SZ")
        request.context["timestamp"] = stamp
        request.headers["X-Amz-Date"] = stamp
        request.headers["Host"] = url.split("/")[2]
        signature = signer.signature(
            signer.string_to_sign(request, signer.canonical_request(request)), request
        )
        signed = signer.signed_headers(signer.headers_to_sign(request))
        request.headers["Authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={signer.scope(request)}, SignedHeaders={signed}, "
            f"Signature={signature}"
        )
    prepared = request.prepare()
    raw = urllib.request.Request(url, data=sent if sent is not None else body, method="POST")
    for name, value in prepared.headers.items():
        raw.add_header(name, value)
    try:
        with urllib.request.urlopen(raw) as reply:
            return reply.status, json.load(reply)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)["error"]


class TestGoogleCredentials:
    def _key_file(self, tmp_path: Path, url: str, key: rsa.RSAPrivateKey) -> Path:
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        path = tmp_path / "service-account.json"
        path.write_text(
            json.dumps(
                {
                    "type": "service_account",
                    "project_id": "acme",
                    "private_key_id": "k1",
                    "private_key": pem,
                    "client_email": ACCOUNT,
                    "client_id": "1",
                    "token_uri": url + "/oauth2/token",
                }
            )
        )
        return path

    def _vertex_env(self, env: pytest.MonkeyPatch, url: str, key_file: Path) -> None:
        env.setenv("ANTHROPIC_VERTEX_PROJECT_ID", "acme")
        env.setenv("CLOUD_ML_REGION", "global")
        env.setenv("ANTHROPIC_VERTEX_BASE_URL", url + PREFIXES["vertex"])
        env.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key_file))

    def test_a_service_account_file_signs_vertex_calls(
        self,
        clouds: Emulator,
        clean_env: pytest.MonkeyPatch,
        background: BackgroundLoop,
        tmp_path: Path,
    ) -> None:
        """No access token configured: google-auth signs a JWT with the account's key, the
        emulator's token endpoint verifies it and grants the token the Vertex road takes; the
        token is reused for the next call."""
        clouds.reset()
        self._vertex_env(
            clean_env, clouds.base_url, self._key_file(tmp_path, clouds.base_url, ACCOUNT_KEY)
        )
        clouds.script(Script(text=ANSWER), Script(text=ANSWER))
        replies = _call(background, "vertex", times=2)
        assert [r.label for r in replies] == ["billing", "billing"]
        assert replies[0].usage.provider == "vertex"
        assert clouds.token_grants == [ACCOUNT]
        assert [r["credential"] for r in clouds.road_requests] == ["bearer", "bearer"]

    def test_a_key_the_account_does_not_have_gets_no_token(
        self,
        clouds: Emulator,
        clean_env: pytest.MonkeyPatch,
        background: BackgroundLoop,
        tmp_path: Path,
    ) -> None:
        """A key file with another private key: the token endpoint refuses the grant, no call
        reaches Vertex, and google-auth's refusal is UPSTREAM_AUTH_FAILED (credentials not
        loadable), not a bug."""
        clouds.reset()
        self._vertex_env(
            clean_env, clouds.base_url, self._key_file(tmp_path, clouds.base_url, _private_key())
        )
        with pytest.raises(grpc.RpcError) as refused:
            _call(background, "vertex")
        assert refused.value.code() == grpc.StatusCode.INTERNAL
        assert "could not load its model API credentials" in (refused.value.details() or "")
        assert not clouds.token_grants
        assert not clouds.road_requests

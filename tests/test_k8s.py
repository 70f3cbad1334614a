"""The Kubernetes manifests, as kustomize renders them, hold every property the service relies on.

The manifests are rendered once per session by the kustomize that ``make k8s-check`` installs in
``.tools/bin``; the settings they carry are parsed by the server's own ``config.from_env``, so a
manifest and the server cannot disagree on a name, a port or a grace period unnoticed.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import grpc
import kubernetes_validate  # type: ignore[import-untyped]  # the package ships no types
import pytest
import yaml
from grpc_health.v1 import health_pb2

from tiergate import config
from tiergate.client import health_check
from tiergate.config import Settings
from tiergate.serving.app import App
from tiergate.v1 import task_service_pb2

REPO = Path(__file__).resolve().parent.parent
KUSTOMIZE = REPO / ".tools" / "bin" / "kustomize"
KUBERNETES_VERSION = "1.30.0"
TREES = {"base": "k8s/base", "dev": "k8s/overlays/dev", "prod": "k8s/overlays/prod"}
OVERLAYS = ["dev", "prod"]
TASK_SERVICE = task_service_pb2.DESCRIPTOR.services_by_name["TaskService"].full_name

Doc = dict[str, Any]
# Kinds of a CRD, which kubernetes-validate has no schema for (it only warns, in `make
# k8s-check` too), each with the test that checks it instead.
CUSTOM_KINDS = {"PrometheusRule": "tests/test_alerts.py, against k8s/components/alerts' schema"}


@pytest.fixture(scope="session")
def rendered() -> dict[str, list[Doc]]:
    """Every kustomization rendered by the pinned kustomize, parsed."""
    if not KUSTOMIZE.exists():
        message = f"{KUSTOMIZE} is missing: `make k8s-check` installs it"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    out = {}
    for name, tree in TREES.items():
        text = subprocess.run(
            [str(KUSTOMIZE), "build", tree], cwd=REPO, check=True, capture_output=True, text=True
        ).stdout
        out[name] = [doc for doc in yaml.safe_load_all(text) if doc]
    return out


def only(docs: list[Doc], kind: str) -> Doc:
    found = [d for d in docs if d["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def of_kind(docs: list[Doc], kind: str) -> list[Doc]:
    return [d for d in docs if d["kind"] == kind]


def pod_spec(docs: list[Doc]) -> Doc:
    spec: Doc = only(docs, "Deployment")["spec"]["template"]["spec"]
    return spec


def container(docs: list[Doc]) -> Doc:
    containers = pod_spec(docs)["containers"]
    assert len(containers) == 1
    main: Doc = containers[0]
    return main


def pod_labels(docs: list[Doc]) -> dict[str, str]:
    labels: dict[str, str] = only(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    return labels


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def environment(docs: list[Doc]) -> dict[str, str]:
    """The container's plain environment: its ConfigMap(s), then literal ``env`` values."""
    main = container(docs)
    maps = {m["metadata"]["name"]: m.get("data", {}) for m in of_kind(docs, "ConfigMap")}
    env: dict[str, str] = {}
    for source in main.get("envFrom", []):
        env.update(maps[source["configMapRef"]["name"]])
    env.update({e["name"]: e["value"] for e in main.get("env", []) if "value" in e})
    return env


def settings(docs: list[Doc]) -> Settings:
    """What the server would run with in this pod, parsed by the server's own code."""
    return config.from_env(environment(docs))


def port_named(docs: list[Doc], name: str) -> int:
    ports = {p["name"]: p["containerPort"] for p in container(docs)["ports"]}
    return int(ports[name])


def prestop_sleep_s(docs: list[Doc]) -> int:
    pre_stop = container(docs)["lifecycle"]["preStop"]
    if "sleep" in pre_stop:
        return int(pre_stop["sleep"]["seconds"])
    command = pre_stop["exec"]["command"]
    assert Path(command[0]).name == "sleep"
    return int(command[1])


@pytest.fixture(params=list(TREES))
def tree(request: pytest.FixtureRequest, rendered: dict[str, list[Doc]]) -> list[Doc]:
    docs: list[Doc] = rendered[request.param]
    return docs


@pytest.fixture(params=OVERLAYS)
def overlay(request: pytest.FixtureRequest, rendered: dict[str, list[Doc]]) -> list[Doc]:
    docs: list[Doc] = rendered[request.param]
    return docs


class TestValidation:
    def test_every_resource_validates_strictly_against_kubernetes_1_30(
        self, tree: list[Doc]
    ) -> None:
        """Each rendered resource matches the 1.30 schema with no unknown field; custom
        resources, which the validator has no schema for, are checked by their own tests."""
        assert tree
        for doc in tree:
            if doc["kind"] in CUSTOM_KINDS:
                with pytest.raises(kubernetes_validate.SchemaNotFoundError):
                    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
                continue
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)

    def test_strict_validation_rejects_an_unknown_field(
        self, rendered: dict[str, list[Doc]]
    ) -> None:
        """The validator really bites: a misspelt field in the Deployment fails."""
        deployment = only(rendered["prod"], "Deployment")
        broken = yaml.safe_load(yaml.safe_dump(deployment))
        broken["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["grpcc"] = {}
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)

    def test_every_overlay_has_the_same_kinds_of_resources(
        self, rendered: dict[str, list[Doc]]
    ) -> None:
        """Overlays only tune the base: dev drops the autoscaler, prod adds only its alert rules."""
        kinds = {name: sorted(d["kind"] for d in docs) for name, docs in rendered.items()}
        assert kinds["prod"] == sorted([*kinds["base"], "PrometheusRule"])
        assert kinds["dev"] == sorted(k for k in kinds["base"] if k != "HorizontalPodAutoscaler")


class TestSettings:
    def test_every_tiergate_variable_is_a_server_setting(self, tree: list[Doc]) -> None:
        """No misspelt TIERGATE_* variable is silently ignored by the server."""
        known = {config.env_name(f.name) for f in dataclasses.fields(Settings)}
        unknown = {k for k in environment(tree) if k.startswith("TIERGATE_")} - known
        assert not unknown

    def test_the_server_accepts_the_settings(self, tree: list[Doc]) -> None:
        """The ConfigMap parses into Settings, listening on all interfaces on the named ports."""
        parsed = settings(tree)
        assert parsed.host == "0.0.0.0"
        assert parsed.port == port_named(tree, "grpc") == 50051
        assert parsed.metrics_port == port_named(tree, "metrics") == 9464

    def test_the_api_key_comes_from_a_secret_and_never_from_a_literal(
        self, rendered: dict[str, list[Doc]]
    ) -> None:
        """prod reads ANTHROPIC_API_KEY from a Secret it does not ship; no literal anywhere."""
        for docs in rendered.values():
            assert "ANTHROPIC_API_KEY" not in environment(docs)
            assert not of_kind(docs, "Secret")
        env = {e["name"]: e for e in container(rendered["prod"])["env"]}
        ref = env["ANTHROPIC_API_KEY"]["valueFrom"]["secretKeyRef"]
        assert ref["name"] == "tiergate-anthropic"
        assert ref["key"] == "api-key"
        assert ref.get("optional") is False

    def test_prod_shares_state_in_redis_named_by_a_secret(
        self, rendered: dict[str, list[Doc]]
    ) -> None:
        """prod's replicas share budgets and the response cache through the Redis URL of a
        Secret it does not ship, on a port its NetworkPolicy lets out only to the Redis pods;
        dev and base keep them in the process (one replica's worth)."""
        env = {e["name"]: e for e in container(rendered["prod"])["env"]}
        ref = env["TIERGATE_REDIS_URL"]["valueFrom"]["secretKeyRef"]
        assert (ref["name"], ref["key"], ref.get("optional")) == ("tiergate-redis", "url", False)
        for name in ("dev", "base"):
            assert settings(rendered[name]).redis_url is None
        rules = only(rendered["prod"], "NetworkPolicy")["spec"]["egress"]
        (redis,) = [r for r in rules if r["ports"] == [{"port": 6379, "protocol": "TCP"}]]
        (peer,) = redis["to"]
        assert peer["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "redis"}
        assert peer["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "redis"}
        for name in ("dev", "base"):
            ports = {
                p["port"]
                for r in only(rendered[name], "NetworkPolicy")["spec"]["egress"]
                for p in r["ports"]
            }
            assert 6379 not in ports

    def test_dev_runs_on_the_embedded_emulator(self, rendered: dict[str, list[Doc]]) -> None:
        """dev chooses the emulator explicitly and has no key at all; one fixed replica. The
        other trees call the real API, so their missing key would stop start-up."""
        docs = rendered["dev"]
        names = {e["name"] for e in container(docs).get("env", [])}
        assert "ANTHROPIC_API_KEY" not in names
        assert environment(docs)["TIERGATE_UPSTREAM"] == "emulator"
        assert settings(docs).uses_emulator
        assert not settings(rendered["prod"]).uses_emulator
        assert not settings(rendered["base"]).uses_emulator
        assert only(docs, "Deployment")["spec"]["replicas"] == 1
        assert not of_kind(docs, "HorizontalPodAutoscaler")

    def test_prod_exports_telemetry_to_the_collector(self, rendered: dict[str, list[Doc]]) -> None:
        """prod sends OTLP to a cluster service, on a port its NetworkPolicy lets out."""
        env = environment(rendered["prod"])
        endpoint = urlsplit(env["OTEL_EXPORTER_OTLP_ENDPOINT"])
        assert endpoint.hostname is not None
        assert endpoint.hostname.endswith(".svc.cluster.local")
        assert env["OTEL_SERVICE_NAME"] == "tiergate"
        egress_ports = {
            p["port"]
            for rule in only(rendered["prod"], "NetworkPolicy")["spec"]["egress"]
            for p in rule.get("ports", [])
        }
        assert endpoint.port in egress_ports

    def test_service_links_cannot_shadow_the_settings(self, tree: list[Doc]) -> None:
        """A Service named tiergate would inject TIERGATE_PORT=tcp://...; links are off."""
        assert pod_spec(tree)["enableServiceLinks"] is False


class TestDeployment:
    def test_the_base_runs_at_least_two_replicas(self, rendered: dict[str, list[Doc]]) -> None:
        """Two replicas at least, so one node or one rollout never takes the service down."""
        assert only(rendered["base"], "Deployment")["spec"]["replicas"] >= 2

    def test_probes_use_native_grpc_health(self, tree: list[Doc]) -> None:
        """Readiness checks the task service, liveness the server, both on the gRPC port."""
        main = container(tree)
        grpc_port = port_named(tree, "grpc")
        readiness, liveness = main["readinessProbe"]["grpc"], main["livenessProbe"]["grpc"]
        assert readiness == {"port": grpc_port, "service": TASK_SERVICE}
        assert liveness["port"] == grpc_port
        assert liveness.get("service", "") == ""
        assert main["startupProbe"]["grpc"]["port"] == grpc_port

    def test_the_probed_health_services_are_served(
        self, rendered: dict[str, list[Doc]], app: App
    ) -> None:
        """A real server answers SERVING for exactly the services the probes name."""
        main = container(rendered["prod"])
        names = [main[p]["grpc"].get("service", "") for p in ("readinessProbe", "livenessProbe")]
        with grpc.insecure_channel(f"127.0.0.1:{app.port}") as channel:
            health = health_check(channel)
            for name in names:
                reply = health(health_pb2.HealthCheckRequest(service=name), timeout=10)
                assert reply.status == health_pb2.HealthCheckResponse.SERVING

    def test_resources_request_cpu_and_memory_and_limit_memory(self, tree: list[Doc]) -> None:
        """The scheduler and the autoscaler need requests; memory is capped, CPU not throttled."""
        resources = container(tree)["resources"]
        assert {"cpu", "memory"} <= set(resources["requests"])
        assert set(resources["limits"]) == {"memory"}
        assert _mebibytes(resources["limits"]["memory"]) >= _mebibytes(
            resources["requests"]["memory"]
        )

    def test_the_restricted_security_context(self, tree: list[Doc]) -> None:
        """Pod Security 'restricted': non-root, no escalation, read-only root, no capabilities."""
        pod, main = pod_spec(tree), container(tree)
        context = main["securityContext"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        assert context["runAsNonRoot"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["readOnlyRootFilesystem"] is True
        assert context["capabilities"]["drop"] == ["ALL"]
        assert "add" not in context["capabilities"]
        assert context["seccompProfile"]["type"] == "RuntimeDefault"
        assert pod["securityContext"]["runAsUser"] > 0

    def test_the_pod_runs_as_the_image_user(self, tree: list[Doc]) -> None:
        """runAsUser is the Containerfile's numeric USER, so both agree on file ownership."""
        user = re.search(r"^USER (\d+)", (REPO / "Containerfile").read_text(), re.MULTILINE)
        assert user is not None
        assert pod_spec(tree)["securityContext"]["runAsUser"] == int(user.group(1))

    def test_the_read_only_root_still_has_a_private_tmp(self, tree: list[Doc]) -> None:
        """/tmp is a size-capped emptyDir, the only writable path."""
        mounts = {m["mountPath"]: m["name"] for m in container(tree)["volumeMounts"]}
        volumes = {v["name"]: v for v in pod_spec(tree)["volumes"]}
        assert volumes[mounts["/tmp"]]["emptyDir"]["sizeLimit"]

    def test_no_api_token_is_mounted(self, tree: list[Doc]) -> None:
        """The pod's own ServiceAccount, with token automount off on both."""
        account = only(tree, "ServiceAccount")
        assert pod_spec(tree)["serviceAccountName"] == account["metadata"]["name"]
        assert account["automountServiceAccountToken"] is False
        assert pod_spec(tree)["automountServiceAccountToken"] is False

    def test_pods_spread_across_nodes(self, tree: list[Doc]) -> None:
        """At most one pod of skew per node, counted over this Deployment's own pods."""
        constraints = {c["topologyKey"]: c for c in pod_spec(tree)["topologySpreadConstraints"]}
        by_node = constraints["kubernetes.io/hostname"]
        assert by_node["maxSkew"] == 1
        assert by_node["whenUnsatisfiable"] == "DoNotSchedule"
        assert selects(by_node["labelSelector"]["matchLabels"], pod_labels(tree))

    def test_rollouts_never_drop_below_capacity(self, tree: list[Doc]) -> None:
        """A rolling update surges new pods before an old one goes."""
        rolling = only(tree, "Deployment")["spec"]["strategy"]["rollingUpdate"]
        assert rolling["maxUnavailable"] == 0


class TestDrain:
    def test_the_grace_period_covers_the_prestop_sleep_and_the_drain(self, tree: list[Doc]) -> None:
        """The kubelet's SIGKILL never lands before the server's drain grace has run out."""
        parsed = settings(tree)
        needed = prestop_sleep_s(tree) + getattr(parsed, "drain_delay_s", 0.0)
        needed += parsed.drain_grace_s
        assert pod_spec(tree)["terminationGracePeriodSeconds"] >= needed
        assert prestop_sleep_s(tree) > 0

    def test_a_draining_pod_is_not_restarted_by_its_liveness_probe(self, tree: list[Doc]) -> None:
        """Health turns NOT_SERVING on SIGTERM; liveness tolerates longer than the drain."""
        liveness = container(tree)["livenessProbe"]
        tolerated = liveness["periodSeconds"] * liveness["failureThreshold"]
        assert tolerated > settings(tree).drain_grace_s

    def test_recycled_connections_let_the_longest_request_finish(self, tree: list[Doc]) -> None:
        """Connections are recycled, and the age grace outlasts one full upstream attempt."""
        parsed = settings(tree)
        assert 0 < parsed.max_connection_age_s < float("inf")
        assert parsed.max_connection_age_grace_s >= parsed.upstream_timeout_s


class TestServices:
    def test_the_service_reaches_the_grpc_and_metrics_ports(self, tree: list[Doc]) -> None:
        """The cluster-IP Service selects the pods and names both container ports."""
        service = next(s for s in of_kind(tree, "Service") if s["metadata"]["name"] == "tiergate")
        assert selects(service["spec"]["selector"], pod_labels(tree))
        ports = {p["name"]: p for p in service["spec"]["ports"]}
        assert ports["grpc"]["targetPort"] == "grpc"
        assert ports["grpc"]["appProtocol"] == "kubernetes.io/h2c"
        assert ports["metrics"]["targetPort"] == "metrics"

    def test_a_headless_service_feeds_client_side_round_robin(self, tree: list[Doc]) -> None:
        """DNS of the headless Service lists each ready pod, for round_robin clients."""
        headless = next(s for s in of_kind(tree, "Service") if s["spec"].get("clusterIP") == "None")
        assert selects(headless["spec"]["selector"], pod_labels(tree))
        assert [p["targetPort"] for p in headless["spec"]["ports"]] == ["grpc"]
        assert headless["spec"].get("publishNotReadyAddresses", False) is False


class TestAvailability:
    def test_the_autoscaler_keeps_at_least_two_replicas(
        self, rendered: dict[str, list[Doc]]
    ) -> None:
        """autoscaling/v2 on the Deployment's CPU, never below two replicas."""
        for name in ("base", "prod"):
            hpa = only(rendered[name], "HorizontalPodAutoscaler")
            assert hpa["apiVersion"] == "autoscaling/v2"
            assert hpa["spec"]["scaleTargetRef"]["kind"] == "Deployment"
            assert hpa["spec"]["scaleTargetRef"]["name"] == "tiergate"
            assert 2 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
            [metric] = hpa["spec"]["metrics"]
            assert metric["resource"]["name"] == "cpu"

    def test_prod_leaves_the_replica_count_to_the_autoscaler(
        self, rendered: dict[str, list[Doc]]
    ) -> None:
        """No replicas field in prod, so an apply never resets what the autoscaler chose."""
        assert "replicas" not in only(rendered["prod"], "Deployment")["spec"]

    def test_a_disruption_budget_covers_the_pods(self, tree: list[Doc]) -> None:
        """Evictions go one pod at a time."""
        budget = only(tree, "PodDisruptionBudget")["spec"]
        assert selects(budget["selector"]["matchLabels"], pod_labels(tree))
        assert budget["maxUnavailable"] == 1


class TestNetworkPolicy:
    def test_it_covers_the_pods_both_ways(self, tree: list[Doc]) -> None:
        """Ingress and egress are both restricted for the tiergate pods."""
        policy = only(tree, "NetworkPolicy")["spec"]
        assert selects(policy["podSelector"]["matchLabels"], pod_labels(tree))
        assert sorted(policy["policyTypes"]) == ["Egress", "Ingress"]

    def test_ingress_only_to_grpc_from_callers_and_metrics_from_monitoring(
        self, tree: list[Doc]
    ) -> None:
        """Every rule names its sources: gRPC from labelled pods, metrics from monitoring."""
        rules = only(tree, "NetworkPolicy")["spec"]["ingress"]
        by_port = {rule["ports"][0]["port"]: rule for rule in rules}
        assert set(by_port) == {port_named(tree, "grpc"), port_named(tree, "metrics")}
        assert all(rule.get("from") and len(rule["ports"]) == 1 for rule in rules)
        [callers] = by_port[port_named(tree, "grpc")]["from"]
        assert callers["podSelector"]["matchLabels"] == {"tiergate/client": "true"}
        [monitoring] = by_port[port_named(tree, "metrics")]["from"]
        assert monitoring["namespaceSelector"]["matchLabels"] == {
            "kubernetes.io/metadata.name": "monitoring"
        }

    def test_egress_only_to_dns_the_messages_api_and_the_collector(self, tree: list[Doc]) -> None:
        """Out: DNS on 53, HTTPS to public address blocks, OTLP to the collector; no open rule."""
        rules = only(tree, "NetworkPolicy")["spec"]["egress"]
        assert all(rule.get("to") and rule.get("ports") for rule in rules)
        ports = [sorted((p["port"], p["protocol"]) for p in rule["ports"]) for rule in rules]
        assert [(53, "TCP"), (53, "UDP")] in ports
        assert [(4317, "TCP"), (4318, "TCP")] in ports
        https = next(rule for rule in rules if rule["ports"][0]["port"] == 443)
        for peer in https["to"]:
            network = ipaddress.ip_network(peer["ipBlock"]["cidr"])
            assert network.is_global
            # Narrow published blocks, never a catch-all such as 0.0.0.0/0.
            assert network.prefixlen >= (16 if network.version == 4 else 32)


def _mebibytes(quantity: str) -> float:
    units = {"Ki": 1 / 1024, "Mi": 1.0, "Gi": 1024.0}
    for suffix, factor in units.items():
        if quantity.endswith(suffix):
            return float(quantity[: -len(suffix)]) * factor
    return float(quantity) / 2**20

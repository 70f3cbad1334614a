"""The Grafana dashboard: valid against its schema version, and every metric name and label its
queries use is one a live server exports.

The live servers are real ``tiergate serve`` processes on a standalone emulator. The first, on the
Claude API, has budgets, the response cache, rate-limit pacing and batches on; it answers a few
calls of each task, some retried after a 429 or a 529, one refused by pacing, one served from the
response cache, one with a rate-limit reading it ignores, and runs a batch. The second is
configured with three roads (Claude API, Bedrock, Vertex AI; the emulator serves each): its
first road fails until its breaker opens and calls fail over to the next. Then each one's
Prometheus ``/metrics`` is scraped and parsed with ``prometheus_client``'s parser, the two
scrapes are merged, and each query of the dashboard and of the alert rules is read with a PromQL
parser (tests/promql_refs.py).
"""

from __future__ import annotations

import datetime
import json
import subprocess
import urllib.request
from collections import defaultdict
from pathlib import Path
from typing import Any

import anthropic
import grpc
import jsonschema
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from harness import Processes, eventually, free_port, wait_serving
from promql_refs import Refs, grafana_to_promql, refs
from samples import ANSWER, CLASSIFY, EXTRACT, SAMPLES, SUMMARIZE, TICKET_LABELS
from tiergate.emulator import Fault, Script
from tiergate.emulator.roads import PREFIXES
from tiergate.v1 import batch_service_pb2 as bpb
from tiergate.v1 import batch_service_pb2_grpc, task_service_pb2_grpc
from tiergate.v1 import task_service_pb2 as pb

REPO = Path(__file__).resolve().parent.parent
DASHBOARD = REPO / "deploy" / "grafana" / "dashboards" / "tiergate.json"
SCHEMA = REPO / "deploy" / "grafana" / "dashboard.schema.json"
ALERTS = REPO / "deploy" / "prometheus" / "alerts.yaml"
TOKEN = "s3cret-billing"
AUTH = (("authorization", f"Bearer {TOKEN}"),)
UNCACHED = (*AUTH, ("x-tiergate-cache", "off"))
MAX_ATTEMPTS = 3  # the server's default upstream attempts per billed call
CLASSIFIED = json.dumps({"label": "billing", "confidence": 0.9})
ROADS = ("anthropic", "bedrock", "vertex")
BREAKER_FAILURES = 2
# Labels the scrape adds (Kubernetes service discovery, or the static label of
# deploy/otel/prometheus.yaml), not the service: no /metrics line can carry them.
TARGET_LABELS = {"namespace", "job", "instance", "pod"}
# Labels every histogram series has in the exposition format.
HISTOGRAM_LABELS = {"le"}

Scraped = dict[str, dict[str, set[str]]]
"""Series name -> label -> the values seen."""


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def dashboard_queries() -> dict[str, str]:
    """Every query of the dashboard, by where it is: panel targets and variable queries."""
    board = dashboard()
    queries = {
        f"panel {p['title']!r} {t['refId']}": t["expr"]
        for p in board["panels"]
        for t in p.get("targets", [])
    }
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            queries[f"variable {variable['name']}"] = variable["query"]["query"]
    return queries


def rule_queries() -> dict[str, str]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return {f"rule {r.get('alert') or r['record']}": r["expr"] for g in groups for r in g["rules"]}


def recorded_names() -> set[str]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return {r["record"] for g in groups for r in g["rules"] if "record" in r}


class TestDashboardModel:
    def test_the_dashboard_matches_its_schema_version(self) -> None:
        """The JSON is Grafana's dashboard model at schemaVersion 39, in the closed subset of
        deploy/grafana/dashboard.schema.json: an unknown field or panel kind fails."""
        schema = json.loads(SCHEMA.read_text())
        jsonschema.Draft202012Validator.check_schema(schema)
        jsonschema.Draft202012Validator(schema).validate(dashboard())

    def test_the_schema_bites(self) -> None:
        """A misspelt field, another schema version and an unknown unit are each rejected."""
        validator = jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text()))
        misspelt, newer, unknown_unit = dashboard(), dashboard(), dashboard()
        misspelt["panels"][1]["gridpos"] = misspelt["panels"][1]["gridPos"]
        newer["schemaVersion"] = 41
        unknown_unit["panels"][1]["fieldConfig"]["defaults"]["unit"] = "dollars"
        for board in (misspelt, newer, unknown_unit):
            assert not validator.is_valid(board)

    def test_panels_have_unique_ids_and_fit_the_grid(self) -> None:
        panels = dashboard()["panels"]
        ids = [p["id"] for p in panels]
        assert len(ids) == len(set(ids))
        cells: set[tuple[int, int]] = set()
        for p in panels:
            g = p["gridPos"]
            assert g["x"] + g["w"] <= 24, p["title"]
            mine = {
                (x, y)
                for x in range(g["x"], g["x"] + g["w"])
                for y in range(g["y"], g["y"] + g["h"])
            }
            assert not mine & cells, f"{p['title']} overlaps another panel"
            cells |= mine

    def test_every_query_parses_for_prometheus(self, promtool: str, tmp_path: Path) -> None:
        """Prometheus' own parser (promtool, on the queries as recording rules) accepts every
        panel query, Grafana's variables given values."""
        rules = [
            {"record": f"dashboard:query_{i}", "expr": grafana_to_promql(query)}
            for i, (where, query) in enumerate(dashboard_queries().items())
            if where.startswith("panel")
        ]
        path = tmp_path / "dashboard_rules.yaml"
        path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
        checked = subprocess.run(
            [promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert f"SUCCESS: {len(rules)} rules found" in checked.stdout

    def test_every_panel_filters_by_the_namespace_variable(self) -> None:
        """Namespace, caller and task variables exist; every panel query selects by namespace."""
        names = {v["name"] for v in dashboard()["templating"]["list"]}
        assert {"namespace", "caller", "task"} <= names
        for where, query in dashboard_queries().items():
            if where.startswith("panel"):
                for selector in refs(query).selectors:
                    assert ("namespace", "=~", ".*") in selector.matchers, where


class TestProvisioning:
    def test_the_local_compose_provisions_the_dashboard_and_the_rules(self) -> None:
        """Grafana gets the provisioning and dashboard folders, its data source is the one the
        dashboard defaults to, and Prometheus loads the alert rules it is given."""
        otel = REPO / "deploy" / "otel"
        services = yaml.safe_load((otel / "compose.yaml").read_text())["services"]
        mounts = {
            target: (otel / source).resolve()
            for service in ("grafana", "prometheus")
            for source, target, *_ in (v.split(":") for v in services[service]["volumes"])
        }
        provisioning = mounts["/etc/grafana/provisioning"]
        assert mounts["/var/lib/grafana/dashboards"] == DASHBOARD.parent
        provider = yaml.safe_load((provisioning / "dashboards" / "tiergate.yaml").read_text())
        assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
        sources = yaml.safe_load((provisioning / "datasources" / "prometheus.yaml").read_text())
        [source] = sources["datasources"]
        assert source["url"] == "http://prometheus:9090"
        [choice] = [v for v in dashboard()["templating"]["list"] if v["type"] == "datasource"]
        assert choice["current"]["value"] == source["uid"]
        assert mounts["/etc/prometheus/alerts.yaml"] == ALERTS
        scrape = yaml.safe_load((otel / "prometheus.yaml").read_text())
        assert scrape["rule_files"] == ["/etc/prometheus/alerts.yaml"]


@pytest.fixture(scope="module")
def scraped(tmp_path_factory: pytest.TempPathFactory) -> Scraped:
    """The /metrics of live servers after every kind of call the queries look at: one on the
    Claude API, one on three roads."""
    return _merged(_scrape_claude_api(tmp_path_factory.mktemp("scrape")), _scrape_roads())


def _scrape_claude_api(tmp: Path) -> Scraped:
    (tmp / "tokens").write_text(f"billing-service={TOKEN}\n")
    (tmp / "budgets.toml").write_text(
        '[callers.billing-service]\ndaily_usd = "5"\nmonthly_usd = "50"\n'
        '[callers.billing-service.tasks.Reason]\ndaily_usd = "1"\n'
    )
    metrics_port = free_port()
    processes = Processes(
        emulator_args=("--batch-delay-s", "30"),
        TIERGATE_METRICS_PORT=str(metrics_port),
        TIERGATE_AUTH_TOKENS_FILE=str(tmp / "tokens"),
        TIERGATE_BUDGETS_FILE=str(tmp / "budgets.toml"),
        TIERGATE_RESPONSE_CACHE_TTL_S="3600",
        TIERGATE_BATCH_DIR=str(tmp / "batches"),
        TIERGATE_BATCH_POLL_S="0.2",
    )
    try:
        wait_serving(processes.port)
        _calls(processes)
        url = f"http://127.0.0.1:{metrics_port}/metrics"
        return eventually(lambda: _ready(url), "every metric the scenario records")
    finally:
        processes.close()


def _scrape_roads() -> Scraped:
    """A server on three roads whose first fails (529s) until its breaker opens: calls fail
    over to Bedrock, and every road's breaker, retry budget and price are exported."""
    metrics_port = free_port()
    url = "{emulator}"  # the harness puts its emulator's address there
    processes = Processes(
        TIERGATE_METRICS_PORT=str(metrics_port),
        TIERGATE_UPSTREAM=",".join(ROADS),
        TIERGATE_BREAKER_FAILURES=str(BREAKER_FAILURES),
        TIERGATE_BREAKER_COOLDOWN_S="600",
        AWS_REGION="us-east-1",
        AWS_BEARER_TOKEN_BEDROCK="bedrock-key",
        ANTHROPIC_BEDROCK_MANTLE_BASE_URL=url + PREFIXES["bedrock"],
        ANTHROPIC_VERTEX_PROJECT_ID="acme",
        CLOUD_ML_REGION="global",
        ANTHROPIC_VERTEX_BASE_URL=url + PREFIXES["vertex"],
        TIERGATE_VERTEX_ACCESS_TOKEN="vertex-token",
    )
    try:
        wait_serving(processes.port)
        stub = task_service_pb2_grpc.TaskServiceStub(
            grpc.insecure_channel(f"127.0.0.1:{processes.port}")
        )
        assert stub.Classify(CLASSIFY, timeout=30).usage.provider == "anthropic"
        processes.inject_road("anthropic", Fault("overloaded", count=BREAKER_FAILURES))
        for i in range(BREAKER_FAILURES + 1):
            request = pb.ClassifyRequest(text=f"failover {i}", labels=TICKET_LABELS)
            assert stub.Classify(request, timeout=30).usage.provider == "bedrock"
        metrics = f"http://127.0.0.1:{metrics_port}/metrics"
        return eventually(lambda: _roads_ready(metrics), "the roads' metrics")
    finally:
        processes.close()


def _roads_ready(url: str) -> Scraped | None:
    series, _ = _parse(url)
    states = series.get("tiergate_upstream_breaker_state", {}).get("road", set())
    if states != set(ROADS) or "tiergate_upstream_failovers_total" not in series:
        return None
    return series


def _merged(*scrapes: Scraped) -> Scraped:
    merged: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for scrape in scrapes:
        for name, labels in scrape.items():
            merged[name]  # a series without labels still names its metric
            for label, values in labels.items():
                merged[name][label] |= values
    return {name: dict(labels) for name, labels in merged.items()}


def _calls(processes: Processes) -> None:
    channel = grpc.insecure_channel(f"127.0.0.1:{processes.port}")
    stub = task_service_pb2_grpc.TaskServiceStub(channel)
    for name, request in SAMPLES.items():
        getattr(stub, name)(request, timeout=30, metadata=AUTH)
    # The same Classify again: a response-cache hit.
    stub.Classify(CLASSIFY, timeout=30, metadata=AUTH)
    # Two identical calls at once, the upstream slow: the second waits for the first's answer.
    processes.inject(Fault("slow", delay_s=1.0))
    twins = pb.ClassifyRequest(text="twins", labels=TICKET_LABELS)
    calls = [stub.Classify.future(twins, timeout=30, metadata=AUTH) for _ in range(2)]
    assert calls[0].result().label == calls[1].result().label
    # (Uncached from here: each call below reaches the upstream.)
    # A reading that breaks a rule (a limit of 0): ignored, and counted by its kind.
    processes.inject(Fault("headers", headers={**_no_room(60), _LIMIT: "0"}))
    stub.Summarize(SUMMARIZE, timeout=60, metadata=UNCACHED)
    # A 429 then a 529, each retried: failed attempts with their error type, and retries.
    processes.inject(Fault("rate_limit", retry_after_s=0.05), Fault("overloaded"))
    stub.Summarize(SUMMARIZE, timeout=60, metadata=UNCACHED)
    # Overloaded past every attempt: the RPC fails with UPSTREAM_UNAVAILABLE.
    processes.inject(Fault("overloaded", count=MAX_ATTEMPTS))
    with pytest.raises(grpc.RpcError) as unavailable:
        stub.Extract(EXTRACT, timeout=60, metadata=UNCACHED)
    assert unavailable.value.code() == grpc.StatusCode.UNAVAILABLE
    # A reading of "no requests left for 60 s": the next call goes as the probe (one a second)
    # and hears the same; a call that cannot wait for the next probe's turn is refused.
    processes.script(*[Script(text=CLASSIFIED, headers=_no_room(60))] * 2)
    for text in ("paced", "probe"):
        stub.Classify(
            pb.ClassifyRequest(text=text, labels=TICKET_LABELS, include_confidence=True),
            timeout=30,
            metadata=UNCACHED,
        )
    with pytest.raises(grpc.RpcError) as paced:
        stub.Answer(ANSWER, timeout=0.5, metadata=UNCACHED)
    assert paced.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    batches = batch_service_pb2_grpc.BatchServiceStub(channel)
    item = bpb.BatchItem(custom_id="one")
    item.classify.CopyFrom(CLASSIFY)
    batches.CreateBatch(bpb.CreateBatchRequest(items=[item]), timeout=30, metadata=AUTH)


_LIMIT = "anthropic-ratelimit-requests-limit"


def _no_room(seconds: float) -> dict[str, str]:
    reset = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=seconds)
    return {
        "anthropic-ratelimit-requests-limit": "1",
        "anthropic-ratelimit-requests-remaining": "0",
        "anthropic-ratelimit-requests-reset": reset.isoformat(timespec="seconds").replace(
            "+00:00", "Z"
        ),
    }


def _ready(url: str) -> Scraped | None:
    """The scrape once the scenario's last records are in: metrics follow each answer, and
    the batch worker's gauge its next pass."""
    series, values = _parse(url)
    reasons = series.get("tiergate_rpc_duration_seconds_count", {}).get("tiergate_reason", set())
    if not values.get("tiergate_batches_in_flight") or "UPSTREAM_RATE_LIMITED" not in reasons:
        return None
    if "tiergate_rate_limit_invalid_readings_total" not in series:
        return None
    return series


def _parse(url: str) -> tuple[Scraped, dict[str, float]]:
    """The scrape's series (name -> label -> values), and each name's last sample value."""
    with urllib.request.urlopen(url) as reply:
        text = reply.read().decode()
    series: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            for label, value in sample.labels.items():
                series[sample.name][label].add(value)
            series[sample.name]  # a series without labels still names its metric
            values[sample.name] = sample.value
    return {name: dict(labels) for name, labels in series.items()}, values


def _missing(query_refs: Refs, scraped: Scraped, recorded: set[str]) -> list[str]:
    """What the query names that the scrape lacks: metrics, labels, fixed label values."""
    problems: list[str] = []
    names: set[str] = set()
    for selector in query_refs.selectors:
        if selector.name in recorded:
            continue
        names.add(selector.name)
        labels = scraped.get(selector.name)
        if labels is None:
            problems.append(f"no metric {selector.name}")
            continue
        for label, op, value in selector.matchers:
            if label in TARGET_LABELS:
                continue
            if label not in labels:
                problems.append(f"{selector.name} has no label {label}")
            elif op in ("=", "=~") and value != ".*":
                # A fixed value (or an alternation of fixed values) must be one really sent;
                # an error type, a class of the SDK's errors (not every one can be provoked).
                wanted = value.split("|") if op == "=~" else [value]
                if label == "error_type":
                    absent = [v for v in wanted if not _sdk_error(v)]
                else:
                    absent = [v for v in wanted if v not in labels[label]]
                problems += [f"{selector.name}{{{label}={v!r}}} never seen" for v in absent]
    carried = {label for name in names for label in scraped.get(name, {})}
    for label in query_refs.grouping - TARGET_LABELS - HISTOGRAM_LABELS:
        if names and label not in carried:
            problems.append(f"grouping label {label} is on none of {sorted(names)}")
    return problems


def _sdk_error(name: str) -> bool:
    """``name`` is an ``anthropic`` error class: what ``error.type`` records for an attempt."""
    found = getattr(anthropic, name, None)
    return isinstance(found, type) and issubclass(found, anthropic.APIError)


class TestQueriesAgainstLiveMetrics:
    def test_every_dashboard_query_uses_exported_names_and_labels(self, scraped: Scraped) -> None:
        problems = {
            where: found
            for where, query in dashboard_queries().items()
            if (found := _missing(refs(query), scraped, set()))
        }
        assert not problems

    def test_every_rule_uses_exported_names_and_labels(self, scraped: Scraped) -> None:
        recorded = recorded_names()
        problems = {
            where: found
            for where, query in rule_queries().items()
            if (found := _missing(refs(query), scraped, recorded))
        }
        assert not problems

    def test_the_check_bites(self, scraped: Scraped) -> None:
        """A misspelt metric, an unknown label, a value never sent and a grouping label the
        metric lacks are each reported."""
        for query, problem in (
            ("rate(tiergate_cost_total[5m])", "no metric tiergate_cost_total"),
            ('tiergate_cost_USD_total{tiergate_model="x"}', "has no label tiergate_model"),
            ('tiergate_rpc_duration_seconds_count{tiergate_reason="NOPE"}', "never seen"),
            ('gen_ai_client_operation_duration_seconds_count{error_type="Overloaded"}', "never"),
            ("sum by (tiergate_caller) (tiergate_rpc_in_flight)", "grouping label"),
        ):
            found = _missing(refs(query), scraped, set())
            assert any(problem in p for p in found), (query, found)

"""The monitoring that ships with CloudOps, checked: alert rules (promtool), the Alertmanager config
(amtool), the Grafana dashboards' queries, and the metrics catalogue against running services."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]
from prometheus_client.parser import text_string_to_metric_families

from common.testing import ServiceProcess, free_port, scratch_database

ROOT = Path(__file__).resolve().parents[1]
MONITORING = ROOT / "k8s" / "monitoring"
RULES = MONITORING / "prometheusrule.yaml"
RULE_TESTS = sorted((MONITORING / "tests").glob("*_test.yaml"))
ALERTMANAGER = MONITORING / "alertmanager.yaml"
DASHBOARDS = sorted((MONITORING / "dashboards").glob("*.json"))
CATALOGUE = ROOT / "docs" / "metrics.md"
SERVICES = ("gateway", "resources", "costs", "alerts")

PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool",
    "offset", "inf", "nan", "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count",
    "count_values", "bottomk", "topk", "quantile",
}  # fmt: skip
HISTOGRAM_SUFFIXES = ("_bucket", "_count", "_sum")


def tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is missing: `make servers` installs it (Debian prometheus packages)"
    return path


def run(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=cwd, check=False)


def rule_spec() -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load(RULES.read_text())["spec"]
    return spec


def rules() -> list[dict[str, Any]]:
    return [rule for group in rule_spec()["groups"] for rule in group["rules"]]


@pytest.fixture(scope="module")
def rule_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The PrometheusRule's spec as a plain rule file, next to the unit tests that load it."""
    directory = tmp_path_factory.mktemp("rules")
    (directory / "cloudops.rules.yaml").write_text(yaml.safe_dump(rule_spec(), sort_keys=False))
    for test in RULE_TESTS:
        shutil.copy(test, directory / test.name)
    return directory


# --- the catalogue --------------------------------------------------------------------------------


def catalogue_tables() -> dict[str, dict[str, str]]:
    """``{section: {metric name: type}}`` of the tables in docs/metrics.md."""
    tables: dict[str, dict[str, str]] = {}
    section = ""
    for line in CATALOGUE.read_text().splitlines():
        if line.startswith("## "):
            section = line[3:].strip()
        row = re.match(r"\|\s*`([a-zA-Z_:][a-zA-Z0-9_:]*)`\s*\|\s*([a-z]+)", line)
        if row:
            tables.setdefault(section, {})[row.group(1)] = row.group(2)
    return tables


def cloudops_catalogue() -> dict[str, str]:
    return catalogue_tables()["Catalogue"]


def known_metric(name: str, recorded: set[str]) -> bool:
    documented: dict[str, str] = {}
    for table in catalogue_tables().values():
        documented.update(table)
    if name in documented or name in recorded:
        return True
    base = next((name[: -len(s)] for s in HISTOGRAM_SUFFIXES if name.endswith(s)), None)
    return base is not None and documented.get(base) == "histogram"


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (functions, keywords and labels left out)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges and subqueries
    text = re.sub(
        r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", r"\1", text
    )  # label lists
    names = set()
    for match in re.finditer(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?", text):
        name, call = match.group(1), match.group(2)
        if call or name in PROMQL_WORDS or re.fullmatch(r"\d+[smhdwy]?", name):
            continue
        names.add(name)
    return names


def recorded_names() -> set[str]:
    return {rule["record"] for rule in rules() if "record" in rule}


def test_metric_names_are_read_from_expressions() -> None:
    expr = (
        'sum by (service, le) (rate(http_request_duration_seconds_bucket{route!~"/x|y"}[5m])) '
        "> on (currency) group_left cloudops:cost_hourly_threshold offset 1h and up == 0"
    )
    assert metric_names(expr) == {
        "http_request_duration_seconds_bucket",
        "cloudops:cost_hourly_threshold",
        "up",
    }


# --- rules ----------------------------------------------------------------------------------------


def test_rules_pass_promtool_check_and_their_unit_tests(rule_dir: Path) -> None:
    promtool = tool("promtool")
    checked = run(promtool, "check", "rules", "cloudops.rules.yaml", cwd=rule_dir)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = run(promtool, "test", "rules", *(t.name for t in RULE_TESTS), cwd=rule_dir)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_rule_unit_tests_fail_when_a_rule_changes(rule_dir: Path, tmp_path: Path) -> None:
    """The unit tests can fail: a threshold moved past the firing case breaks them."""
    spec = rule_spec()
    [rule] = [r for g in spec["groups"] for r in g["rules"] if r.get("alert") == "HighErrorRate"]
    rule["expr"] = rule["expr"].replace("> 0.05", "> 0.5")
    (tmp_path / "cloudops.rules.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    shutil.copy(rule_dir / "http_test.yaml", tmp_path / "http_test.yaml")
    tested = run(tool("promtool"), "test", "rules", "http_test.yaml", cwd=tmp_path)
    assert tested.returncode != 0
    assert "HighErrorRate" in tested.stdout + tested.stderr


def test_every_alert_has_a_firing_case_and_a_near_miss() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for path in RULE_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    alerts = {rule["alert"] for rule in rules() if "alert" in rule}
    assert alerts - firing == set(), "alerts without a firing case"
    assert alerts - quiet == set(), "alerts without a near miss"
    assert {"HighErrorRate", "HighLatency", "HighCostPeriod", "BudgetExceeded"} <= alerts


def test_every_alert_is_labelled_and_explained() -> None:
    for rule in rules():
        if "alert" in rule:
            assert rule["labels"]["severity"] in {"critical", "warning", "info"}, rule["alert"]
            assert rule["annotations"]["summary"], rule["alert"]


def test_rules_name_only_catalogued_metrics() -> None:
    recorded = recorded_names()
    unknown = {
        (rule.get("alert") or rule.get("record"), name)
        for rule in rules()
        for name in metric_names(rule["expr"])
        if not known_metric(name, recorded)
    }
    assert unknown == set()


# --- Alertmanager ---------------------------------------------------------------------------------


def test_alertmanager_config_is_valid() -> None:
    checked = run(tool("amtool"), "check-config", str(ALERTMANAGER))
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (["alertname=HighErrorRate", "severity=critical", "service=costs"], "cloudops-critical"),
        (["alertname=HighLatency", "severity=warning", "service=resources"], "cloudops-alerts"),
        (["alertname=BudgetExceeded", "severity=critical", "team=finops"], "cloudops-finops"),
        (["alertname=HighCostPeriod", "severity=warning", "team=finops"], "cloudops-finops"),
        (["alertname=HoneypotHit", "severity=warning"], "cloudops-alerts"),
    ],
)
def test_alertmanager_routes(labels: list[str], receiver: str) -> None:
    routed = run(
        tool("amtool"), "config", "routes", "test", f"--config.file={ALERTMANAGER}",
        f"--verify.receivers={receiver}", *labels,
    )  # fmt: skip
    assert routed.returncode == 0, routed.stdout + routed.stderr


def test_alertmanager_delivers_to_the_alerts_service_webhook() -> None:
    from alerts.app import create_app

    config = yaml.safe_load(ALERTMANAGER.read_text())
    urls = {w["url"] for r in config["receivers"] for w in r.get("webhook_configs", [])}
    assert urls == {"http://alerts.cloudops.svc:8103/api/alerts/webhook"}
    app = create_app()
    paths = {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None
    }
    assert ("POST", "/api/alerts/webhook") in paths


# --- dashboards -----------------------------------------------------------------------------------


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def dashboard_queries() -> list[tuple[str, str, str]]:
    """(dashboard, panel, expr) of every panel target."""
    return [
        (path.stem, panel["title"], target["expr"])
        for path in DASHBOARDS
        for panel in panels(json.loads(path.read_text()))
        for target in panel.get("targets", [])
    ]


def as_promql(expr: str) -> str:
    """A panel query with Grafana's variables replaced by what Grafana would send."""
    expr = re.sub(r"\$__(rate_interval|interval|range)", "5m", expr)
    return re.sub(r"\$\{?\w+\}?", ".*", expr)


def test_the_four_dashboards_with_a_data_source_variable() -> None:
    titles = set()
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        titles.add(dashboard["title"])
        [source] = [v for v in dashboard["templating"]["list"] if v["type"] == "datasource"]
        assert source["query"] == "prometheus"
        for panel in panels(dashboard):
            if panel["type"] != "row":
                assert panel["datasource"]["uid"] == "${" + source["name"] + "}", panel["title"]
                assert panel["targets"], panel["title"]
    assert titles == {
        "CloudOps application overview",
        "CloudOps infrastructure health",
        "CloudOps business metrics",
        "CloudOps security monitoring",
    }
    kustomization = (MONITORING / "kustomization.yaml").read_text()
    assert all(f"dashboards/{p.name}" in kustomization for p in DASHBOARDS)


def test_every_dashboard_query_parses(tmp_path: Path) -> None:
    queries = dashboard_queries()
    group = {
        "name": "dashboards",
        "rules": [
            {"record": f"dashboard:query_{i}", "expr": as_promql(expr)}
            for i, (_, _, expr) in enumerate(queries)
        ],
    }
    (tmp_path / "dashboards.rules.yaml").write_text(yaml.safe_dump({"groups": [group]}))
    checked = run(tool("promtool"), "check", "rules", "dashboards.rules.yaml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"{len(queries)} rules found" in checked.stdout


def test_every_dashboard_query_names_catalogued_metrics() -> None:
    recorded = recorded_names()
    unknown = {
        (dashboard, panel, name)
        for dashboard, panel, expr in dashboard_queries()
        for name in metric_names(as_promql(expr))
        if not known_metric(name, recorded)
    }
    assert unknown == set()


# --- the catalogue against running services -------------------------------------------------------


@pytest.fixture(scope="module")
def running_services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The four services as processes on one scratch database; costs with two workers."""
    ports = {name: free_port() for name in SERVICES}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    metrics_dir = tmp_path_factory.mktemp("costs-metrics")
    with scratch_database() as database_url:
        shared = {"CLOUDOPS_DATABASE_URL": database_url, "CLOUDOPS_LOG_LEVEL": "WARNING"}
        envs = {
            "resources": {"CLOUDOPS_RESOURCES_PORT": str(ports["resources"])},
            "costs": {
                "CLOUDOPS_COSTS_PORT": str(ports["costs"]),
                "CLOUDOPS_COSTS_WORKERS": "2",
                "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
            },
            "alerts": {"CLOUDOPS_ALERTS_PORT": str(ports["alerts"])},
            "gateway": {
                "CLOUDOPS_GATEWAY_PORT": str(ports["gateway"]),
                "CLOUDOPS_GATEWAY_RESOURCES_URL": urls["resources"],
                "CLOUDOPS_GATEWAY_COSTS_URL": urls["costs"],
                "CLOUDOPS_GATEWAY_ALERTS_URL": urls["alerts"],
                "CLOUDOPS_BOOTSTRAP_ADMIN_KEY": "co_monitoring_admin_key_0123456789abcdefghij",
                "CLOUDOPS_GATEWAY_JWT_SECRET": "monitoring-test-jwt-secret-0123456789abcdef",
            },
        }
        processes = [
            ServiceProcess(name, {**shared, **envs[name]}, ports[name]) for name in SERVICES
        ]
        try:
            for process in processes:
                process.start(timeout=90)
            yield urls
        finally:
            for process in processes:
                process.close()


def scrape(url: str) -> str:
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as resp:  # noqa: S310 - loopback
        text: str = resp.read().decode()
    return text


def exported(text: str) -> dict[str, str]:
    """``{catalogue name: type}``: counters under their ``_total`` sample name."""
    families = {}
    for family in text_string_to_metric_families(text):
        name = f"{family.name}_total" if family.type == "counter" else family.name
        families[name] = family.type
    return families


def import_a_billing_file(costs_url: str) -> None:
    """In multiprocess mode a metric shows once a worker wrote a value: the import counters."""
    bill = ROOT / "services" / "costs" / "tests" / "data" / "aws_focus_1_0.csv"
    request = urllib.request.Request(  # noqa: S310 - loopback
        f"{costs_url}/api/costs/imports?filename=bill.csv",
        data=bill.read_bytes(),
        headers={"Content-Type": "text/csv"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=60) as resp:  # noqa: S310 - loopback
        assert resp.status == 201


def test_the_catalogue_matches_what_the_services_export(running_services: dict[str, str]) -> None:
    import_a_billing_file(running_services["costs"])
    found: dict[str, str] = {}
    for url in running_services.values():
        found.update(exported(scrape(url)))
    documented = cloudops_catalogue()
    assert sorted(set(found) - set(documented)) == [], "exported but not in docs/metrics.md"
    assert sorted(set(documented) - set(found)) == [], "in docs/metrics.md but not exported"
    assert {name: documented[name] for name in found} == found, "types differ"


def test_process_metrics_are_per_worker_in_multiprocess_mode(
    running_services: dict[str, str],
) -> None:
    families = {
        f.name: f for f in text_string_to_metric_families(scrape(running_services["costs"]))
    }
    pids = {s.labels["pid"] for s in families["process_resident_memory_bytes"].samples}
    assert len(pids) == 2, "one series per worker of the two"
    for name in ("process_resident_memory_bytes", "process_cpu_seconds", "process_open_fds"):
        samples = [s for s in families[name].samples if not s.name.endswith("_created")]
        assert {s.labels["pid"] for s in samples} == pids, name
        assert all(s.value > 0 for s in samples), name


# --- deployment manifests ---------------------------------------------------------------------


def k8s_documents() -> list[dict[str, Any]]:
    return [
        doc
        for path in sorted((ROOT / "k8s").glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    ]


def test_every_hpa_scales_on_cpu_and_memory() -> None:
    hpas = [d for d in k8s_documents() if d["kind"] == "HorizontalPodAutoscaler"]
    assert len(hpas) == 5
    for hpa in hpas:
        targets = {
            m["resource"]["name"]: m["resource"]["target"]["averageUtilization"]
            for m in hpa["spec"]["metrics"]
        }
        assert targets == {"cpu": 70, "memory": 80}, hpa["metadata"]["name"]


def test_health_checks_ask_for_readiness() -> None:
    for deployment in (d for d in k8s_documents() if d["kind"] == "Deployment"):
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            probe = container["readinessProbe"]["httpGet"]
            assert probe["path"] == "/health/ready", deployment["metadata"]["name"]
    compose = yaml.safe_load((ROOT / "compose" / "docker-compose.yml").read_text())
    for name, service in compose["services"].items():
        if service.get("command", [None])[0] in SERVICES:
            assert "/health/ready" in " ".join(service["healthcheck"]["test"]), name

"""The Helm chart: linted and rendered by Helm's own code, validated against the Kubernetes
schemas, checked against the restricted Pod Security Standard, and its rendered pod run
for real as a `servestatic serve` process.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import helm_python
import httpx
import kubernetes_validate.utils as kubernetes_validate
import pytest
import yaml

import servestatic
from servestatic.config.settings import SETTINGS, load_settings
from tests import helmchart
from tests.helmchart import CHART, kinds, objects, one, render, restricted_violations
from tests.support import REPO, needs, needs_tool
from tests.support.cli import compress
from tests.support.server import free_port

pytestmark = pytest.mark.chart


HEADER_RULES = '[[rule]]\nglob = "*.html"\nheaders = { Content-Security-Policy = "default-src \'self\'" }\n'

# The value sets the issue names; each must lint, render and validate.
VALUE_SETS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "ingress-tls": {
        "ingress": {
            "enabled": True,
            "className": "nginx",
            "annotations": {"nginx.ingress.kubernetes.io/proxy-body-size": "1m"},
            "hosts": [{"host": "origin.example.com", "paths": [{"path": "/", "pathType": "Prefix"}]},
                      {"host": "assets.example.com"}],
            "tls": [{"secretName": "origin-tls", "hosts": ["origin.example.com", "assets.example.com"]}],
        },
    },
    "httproute": {
        "httpRoute": {
            "enabled": True,
            "parentRefs": [{"name": "public", "namespace": "infra", "sectionName": "https"}],
            "hostnames": ["origin.example.com"],
            "annotations": {"example.com/team": "web"},
        },
    },
    "hpa-pdb": {
        "autoscaling": {"enabled": True, "minReplicas": 3, "maxReplicas": 12,
                        "targetCPUUtilizationPercentage": 60, "targetMemoryUtilizationPercentage": 75},
        "podDisruptionBudget": {"enabled": True, "minAvailable": 2},
    },
    "chained-app": {
        "image": {"repository": "registry.example.com/mysite",
                  "digest": "sha256:" + "ab" * 32},
        "servestatic": {"app": "mysite.wsgi:application", "prefix": "/static/",
                        "root": "/app/staticfiles", "spa": False, "cors": "https://www.example.com",
                        "headerRules": HEADER_RULES, "accessLog": "json", "healthPath": "/-/ready",
                        "appHealthPath": "/health/"},
        "extraEnv": [{"name": "DJANGO_SETTINGS_MODULE", "value": "mysite.settings"},
                     {"name": "DATABASE_URL",
                      "valueFrom": {"secretKeyRef": {"name": "mysite-db", "key": "url"}}}],
        "extraEnvFrom": [{"configMapRef": {"name": "mysite-config"}}],
        "extraVolumes": [{"name": "media", "persistentVolumeClaim": {"claimName": "mysite-media"}}],
        "extraVolumeMounts": [{"name": "media", "mountPath": "/app/media", "readOnly": True}],
        "podAnnotations": {"example.com/scrape": "true"},
        "podLabels": {"team": "web"},
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "web", "effect": "NoSchedule"}],
        "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{
            "weight": 100, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname", "labelSelector": {
                "matchLabels": {"app.kubernetes.io/name": "servestatic"}}}}]}},
        "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
                                       "whenUnsatisfiable": "ScheduleAnyway"}],
        "serviceAccount": {"annotations": {"iam.example.com/role": "mysite"}},
    },
    # Unset written every way the docs allow: null, "" for text, [] for mounts.
    "unset": {
        "servestatic": {"root": "", "prefix": "", "healthPath": None, "readyPath": "", "appHealthPath": None,
                        "cors": "", "port": None, "gracefulTimeout": None, "mounts": [], "app": None,
                        "appInterface": "", "spa": None},
    },
    "metrics-networkpolicy": {
        "metrics": {"enabled": True, "port": 9102,
                    "serviceMonitor": {"enabled": True, "interval": "15s", "scrapeTimeout": "5s",
                                       "labels": {"release": "kube-prometheus-stack"}}},
        "networkPolicy": {"enabled": True, "httpFrom": [
            {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}]},
    },
}
# Kinds that are CRDs, absent from the Kubernetes schemas: each is validated against its CRD.
CRD_KINDS = {"HTTPRoute", "ServiceMonitor"}

# Oldest schema kubernetes-validate ships that the chart supports (exec preStop), the first
# with the kubelet sleep handler, and the newest it ships.
NEWEST = kubernetes_validate.major_minor(kubernetes_validate.latest_version()) + ".0"
KUBE_VERSIONS = ["1.25.0", "1.30.0", NEWEST]
PROBES = ("startupProbe", "livenessProbe", "readinessProbe")


def deployment(values: dict[str, Any] | None = None, **options: Any) -> dict[str, Any]:
    return one(objects(render(values, **options)), "Deployment")


def container(values: dict[str, Any] | None = None, **options: Any) -> dict[str, Any]:
    return deployment(values, **options)["spec"]["template"]["spec"]["containers"][0]


def env_of(item: dict[str, Any]) -> dict[str, str]:
    return {entry["name"]: entry["value"] for entry in item.get("env") or [] if "value" in entry}


# --- the chart as a package ---------------------------------------------------------


def test_app_version_is_the_package_version() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert chart["apiVersion"] == "v2"
    assert chart["appVersion"] == servestatic.__version__
    assert pyproject["project"]["dynamic"] == ["version"]  # read from servestatic.__version__


def test_default_image_is_the_one_the_dockerfile_builds_and_the_readme_documents() -> None:
    major_minor = ".".join(servestatic.__version__.split(".")[:2])
    image = container()["image"]
    assert image == f"servestatic/base:{major_minor}"
    readme = (REPO / "README.md").read_text()
    documented = set(re.findall(r"servestatic/base:([0-9][\w.]*)", readme))
    assert documented == {major_minor}, documented
    assert container({"image": {"tag": "2024-06-01"}})["image"] == "servestatic/base:2024-06-01"
    dockerfile = (REPO / "Dockerfile").read_text()
    assert 'org.opencontainers.image.title="servestatic/base"' in dockerfile
    # The chart's pod user is the image's user.
    assert re.search(r"^USER 10001$", dockerfile, re.MULTILINE)


@pytest.mark.parametrize("name", VALUE_SETS)
def test_lint_strict(name: str) -> None:
    for kube_version in ("v1.25.0", "v" + KUBE_VERSIONS[-1]):
        report = helm_python.lint(CHART, VALUE_SETS[name], strict=True, kube_version=kube_version)
        assert report["errors"] == [], report
        assert report["messages"] == [], report


def _yamllint_config() -> Any:
    from yamllint.config import YamlLintConfig

    # Helm's toYaml writes block sequences without indenting them; both forms are valid.
    return YamlLintConfig(
        "extends: default\n"
        "rules:\n"
        "  indentation: {spaces: consistent, indent-sequences: whatever}\n"
        "  line-length: {max: 160}\n"
        "  document-start: disable\n"
        "  comments: {min-spaces-from-content: 1}\n"
    )


def _yamllint(text: str) -> list[str]:
    from yamllint import linter

    return [f"{problem.line}:{problem.column} {problem.message}"
            for problem in linter.run(text, _yamllint_config())]


def test_values_yaml_passes_yamllint() -> None:
    assert _yamllint((CHART / "values.yaml").read_text()) == []


@pytest.mark.parametrize("name", VALUE_SETS)
def test_rendered_output_passes_yamllint(name: str) -> None:
    for path, text in render(VALUE_SETS[name]).items():
        if path.endswith(".yaml") and text.strip():
            assert _yamllint(text) == [], path


def test_every_values_key_has_a_comment() -> None:
    lines = (CHART / "values.yaml").read_text().splitlines()
    missing = []
    for number, line in enumerate(lines):
        if re.match(r"^\s*[A-Za-z][\w.-]*:", line) and not lines[number - 1].lstrip().startswith("#"):
            missing.append(f"{number + 1}: {line.strip()}")
    assert missing == []


def _leaf_keys(values: dict[str, Any], prefix: str = "") -> list[str]:
    keys = []
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value and key not in ("resources", "podSecurityContext",
                                                             "securityContext", "behavior"):
            keys.extend(_leaf_keys(value, path + "."))
        else:
            keys.append(path)
    return keys


def test_readme_documents_every_value() -> None:
    readme = (CHART / "README.md").read_text()
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    undocumented = [key for key in _leaf_keys(values) if f"`{key}`" not in readme]
    assert undocumented == []
    assert "## Using it as a CDN origin" in readme


# --- schema -------------------------------------------------------------------------


def test_schema_accepts_defaults_and_every_value_set() -> None:
    with helm_python.Chart.load(CHART) as chart:
        assert chart.schema is not None
        for values in VALUE_SETS.values():
            chart.validate_schema(values)


BAD_VALUES = [
    pytest.param({"replicaCount": "3"}, "/replicaCount", id="string-for-integer"),
    pytest.param({"servestatic": {"maxAge": "60"}}, "/servestatic/maxAge", id="string-max-age"),
    pytest.param({"servestatic": {"spa": "yes"}}, "/servestatic/spa", id="string-for-boolean"),
    pytest.param({"servestatic": {"workers": -1}}, "/servestatic/workers", id="negative-workers"),
    pytest.param({"servestatic": {"port": 70000}}, "/servestatic/port", id="port-out-of-range"),
    pytest.param({"servestatic": {"accessLog": "verbose"}}, "/servestatic/accessLog", id="bad-enum"),
    pytest.param({"servestatic": {"app": "mysite.wsgi"}}, "/servestatic/app", id="app-without-attribute"),
    pytest.param({"servestatic": {"healthPath": "healthz"}}, "/servestatic/healthPath", id="relative-path"),
    pytest.param({"servestatic": {"prefix": "static"}}, "/servestatic/prefix", id="relative-prefix"),
    pytest.param({"servestatic": {"headerRules": {"glob": "*"}}}, "/servestatic/headerRules",
                 id="rules-not-text"),
    pytest.param({"image": {"digest": "latest"}}, "/image/digest", id="bad-digest"),
    pytest.param({"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy", id="bad-pull-policy"),
    pytest.param({"replicas": 3}, "additional properties 'replicas'", id="unknown-top-level-key"),
    pytest.param({"servestatic": {"maxage": 60}}, "additional properties 'maxage'", id="unknown-setting"),
    pytest.param({"ingress": {"tls": [{"secretName": "x", "host": "a"}]}}, "additional properties 'host'",
                 id="unknown-nested-key"),
    pytest.param({"probes": {"liveness": {"path": "/x"}}}, "additional properties 'path'",
                 id="probe-path-not-configurable"),
    pytest.param({"extraEnv": {"A": "b"}}, "/extraEnv", id="env-as-map"),
    pytest.param({"autoscaling": {"targetCPUUtilizationPercentage": "70%"}},
                 "/autoscaling/targetCPUUtilizationPercentage", id="percent-as-string"),
    pytest.param({"podDisruptionBudget": {"maxUnavailable": "one"}}, "/podDisruptionBudget/maxUnavailable",
                 id="bad-int-or-percent"),
    pytest.param({"metrics": {"port": 0}}, "/metrics/port", id="metrics-port-zero"),
    pytest.param({"metrics": {"serviceMonitor": {"interval": "30"}}}, "/metrics/serviceMonitor/interval",
                 id="interval-without-unit"),
    pytest.param({"networkPolicy": {"httpFrom": {"podSelector": {}}}}, "/networkPolicy/httpFrom",
                 id="peers-not-a-list"),
]


@pytest.mark.parametrize(("values", "message"), BAD_VALUES)
def test_schema_rejects_bad_values(values: dict[str, Any], message: str) -> None:
    with helm_python.Chart.load(CHART) as chart:
        with pytest.raises(helm_python.HelmValuesError) as caught:
            chart.validate_schema(values)
        assert message in str(caught.value)
    # An install renders through the same schema check.
    with pytest.raises(helm_python.HelmError):
        render(values)


@pytest.mark.parametrize(("values", "message"), [
    ({"terminationGracePeriodSeconds": 25}, "terminationGracePeriodSeconds: got 25; expected more than"),
    ({"httpRoute": {"enabled": True}}, "httpRoute.parentRefs"),
    ({"autoscaling": {"enabled": True, "targetCPUUtilizationPercentage": None,
                      "targetMemoryUtilizationPercentage": None}}, "autoscaling: set"),
    ({"resources": {"limits": {"cpu": None}}},
     "servestatic.workers: got none and no resources.limits.cpu; expected one of them"),
    ({"metrics": {"enabled": True, "port": 8000}}, "metrics.port: got 8000, the http port"),
    # The HPA's percentage is of the request: 70% of 100m is an idle pod.
    ({"autoscaling": {"enabled": True}, "resources": {"requests": {"cpu": "100m"}, "limits": {"cpu": "2"}}},
     "resources.requests.cpu: got 100m with autoscaling on CPU; expected at least half of the 2000m"),
    ({"autoscaling": {"enabled": True}, "servestatic": {"workers": 4},
      "resources": {"requests": {"cpu": "1500m"}, "limits": {"cpu": None}}},
     "resources.requests.cpu: got 1500m with autoscaling on CPU; expected at least half of the 4000m"),
    ({"metrics": {"serviceMonitor": {"enabled": True}}},
     "metrics.serviceMonitor.enabled: needs metrics.enabled"),
])
def test_inconsistent_values_fail_with_one_clear_line(values: dict[str, Any], message: str) -> None:
    with pytest.raises(helm_python.HelmRenderError, match=re.escape(message)):
        render(values)


# --- validation against the Kubernetes schemas ----------------------------------------


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
@pytest.mark.parametrize("name", VALUE_SETS)
def test_rendered_objects_validate_against_kubernetes(name: str, kube_version: str) -> None:
    found = objects(render(VALUE_SETS[name], kube_version="v" + kube_version))
    validated = []
    for item in found:
        if item["kind"] in CRD_KINDS:
            continue  # see test_httproute_... and test_servicemonitor_... below
        kubernetes_validate.validate(item, kube_version, strict=True)
        validated.append(item["kind"])
    assert {"Deployment", "Service", "ServiceAccount", "Pod"} <= set(validated)


@pytest.mark.parametrize(("name", "kind"), [("httproute", "HTTPRoute"),
                                           ("metrics-networkpolicy", "ServiceMonitor")])
def test_kubernetes_validate_does_not_know_the_crds(name: str, kind: str) -> None:
    """Why HTTPRoute and ServiceMonitor are validated separately: CRDs, not in the Kubernetes schemas."""
    item = one(objects(render(VALUE_SETS[name])), kind)
    with pytest.raises(kubernetes_validate.SchemaNotFoundError):
        kubernetes_validate.validate(item, KUBE_VERSIONS[-1], strict=True)


@pytest.fixture(scope="module")
def httproute_schema() -> dict[str, Any]:
    module_dir = helmchart.gateway_api_dir()
    needs(module_dir is not None, "go is not installed (needed to fetch sigs.k8s.io/gateway-api)")
    assert module_dir is not None
    return helmchart.httproute_schema(module_dir)


def test_httproute_validates_against_the_gateway_api_crd(httproute_schema: dict[str, Any]) -> None:
    import jsonschema

    route = one(objects(render(VALUE_SETS["httproute"])), "HTTPRoute")
    assert route["apiVersion"] == "gateway.networking.k8s.io/v1"
    validator = jsonschema.Draft7Validator(httproute_schema)
    assert list(validator.iter_errors(route)) == []
    # The same check fails on what a real API server would refuse.
    broken = copy.deepcopy(route)
    broken["spec"]["rules"][0]["backendRefs"][0]["port"] = "http"
    broken["spec"]["rules"][0]["timeout"] = {"request": "10s"}
    broken["spec"]["rules"][0]["retries"] = 3
    messages = [error.message for error in validator.iter_errors(broken)]
    assert any("'http' is not of type 'integer'" in message for message in messages), messages
    assert any("'retries'" in message for message in messages), messages


@pytest.fixture(scope="module")
def servicemonitor_schema() -> dict[str, Any]:
    module_dir = helmchart.prometheus_operator_dir()
    needs(module_dir is not None, "go is not installed (needed to fetch the prometheus-operator CRDs)")
    assert module_dir is not None
    return helmchart.servicemonitor_schema(module_dir)


def test_servicemonitor_validates_against_the_prometheus_operator_crd(
        servicemonitor_schema: dict[str, Any]) -> None:
    import jsonschema

    monitor = one(objects(render(VALUE_SETS["metrics-networkpolicy"])), "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    validator = jsonschema.Draft7Validator(servicemonitor_schema)
    assert list(validator.iter_errors(monitor)) == []
    # The same check fails on what a real API server would refuse.
    broken = copy.deepcopy(monitor)
    broken["spec"]["endpoints"][0]["interval"] = "often"
    broken["spec"]["endpoints"][0]["targetPorts"] = [9102]
    messages = [error.message for error in validator.iter_errors(broken)]
    assert any("'often' does not match" in message for message in messages), messages
    assert any("'targetPorts'" in message for message in messages), messages


# --- what the rendered objects say ------------------------------------------------------


def test_default_objects() -> None:
    found = objects(render())
    assert kinds(found) == ["Deployment", "Pod", "PodDisruptionBudget", "Service", "ServiceAccount"]
    dep = one(found, "Deployment")
    assert dep["spec"]["replicas"] == 2
    assert dep["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    service = one(found, "Service")
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    assert service["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"]
    assert one(found, "PodDisruptionBudget")["spec"] == {
        "maxUnavailable": 1, "selector": {"matchLabels": dep["spec"]["selector"]["matchLabels"]}}
    # Pods spread over nodes where they can, and still start where they cannot.
    selector = dep["spec"]["selector"]["matchLabels"]
    assert dep["spec"]["template"]["spec"]["topologySpreadConstraints"] == [{
        "maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "ScheduleAnyway",
        "labelSelector": {"matchLabels": selector}}]
    test_pod = one(found, "Pod")
    assert test_pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert test_pod["spec"]["containers"][0]["command"][-1] == "http://web-servestatic:80/readyz"


def test_security_context_is_restricted_with_a_writable_tmp() -> None:
    spec = deployment()["spec"]["template"]["spec"]
    main = spec["containers"][0]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] == 10001
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert main["securityContext"]["readOnlyRootFilesystem"] is True
    assert main["securityContext"]["allowPrivilegeEscalation"] is False
    assert main["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert {"name": "tmp", "mountPath": "/tmp"} in main["volumeMounts"]
    assert {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}} in spec["volumes"]
    assert spec["automountServiceAccountToken"] is False


def probe_paths(main: dict[str, Any]) -> dict[str, str]:
    assert {main[probe]["httpGet"]["port"] for probe in PROBES} == {"http"}
    return {probe: main[probe]["httpGet"]["path"] for probe in PROBES}


def test_probes_hit_the_health_and_readiness_paths_on_the_http_port() -> None:
    """Startup and liveness ask the health path (the server runs), readiness the readiness
    path (something to serve), with servestatic's defaults, which the chart knows from
    settings.py without rendering them as variables."""
    main = container()
    assert main["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
    assert "env" not in main
    assert probe_paths(main) == {"startupProbe": "/healthz", "livenessProbe": "/healthz",
                                 "readinessProbe": "/readyz"}
    moved = container({"servestatic": {"healthPath": "/-/live", "readyPath": "/-/ready", "port": 9090}})
    assert moved["ports"][0]["containerPort"] == 9090
    assert env_of(moved) == {"PORT": "9090", "SERVESTATIC_HEALTH_PATH": "/-/live",
                             "SERVESTATIC_READY_PATH": "/-/ready"}
    assert probe_paths(moved) == {"startupProbe": "/-/live", "livenessProbe": "/-/live",
                                  "readinessProbe": "/-/ready"}
    assert "livenessProbe" not in container({"probes": {"liveness": {"enabled": False}}})


def test_readiness_asks_the_app_through_servestatic_and_liveness_does_not() -> None:
    main = container(VALUE_SETS["chained-app"])
    assert env_of(main)["SERVESTATIC_APP_HEALTH_PATH"] == "/health/"
    assert probe_paths(main) == {"startupProbe": "/-/ready", "livenessProbe": "/-/ready",
                                 "readinessProbe": "/health/"}
    # The rendered environment is one servestatic accepts (an app health path needs the app).
    assert load_settings(env_of(main)).app_health_path == "/health/"
    notes = render(VALUE_SETS["chained-app"])["servestatic/templates/NOTES.txt"]
    assert "origin health check: GET /health/." in notes


def test_unset_values_render_nothing_and_every_probe_still_has_a_path() -> None:
    """null, "" and [] all mean unset: no variable, and the probes, the container port, the
    grace period and the helm test URL fall back to servestatic's defaults."""
    found = objects(render(VALUE_SETS["unset"]))
    spec = one(found, "Deployment")["spec"]["template"]["spec"]
    main = spec["containers"][0]
    assert "env" not in main
    assert probe_paths(main) == {"startupProbe": "/healthz", "livenessProbe": "/healthz",
                                 "readinessProbe": "/readyz"}
    assert main["ports"][0]["containerPort"] == 8000
    assert spec["terminationGracePeriodSeconds"] == 10 + 20 + 5
    assert one(found, "Pod")["spec"]["containers"][0]["command"][-1] == "http://web-servestatic:80/readyz"
    with helm_python.Chart.load(CHART) as chart:
        chart.validate_schema(VALUE_SETS["unset"])


def test_every_value_left_empty_or_null_renders_no_variable() -> None:
    """Each setting in turn, null and (for text) "": never a variable, so never an override
    of the image's ENV."""
    mapped = yaml.safe_load(helmchart.ENVIRONMENT_FILE.read_text())["env"]
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())["servestatic"]
    schema = json.loads((CHART / "values.schema.json").read_text())["properties"]["servestatic"]["properties"]
    checked = []
    with helm_python.Chart.load(CHART) as chart:
        for key in sorted(set(mapped) & set(defaults)):
            text = "string" in schema[key]["type"]
            for unset in (None, []) if key == "mounts" else (None, "") if text else (None,):
                values = {"servestatic": {key: unset}}
                chart.validate_schema(values)
                assert env_of(container(values)) == {}, (key, unset)
                checked.append(key)
    assert {"prefix", "healthPath", "cors", "port", "workers", "appHealthPath"} <= set(checked)


def test_shutdown_outlasts_the_pre_stop_pause_and_gunicorns_graceful_timeout() -> None:
    spec = deployment()["spec"]["template"]["spec"]
    main = spec["containers"][0]
    graceful = load_settings({}).graceful_timeout  # not rendered: servestatic's default
    assert main["lifecycle"]["preStop"] == {"sleep": {"seconds": 10}}
    assert spec["terminationGracePeriodSeconds"] > 10 + graceful
    longer = deployment({"servestatic": {"gracefulTimeout": 50}, "preStopSleepSeconds": 15})
    assert longer["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > 15 + 50
    assert "lifecycle" not in container({"preStopSleepSeconds": 0})


def test_pre_stop_uses_python_where_the_sleep_handler_does_not_exist() -> None:
    old = container(kube_version="v1.29.0")["lifecycle"]["preStop"]
    assert old == {"exec": {"command": ["python3", "-c", "import time; time.sleep(10)"]}}
    # And that command really pauses for N seconds with nothing but Python.
    command = [sys.executable, *old["exec"]["command"][1:]]
    command[-1] = command[-1].replace("sleep(10)", "sleep(0.2)")
    started = time.monotonic()
    subprocess.run(command, check=True, timeout=10)
    assert time.monotonic() - started >= 0.2


# Every `servestatic serve` setting the chart sets, and the value it is given here.
ALL_SETTINGS_VALUES = {
    "root": "/srv/site", "prefix": "/assets/", "app": "mysite.wsgi:application", "appInterface": "wsgi",
    "port": 8080,
    "workers": 3, "threads": 16, "keepalive": 120, "timeout": 45, "gracefulTimeout": 25,
    "maxAge": 300, "immutableMaxAge": 604800, "htmlCacheControl": "no-cache, must-revalidate",
    "staleIfError": 600, "preloadLinks": 4, "earlyHints": True, "timingAllowOrigin": "off",
    "cacheTagHeader": "surrogate-key", "cdnMaxAge": 3600,
    "immutablePattern": r"\.[0-9a-f]{8}\.", "cors": "https://a.example.com,https://b.example.com",
    "spa": True, "headerRules": HEADER_RULES, "healthPath": "/-/health", "readyPath": "/-/ready",
    "appHealthPath": "/-/app", "fastPath": False, "accessLog": "json",
    "logLevel": "warning", "gunicornConfig": "/app/gunicorn.conf.py",
    "mounts": ["/assets/=/srv/site", "/=/srv/public"],
}


def test_environment_map_is_generated_from_the_settings() -> None:
    """files/environment.yaml, the chart's map of values to variables, is settings.py's."""
    assert helmchart.ENVIRONMENT_FILE.read_text() == helmchart.environment_file_text(), (
        "helm/servestatic/files/environment.yaml is out of date: run `.venv/bin/python -m tests.helmchart`")
    values = yaml.safe_load((CHART / "values.yaml").read_text())["servestatic"]
    mapped = yaml.safe_load(helmchart.ENVIRONMENT_FILE.read_text())["env"]
    # Every servestatic value is a setting the map knows, except the chart's own header rules.
    assert set(values) - {"headerRules"} <= set(mapped), set(values) - set(mapped)


def test_every_servestatic_value_reaches_its_environment_variable() -> None:
    """The rendered env, read by servestatic's own settings parser, gives back the values."""
    main = container({"servestatic": ALL_SETTINGS_VALUES, "metrics": {"enabled": True}})
    env = env_of(main)
    known = {setting.env for setting in SETTINGS}
    assert set(env) <= known, set(env) - known
    # Every setting `serve` reads is reachable from the chart, except the bind address
    # (PORT is the one Kubernetes needs); metrics.enabled sets SERVESTATIC_METRICS_BIND.
    serve_settings = {s.env for s in SETTINGS if "serve" in s.commands} - {"SERVESTATIC_BIND"}
    assert serve_settings <= set(env), serve_settings - set(env)
    settings = load_settings(env)
    assert (str(settings.root), settings.prefix, settings.app, settings.port) == (
        "/srv/site", "/assets/", "mysite.wsgi:application", 8080)
    assert settings.app_interface == "wsgi"
    assert (settings.workers, settings.threads, settings.keepalive, settings.timeout) == (3, 16, 120, 45)
    assert (settings.graceful_timeout, settings.max_age, settings.immutable_max_age) == (25, 300, 604800)
    assert settings.html_cache_control == "no-cache, must-revalidate"
    assert (settings.stale_if_error, settings.preload_links, settings.timing_allow_origin) == (600, 4, "off")
    assert settings.early_hints is True
    assert (settings.cache_tag_header, settings.cdn_max_age) == ("surrogate-key", 3600)
    assert settings.immutable_pattern == r"\.[0-9a-f]{8}\."
    assert settings.cors == ("https://a.example.com", "https://b.example.com")
    assert settings.spa is True
    assert settings.fast_path is False
    assert str(settings.headers_file) == "/etc/servestatic/headers.toml"
    assert (settings.health_path, settings.access_log, settings.log_level) == ("/-/health", "json", "warning")
    assert (settings.ready_path, settings.app_health_path) == ("/-/ready", "/-/app")
    assert [(mount.prefix, str(mount.root)) for mount in settings.mounts] == [
        ("/assets/", "/srv/site"), ("/", "/srv/public")]


def test_defaults_set_no_variable_so_the_image_env_stands() -> None:
    """With default values the chart renders no environment at all: an image built with
    SERVESTATIC_PREFIX=/static/ (docs/django.md) keeps it, and SERVESTATIC_ROOT=/srv/www
    of servestatic/base stands. test_chart_env_over_an_image_keeps_the_image_prefix runs it."""
    main = container()
    assert "env" not in main
    values = yaml.safe_load((CHART / "values.yaml").read_text())["servestatic"]
    assert {key: value for key, value in values.items() if value not in (None, "", [])} == {}
    # No WEB_CONCURRENCY: the worker count follows the CPU limit, which servestatic reads
    # from its cgroup (test_cpus.py; the image test runs the pod with that limit).
    assert main["resources"]["limits"]["cpu"] == "1"
    assert load_settings({}).workers == 0
    assert env_of(container({"servestatic": {"workers": 3}}))["WEB_CONCURRENCY"] == "3"
    # Explicit workers need no CPU limit.
    unlimited = container({"servestatic": {"workers": 3}, "resources": {"limits": {"cpu": None}}})
    assert "cpu" not in unlimited["resources"]["limits"]


def test_header_rules_are_a_mounted_config_map() -> None:
    found = objects(render(VALUE_SETS["chained-app"]))
    config = one(found, "ConfigMap")
    assert tomllib.loads(config["data"]["headers.toml"]) == tomllib.loads(HEADER_RULES)
    spec = one(found, "Deployment")["spec"]["template"]["spec"]
    main = spec["containers"][0]
    assert {"name": "config", "configMap": {"name": config["metadata"]["name"]}} in spec["volumes"]
    assert {"name": "config", "mountPath": "/etc/servestatic", "readOnly": True} in main["volumeMounts"]
    assert env_of(main)["SERVESTATIC_HEADERS_FILE"] == "/etc/servestatic/headers.toml"


def test_chained_app_extras_are_rendered() -> None:
    spec = deployment(VALUE_SETS["chained-app"])["spec"]["template"]
    pod = spec["spec"]
    main = pod["containers"][0]
    assert main["image"] == "registry.example.com/mysite@sha256:" + "ab" * 32
    names = [entry["name"] for entry in main["env"]]
    # Extra env comes after the chart's own, so it can override them.
    assert names.index("DJANGO_SETTINGS_MODULE") > names.index("SERVESTATIC_APP")
    secret = {"secretKeyRef": {"name": "mysite-db", "key": "url"}}
    assert {"name": "DATABASE_URL", "valueFrom": secret} in main["env"]
    assert main["envFrom"] == [{"configMapRef": {"name": "mysite-config"}}]
    assert {"name": "media", "mountPath": "/app/media", "readOnly": True} in main["volumeMounts"]
    assert spec["metadata"]["annotations"]["example.com/scrape"] == "true"
    assert spec["metadata"]["labels"]["team"] == "web"
    assert pod["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert pod["tolerations"][0]["key"] == "dedicated"
    assert "podAntiAffinity" in pod["affinity"]
    # A spread constraint without a selector gets the chart's selector labels.
    assert pod["topologySpreadConstraints"][0]["labelSelector"] == {"matchLabels": {
        "app.kubernetes.io/name": "servestatic", "app.kubernetes.io/instance": "web"}}


def _checksum(values: dict[str, Any]) -> str:
    return deployment(values)["spec"]["template"]["metadata"]["annotations"]["checksum/config"]


def test_checksum_annotation_rolls_pods_when_settings_change() -> None:
    base = _checksum({})
    assert re.fullmatch(r"[0-9a-f]{64}", base)
    assert _checksum({}) == base
    assert _checksum({"servestatic": {"maxAge": 120}}) != base
    rules = _checksum({"servestatic": {"headerRules": HEADER_RULES}})
    assert rules != base
    assert _checksum({"servestatic": {"headerRules": HEADER_RULES.replace("self", "none")}}) != rules
    # Scaling is not a configuration change.
    assert _checksum({"replicaCount": 5}) == base


def test_ingress_with_tls() -> None:
    ingress = one(objects(render(VALUE_SETS["ingress-tls"])), "Ingress")
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert ingress["spec"]["tls"] == [{"secretName": "origin-tls",
                                       "hosts": ["origin.example.com", "assets.example.com"]}]
    hosts = [rule["host"] for rule in ingress["spec"]["rules"]]
    assert hosts == ["origin.example.com", "assets.example.com"]
    for rule in ingress["spec"]["rules"]:
        backend = rule["http"]["paths"][0]["backend"]["service"]
        assert backend == {"name": "web-servestatic", "port": {"name": "http"}}
    bare = one(objects(render({"ingress": {"enabled": True}})), "Ingress")
    assert bare["spec"]["defaultBackend"]["service"]["name"] == "web-servestatic"


def test_httproute() -> None:
    route = one(objects(render(VALUE_SETS["httproute"])), "HTTPRoute")
    assert route["spec"]["parentRefs"] == [{"name": "public", "namespace": "infra", "sectionName": "https"}]
    assert route["spec"]["hostnames"] == ["origin.example.com"]
    assert route["spec"]["rules"][0]["backendRefs"] == [{"name": "web-servestatic", "port": 80}]


def test_hpa_and_pdb() -> None:
    found = objects(render(VALUE_SETS["hpa-pdb"]))
    assert "replicas" not in one(found, "Deployment")["spec"]  # the HPA owns it
    hpa = one(found, "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                             "name": "web-servestatic"}
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 12)
    metrics = hpa["spec"]["metrics"]
    targets = {m["resource"]["name"]: m["resource"]["target"]["averageUtilization"] for m in metrics}
    assert targets == {"cpu": 60, "memory": 75}
    assert one(found, "PodDisruptionBudget")["spec"]["minAvailable"] == 2
    # Up at once, down one pod a minute after five quiet minutes.
    assert hpa["spec"]["behavior"]["scaleUp"]["stabilizationWindowSeconds"] == 0
    assert hpa["spec"]["behavior"]["scaleDown"] == {
        "stabilizationWindowSeconds": 300, "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}]}
    no_behavior = one(objects(render({"autoscaling": {"enabled": True, "behavior": None}})),
                      "HorizontalPodAutoscaler")
    assert "behavior" not in no_behavior["spec"]
    cpu_only_values = {"autoscaling": {"enabled": True, "targetMemoryUtilizationPercentage": None}}
    cpu_only = one(objects(render(cpu_only_values)), "HorizontalPodAutoscaler")
    assert [m["resource"]["name"] for m in cpu_only["spec"]["metrics"]] == ["cpu"]


def _millicores(quantity: str | int | float) -> int:
    text = str(quantity)
    return int(text[:-1]) if text.endswith("m") else int(float(text) * 1000)


def test_hpa_scales_on_the_workers_real_load() -> None:
    """With the chart's defaults the HPA's CPU target, a percentage of the request, is that
    share of what the pod's workers can use (one CPU each, one worker per CPU of the limit):
    a pod scales out when its worker is 70% busy, not at 70m."""
    found = objects(render({"autoscaling": {"enabled": True}}))
    hpa = one(found, "HorizontalPodAutoscaler")
    assert [metric["resource"]["name"] for metric in hpa["spec"]["metrics"]] == ["cpu"]  # memory: no signal
    target = hpa["spec"]["metrics"][0]["resource"]["target"]
    assert target["type"] == "Utilization"
    resources = one(found, "Deployment")["spec"]["template"]["spec"]["containers"][0]["resources"]
    request, limit = _millicores(resources["requests"]["cpu"]), _millicores(resources["limits"]["cpu"])
    workers_cpu = (limit // 1000) * 1000  # servestatic's worker count from the CPU limit (test_cpus.py)
    scale_out_at = request * target["averageUtilization"] / 100
    assert scale_out_at == 0.7 * workers_cpu, (request, limit)
    # The earlier default (100m request, limit 2) would have scaled out at 70m: refused now.
    kubernetes_validate.validate(hpa, KUBE_VERSIONS[-1], strict=True)
    # Explicit workers without a CPU limit: the request is checked against the workers.
    three = {"autoscaling": {"enabled": True}, "servestatic": {"workers": 3},
             "resources": {"requests": {"cpu": "3"}, "limits": {"cpu": None}}}
    assert one(objects(render(three)), "HorizontalPodAutoscaler")["spec"]["maxReplicas"] == 10


def test_metrics_port_service_monitor_and_network_policy() -> None:
    found = objects(render(VALUE_SETS["metrics-networkpolicy"]))
    dep = one(found, "Deployment")
    main = dep["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "metrics", "containerPort": 9102, "protocol": "TCP"} in main["ports"]
    assert env_of(main)["SERVESTATIC_METRICS_BIND"] == "0.0.0.0:9102"
    assert {"name": "metrics", "port": 9102, "targetPort": "metrics", "protocol": "TCP"} in (
        one(found, "Service")["spec"]["ports"])
    selector = dep["spec"]["selector"]["matchLabels"]
    monitor = one(found, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert monitor["spec"]["selector"] == {"matchLabels": selector}
    assert monitor["spec"]["endpoints"] == [{"port": "metrics", "path": "/metrics", "interval": "15s",
                                             "scrapeTimeout": "5s"}]
    policy = one(found, "NetworkPolicy")["spec"]
    assert policy["podSelector"] == {"matchLabels": selector}
    assert policy["policyTypes"] == ["Ingress"]
    assert policy["ingress"] == [
        {"ports": [{"port": "http", "protocol": "TCP"}],
         "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}]},
        {"ports": [{"port": "metrics", "protocol": "TCP"}],
         "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]},
    ]
    # Off by default; with metrics off the policy admits the http port only, from anyone.
    assert not {"ServiceMonitor", "NetworkPolicy"} & set(kinds(objects(render())))
    assert "SERVESTATIC_METRICS_BIND" not in env_of(container())
    http_only = one(objects(render({"networkPolicy": {"enabled": True}})), "NetworkPolicy")["spec"]
    assert http_only["ingress"] == [{"ports": [{"port": "http", "protocol": "TCP"}]}]


def test_notes_tell_how_to_reach_the_origin_and_configure_a_cdn() -> None:
    notes = render(VALUE_SETS["ingress-tls"])["servestatic/templates/NOTES.txt"]
    assert "https://origin.example.com/" in notes
    assert "kubectl port-forward --namespace sites service/web-servestatic" in notes
    assert "Accept-Encoding" in notes and "Vary: Accept-Encoding" in notes
    assert "GET /healthz" in notes
    assert "/metrics" not in notes
    with_metrics = render(VALUE_SETS["metrics-networkpolicy"])["servestatic/templates/NOTES.txt"]
    assert "http://web-servestatic.sites.svc:9102/metrics" in with_metrics
    assert "the ServiceMonitor web-servestatic scrapes it" in with_metrics


# --- restricted Pod Security Standard ---------------------------------------------------


def _pods(found: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, str]]]:
    pods = []
    for item in found:
        if item["kind"] == "Deployment":
            template = item["spec"]["template"]
            pods.append((template["spec"], template["metadata"].get("annotations") or {}))
        elif item["kind"] == "Pod":
            pods.append((item["spec"], item["metadata"].get("annotations") or {}))
    return pods


@pytest.mark.parametrize("name", VALUE_SETS)
def test_pods_satisfy_the_restricted_pod_security_standard(name: str) -> None:
    pods = _pods(objects(render(VALUE_SETS[name])))
    assert len(pods) == 2  # the Deployment's pod and the helm test pod
    for spec, pod_annotations in pods:
        assert restricted_violations(spec, pod_annotations) == []


# Helm merges maps with the defaults: a key is removed by setting it to null.
@pytest.mark.parametrize(("values", "violation"), [
    ({"securityContext": {"privileged": True}}, "privileged must be unset"),
    ({"securityContext": {"allowPrivilegeEscalation": None}}, "allowPrivilegeEscalation must be false"),
    ({"securityContext": {"capabilities": {"drop": None, "add": ["SYS_ADMIN"]}}},
     "capabilities.drop must include ALL"),
    ({"securityContext": {"capabilities": {"add": ["NET_ADMIN"]}}}, "NET_ADMIN"),
    ({"podSecurityContext": {"runAsNonRoot": None}, "securityContext": {"runAsNonRoot": None}},
     "runAsNonRoot must be true"),
    ({"securityContext": {"runAsUser": 0}}, "runAsUser must not be 0"),
    ({"podSecurityContext": {"seccompProfile": None}}, "seccompProfile must be RuntimeDefault"),
    ({"podSecurityContext": {"seccompProfile": {"type": "Unconfined"}}}, "seccompProfile.type 'Unconfined'"),
    ({"extraVolumes": [{"name": "host", "hostPath": {"path": "/var/run"}}]}, "hostPath is forbidden"),
])
def test_the_pod_security_check_catches_violations(values: dict[str, Any], violation: str) -> None:
    spec, pod_annotations = _pods(objects(render(values)))[0]
    problems = restricted_violations(spec, pod_annotations)
    assert any(violation in problem for problem in problems), problems


def test_net_bind_service_alone_is_allowed() -> None:
    values = {"securityContext": {"allowPrivilegeEscalation": False, "runAsNonRoot": True,
                                  "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}}}
    spec, pod_annotations = _pods(objects(render(values)))[0]
    assert restricted_violations(spec, pod_annotations) == []


# --- the rendered pod, run for real ------------------------------------------------------


def _run_pod_container(main: dict[str, Any], root: Path, files: dict[str, Path]) -> subprocess.Popen[bytes]:
    """Start `servestatic serve ROOT` with exactly the container's env (plus PATH and HOME).

    `files` maps the container's mount paths to local directories standing in for them.
    """
    env = env_of(main)
    for name, value in env.items():
        for mount, local in files.items():
            if value.startswith(mount + "/"):
                env[name] = str(local / value[len(mount) + 1:])
    process_env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"), **env}
    return subprocess.Popen([sys.executable, "-m", "servestatic", "serve", str(root)], env=process_env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)


def _wait_until_listening(process: subprocess.Popen[bytes], url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            output = process.stdout.read().decode(errors="replace") if process.stdout else ""
            raise AssertionError(f"servestatic exited with {process.returncode}:\n{output}")
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"nothing answered on {url} within {timeout} s"
        time.sleep(0.05)  # poll interval, not a readiness guess


def _stop(process: subprocess.Popen[bytes]) -> int:
    process.terminate()
    try:
        return process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


@pytest.mark.parametrize("name", ["defaults", "chained-app", "metrics-networkpolicy"])
def test_rendered_pod_works_with_the_real_server(name: str, site: Path, tmp_path: Path) -> None:
    """The probes' paths answer 200 on the container port, with the rendered env.

    The only change from the chart's values is a free port instead of 8000 (so parallel
    test runs do not collide); the process must bind exactly that port because the
    chart tells it so through PORT. The chained-app set runs without its app (Django
    is the Django example's business) but with its prefix, CORS and header rules file.
    """
    values = copy.deepcopy(VALUE_SETS[name])
    values.setdefault("servestatic", {})["port"] = free_port()
    if "metrics" in values:
        values["metrics"]["port"] = free_port()
    values["servestatic"].pop("app", None)
    values["servestatic"].pop("appHealthPath", None)  # needs the app (test_probes.py runs it)
    values["servestatic"].pop("root", None)
    found = objects(render(values))
    pod = one(found, "Deployment")["spec"]["template"]["spec"]
    main = pod["containers"][0]
    port = main["ports"][0]["containerPort"]
    assert main["ports"][0]["name"] == "http"
    probe_paths = {main[probe]["httpGet"]["path"] for probe in PROBES}
    assert {main[probe]["httpGet"]["port"] for probe in PROBES} == {"http"}

    # ConfigMap volumes, materialised the way the kubelet would.
    files: dict[str, Path] = {}
    for mount in main["volumeMounts"]:
        volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
        if "configMap" in volume:
            config = next(item for item in found if item["kind"] == "ConfigMap"
                          and item["metadata"]["name"] == volume["configMap"]["name"])
            local = tmp_path / mount["name"]
            local.mkdir()
            for key, text in config["data"].items():
                (local / key).write_text(text)
            files[mount["mountPath"]] = local

    compress(site)
    process = _run_pod_container(main, site, files)
    try:
        _wait_until_listening(process, f"http://127.0.0.1:{port}/")
        for path in probe_paths:
            response = httpx.get(f"http://127.0.0.1:{port}{path}")
            assert response.status_code == 200, path
            assert response.text.strip() == "ok"
        prefix = env_of(main).get("SERVESTATIC_PREFIX", "/")
        page = httpx.get(f"http://127.0.0.1:{port}{prefix}index.html", headers={"Accept-Encoding": "br"})
        assert page.status_code == 200
        assert page.headers["content-encoding"] == "br"
        if name == "chained-app":
            assert page.headers["content-security-policy"] == "default-src 'self'"
        if name == "metrics-networkpolicy":
            metrics_port = next(p["containerPort"] for p in main["ports"] if p["name"] == "metrics")
            scraped = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics")
            assert scraped.status_code == 200
            assert 'servestatic_requests_total{kind="hit",status="2xx"}' in scraped.text
    finally:
        code = _stop(process)
    assert code == 0


@pytest.fixture(scope="module")
def chart_image() -> str:
    needs_tool("podman")
    needs(Path("/usr/sbin/debootstrap").exists() or shutil.which("debootstrap") is not None,
          "debootstrap is not installed (scripts/install/podman.sh installs it)")
    return helmchart.build_image()


# A user's image as docs/django.md builds one: its own SERVESTATIC_PREFIX in its ENV.
SITE_IMAGE_DOCKERFILE = """\
FROM {base}
ENV SERVESTATIC_PREFIX=/static/
COPY dist/ /srv/www/
USER 0
RUN servestatic compress /srv/www
USER 10001
"""


@pytest.fixture(scope="module")
def site_image(chart_image: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    from tests.support.site import copy_site

    context = tmp_path_factory.mktemp("site-image")
    copy_site(context / "dist")
    (context / "Dockerfile").write_text(SITE_IMAGE_DOCKERFILE.format(base=chart_image))
    tag = "localhost/servestatic/chart-test-site:latest"
    subprocess.run(["podman", "build", "--quiet", "--format", "docker", "--network", "none", "-t", tag,
                    str(context)], check=True, capture_output=True, text=True, timeout=600)
    return tag


def _start_pod(image: str, pod: dict[str, Any], main: dict[str, Any]) -> tuple[str, str]:
    """`podman run` the pod's container from `image`; return its name and its URL once
    the startup probe's path answers 200."""
    container_port = main["ports"][0]["containerPort"]
    host_port = free_port()
    name = f"servestatic-chart-{host_port}"
    run = ["podman", "run", "--detach", "--name", name, *helmchart.podman_run_args(pod, main),
           "--publish", f"127.0.0.1:{host_port}:{container_port}", image]
    subprocess.run(run, check=True, capture_output=True, text=True, timeout=120)
    url = f"http://127.0.0.1:{host_port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(url + main["startupProbe"]["httpGet"]["path"], timeout=1.0).status_code == 200:
                return name, url
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            logs = subprocess.run(["podman", "logs", name], capture_output=True, text=True)
            subprocess.run(["podman", "rm", "--force", name], capture_output=True, check=False)
            raise AssertionError(f"the pod never started:\n{logs.stdout}{logs.stderr}")
        time.sleep(0.1)  # poll interval, not a readiness guess


@pytest.mark.image
def test_the_empty_base_image_runs_but_is_never_ready(chart_image: str) -> None:
    """servestatic/base as the chart's default image: it has no site, so the pod is live
    (the server answers) and never Ready (nothing to serve), and the helm test fails."""
    found = objects(render())
    pod = one(found, "Deployment")["spec"]["template"]["spec"]
    main = pod["containers"][0]
    name, url = _start_pod(chart_image, pod, main)
    try:
        assert httpx.get(url + main["livenessProbe"]["httpGet"]["path"]).status_code == 200
        assert httpx.get(url + main["readinessProbe"]["httpGet"]["path"]).status_code == 503
        test_command = one(found, "Pod")["spec"]["containers"][0]["command"]
        local = [*test_command[:-1], f"http://127.0.0.1:{main['ports'][0]['containerPort']}/readyz"]
        result = subprocess.run(["podman", "exec", name, *local], capture_output=True, text=True, timeout=60)
        assert result.returncode != 0 and "503" in result.stderr, result.stdout + result.stderr
    finally:
        subprocess.run(["podman", "rm", "--force", name], capture_output=True, check=False)


@pytest.mark.image
def test_rendered_pod_runs_in_the_real_image(site_image: str) -> None:
    """The default chart's pod, as podman runs it, over a user's image that sets its own
    SERVESTATIC_PREFIX=/static/: the chart renders no variable, so the files stay where the
    image put them. Restricted security context, read-only root with only the /tmp emptyDir
    writable, the rendered port. The probes answer, the helm test pod's command and the
    pre-1.30 preStop command work in the image, and SIGTERM ends it with exit code 0 well
    inside terminationGracePeriodSeconds. Its CPU limit is the number of workers.
    """
    found = objects(render())
    pod = one(found, "Deployment")["spec"]["template"]["spec"]
    main = pod["containers"][0]
    container_port = main["ports"][0]["containerPort"]
    name, url = _start_pod(site_image, pod, main)
    try:
        for path in {main[probe]["httpGet"]["path"] for probe in PROBES}:
            assert httpx.get(url + path).status_code == 200, path
        logs = subprocess.run(["podman", "logs", name], capture_output=True, text=True).stderr
        assert "workers: 1 (one per CPU this process may use)" in logs, logs
        page = httpx.get(url + "/static/assets/app-3fA9c1bd.js", headers={"Accept-Encoding": "br"})
        assert (page.status_code, page.headers["content-encoding"]) == (200, "br")
        assert httpx.get(url + "/assets/app-3fA9c1bd.js").status_code == 404  # not moved to the root

        # The helm test pod's command, pointed at the pod instead of the Service.
        test_command = one(found, "Pod")["spec"]["containers"][0]["command"]
        local = [*test_command[:-1], f"http://127.0.0.1:{container_port}{main['readinessProbe']['httpGet']['path']}"]
        result = subprocess.run(["podman", "exec", name, *local], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr
        # The preStop command rendered for clusters before 1.30 (shortened to 1 s).
        pre_stop = container(kube_version="v1.29.0")["lifecycle"]["preStop"]["exec"]["command"]
        pre_stop = [*pre_stop[:-1], pre_stop[-1].replace("sleep(10)", "sleep(1)")]
        started = time.monotonic()
        assert subprocess.run(["podman", "exec", name, *pre_stop], timeout=60).returncode == 0
        assert time.monotonic() - started >= 1

        grace = pod["terminationGracePeriodSeconds"]
        started = time.monotonic()
        subprocess.run(["podman", "stop", "--time", str(grace), name], check=True, capture_output=True,
                       timeout=grace + 30)
        stopped_after = time.monotonic() - started
        state = subprocess.run(["podman", "inspect", name, "--format", "{{.State.ExitCode}}"],
                               capture_output=True, text=True, check=True).stdout.strip()
        assert state == "0", subprocess.run(["podman", "logs", name], capture_output=True, text=True).stdout
        assert stopped_after < grace
    finally:
        subprocess.run(["podman", "rm", "--force", name], capture_output=True, check=False)

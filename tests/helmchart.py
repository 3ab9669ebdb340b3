"""Helpers for the chart tests: render with Helm's own code, validate, and check pod security.

Rendering goes through helm-python-sdk (Helm's Go SDK behind a C ABI), so the
templates are executed by Helm itself, never re-implemented here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from tests.support import REPO

CHART = REPO / "helm" / "servestatic"

# The Gateway API release whose HTTPRoute CRD schema validates our HTTPRoute. The CRD ships
# inside the Go module sigs.k8s.io/gateway-api, fetched through the Go module proxy.
GATEWAY_API_MODULE = "sigs.k8s.io/gateway-api"
GATEWAY_API_VERSION = "v1.3.0"
# The prometheus-operator release whose ServiceMonitor CRD validates ours; the CRDs ship in
# its Go module's example/prometheus-operator-crd directory.
PROMETHEUS_OPERATOR_MODULE = "github.com/prometheus-operator/prometheus-operator"
PROMETHEUS_OPERATOR_VERSION = "v0.85.0"


def render(
    values: dict[str, Any] | None = None,
    *,
    kube_version: str | None = None,
    name: str = "web",
    namespace: str = "sites",
) -> dict[str, str]:
    """Render the chart offline and return {template path: manifest text}.

    `kube_version` sets `.Capabilities.KubeVersion` the way `helm template
    --kube-version` does. helm-python-sdk's `Chart.render` does not expose that
    option although the C library accepts it, so for that case the library is called
    directly with the same JSON options `Chart.render` builds.
    """
    import helm_python
    from helm_python import _native

    with helm_python.Chart.load(CHART) as chart:
        if kube_version is None:
            return chart.render(values, name=name, namespace=namespace)
        options = {"name": name, "namespace": namespace, "kube_version": kube_version}
        rendered = _native.call_string(
            "helm_render", chart._raw(), json.dumps(values or {}), json.dumps(options)
        )
        manifests: dict[str, str] = json.loads(rendered)
        return manifests


def objects(manifests: dict[str, str]) -> list[dict[str, Any]]:
    """Every Kubernetes object in the rendered manifests (NOTES.txt excluded)."""
    found: list[dict[str, Any]] = []
    for path, text in sorted(manifests.items()):
        if path.endswith("NOTES.txt"):
            continue
        found.extend(document for document in yaml.safe_load_all(text) if document)
    return found


def one(found: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    """The single object of `kind`; fails loudly when there is none or several."""
    matches = [item for item in found if item["kind"] == kind]
    assert len(matches) == 1, f"expected one {kind}, found {len(matches)}"
    return matches[0]


def kinds(found: list[dict[str, Any]]) -> list[str]:
    return sorted(item["kind"] for item in found)


# --- Pod Security Standards, "restricted" profile ---------------------------------
# Written from https://kubernetes.io/docs/concepts/security/pod-security-standards/
# (the Baseline controls, which Restricted includes, and the Restricted controls).

RESTRICTED_VOLUME_TYPES = frozenset(
    {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected",
     "secret"}
)
BASELINE_SAFE_SYSCTLS = frozenset(
    {"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
     "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
     "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
     "net.ipv4.tcp_keepalive_probes"}
)
ALLOWED_SELINUX_TYPES = frozenset({"", "container_t", "container_init_t", "container_kvm_t",
                                   "container_engine_t"})


def _containers(spec: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for key in ("initContainers", "containers", "ephemeralContainers"):
        yield from spec.get(key) or []


def restricted_violations(pod_spec: dict[str, Any], annotations: dict[str, str] | None = None) -> list[str]:
    """Every way `pod_spec` breaks the restricted Pod Security Standard; empty when it complies."""
    problems: list[str] = []
    pod_sc = pod_spec.get("securityContext") or {}
    annotations = annotations or {}

    # Baseline: host namespaces, HostProcess, hostPath, host ports, privileged.
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if pod_spec.get(field):
            problems.append(f"{field} must be unset or false")
    if (pod_sc.get("windowsOptions") or {}).get("hostProcess"):
        problems.append("pod windowsOptions.hostProcess must be unset or false")
    for volume in pod_spec.get("volumes") or []:
        types = set(volume) - {"name"}
        if "hostPath" in types:
            problems.append(f"volume {volume['name']}: hostPath is forbidden")
        if not types <= RESTRICTED_VOLUME_TYPES:
            problems.append(f"volume {volume['name']}: type {sorted(types)} is not allowed")
    for sysctl in pod_sc.get("sysctls") or []:
        if sysctl.get("name") not in BASELINE_SAFE_SYSCTLS:
            problems.append(f"sysctl {sysctl.get('name')} is not in the safe set")
    if not _selinux_ok(pod_sc.get("seLinuxOptions")):
        problems.append("pod seLinuxOptions: type must be a container type; user and role unset")
    for key, value in annotations.items():
        if key.startswith("container.apparmor.security.beta.kubernetes.io/") and not (
            value == "runtime/default" or value.startswith("localhost/")
        ):
            problems.append(f"annotation {key}: AppArmor profile {value!r} is not allowed")
    if not _apparmor_ok(pod_sc.get("appArmorProfile")):
        problems.append("pod appArmorProfile must be RuntimeDefault or Localhost")

    pod_non_root = pod_sc.get("runAsNonRoot") is True
    pod_seccomp = (pod_sc.get("seccompProfile") or {}).get("type")
    if pod_sc.get("runAsUser") == 0:
        problems.append("pod runAsUser must not be 0")
    if pod_seccomp not in (None, "RuntimeDefault", "Localhost"):
        problems.append(f"pod seccompProfile.type {pod_seccomp!r} is not allowed")

    for container in _containers(pod_spec):
        name = container.get("name", "?")
        sc = container.get("securityContext") or {}
        if sc.get("privileged"):
            problems.append(f"container {name}: privileged must be unset or false")
        if (sc.get("windowsOptions") or {}).get("hostProcess"):
            problems.append(f"container {name}: windowsOptions.hostProcess must be unset or false")
        for port in container.get("ports") or []:
            if port.get("hostPort"):
                problems.append(f"container {name}: hostPort must be unset or 0")
        if sc.get("procMount") not in (None, "Default"):
            problems.append(f"container {name}: procMount must be Default")
        if not _selinux_ok(sc.get("seLinuxOptions")):
            problems.append(f"container {name}: seLinuxOptions not allowed")
        if not _apparmor_ok(sc.get("appArmorProfile")):
            problems.append(f"container {name}: appArmorProfile must be RuntimeDefault or Localhost")
        # Restricted.
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"container {name}: allowPrivilegeEscalation must be false")
        non_root = sc.get("runAsNonRoot", pod_non_root)
        if non_root is not True:
            problems.append(f"container {name}: runAsNonRoot must be true (pod or container)")
        if sc.get("runAsUser") == 0:
            problems.append(f"container {name}: runAsUser must not be 0")
        seccomp = (sc.get("seccompProfile") or {}).get("type", pod_seccomp)
        if seccomp not in ("RuntimeDefault", "Localhost"):
            problems.append(f"container {name}: seccompProfile must be RuntimeDefault or Localhost")
        capabilities = sc.get("capabilities") or {}
        if "ALL" not in (capabilities.get("drop") or []):
            problems.append(f"container {name}: capabilities.drop must include ALL")
        added = set(capabilities.get("add") or []) - {"NET_BIND_SERVICE"}
        if added:
            problems.append(f"container {name}: capabilities.add may only hold NET_BIND_SERVICE, not {added}")
    return problems


def _selinux_ok(options: dict[str, Any] | None) -> bool:
    options = options or {}
    return options.get("type", "") in ALLOWED_SELINUX_TYPES and not options.get("user") and not options.get(
        "role"
    )


def _apparmor_ok(profile: dict[str, Any] | None) -> bool:
    return profile is None or profile.get("type") in ("RuntimeDefault", "Localhost")


# --- Gateway API HTTPRoute schema ---------------------------------------------------


def go_module_dir(module: str, version: str) -> Path | None:
    """A Go module's directory, downloaded through the Go module proxy; None without Go.

    The module cache makes a second call instant.
    """
    go = shutil.which("go")
    if go is None and os.access("/usr/local/go/bin/go", os.X_OK):
        go = "/usr/local/go/bin/go"  # the Go tarball's place, often not on PATH
    if go is None:
        return None
    result = subprocess.run(
        [go, "mod", "download", "-json", f"{module}@{version}"],
        capture_output=True, text=True, timeout=300, check=False, cwd="/",
        env={**os.environ, "GO111MODULE": "on"},
    )
    assert result.returncode == 0, f"go mod download failed: {result.stdout}{result.stderr}"
    return Path(json.loads(result.stdout)["Dir"])


def gateway_api_dir() -> Path | None:
    return go_module_dir(GATEWAY_API_MODULE, GATEWAY_API_VERSION)


def prometheus_operator_dir() -> Path | None:
    return go_module_dir(PROMETHEUS_OPERATOR_MODULE, PROMETHEUS_OPERATOR_VERSION)


def crd_schema(crd_path: Path, api_version: str) -> dict[str, Any]:
    """A CRD's openAPIV3Schema of `api_version`, made strict like `kubectl --validate=strict`.

    A CRD schema prunes unknown fields instead of naming them; the API server's strict
    field validation rejects them. Here every object with `properties` and no
    `additionalProperties` of its own gets `additionalProperties: false`, except metadata
    (validated by Kubernetes itself, not by the CRD).
    """
    crd = yaml.safe_load(crd_path.read_text())
    version = next(item for item in crd["spec"]["versions"] if item["name"] == api_version)
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    _make_strict(schema)
    return schema


def httproute_schema(module_dir: Path, api_version: str = "v1") -> dict[str, Any]:
    return crd_schema(
        module_dir / "config" / "crd" / "standard" / "gateway.networking.k8s.io_httproutes.yaml", api_version)


def servicemonitor_schema(module_dir: Path) -> dict[str, Any]:
    crds = module_dir / "example" / "prometheus-operator-crd"
    return crd_schema(crds / "monitoring.coreos.com_servicemonitors.yaml", "v1")


def _make_strict(node: Any) -> None:
    if isinstance(node, dict):
        properties = node.get("properties")
        if isinstance(properties, dict) and "additionalProperties" not in node:
            node["additionalProperties"] = False
            if "metadata" in properties:
                properties["metadata"] = {"type": "object"}
        for value in node.values():
            _make_strict(value)
    elif isinstance(node, list):
        for value in node:
            _make_strict(value)


# --- the real image ---------------------------------------------------------------------

CHART_TEST_IMAGE = "localhost/servestatic/base:chart-test"


def build_image() -> str:
    """Build servestatic/base from the working tree the way the image tests do; return its name.

    No registry is reachable: the base is a local debootstrap root (scripts/image-base.sh)
    and pip installs from a host wheelhouse (scripts/wheelhouse.sh) under --network none.
    podman's layer cache makes a rebuild of an unchanged tree take seconds.
    """

    def output(*command: str) -> str:
        result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False, timeout=900)
        assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout}{result.stderr}"
        return result.stdout.strip().splitlines()[-1]

    base = output("scripts/image-base.sh")
    wheelhouse = REPO / output("scripts/wheelhouse.sh")
    output("podman", "build", "--quiet", "--network", "none", "-v", f"{wheelhouse}:/wheelhouse:ro",
           "--build-arg", "PIP_NO_INDEX=1", "--build-arg", "PIP_FIND_LINKS=/wheelhouse",
           "--build-arg", f"BASE_IMAGE={base}", "-t", CHART_TEST_IMAGE, ".")
    return CHART_TEST_IMAGE


def podman_run_args(pod_spec: dict[str, Any], container: dict[str, Any]) -> list[str]:
    """`podman run` options that give a container what the pod spec asks the kubelet for.

    Security context: user, read-only root, capabilities, no-new-privileges (seccomp is
    podman's default profile, like the runtime default); the CPU limit as a CFS quota. The
    /tmp emptyDir becomes a tmpfs; podman's own tmpfs mounts of a read-only container are
    turned off, so only what the pod mounts is writable.
    """
    pod_sc = pod_spec.get("securityContext") or {}
    sc = container.get("securityContext") or {}
    args = []
    user = sc.get("runAsUser", pod_sc.get("runAsUser"))
    group = sc.get("runAsGroup", pod_sc.get("runAsGroup"))
    if user is not None:
        args += ["--user", f"{user}:{group}" if group is not None else str(user)]
    if sc.get("readOnlyRootFilesystem"):
        args += ["--read-only", "--read-only-tmpfs=false"]
    capabilities = sc.get("capabilities") or {}
    for capability in capabilities.get("drop") or []:
        args += ["--cap-drop", capability]
    for capability in capabilities.get("add") or []:
        args += ["--cap-add", capability]
    if sc.get("allowPrivilegeEscalation") is False:
        args += ["--security-opt", "no-new-privileges"]
    volumes = {volume["name"]: volume for volume in pod_spec.get("volumes") or []}
    for mount in container.get("volumeMounts") or []:
        volume = volumes[mount["name"]]
        assert "emptyDir" in volume, f"volume {mount['name']}: only emptyDir is emulated here"
        args += ["--tmpfs", f"{mount['mountPath']}:rw,mode=1777"]
    cpu = ((container.get("resources") or {}).get("limits") or {}).get("cpu")
    if cpu is not None:  # a CFS quota, as the kubelet sets for a CPU limit
        cpu = str(cpu)
        args += ["--cpus", str(int(cpu[:-1]) / 1000 if cpu.endswith("m") else float(cpu))]
    for entry in container.get("env") or []:
        args += ["--env", f"{entry['name']}={entry['value']}"]
    return args


# --- the chart's map of values to environment variables -----------------------------

ENVIRONMENT_FILE = CHART / "files" / "environment.yaml"


def values_key(setting_name: str) -> str:
    """A setting's key under `servestatic:` in values.yaml: its name in camelCase."""
    first, *rest = setting_name.split("_")
    return first + "".join(part.title() for part in rest)


def environment_file_text() -> str:
    """What files/environment.yaml must hold: every `serve` setting's values key, variable
    and default.

    The chart sets a variable only for a value the user gave; the defaults are there for
    what the chart itself must know without setting it (the probes' paths, the container
    port, the grace period), so that it never writes servestatic's defaults a second time.
    """
    from servestatic.config.settings import SETTINGS

    serve = [s for s in SETTINGS if "serve" in s.commands]
    lines = [
        "# Generated from servestatic/config/settings.py by `python -m tests.helmchart`; do not edit.",
        "# env: the environment variable of each setting, keyed by its name under `servestatic:` in",
        "# values.yaml. Settings that values.yaml does not offer are never set by the chart.",
        "env:",
        *(f"  {values_key(s.name)}: {s.env}" for s in serve),
        "# default: servestatic's default of each, as text; the chart reads it for what it must know",
        "# (probe paths, the container port, the grace period) but never sets it as a variable.",
        "default:",
        *(f"  {values_key(s.name)}: {json.dumps(s.default)}" for s in serve),
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    ENVIRONMENT_FILE.parent.mkdir(exist_ok=True)
    ENVIRONMENT_FILE.write_text(environment_file_text())
    print(f"wrote {ENVIRONMENT_FILE.relative_to(REPO)}")

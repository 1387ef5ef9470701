"""Shared checks for the Kubernetes objects in kubernetes/ and those the Helm chart renders.

Plain functions over parsed manifests (dicts), used by test_kubernetes_manifests.py and
test_helm_chart.py: where the pods are, what Pod Security "restricted" demands, and how
to validate against the Kubernetes OpenAPI schemas in strict mode.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "charts" / "gource-batch"
MANIFESTS = ROOT / "kubernetes"

# Custom resources the Kubernetes schemas do not describe; checked structurally instead.
CUSTOM_API_GROUPS = ("keda.sh/", "monitoring.coreos.com/", "kustomize.config.k8s.io/")

Manifest = dict[str, Any]


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def require_tool(name: str) -> str:
    """Path of a command-line tool: skipped locally when missing, a failure in CI."""
    found = shutil.which(name) or shutil.which(name, path=str(Path.home() / "go" / "bin"))
    if found:
        return found
    message = f"{name} is not installed (scripts/install-helm.sh installs it)"
    if in_ci():
        pytest.fail(message)
    pytest.skip(message)


def require_tool_optional(name: str) -> str:
    """Path of a tool CI does not install (kustomize): skipped wherever it is missing."""
    found = shutil.which(name) or shutil.which(name, path=str(Path.home() / "go" / "bin"))
    if not found:
        pytest.skip(f"{name} is not installed (scripts/install-helm.sh --with-kustomize)")
    return found


def require_module(name: str) -> Any:
    """Import a test dependency: skipped locally when missing, a failure in CI."""
    try:
        return __import__(name)
    except ImportError:
        message = f"python package {name} is not installed (pip install -e '.[dev]')"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)


def kubernetes_version() -> str:
    """The newest Kubernetes version the installed kubernetes-validate has schemas for."""
    require_module("kubernetes_validate")
    from kubernetes_validate import utils

    return str(utils.latest_version())


def load_documents(text: str) -> list[Manifest]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def is_custom(obj: Manifest) -> bool:
    return str(obj.get("apiVersion", "")).startswith(CUSTOM_API_GROUPS)


def validate_strict(obj: Manifest, version: str) -> None:
    """Validate one object against the Kubernetes schemas, unknown fields refused."""
    import kubernetes_validate

    try:
        kubernetes_validate.validate(obj, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        where = ".".join(str(p) for p in exc.path)
        name = obj.get("metadata", {}).get("name") or obj.get("metadata", {}).get("generateName")
        pytest.fail(f"{obj['kind']}/{name}: {where}: {exc.message}")


def embedded_jobs(obj: Manifest) -> Iterator[Manifest]:
    """Job manifests carried inside ConfigMaps (the launcher's processor Job template)."""
    if obj.get("kind") != "ConfigMap":
        return
    for key, value in (obj.get("data") or {}).items():
        if key.endswith((".yaml", ".yml")):
            for doc in load_documents(value):
                if isinstance(doc, dict) and doc.get("kind") == "Job":
                    yield doc


def pod_specs(obj: Manifest) -> Iterator[tuple[str, Manifest]]:
    """(label, pod spec) for every pod an object starts, including embedded Job templates."""
    kind = obj.get("kind")
    name = obj.get("metadata", {}).get("name") or obj.get("metadata", {}).get("generateName")
    spec = obj.get("spec") or {}
    if kind in ("Job", "StatefulSet", "Deployment", "DaemonSet"):
        yield f"{kind}/{name}", spec["template"]["spec"]
    elif kind == "CronJob":
        yield f"{kind}/{name}", spec["jobTemplate"]["spec"]["template"]["spec"]
    elif kind == "ScaledJob":
        yield f"{kind}/{name}", spec["jobTargetRef"]["template"]["spec"]
    elif kind == "Pod":
        yield f"{kind}/{name}", spec
    for job in embedded_jobs(obj):
        yield from ((f"{kind}/{name} -> {label}", pod) for label, pod in pod_specs(job))


def all_pod_specs(objects: list[Manifest]) -> list[tuple[str, Manifest]]:
    return [pair for obj in objects for pair in pod_specs(obj)]


def job_specs(objects: list[Manifest], component: str) -> list[tuple[str, Manifest]]:
    """(label, Job spec) of every Job-like object of a component, embedded ones included."""
    found = []
    for obj in objects:
        candidates = [obj, *embedded_jobs(obj)]
        for candidate in candidates:
            labels = candidate.get("metadata", {}).get("labels") or {}
            kind = candidate.get("kind")
            if labels.get("app.kubernetes.io/component") != component:
                continue
            spec = candidate.get("spec") or {}
            name = candidate["metadata"].get("name") or candidate["metadata"].get("generateName")
            if kind == "Job":
                found.append((f"Job/{name}", spec))
            elif kind == "CronJob":
                found.append((f"CronJob/{name}", spec["jobTemplate"]["spec"]))
            elif kind == "ScaledJob":
                found.append((f"ScaledJob/{name}", spec["jobTargetRef"]))
    return found


def restricted_violations(pod: Manifest) -> list[str]:
    """What keeps a pod spec from Pod Security "restricted" (+ read-only root filesystem)."""
    checks = [(bool(pod.get(f)), f"{f} is set") for f in ("hostNetwork", "hostPID", "hostIPC")]
    checks.append((any("hostPath" in v for v in pod.get("volumes") or []), "a hostPath volume"))
    containers = [*(pod.get("initContainers") or []), *(pod.get("containers") or [])]
    checks.append((not containers, "no containers"))
    problems = [message for failed, message in checks if failed]
    for container in containers:
        problems += container_violations(container, pod.get("securityContext") or {})
    return problems


def container_violations(container: Manifest, pod_sc: Manifest) -> list[str]:
    """One container's departures from "restricted", pod-level defaults taken into account."""
    sc = container.get("securityContext") or {}
    caps = sc.get("capabilities") or {}
    seccomp = (sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}).get("type")
    checks = [
        (sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is not True, "runAsNonRoot is not true"),
        (sc.get("runAsUser", pod_sc.get("runAsUser")) == 0, "runs as uid 0"),
        (sc.get("allowPrivilegeEscalation") is not False, "allowPrivilegeEscalation is not false"),
        (bool(sc.get("privileged")), "privileged"),
        ("ALL" not in (caps.get("drop") or []), "capabilities not dropped"),
        (bool(set(caps.get("add") or []) - {"NET_BIND_SERVICE"}), "adds capabilities"),
        (seccomp not in ("RuntimeDefault", "Localhost"), f"seccomp profile is {seccomp!r}"),
        (sc.get("readOnlyRootFilesystem") is not True, "root filesystem is writable"),
        (any("hostPort" in port for port in container.get("ports") or []), "hostPort"),
    ]
    return [f"{container.get('name')}: {message}" for failed, message in checks if failed]


def resource_violations(pod: Manifest) -> list[str]:
    problems = []
    for c in [*(pod.get("initContainers") or []), *(pod.get("containers") or [])]:
        resources = c.get("resources") or {}
        for kind in ("requests", "limits"):
            for what in ("cpu", "memory"):
                if what not in (resources.get(kind) or {}):
                    problems.append(f"{c['name']}: no {what} {kind}")
    return problems


def empty_dir_mounts(pod: Manifest, container: str) -> dict[str, Manifest]:
    """mountPath -> emptyDir source, for one container's emptyDir mounts."""
    volumes = {v["name"]: v for v in pod.get("volumes") or []}
    found = {}
    for c in pod["containers"]:
        if c["name"] != container:
            continue
        for mount in c.get("volumeMounts") or []:
            volume = volumes.get(mount["name"], {})  # absent: a volumeClaimTemplate
            if "emptyDir" in volume:
                found[mount["mountPath"]] = volume["emptyDir"] or {}
    return found


def token_mounted(pod: Manifest, service_accounts: dict[str, Manifest]) -> bool:
    """Whether the pod gets an API token (pod setting first, then the ServiceAccount's)."""
    if "automountServiceAccountToken" in pod:
        return bool(pod["automountServiceAccountToken"])
    account = service_accounts.get(pod.get("serviceAccountName", "default"), {})
    return bool(account.get("automountServiceAccountToken", True))


def args_of(pod: Manifest, container: str) -> list[str]:
    for c in pod["containers"]:
        if c["name"] == container:
            return [*(c.get("command") or []), *(c.get("args") or [])]
    raise AssertionError(f"no container {container}")


def flag(args: list[str], name: str) -> str | None:
    """The value after `name` in an argv list, None when absent."""
    return args[args.index(name) + 1] if name in args else None

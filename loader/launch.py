"""Create the processor Job through the Kubernetes API, sized to the backlog.

This is what makes scheduled batches work without KEDA: a CronJob runs the loader, the
loader publishes the batch, then calls `launch_processors`, which

- reads a processor Job manifest (the template the chart or `kubernetes/` provides,
  mounted from a ConfigMap),
- refuses to start when a processor Job of the same release is still running (the queue
  is already being drained; a second Job would only race it),
- otherwise creates a Job with a unique name and
  `parallelism = clamp(ceil(backlog / per_processor), minimum, maximum)`.

The `kubernetes` client is imported inside the functions that need it, so the loader runs
without it (`pip install 'gource-batch[kubernetes]'` adds it). `build_job` and
`active_jobs` are pure: they take and return the client's own models.
"""

from __future__ import annotations

import importlib
import json
import logging
import math
import re
import secrets
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from processor.errors import ConfigurationError

# The client's models are typed in some releases (pydantic, >= 36) and not in others, so
# this module treats them as Any rather than tie its type checking to one release.
V1Job = Any
BatchV1Api = Any

log = logging.getLogger(__name__)

# Labels that tie a launched Job to its release (the chart's standard labels).
INSTANCE_LABEL = "app.kubernetes.io/instance"
COMPONENT_LABEL = "app.kubernetes.io/component"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
PROCESSOR_COMPONENT = "processor"
LAUNCHER = "gource-batch-loader"
BACKLOG_ANNOTATION = "gource-batch.io/backlog"

SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
MAX_NAME = 63  # Job names end up in the pods' `job-name` label: at most 63 characters.
_SUFFIX_LENGTH = len("-20240131-235959-abcd")
_DNS_LABEL = re.compile(r"[^a-z0-9-]+")


def processors_for(backlog: int, per_processor: int, minimum: int, maximum: int) -> int:
    """How many processors a backlog deserves: ceil(backlog / per_processor) within bounds."""
    if per_processor < 1:
        raise ValueError("per_processor must be at least 1")
    if not 1 <= minimum <= maximum:
        raise ValueError("need 1 <= minimum <= maximum")
    return max(minimum, min(maximum, math.ceil(max(backlog, 0) / per_processor)))


def job_name(base: str, now: datetime, token: str | None = None) -> str:
    """`<base>-<YYYYmmdd-HHMMSS>-<4 hex>`: unique per run, sortable, a valid DNS label."""
    base = _DNS_LABEL.sub("-", base.lower()).strip("-") or "gource-batch-processor"
    base = base[: MAX_NAME - _SUFFIX_LENGTH].rstrip("-")
    token = token if token is not None else secrets.token_hex(2)
    return f"{base}-{now.astimezone(UTC):%Y%m%d-%H%M%S}-{token}"


def _k8s(module: str) -> Any:
    """Import a part of the kubernetes client on first use (it is an optional extra)."""
    return importlib.import_module(module)


def _job_from_dict(data: dict[str, Any]) -> V1Job:
    """A `V1Job` from its JSON form (camelCase keys), for every supported client version.

    Clients from 36 on generate pydantic models with `from_dict`; older ones only
    deserialize API responses, so those get a response-shaped object to read.
    """
    client = _k8s("kubernetes.client")
    from_dict = getattr(client.V1Job, "from_dict", None)
    if callable(from_dict):
        return from_dict(data)

    class _Response:
        data = json.dumps(data)

    return client.ApiClient().deserialize(_Response(), "V1Job")


def job_to_dict(job: V1Job) -> dict[str, Any]:
    """The JSON form of a `V1Job` (camelCase keys, unset fields left out)."""
    body: dict[str, Any] = _k8s("kubernetes.client").ApiClient().sanitize_for_serialization(job)
    return body


def load_template(path: Path) -> V1Job:
    """The Job manifest at `path` (YAML or JSON) as the client's `V1Job` model."""
    import yaml  # a dependency of the kubernetes client

    try:
        manifest = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigurationError(f"cannot read the processor Job template {path}: {exc}") from exc
    return template_from_dict(manifest, source=str(path))


def template_from_dict(manifest: Any, source: str = "template") -> V1Job:
    """A Job manifest (a parsed YAML mapping) as a `V1Job`, via the client's own deserializer."""
    if not isinstance(manifest, Mapping) or manifest.get("kind") != "Job":
        raise ConfigurationError(f"{source} is not a Kubernetes Job manifest")
    if not str(manifest.get("apiVersion", "")).startswith("batch/"):
        raise ConfigurationError(f"{source}: a Job must have apiVersion batch/v1")

    try:
        job = _job_from_dict(dict(manifest))
    except (TypeError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
        raise ConfigurationError(f"{source} is not a valid Job: {exc}") from exc
    if job.spec is None or job.spec.template is None:
        raise ConfigurationError(f"{source}: the Job has no pod template")
    return job


def build_job(
    template: V1Job,
    *,
    parallelism: int,
    name: str,
    release: str | None = None,
    backlog: int | None = None,
) -> V1Job:
    """A new Job from `template`: unique name, the given parallelism, labelled to the release.

    The template is not modified. `completions` is cleared (a work-queue Job drains until
    its processors exit 0), and everything the API server fills in on creation
    (uid, resourceVersion, status, the selector) is dropped so the object can be created.
    """
    job = _job_from_dict(job_to_dict(template))
    meta = job.metadata
    if meta is None:
        meta = job.metadata = _k8s("kubernetes.client").V1ObjectMeta()
    release = release or (meta.labels or {}).get(INSTANCE_LABEL)
    labels = {**(meta.labels or {}), COMPONENT_LABEL: PROCESSOR_COMPONENT, MANAGED_BY_LABEL: LAUNCHER}
    if release:
        labels[INSTANCE_LABEL] = release
    meta.name = name
    meta.generate_name = None
    meta.labels = labels
    for field in ("uid", "resource_version", "creation_timestamp", "managed_fields", "self_link"):
        setattr(meta, field, None)
    meta.owner_references = None
    annotations = {
        k: v for k, v in (meta.annotations or {}).items() if not k.startswith(("helm.sh/", "meta.helm.sh/"))
    }
    if backlog is not None:
        annotations[BACKLOG_ANNOTATION] = str(backlog)
    meta.annotations = annotations or None

    spec = job.spec
    spec.parallelism = parallelism
    spec.completions = None
    spec.completion_mode = None
    spec.selector = None
    spec.manual_selector = None
    job.status = None

    pod_meta = spec.template.metadata
    if pod_meta is None:
        pod_meta = spec.template.metadata = _k8s("kubernetes.client").V1ObjectMeta()
    pod_labels = {**(pod_meta.labels or {}), COMPONENT_LABEL: PROCESSOR_COMPONENT}
    if release:
        pod_labels[INSTANCE_LABEL] = release
    for generated in (
        "controller-uid",
        "batch.kubernetes.io/controller-uid",
        "job-name",
        "batch.kubernetes.io/job-name",
    ):
        pod_labels.pop(generated, None)
    pod_meta.labels = pod_labels
    return job


def is_finished(job: V1Job) -> bool:
    """A Job is finished once it has a true `Complete` or `Failed` condition."""
    conditions = (job.status.conditions if job.status else None) or []
    return any(c.type in ("Complete", "Failed") and c.status == "True" for c in conditions)


def active_jobs(jobs: Iterable[V1Job], release: str | None = None) -> list[V1Job]:
    """The processor Jobs of `release` (any release when None) that have not finished.

    A Job that was just created has no active pods yet but is not finished either, so
    "not finished" (rather than `status.active > 0`) is what counts: it also covers Jobs
    whose pods are still pending, the case KEDA users see duplicated.
    """
    found = []
    for job in jobs:
        labels = (job.metadata.labels if job.metadata else None) or {}
        if labels.get(COMPONENT_LABEL) != PROCESSOR_COMPONENT:
            continue
        if release is not None and labels.get(INSTANCE_LABEL) != release:
            continue
        if job.metadata and job.metadata.deletion_timestamp is not None:
            continue
        if not is_finished(job):
            found.append(job)
    return found


def selector_for(release: str | None) -> str:
    selector = f"{COMPONENT_LABEL}={PROCESSOR_COMPONENT}"
    return f"{selector},{INSTANCE_LABEL}={release}" if release else selector


def current_namespace(default: str = "default") -> str:
    """The pod's own namespace in a cluster, `default` elsewhere."""
    try:
        return SERVICE_ACCOUNT_NAMESPACE.read_text(encoding="utf-8").strip() or default
    except OSError:
        return default


def batch_api() -> BatchV1Api:
    """A BatchV1Api from the in-cluster service account, or from ~/.kube/config outside one."""
    client, config = _k8s("kubernetes.client"), _k8s("kubernetes.config")
    try:
        config.load_incluster_config()
    except config.ConfigException:
        try:
            config.load_kube_config()
        except (config.ConfigException, OSError) as exc:
            raise ConfigurationError(
                f"no Kubernetes configuration (in-cluster or kubeconfig): {exc}"
            ) from exc
    return client.BatchV1Api()


def launch_processors(
    template_path: Path,
    backlog: int,
    *,
    minimum: int = 1,
    maximum: int = 4,
    per_processor: int = 10,
    namespace: str | None = None,
    release: str | None = None,
    api: BatchV1Api | None = None,
    now: datetime | None = None,
) -> str | None:
    """Create the processor Job for `backlog` waiting requests; return its name.

    Returns None (and logs why) when there is nothing to do: the backlog is empty, or a
    processor Job of the same release is still running. `release` defaults to the
    template's `app.kubernetes.io/instance` label; `namespace` to the template's, then
    the pod's own. Raises ConfigurationError when the bounds are impossible, the template
    is unusable, or the API refuses on permissions.
    """
    api_exception = _k8s("kubernetes.client.exceptions").ApiException
    try:
        parallelism = processors_for(backlog, per_processor, minimum, maximum)
    except ValueError as exc:
        raise ConfigurationError(f"launch bounds: {exc}") from exc
    template = load_template(template_path)
    meta = template.metadata
    release = release or ((meta.labels or {}).get(INSTANCE_LABEL) if meta else None)
    namespace = namespace or (meta.namespace if meta else None) or current_namespace()
    if backlog <= 0:
        log.info("backlog is empty, no processor Job launched")
        return None

    api = api or batch_api()
    try:
        listed = api.list_namespaced_job(namespace, label_selector=selector_for(release))
        running = active_jobs(listed.items or [], release)
        if running:
            names = ", ".join(sorted(j.metadata.name for j in running))
            log.info("processor Job still running (%s), not launching another", names)
            return None
        base = (meta.name or meta.generate_name or "") if meta else ""
        name = job_name(base or f"{release or 'gource-batch'}-processor", now or datetime.now(UTC))
        job = build_job(template, parallelism=parallelism, name=name, release=release, backlog=backlog)
        job.metadata.namespace = namespace
        api.create_namespaced_job(namespace, job)
    except api_exception as exc:
        if exc.status in (401, 403):
            raise ConfigurationError(
                f"not allowed to list/create Jobs in namespace {namespace!r}: {exc.reason}"
            ) from exc
        raise
    log.info(
        "launched processor Job %s with parallelism %d for %d waiting requests",
        name,
        parallelism,
        backlog,
    )
    return name


__all__ = [
    "active_jobs",
    "batch_api",
    "build_job",
    "job_name",
    "job_to_dict",
    "launch_processors",
    "load_template",
    "processors_for",
    "template_from_dict",
]

"""The loader's processor-Job launcher, against the kubernetes client's own models.

No cluster: the BatchV1Api is replaced by a recorder that answers `list_namespaced_job`
with real `V1JobList` objects and keeps what `create_namespaced_job` was given.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

try:
    from tests import kube_properties as kp
except ImportError:  # tests/ is not a package: pytest put its directory on sys.path
    import kube_properties as kp  # type: ignore[no-redef]

from loader import launch
from processor.errors import ConfigurationError

TEMPLATE = kp.MANIFESTS / "processor-job.yaml"
NOW = datetime(2024, 1, 31, 23, 59, 58, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _kubernetes_client() -> None:
    kp.require_module("kubernetes")


@pytest.fixture
def client() -> Any:
    from kubernetes import client

    return client


def job(
    client: Any,
    name: str,
    *,
    release: str = "gource-batch",
    component: str = "processor",
    finished: str | None = None,
) -> Any:
    conditions = [client.V1JobCondition(type=finished, status="True")] if finished else None
    return client.V1Job(
        metadata=client.V1ObjectMeta(
            name=name,
            labels={"app.kubernetes.io/instance": release, "app.kubernetes.io/component": component},
        ),
        status=client.V1JobStatus(conditions=conditions),
    )


class Recorder:
    """Stands in for BatchV1Api: lists the given Jobs (filtered like the API), records creates."""

    def __init__(self, client: Any, jobs: list[Any] | None = None, fail_with: Exception | None = None):
        self.client = client
        self.jobs = jobs or []
        self.fail_with = fail_with
        self.created: list[tuple[str, Any]] = []
        self.selectors: list[str] = []

    def list_namespaced_job(self, namespace: str, label_selector: str = "", **_: Any) -> Any:
        if self.fail_with:
            raise self.fail_with
        self.selectors.append(label_selector)
        wanted = dict(part.split("=", 1) for part in label_selector.split(",") if part)
        items = [j for j in self.jobs if wanted.items() <= (j.metadata.labels or {}).items()]
        return self.client.V1JobList(items=items)

    def create_namespaced_job(self, namespace: str, body: Any, **_: Any) -> Any:
        self.created.append((namespace, body))
        return body


# --- sizing and naming ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("backlog", "expected"),
    [(0, 1), (1, 1), (10, 1), (11, 2), (35, 4), (40, 4), (41, 5), (1000, 8)],
)
def test_parallelism_is_the_backlog_per_processor_rounded_up_within_bounds(
    backlog: int, expected: int
) -> None:
    assert launch.processors_for(backlog, per_processor=10, minimum=1, maximum=8) == expected


def test_a_minimum_above_the_need_wins() -> None:
    assert launch.processors_for(3, per_processor=10, minimum=2, maximum=8) == 2


@pytest.mark.parametrize(("per", "low", "high"), [(0, 1, 2), (1, 0, 2), (1, 3, 2)])
def test_impossible_bounds_are_refused(per: int, low: int, high: int) -> None:
    with pytest.raises(ValueError, match=r"must|need"):
        launch.processors_for(5, per_processor=per, minimum=low, maximum=high)


def test_impossible_bounds_are_a_configuration_error_when_launching(client: Any) -> None:
    with pytest.raises(ConfigurationError, match="launch bounds"):
        launch.launch_processors(TEMPLATE, 5, minimum=5, maximum=2, namespace="batch", api=Recorder(client))


def test_job_names_are_unique_per_run_and_valid_dns_labels() -> None:
    first = launch.job_name("gource-batch-processor-", NOW)
    second = launch.job_name("gource-batch-processor-", NOW)
    assert first != second
    assert first.startswith("gource-batch-processor-20240131-235958-")
    long = launch.job_name("A_Very_Long_Release_Name_" * 5, NOW, token="beef")
    assert len(long) <= 63
    assert long.endswith("-20240131-235958-beef")
    assert all(c.islower() or c.isdigit() or c == "-" for c in long)


# --- the Job it builds ----------------------------------------------------------------------
def test_the_template_loads_as_a_v1job(client: Any) -> None:
    template = launch.load_template(TEMPLATE)
    assert isinstance(template, client.V1Job)
    assert template.metadata.generate_name == "gource-batch-processor-"
    assert template.spec.template.spec.containers[0].name == "processor"


def test_the_built_job_has_the_name_parallelism_and_release_labels_asked_for(client: Any) -> None:
    template = launch.load_template(TEMPLATE)
    built = launch.build_job(
        template, parallelism=5, name="gource-batch-processor-x", release="nightly", backlog=42
    )
    assert isinstance(built, client.V1Job)
    assert built.metadata.name == "gource-batch-processor-x"
    assert built.metadata.generate_name is None
    assert built.spec.parallelism == 5
    assert built.spec.completions is None
    labels = built.metadata.labels
    assert labels["app.kubernetes.io/instance"] == "nightly"
    assert labels["app.kubernetes.io/component"] == "processor"
    assert labels["app.kubernetes.io/managed-by"] == "gource-batch-loader"
    assert built.metadata.annotations == {"gource-batch.io/backlog": "42"}
    pod_labels = built.spec.template.metadata.labels
    assert pod_labels["app.kubernetes.io/instance"] == "nightly"
    assert pod_labels["app.kubernetes.io/component"] == "processor"


def test_the_built_job_keeps_the_template_policies(client: Any) -> None:
    template = launch.load_template(TEMPLATE)
    built = launch.build_job(template, parallelism=3, name="p-1")
    spec = built.spec
    assert spec.backoff_limit == template.spec.backoff_limit
    assert spec.active_deadline_seconds == template.spec.active_deadline_seconds
    assert spec.ttl_seconds_after_finished == template.spec.ttl_seconds_after_finished
    rules = spec.pod_failure_policy.rules
    assert rules[0].action == "FailJob"
    assert rules[0].on_exit_codes.values == [78]
    assert rules[1].action == "Ignore"
    pod = spec.template.spec
    assert pod.automount_service_account_token is False
    assert pod.security_context.run_as_non_root is True
    assert pod.containers[0].security_context.read_only_root_filesystem is True


def test_building_leaves_the_template_untouched() -> None:
    template = launch.load_template(TEMPLATE)
    before = launch.job_to_dict(template)
    launch.build_job(template, parallelism=7, name="p-2", release="other")
    assert launch.job_to_dict(template) == before


def test_the_built_job_drops_what_the_api_server_owns(client: Any) -> None:
    template = launch.load_template(TEMPLATE)
    template.metadata.uid = "1234"
    template.metadata.resource_version = "99"
    template.metadata.annotations = {"meta.helm.sh/release-name": "x", "keep": "me"}
    template.spec.selector = client.V1LabelSelector(
        match_labels={"batch.kubernetes.io/controller-uid": "1234"}
    )
    template.spec.template.metadata.labels["batch.kubernetes.io/controller-uid"] = "1234"
    template.status = client.V1JobStatus(active=2)
    built = launch.build_job(template, parallelism=1, name="p-3")
    assert built.metadata.uid is None
    assert built.metadata.resource_version is None
    assert built.metadata.annotations == {"keep": "me"}
    assert built.spec.selector is None
    assert "batch.kubernetes.io/controller-uid" not in built.spec.template.metadata.labels
    assert built.status is None


def test_the_built_job_validates_against_the_kubernetes_schema() -> None:
    built = launch.build_job(launch.load_template(TEMPLATE), parallelism=4, name="gource-batch-processor-y")
    body = launch.job_to_dict(built)
    assert "completions" not in body["spec"]
    kp.validate_strict(body, kp.kubernetes_version())


@pytest.mark.parametrize(
    "manifest",
    [
        "just text",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
        "apiVersion: batch/v1\nkind: Job\nmetadata: {name: x}\nspec: {}\n",
    ],
    ids=["not a mapping", "not a Job", "no pod template"],
)
def test_a_template_that_is_not_a_job_is_a_configuration_error(tmp_path: Path, manifest: str) -> None:
    path = tmp_path / "job.yaml"
    path.write_text(manifest)
    with pytest.raises(ConfigurationError):
        launch.load_template(path)


def test_a_missing_template_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot read"):
        launch.load_template(tmp_path / "absent.yaml")


# --- which Jobs count as running ------------------------------------------------------------
def test_unfinished_processor_jobs_of_the_release_are_active(client: Any) -> None:
    jobs = [
        job(client, "running"),
        job(client, "done", finished="Complete"),
        job(client, "failed", finished="Failed"),
        job(client, "other-release", release="staging"),
        job(client, "a-loader", component="loader"),
    ]
    assert [j.metadata.name for j in launch.active_jobs(jobs, "gource-batch")] == ["running"]
    assert [j.metadata.name for j in launch.active_jobs(jobs)] == ["running", "other-release"]


def test_a_job_whose_pods_are_still_pending_counts_as_active(client: Any) -> None:
    pending = job(client, "pending")
    pending.status = client.V1JobStatus(active=None, ready=0)
    assert launch.active_jobs([pending], "gource-batch") == [pending]


def test_a_job_being_deleted_does_not_block_a_launch(client: Any) -> None:
    leaving = job(client, "leaving")
    leaving.metadata.deletion_timestamp = NOW
    assert launch.active_jobs([leaving], "gource-batch") == []


# --- launching ------------------------------------------------------------------------------
def test_launching_creates_one_job_sized_to_the_backlog(client: Any) -> None:
    api = Recorder(client, [job(client, "yesterday", finished="Complete")])
    name = launch.launch_processors(
        TEMPLATE, 23, minimum=1, maximum=8, per_processor=5, namespace="batch", api=api, now=NOW
    )
    assert name is not None
    assert name.startswith("gource-batch-processor-20240131-235958-")
    ((namespace, body),) = api.created
    assert namespace == "batch"
    assert body.metadata.name == name
    assert body.metadata.namespace == "batch"
    assert body.spec.parallelism == 5
    assert api.selectors == ["app.kubernetes.io/component=processor,app.kubernetes.io/instance=gource-batch"]


def test_a_second_launch_is_refused_while_a_processor_job_of_the_release_runs(
    client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    api = Recorder(client, [job(client, "gource-batch-processor-earlier")])
    with caplog.at_level(logging.INFO, logger="loader.launch"):
        assert launch.launch_processors(TEMPLATE, 100, namespace="batch", api=api) is None
    assert api.created == []
    assert "gource-batch-processor-earlier" in caplog.text


def test_a_launch_after_a_launch_is_refused(client: Any) -> None:
    api = Recorder(client)
    first = launch.launch_processors(TEMPLATE, 10, namespace="batch", api=api)
    api.jobs.extend(body for _, body in api.created)
    second = launch.launch_processors(TEMPLATE, 10, namespace="batch", api=api)
    assert first is not None
    assert second is None
    assert len(api.created) == 1


def test_a_running_job_of_another_release_does_not_block(client: Any) -> None:
    api = Recorder(client, [job(client, "staging-processor", release="staging")])
    assert launch.launch_processors(TEMPLATE, 3, namespace="batch", api=api) is not None


def test_an_empty_backlog_launches_nothing(client: Any) -> None:
    api = Recorder(client)
    assert launch.launch_processors(TEMPLATE, 0, namespace="batch", api=api) is None
    assert api.created == []
    assert api.selectors == []


def test_the_release_comes_from_the_argument_before_the_template(client: Any) -> None:
    api = Recorder(client)
    launch.launch_processors(TEMPLATE, 1, namespace="batch", release="nightly", api=api)
    ((_, body),) = api.created
    assert body.metadata.labels["app.kubernetes.io/instance"] == "nightly"
    assert api.selectors[0].endswith("app.kubernetes.io/instance=nightly")


def test_the_namespace_defaults_to_the_pods_own(
    client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    namespace_file = tmp_path / "namespace"
    namespace_file.write_text("gource-batch-prod\n")
    monkeypatch.setattr(launch, "SERVICE_ACCOUNT_NAMESPACE", namespace_file)
    api = Recorder(client)
    launch.launch_processors(TEMPLATE, 1, api=api)
    assert api.created[0][0] == "gource-batch-prod"


def test_a_forbidden_api_call_is_a_configuration_error(client: Any) -> None:
    from kubernetes.client.exceptions import ApiException

    api = Recorder(client, fail_with=ApiException(status=403, reason="Forbidden"))
    with pytest.raises(ConfigurationError, match="not allowed"):
        launch.launch_processors(TEMPLATE, 5, namespace="batch", api=api)


def test_other_api_errors_propagate(client: Any) -> None:
    from kubernetes.client.exceptions import ApiException

    api = Recorder(client, fail_with=ApiException(status=500, reason="boom"))
    with pytest.raises(ApiException):
        launch.launch_processors(TEMPLATE, 5, namespace="batch", api=api)


def test_the_chart_template_launches_with_its_release_label(client: Any, tmp_path: Path) -> None:
    manifest = yaml.safe_load(TEMPLATE.read_text())
    manifest["metadata"] = {
        "name": "prod-gource-batch-processor",
        "labels": {"app.kubernetes.io/instance": "prod", "app.kubernetes.io/component": "processor"},
    }
    path = tmp_path / "processor-job.yaml"
    path.write_text(yaml.safe_dump(manifest))
    api = Recorder(client)
    name = launch.launch_processors(path, 1, namespace="batch", api=api, now=NOW)
    assert name is not None
    assert name.startswith("prod-gource-batch-processor-20240131-235958-")
    assert api.created[0][1].metadata.labels["app.kubernetes.io/instance"] == "prod"


def test_the_loader_imports_without_the_kubernetes_client() -> None:
    code = "import sys; sys.modules['kubernetes'] = None; import loader.launch; print('ok')"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=kp.ROOT, check=False
    )
    assert done.stdout.strip() == "ok", done.stderr

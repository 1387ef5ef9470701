"""The Helm chart: lint, render for every tested configuration, validate, assert properties.

`helm` is needed (scripts/install-helm.sh); without it these tests are skipped on a
developer machine and fail in CI (CI=true). Rendering targets the newest Kubernetes
version the installed kubernetes-validate has schemas for, and every rendered object is
validated against those schemas in strict mode.
"""

from __future__ import annotations

import base64
import functools
import ipaddress
import json
import re
import runpy
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

try:
    from tests import kube_properties as kp
except ImportError:  # tests/ is not a package: pytest put its directory on sys.path
    import kube_properties as kp  # type: ignore[no-redef]

RELEASE = "rel"
NAMESPACE = "batch"
VALUES_FILES = sorted((kp.CHART / "ci").glob("*-values.yaml")) + sorted(
    (kp.CHART / "examples").glob("*.yaml")
)
CONFIGURATIONS = [None, *VALUES_FILES]


def config_id(path: Path | None) -> str:
    return "defaults" if path is None else f"{path.parent.name}/{path.name}"


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [kp.require_tool("helm"), *args], capture_output=True, text=True, check=check, timeout=120
    )


def kube_version() -> str:
    return kp.kubernetes_version()


@functools.cache
def _render(values_file: Path | None, sets: tuple[str, ...] = ()) -> tuple[int, str, str]:
    args = ["template", RELEASE, str(kp.CHART), "--namespace", NAMESPACE, "--kube-version", kube_version()]
    if values_file is not None:
        args += ["--values", str(values_file)]
    for item in sets:
        args += ["--set", item]
    done = helm(*args, check=False)
    return done.returncode, done.stdout, done.stderr


def render(values_file: Path | None = None, *sets: str) -> list[kp.Manifest]:
    code, out, err = _render(values_file, tuple(sets))
    assert code == 0, err
    return kp.load_documents(out)


def refusal(*sets: str) -> str:
    """helm's error message for values that must be refused."""
    code, _, err = _render(None, tuple(sets))
    assert code != 0, f"helm accepted {sets}"
    return err


def find(objects: list[kp.Manifest], kind: str, component: str | None = None) -> list[kp.Manifest]:
    return [
        o
        for o in objects
        if o["kind"] == kind
        and (
            component is None
            or o["metadata"].get("labels", {}).get("app.kubernetes.io/component") == component
        )
    ]


def settings_config(objects: list[kp.Manifest]) -> kp.Manifest:
    """The ConfigMap of processor settings (environment variables)."""
    (config,) = [
        o for o in find(objects, "ConfigMap") if o["metadata"]["name"] == f"{RELEASE}-gource-batch-config"
    ]
    return config


@pytest.fixture(params=CONFIGURATIONS, ids=config_id)
def values_file(request: pytest.FixtureRequest) -> Path | None:
    return request.param  # type: ignore[no-any-return]


# --- lint, render, validate -----------------------------------------------------------------
def test_chart_lints_cleanly_with_every_values_file(values_file: Path | None) -> None:
    args = ["lint", str(kp.CHART), "--strict", "--kube-version", kube_version()]
    if values_file is not None:
        args += ["--values", str(values_file)]
    done = helm(*args, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_rendered_object_validates_against_the_kubernetes_schema_in_strict_mode(
    values_file: Path | None,
) -> None:
    version = kube_version()
    objects = render(values_file)
    assert objects
    for obj in objects:
        if kp.is_custom(obj):
            continue
        kp.validate_strict(obj, version)
        for job in kp.embedded_jobs(obj):
            kp.validate_strict(job, version)


def test_custom_resources_are_only_rendered_when_asked_for_and_are_well_formed() -> None:
    assert not [o for o in render() if kp.is_custom(o)]
    objects = render(kp.CHART / "ci" / "keda-values.yaml")
    (scaled,) = find(objects, "ScaledJob")
    (monitor,) = find(objects, "PodMonitor")
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    queues = sorted(t["metadata"]["queueName"] for t in scaled["spec"]["triggers"])
    assert queues == ["render", "render.high", "render.low"]
    assert all(
        t["type"] == "rabbitmq" and t["metadata"]["hostFromEnv"] == "AMQP_URL"
        for t in scaled["spec"]["triggers"]
    )
    kp.validate_strict(
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "x"},
            "spec": scaled["spec"]["jobTargetRef"],
        },
        kube_version(),
    )
    assert monitor["spec"]["podMetricsEndpoints"] == [{"port": "metrics", "interval": "30s"}]
    # The defaults measured by tests/test_keda_e2e.py: every unfinished Job counts as a
    # processor draining the queues, and an upgrade leaves running Jobs alone.
    assert scaled["spec"]["scalingStrategy"] == {"strategy": "default", "multipleScalersCalculation": "sum"}
    assert scaled["spec"]["rollout"] == {"strategy": "gradual"}
    (accurate,) = find(
        render(kp.CHART / "ci" / "keda-values.yaml", "keda.scalingStrategy=accurate"), "ScaledJob"
    )
    assert accurate["spec"]["scalingStrategy"]["pendingPodConditions"] == ["Ready", "PodScheduled"]
    # With KEDA the loader only publishes: no template, no Role, no token.
    assert not find(objects, "Role")
    assert not find(objects, "ConfigMap", "processor-template")


# --- properties -----------------------------------------------------------------------------
def test_every_pod_meets_restricted_pod_security(values_file: Path | None) -> None:
    pods = kp.all_pod_specs(render(values_file))
    assert pods
    for label, pod in pods:
        assert kp.restricted_violations(pod) == [], label


# The security contexts every pod had before they could be set from values: they stay the defaults.
SECCOMP = {"seccompProfile": {"type": "RuntimeDefault"}}
RESTRICTED_POD = {"runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001, "fsGroup": 10001, **SECCOMP}
BROKER_POD = RESTRICTED_POD | {
    "runAsUser": 999,
    "runAsGroup": 999,
    "fsGroup": 999,
    "fsGroupChangePolicy": "OnRootMismatch",
}
RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
    **SECCOMP,
}
OPENSHIFT = kp.CHART / "ci" / "openshift-values.yaml"
ASSIGNED_IDS = ("runAsUser", "runAsGroup", "fsGroup")


def test_every_pod_keeps_its_restricted_security_contexts_and_openshift_assigns_the_ids(
    values_file: Path | None,
) -> None:
    for label, pod in kp.all_pod_specs(render(values_file)):
        broker = any(c["name"] == "rabbitmq" for c in pod["containers"])
        expected = BROKER_POD if broker else RESTRICTED_POD
        if values_file == OPENSHIFT:
            expected = {k: v for k, v in expected.items() if k not in ASSIGNED_IDS}
        assert pod["securityContext"] == expected, label
        for container in [*pod.get("initContainers", []), *pod["containers"]]:
            assert container["securityContext"] == RESTRICTED_CONTAINER, f"{label}: {container['name']}"


def test_each_component_takes_its_security_contexts_from_its_values() -> None:
    objects = render(
        kp.CHART / "ci" / "scheduled-values.yaml",
        "processor.podSecurityContext.runAsUser=2000",
        "processor.containerSecurityContext.readOnlyRootFilesystem=false",
        "loader.podSecurityContext=null",
        "loader.containerSecurityContext=null",
        "broker.setup.podSecurityContext.fsGroup=3000",
        "broker.bundled.podSecurityContext.fsGroupChangePolicy=Always",
    )
    processors = kp.job_specs(objects, "processor")
    loaders = kp.job_specs(objects, "loader")
    assert len(processors) == 2  # the Job on install and the launcher's template
    assert len(loaders) == 2  # the Job on install and the CronJob
    for label, spec in processors:
        pod = spec["template"]["spec"]
        assert pod["securityContext"] == RESTRICTED_POD | {"runAsUser": 2000}, label
        assert pod["containers"][0]["securityContext"] == RESTRICTED_CONTAINER | {
            "readOnlyRootFilesystem": False
        }
    for label, spec in loaders:
        pod = spec["template"]["spec"]
        assert "securityContext" not in pod, label
        assert "securityContext" not in pod["containers"][0], label
    (setup,) = find(objects, "Job", "broker-setup")
    assert setup["spec"]["template"]["spec"]["securityContext"] == RESTRICTED_POD | {"fsGroup": 3000}
    (broker,) = find(objects, "StatefulSet", "broker")
    assert broker["spec"]["template"]["spec"]["securityContext"] == BROKER_POD | {
        "fsGroupChangePolicy": "Always"
    }


def test_extra_environment_and_volumes_reach_the_processors_and_the_loader() -> None:
    path = kp.CHART / "ci" / "extra-volumes-values.yaml"
    values = yaml.safe_load(path.read_text())
    objects = render(path)
    for component in ("processor", "loader"):
        extra = values[component]
        specs = kp.job_specs(objects, component)
        assert len(specs) == 2, component
        for label, spec in specs:
            pod = spec["template"]["spec"]
            (container,) = pod["containers"]
            assert container["env"][0]["name"] == "AMQP_URL", label  # the chart's own come first
            assert container["env"][-len(extra["extraEnv"]) :] == extra["extraEnv"], label
            assert pod["volumes"][-len(extra["extraVolumes"]) :] == extra["extraVolumes"], label
            assert container["volumeMounts"][-len(extra["extraVolumeMounts"]) :] == extra["extraVolumeMounts"]


def test_every_container_has_cpu_and_memory_requests_and_limits(values_file: Path | None) -> None:
    for label, pod in kp.all_pod_specs(render(values_file)):
        assert kp.resource_violations(pod) == [], label


def test_every_pod_writes_only_to_size_limited_empty_dirs_or_its_volume(values_file: Path | None) -> None:
    for label, pod in kp.all_pod_specs(render(values_file)):
        for container in pod["containers"]:
            mounts = kp.empty_dir_mounts(pod, container["name"])
            assert "/tmp" in mounts, label
            assert all(source.get("sizeLimit") for source in mounts.values()), label


def test_processors_render_into_a_size_limited_work_directory(values_file: Path | None) -> None:
    objects = render(values_file)
    config = settings_config(objects)
    work_dir = config["data"]["WORK_DIR"]
    for label, spec in kp.job_specs(objects, "processor"):
        mounts = kp.empty_dir_mounts(spec["template"]["spec"], "processor")
        assert mounts[work_dir]["sizeLimit"], label


def test_only_the_launching_loader_gets_a_service_account_token(values_file: Path | None) -> None:
    objects = render(values_file)
    accounts = {a["metadata"]["name"]: a for a in find(objects, "ServiceAccount")}
    for label, pod in kp.all_pod_specs(objects):
        launches = "--launch-job-template" in kp.args_of(pod, pod["containers"][0]["name"])
        assert kp.token_mounted(pod, accounts) is launches, label


def test_processor_jobs_are_work_queue_jobs_that_fail_on_configuration_errors(
    values_file: Path | None,
) -> None:
    from processor.exit_codes import ExitCode

    specs = kp.job_specs(render(values_file), "processor")
    assert specs, "no processor Job, Job template or ScaledJob rendered"
    for label, spec in specs:
        assert "completions" not in spec, label
        assert spec["parallelism"] >= 1, label
        assert spec["backoffLimit"] >= 0, label
        assert spec["activeDeadlineSeconds"] > 0, label
        assert spec["ttlSecondsAfterFinished"] >= 0, label
        rules = spec["podFailurePolicy"]["rules"]
        assert {
            "action": "FailJob",
            "onExitCodes": {
                "containerName": "processor",
                "operator": "In",
                "values": [int(ExitCode.CONFIGURATION)],
            },
        } in rules, label
        ignored = [{"type": "DisruptionTarget", "status": "True"}]
        assert {"action": "Ignore", "onPodConditions": ignored} in rules, label
        pod = spec["template"]["spec"]
        assert pod["restartPolicy"] == "Never", label
        assert pod["terminationGracePeriodSeconds"] >= 30, label


def hook(job: kp.Manifest) -> bool:
    return "helm.sh/hook" in job["metadata"].get("annotations", {})


def test_job_names_carry_the_revision_and_survive_upgrades() -> None:
    objects = render(kp.CHART / "ci" / "scheduled-values.yaml")
    jobs = [j for j in find(objects, "Job") if not hook(j)]
    assert {j["metadata"]["labels"]["app.kubernetes.io/component"] for j in jobs} == {"loader", "processor"}
    for job in jobs:
        assert job["metadata"]["name"].endswith("-r1")
        assert len(job["metadata"]["name"]) <= 63
        assert job["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    sources = (kp.CHART / "templates" / "processor-job.yaml").read_text() + (
        kp.CHART / "templates" / "loader-job.yaml"
    ).read_text()
    assert sources.count("-r{{ .Release.Revision }}") == 2


def test_defaults_render_no_job_that_would_run_on_install() -> None:
    assert [j["metadata"]["name"] for j in find(render(), "Job")] == [f"{RELEASE}-gource-batch-broker-setup"]
    assert not find(render(), "CronJob")


def test_a_hook_runs_setup_broker_after_every_install_and_upgrade() -> None:
    (job,) = find(render(), "Job", "broker-setup")
    annotations = job["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "post-install,post-upgrade"
    assert "before-hook-creation" in annotations["helm.sh/hook-delete-policy"]
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["python", "-m", "processor", "setup-broker"]
    assert [e["name"] for e in container["env"]] == ["AMQP_URL"]
    assert container["envFrom"] == [{"configMapRef": {"name": f"{RELEASE}-gource-batch-config"}}]
    (migrating,) = find(render(None, "broker.setup.migrate=true"), "Job", "broker-setup")
    assert migrating["spec"]["template"]["spec"]["containers"][0]["args"][-1] == "--migrate"
    assert not find(render(None, "broker.setup.enabled=false"), "Job", "broker-setup")


def test_the_bundled_broker_loads_the_policies_setup_broker_writes_at_boot() -> None:
    objects = render()
    (broker,) = find(objects, "StatefulSet", "broker")
    pod = broker["spec"]["template"]["spec"]
    (init,) = pod["initContainers"]
    assert init["args"][3:] == ["setup-broker", "--definitions", "/etc/rabbitmq/definitions/definitions.json",
                                "--include-user"]  # fmt: skip
    (rabbitmq,) = pod["containers"]
    mounts = {m["name"]: m["mountPath"] for m in rabbitmq["volumeMounts"]}
    assert mounts["definitions"] == "/etc/rabbitmq/definitions"
    (broker_config,) = find(objects, "ConfigMap", "broker")
    conf = broker_config["data"]["30-definitions.conf"]
    assert "load_definitions = /etc/rabbitmq/definitions/definitions.json" in conf
    assert "management" in broker["spec"]["template"]["spec"]["containers"][0]["image"]


def test_the_loader_role_may_only_create_and_list_jobs(values_file: Path | None) -> None:
    objects = render(values_file)
    assert not find(objects, "ClusterRole")
    assert not find(objects, "ClusterRoleBinding")
    for role in find(objects, "Role"):
        assert role["rules"] == [{"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create", "list"]}]
    for binding in find(objects, "RoleBinding"):
        (subject,) = binding["subjects"]
        assert subject["kind"] == "ServiceAccount"
        assert subject["name"].endswith("-loader")
        assert subject["namespace"] == NAMESPACE


def test_the_cronjob_loads_the_batch_and_launches_sized_processors() -> None:
    objects = render(kp.CHART / "examples" / "prod-values.yaml")
    (cron,) = find(objects, "CronJob")
    assert cron["spec"]["schedule"] == "30 1 * * *"
    assert cron["spec"]["timeZone"] == "Europe/Dublin"
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    args = kp.args_of(pod, "loader")
    assert args[:3] == ["python", "-m", "loader"]
    assert kp.flag(args, "--launch-min") == "2"
    assert kp.flag(args, "--launch-max") == "32"
    assert kp.flag(args, "--requests-per-processor") == "5"
    template_path = Path(kp.flag(args, "--launch-job-template"))
    mounts = {m["name"]: m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert mounts["template"] == str(template_path.parent)
    (template,) = find(objects, "ConfigMap", "processor-template")
    assert volumes["template"]["configMap"]["name"] == template["metadata"]["name"]
    assert template_path.name in template["data"]
    requests = volumes["requests"]["configMap"]["name"]
    assert requests == "gource-batch-nightly"
    assert kp.flag(args, "--file") == f"{mounts['requests']}/requests.jsonl"


def test_the_launch_template_is_a_processor_job_the_launcher_accepts(tmp_path: Path) -> None:
    kp.require_module("kubernetes")
    from loader.launch import build_job, load_template

    (template,) = find(render(kp.CHART / "examples" / "dev-values.yaml"), "ConfigMap", "processor-template")
    path = tmp_path / "processor-job.yaml"
    path.write_text(template["data"]["processor-job.yaml"])
    job = build_job(load_template(path), parallelism=2, name="rel-gource-batch-processor-x")
    assert job.metadata.labels["app.kubernetes.io/instance"] == RELEASE
    assert job.spec.template.metadata.labels["app.kubernetes.io/component"] == "processor"


def test_inline_requests_become_the_json_lines_the_loader_reads() -> None:
    objects = render(kp.CHART / "examples" / "dev-values.yaml")
    (requests,) = find(objects, "ConfigMap", "loader")
    lines = requests["data"]["requests.jsonl"].strip().splitlines()
    parsed = [json.loads(line) for line in lines]
    assert [r["videoId"] for r in parsed] == ["dev-gource", "dev-itsdangerous"]
    assert parsed[0]["gource"]["--stop-at-time"] == 10


def test_settings_reach_the_processors_as_their_environment_variables() -> None:
    from processor.settings import ProcessorSettings, environment_names

    objects = render(kp.CHART / "examples" / "dev-values.yaml")
    config = settings_config(objects)
    known = set(environment_names(ProcessorSettings)) | {
        "AWS_DEFAULT_REGION",
        "AWS_ENDPOINT_URL",
        "METRICS_PORT",
    }
    assert set(config["data"]) <= known
    assert config["data"]["METRICS_PORT"] == "9102"
    assert config["data"]["AWS_ENDPOINT_URL"] == "http://minio:9000"
    settings = ProcessorSettings(
        **{k.lower(): v for k, v in config["data"].items() if k.lower() in ProcessorSettings.model_fields},
        amqp_url="amqp://u:p@host:5672/%2F",
    )
    assert settings.output_url == "s3://videos/dev"


def test_the_network_policy_lets_processors_reach_dns_the_broker_and_public_https_only(
    values_file: Path | None,
) -> None:
    objects = render(values_file)
    policies = find(objects, "NetworkPolicy")
    if values_file is not None and values_file.name == "external-broker-values.yaml":
        assert policies == []
        return
    (policy,) = policies
    spec = policy["spec"]
    assert spec["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "processor"
    assert set(spec["policyTypes"]) == {"Ingress", "Egress"}
    https = [r for r in spec["egress"] if r.get("ports") == [{"protocol": "TCP", "port": 443}]]
    assert len(https) == 1
    must_block = [
        ipaddress.ip_address(a) for a in ("10.1.2.3", "172.20.0.1", "192.168.0.1", "169.254.169.254")
    ]
    for block in (b["ipBlock"] for b in https[0]["to"]):
        net = ipaddress.ip_network(block["cidr"])
        excepted = [ipaddress.ip_network(c) for c in block.get("except", [])]
        for address in must_block:
            if address.version == net.version:
                assert any(address in e for e in excepted), f"{address} reachable"
    dns = [r for r in spec["egress"] if {"protocol": "UDP", "port": 53} in (r.get("ports") or [])]
    assert dns[0]["to"][0]["podSelector"]["matchLabels"] == {"k8s-app": "kube-dns"}


def test_the_prod_example_uses_an_external_broker_irsa_and_more_processors() -> None:
    values = yaml.safe_load((kp.CHART / "examples" / "prod-values.yaml").read_text())
    objects = render(kp.CHART / "examples" / "prod-values.yaml")
    assert not find(objects, "StatefulSet")
    (account,) = [a for a in find(objects, "ServiceAccount") if a["metadata"]["name"].endswith("-processor")]
    assert account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].startswith("arn:aws:iam::")
    assert values["loader"]["launch"]["maxProcessors"] > 4
    for _, spec in kp.job_specs(objects, "processor"):
        env = spec["template"]["spec"]["containers"][0]["env"]
        names = {e["name"] for e in env}
        assert "AWS_SECRET_ACCESS_KEY" not in names  # IRSA, no static keys
        (url,) = [e for e in env if e["name"] == "AMQP_URL"]
        assert url["valueFrom"]["secretKeyRef"] == {"name": "gource-batch-amqp", "key": "amqp-url"}
    (policy,) = find(objects, "NetworkPolicy")
    assert {"to": [{"ipBlock": {"cidr": "10.20.0.0/16"}}], "ports": [{"protocol": "TCP", "port": 5671}]} in (
        policy["spec"]["egress"]
    )


def test_the_dev_example_bundles_a_broker_whose_timeout_outlasts_a_render() -> None:
    objects = render(kp.CHART / "examples" / "dev-values.yaml")
    (broker,) = find(objects, "StatefulSet", "broker")
    assert broker["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "1Gi"
    (broker_config,) = find(objects, "ConfigMap", "broker")
    conf = broker_config["data"]["20-gource-batch.conf"]
    timeout_ms = int(next(ln for ln in conf.splitlines() if ln.startswith("consumer_timeout")).split("=")[1])
    config = settings_config(objects)
    assert timeout_ms / 1000 > float(config["data"]["RENDER_TIMEOUT"])
    (secret,) = find(objects, "Secret")
    assert set(secret["data"]) == {"rabbitmq-username", "rabbitmq-password", "amqp-url"}
    # Qualified by the namespace: KEDA's operator resolves it from its own namespace.
    (service,) = (s for s in find(objects, "Service", "broker") if s["spec"].get("clusterIP") != "None")
    url = base64.b64decode(secret["data"]["amqp-url"]).decode()
    assert url.split("@", 1)[1] == f"{service['metadata']['name']}.{NAMESPACE}.svc:5672/%2F"


def test_every_object_carries_the_standard_labels(values_file: Path | None) -> None:
    for obj in render(values_file):
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "gource-batch", obj["kind"]
        assert labels["app.kubernetes.io/instance"] == RELEASE, obj["kind"]
        assert labels["app.kubernetes.io/managed-by"] == "Helm", obj["kind"]
        assert labels["helm.sh/chart"].startswith("gource-batch-"), obj["kind"]


def test_keda_and_the_pod_monitor_are_off_by_default() -> None:
    values = yaml.safe_load((kp.CHART / "values.yaml").read_text())
    assert values["keda"]["enabled"] is False
    assert values["metrics"]["podMonitor"]["enabled"] is False
    assert values["metrics"]["port"] == 9102


# --- values schema --------------------------------------------------------------------------
def test_values_yaml_names_its_schema() -> None:
    first = (kp.CHART / "values.yaml").read_text().splitlines()[0]
    assert first == "# yaml-language-server: $schema=values.schema.json"


def values_schema() -> dict[str, Any]:
    """scripts/values_schema.py's functions: it writes values.schema.json."""
    return runpy.run_path(str(kp.ROOT / "scripts" / "values_schema.py"))


def test_the_values_schema_is_generated_from_values_yaml_and_its_shapes() -> None:
    committed = (kp.CHART / "values.schema.json").read_text()
    stale = "values.schema.json is stale: python scripts/values_schema.py"
    assert committed == values_schema()["render"](), stale


def test_every_value_and_every_shared_shape_has_a_description() -> None:
    schema = json.loads((kp.CHART / "values.schema.json").read_text())
    undescribed = [path for path, node in properties(schema, "") if "description" not in node]
    assert undescribed == []


def test_every_shared_shape_is_used_and_every_reference_names_one() -> None:
    text = (kp.CHART / "values.schema.json").read_text()
    used = set(re.findall(r'"\$ref": "#/\$defs/([^"]+)"', text))
    assert used == set(json.loads(text)["$defs"])


def test_no_shape_is_written_twice_in_the_schema() -> None:
    shapes = [
        json.dumps(without_descriptions(node), sort_keys=True)
        for _, node in properties(json.loads((kp.CHART / "values.schema.json").read_text()), "")
        if "properties" in node
    ]
    assert [s for s in set(shapes) if shapes.count(s) > 1] == []


def properties(node: Any, path: str) -> list[tuple[str, dict[str, Any]]]:
    """(path, schema) of every property in a schema, $defs and array items included (not conditions)."""
    found = []
    if isinstance(node, dict):
        for key, child in node.items():
            if key == "properties":
                for name, prop in child.items():
                    found += [(f"{path}.{name}", prop), *properties(prop, f"{path}.{name}")]
            elif key not in ("if", "then"):
                found += properties(child, f"{path}.{key}")
    elif isinstance(node, list):
        found += [pair for item in node for pair in properties(item, path)]
    return found


def without_descriptions(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: without_descriptions(v) for k, v in node.items() if k != "description"}
    if isinstance(node, list):
        return [without_descriptions(v) for v in node]
    return node


@pytest.mark.parametrize(
    ("edit", "complaint"),
    [
        (("  # -- Seconds one clone may take (CLONE_TIMEOUT).\n", ""), "cloneTimeoutSeconds: no `# --`"),
        (
            ("      repository: rabbitmq\n", "      # -- Docker Hub.\n      repository: rabbitmq\n"),
            "broker.bundled.image.repository: a `# --` description of",
        ),
        (("  # -- Fewest processors", "  # Fewest processors"), "loader.launch.minProcessors: no `# --`"),
        (("nameOverride: ", "# -- Helm's own.\nglobal: {}\nnameOverride: "), "global: described both"),
    ],
    ids=["a value without one", "a field of a shared shape", "a plain note", "two homes"],
)
def test_the_schema_generator_refuses_a_value_without_exactly_one_description(
    edit: tuple[str, str], complaint: str
) -> None:
    text = (kp.CHART / "values.yaml").read_text()
    assert edit[0] in text
    with pytest.raises(ValueError, match=re.escape(complaint)):
        values_schema()["build"](text.replace(edit[0], edit[1], 1))


def test_values_and_every_example_follow_the_schema_without_helm() -> None:
    jsonschema = kp.require_module("jsonschema")
    schema = json.loads((kp.CHART / "values.schema.json").read_text())
    defaults = yaml.safe_load((kp.CHART / "values.yaml").read_text())
    jsonschema.validate(defaults, schema)
    for path in VALUES_FILES:
        jsonschema.validate(merge(defaults, yaml.safe_load(path.read_text()) or {}), schema)


def merge(base: Any, override: Any) -> Any:
    if isinstance(base, dict) and isinstance(override, dict):
        return {k: merge(base.get(k), v) if k in base else v for k, v in override.items()} | {
            k: v for k, v in base.items() if k not in override
        }
    return override


BAD_VALUES = {
    "zero processors": "processor.parallelism=0",
    "a framerate gource cannot do": "render.framerate=24",
    "a resolution that is not WxH": "render.resolution=huge",
    "an unknown queue type": "broker.queueType=lazy",
    "an unknown priority": "requests.priority=urgent",
    "a file:// output": "output.url=file:///videos",
    "an unknown git transport": "render.gitAllowedProtocols={https,ext}",
    "a misspelt key": "processor.paralelism=3",
    "an unknown top-level key": "workers=3",
    "a crf out of range": "render.ffmpegCrf=99",
    "a non-numeric parallelism": "processor.parallelism=many",
    "a resources block without limits": "processor.resources.limits=null",
    "an external broker without its secret": "broker.bundled.enabled=false",
    "a metrics port below 1024": "metrics.port=80",
    "an invalid cron expression": "schedule.cron=daily",
    "a KEDA strategy that needs more settings": "keda.scalingStrategy=custom",
    "a pod condition that does not exist": "keda.pendingPodConditions={Running}",
    "a misspelt security context field": "processor.podSecurityContext.runAsUsr=1",
    "a negative user id": "loader.podSecurityContext.runAsUser=-1",
    "an unknown seccomp profile": "broker.bundled.containerSecurityContext.seccompProfile.type=Strict",
    "a volume mount without a path": "loader.extraVolumeMounts[0].name=x",
    "an extra volume without a name": "processor.extraVolumes[0].emptyDir.sizeLimit=1Gi",
}


@pytest.mark.parametrize("setting", BAD_VALUES.values(), ids=BAD_VALUES.keys())
def test_the_values_schema_refuses_bad_values(setting: str) -> None:
    assert "values don't meet the specifications of the schema" in refusal(setting)


CONTRADICTIONS = {
    "more minimum than maximum processors": (
        ("loader.launch.minProcessors=9", "loader.launch.maxProcessors=2"),
        "must not exceed loader.launch.maxProcessors",
    ),
    "a default above its ceiling": (("render.videoSeconds=600",), "render.videoSeconds must not exceed"),
    "a resolution above the maximum": (
        ("render.resolution=3840x2160",),
        "must fit within render.maxResolution",
    ),
    "a consumer timeout shorter than a render": (
        ("render.timeoutSeconds=7200", "broker.bundled.consumerTimeoutMinutes=60"),
        "consumerTimeoutMinutes must exceed render.timeoutSeconds",
    ),
    "a schedule without a batch": (("schedule.enabled=true",), "schedule.enabled needs a batch"),
    "an extra volume named like one of the chart's": (
        ("loader.extraVolumes[0].name=requests", "loader.extraVolumes[0].emptyDir.sizeLimit=1Gi"),
        'loader.extraVolumes: "requests" is one of the chart\'s own volumes',
    ),
}


@pytest.mark.parametrize(("sets", "message"), CONTRADICTIONS.values(), ids=CONTRADICTIONS.keys())
def test_the_chart_refuses_contradicting_values(sets: tuple[str, ...], message: str) -> None:
    assert message in refusal(*sets)


def test_notes_tell_the_user_how_to_follow_the_run() -> None:
    notes = (kp.CHART / "templates" / "NOTES.txt").read_text()
    assert "logs -f" in notes
    assert "get jobs" in notes
    assert "processor stats" in notes


def test_private_repository_credentials_and_ca_are_mounted_read_only_where_the_settings_say() -> None:
    objects = render(kp.CHART / "ci" / "private-repos-values.yaml")
    config = settings_config(objects)["data"]
    assert config["GIT_TOKEN_USERNAME"] == "oauth2"
    assert config["GIT_ALLOWED_NETWORKS"] == "10.20.0.0/16"
    files = {"git-credentials": config["GIT_CREDENTIALS_FILE"], "ca": config["GIT_CA_BUNDLE"]}
    sources = {"git-credentials": ("secret", "secretName", "gource-batch-git-credentials"),
               "ca": ("configMap", "name", "internal-ca")}  # fmt: skip
    specs = kp.job_specs(objects, "processor")
    assert specs
    for label, spec in specs:
        pod = spec["template"]["spec"]
        volumes = {v["name"]: v for v in pod["volumes"]}
        (container,) = pod["containers"]
        mounts = {m["name"]: m for m in container["volumeMounts"]}
        for name, path in files.items():
            kind, field, source = sources[name]
            folder, _, file = path.rpartition("/")
            assert volumes[name][kind][field] == source, label
            assert [item["path"] for item in volumes[name][kind]["items"]] == [file], label
            assert (mounts[name]["mountPath"], mounts[name]["readOnly"]) == (folder, True), label


def test_no_credentials_are_mounted_unless_asked_for() -> None:
    objects = render()
    config = settings_config(objects)["data"]
    assert "GIT_CREDENTIALS_FILE" not in config
    assert "GIT_CA_BUNDLE" not in config
    for label, spec in kp.job_specs(objects, "processor"):
        names = {v["name"] for v in spec["template"]["spec"]["volumes"]}
        assert names == {"tmp", "work"}, label

"""The plain manifests in kubernetes/ and the Dockerfiles: what `kubectl apply -k` users get.

No cluster here: every object is validated against the Kubernetes OpenAPI schemas in
strict mode, and the properties the deployment promises are asserted on the parsed files.
"""

from __future__ import annotations

import ipaddress
import re
import subprocess
from pathlib import Path

import pytest
import yaml

try:
    from tests import kube_properties as kp
except ImportError:  # tests/ is not a package: pytest put its directory on sys.path
    import kube_properties as kp  # type: ignore[no-redef]

KUSTOMIZATION = kp.MANIFESTS / "kustomization.yaml"
SECRET_EXAMPLE = kp.MANIFESTS / "secret.example.yaml"
MANIFEST_FILES = sorted(p for p in kp.MANIFESTS.glob("*.yaml") if p != KUSTOMIZATION)


def objects() -> list[kp.Manifest]:
    return [doc for path in MANIFEST_FILES for doc in kp.load_documents(path.read_text())]


def by_kind(kind: str) -> list[kp.Manifest]:
    return [o for o in objects() if o["kind"] == kind]


def one(kind: str, name: str) -> kp.Manifest:
    for obj in by_kind(kind):
        if (obj["metadata"].get("name") or obj["metadata"].get("generateName")) == name:
            return obj
    raise AssertionError(f"no {kind} {name} in kubernetes/")


def processor_job() -> kp.Manifest:
    return one("Job", "gource-batch-processor-")


def test_the_manifest_folder_is_not_a_python_package() -> None:
    assert not list(kp.MANIFESTS.rglob("*.py"))


@pytest.mark.parametrize("path", MANIFEST_FILES, ids=lambda p: p.name)
def test_every_manifest_validates_against_the_kubernetes_schema_in_strict_mode(path: Path) -> None:
    version = kp.kubernetes_version()
    docs = kp.load_documents(path.read_text())
    assert docs, f"{path.name} holds no object"
    for obj in docs:
        kp.validate_strict(obj, version)


def test_strict_validation_refuses_an_unknown_field() -> None:
    version = kp.kubernetes_version()
    import kubernetes_validate

    job = processor_job()
    job["spec"]["template"]["spec"]["containers"][0]["securityContxt"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(job, version, strict=True)


def test_kustomization_ties_every_manifest_together_except_the_secret_example() -> None:
    kustomization = yaml.safe_load(KUSTOMIZATION.read_text())
    listed = set(kustomization["resources"])
    generated = {f for g in kustomization.get("configMapGenerator", []) for f in g.get("files", [])}
    names = {p.name for p in MANIFEST_FILES}
    assert (listed | generated) == names - {SECRET_EXAMPLE.name}
    assert SECRET_EXAMPLE.name not in listed
    assert kustomization["namespace"] == "gource-batch"
    for path in listed | generated:
        assert (kp.MANIFESTS / path).is_file()


def test_kustomize_builds_objects_that_validate_and_reference_the_generated_template() -> None:
    kustomize = kp.require_tool_optional("kustomize")
    version = kp.kubernetes_version()
    built = subprocess.run(
        [kustomize, "build", str(kp.MANIFESTS)], capture_output=True, text=True, check=True
    ).stdout
    docs = kp.load_documents(built)
    for obj in docs:
        kp.validate_strict(obj, version)
    templates = [
        o["metadata"]["name"]
        for o in docs
        if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("gource-batch-processor-template")
    ]
    assert len(templates) == 1
    cron = next(o for o in docs if o["kind"] == "CronJob")
    volumes = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["volumes"]
    assert any(v.get("configMap", {}).get("name") == templates[0] for v in volumes)
    assert all(o["metadata"].get("namespace") == "gource-batch" for o in docs if o["kind"] != "Namespace")


def test_the_namespace_enforces_restricted_pod_security() -> None:
    labels = one("Namespace", "gource-batch")["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


def test_every_pod_meets_restricted_pod_security() -> None:
    pods = kp.all_pod_specs(objects())
    assert len(pods) >= 4  # rabbitmq, loader Job, CronJob, processor Job
    for label, pod in pods:
        assert kp.restricted_violations(pod) == [], label


def test_every_container_has_cpu_and_memory_requests_and_limits() -> None:
    for label, pod in kp.all_pod_specs(objects()):
        assert kp.resource_violations(pod) == [], label


def test_every_pod_writes_only_to_size_limited_empty_dirs_or_its_volume() -> None:
    for label, pod in kp.all_pod_specs(objects()):
        for container in pod["containers"]:
            mounts = kp.empty_dir_mounts(pod, container["name"])
            assert "/tmp" in mounts, label
            assert all(source.get("sizeLimit") for source in mounts.values()), label


def test_the_processor_work_directory_is_a_size_limited_empty_dir() -> None:
    pod = processor_job()["spec"]["template"]["spec"]
    work_dir = one("ConfigMap", "gource-batch-config")["data"]["WORK_DIR"]
    mounts = kp.empty_dir_mounts(pod, "processor")
    assert mounts[work_dir]["sizeLimit"]
    assert mounts["/tmp"]["sizeLimit"]


def test_private_repository_credentials_and_ca_are_optional_read_only_mounts_the_settings_name() -> None:
    pod = processor_job()["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    (container,) = pod["containers"]
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    config = (kp.MANIFESTS / "config.yaml").read_text()
    for setting, name, kind in (
        ("GIT_CREDENTIALS_FILE", "git-credentials", "secret"),
        ("GIT_CA_BUNDLE", "ca", "configMap"),
    ):
        # commented out in config.yaml: the operator turns it on with one line
        (path,) = re.findall(rf'^  # {setting}: "(.+)"$', config, re.MULTILINE)
        assert volumes[name][kind]["optional"] is True
        assert (mounts[name]["mountPath"], mounts[name]["readOnly"]) == (path.rpartition("/")[0], True)


def test_only_the_launching_loader_gets_a_service_account_token() -> None:
    accounts = {a["metadata"]["name"]: a for a in by_kind("ServiceAccount")}
    for label, pod in kp.all_pod_specs(objects()):
        launches = "--launch-job-template" in kp.args_of(pod, pod["containers"][0]["name"])
        assert kp.token_mounted(pod, accounts) is launches, label
    assert accounts["gource-batch-processor"]["automountServiceAccountToken"] is False


def test_the_processor_job_is_a_work_queue_job() -> None:
    spec = processor_job()["spec"]
    assert "completions" not in spec
    assert spec["parallelism"] >= 1
    assert spec["backoffLimit"] >= 1
    assert spec["activeDeadlineSeconds"] > 0
    assert spec["ttlSecondsAfterFinished"] > 0
    assert spec["template"]["spec"]["restartPolicy"] == "Never"
    assert kp.args_of(spec["template"]["spec"], "processor") == ["python", "-m", "processor"]


def test_the_processor_job_fails_on_a_configuration_error_and_ignores_disruptions() -> None:
    from processor.exit_codes import ExitCode

    rules = processor_job()["spec"]["podFailurePolicy"]["rules"]
    fail = [r for r in rules if r["action"] == "FailJob"]
    assert fail == [
        {
            "action": "FailJob",
            "onExitCodes": {
                "containerName": "processor",
                "operator": "In",
                "values": [int(ExitCode.CONFIGURATION)],
            },
        }
    ]
    assert {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]} in rules


def test_the_grace_period_covers_the_processor_shutdown() -> None:
    pod = processor_job()["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] >= 30


def test_the_broker_keeps_deliveries_longer_than_a_render_may_take() -> None:
    conf = one("ConfigMap", "rabbitmq-config")["data"]["20-gource-batch.conf"]
    timeout_ms = int(re.search(r"^consumer_timeout\s*=\s*(\d+)", conf, re.M)[1])
    settings = one("ConfigMap", "gource-batch-config")["data"]
    assert timeout_ms / 1000 > float(settings["RENDER_TIMEOUT"])


def test_rabbitmq_keeps_its_data_on_a_persistent_volume_with_credentials_from_the_secret() -> None:
    sts = one("StatefulSet", "rabbitmq")
    claim = sts["spec"]["volumeClaimTemplates"][0]
    assert claim["spec"]["resources"]["requests"]["storage"]
    container = sts["spec"]["template"]["spec"]["containers"][0]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert mounts["/var/lib/rabbitmq"] == claim["metadata"]["name"]
    secret_env = {
        e["name"]: e["valueFrom"]["secretKeyRef"]["name"] for e in container["env"] if "valueFrom" in e
    }
    assert secret_env == {"RABBITMQ_DEFAULT_USER": "gource-batch", "RABBITMQ_DEFAULT_PASS": "gource-batch"}
    assert one("Service", "rabbitmq")["spec"]["ports"][0]["port"] == 5672


def test_the_broker_loads_the_policies_setup_broker_writes_and_a_job_applies_them() -> None:
    pod = one("StatefulSet", "rabbitmq")["spec"]["template"]["spec"]
    (init,) = pod["initContainers"]
    assert init["args"][2:] == ["processor", "setup-broker", "--definitions",
                                "/etc/rabbitmq/definitions/definitions.json", "--include-user"]  # fmt: skip
    conf = one("ConfigMap", "rabbitmq-config")["data"]["30-definitions.conf"]
    assert "load_definitions = /etc/rabbitmq/definitions/definitions.json" in conf
    job = one("Job", "gource-batch-broker-setup")
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["python", "-m", "processor", "setup-broker"]
    rules = job["spec"]["podFailurePolicy"]["rules"]
    assert [r["onExitCodes"]["values"] for r in rules if "onExitCodes" in r] == [[78]]


def test_the_secret_example_holds_placeholders_only() -> None:
    secret = yaml.safe_load(SECRET_EXAMPLE.read_text())
    assert "data" not in secret
    for key, value in secret["stringData"].items():
        assert "REPLACE_ME" in value, key


def test_the_loader_role_may_only_create_and_list_jobs() -> None:
    (role,) = by_kind("Role")
    assert role["rules"] == [{"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create", "list"]}]
    assert not by_kind("ClusterRole")
    assert not by_kind("ClusterRoleBinding")
    (binding,) = by_kind("RoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "gource-batch-loader"}]


def test_the_cronjob_loads_the_batch_and_launches_sized_processors() -> None:
    cron = one("CronJob", "gource-batch")
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    args = kp.args_of(pod, "loader")
    assert args[:3] == ["python", "-m", "loader"]
    assert kp.flag(args, "--file") == "/etc/gource-batch/requests/requests.jsonl"
    assert kp.flag(args, "--launch-job-template") == "/etc/gource-batch/template/processor-job.yaml"
    assert 1 <= int(kp.flag(args, "--launch-min")) <= int(kp.flag(args, "--launch-max"))
    assert int(kp.flag(args, "--requests-per-processor")) >= 1
    assert pod["serviceAccountName"] == "gource-batch-loader"


def test_the_network_policy_lets_processors_reach_dns_the_broker_and_public_https_only() -> None:
    (policy,) = by_kind("NetworkPolicy")
    spec = policy["spec"]
    assert spec["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "processor"
    assert set(spec["policyTypes"]) == {"Ingress", "Egress"}
    assert spec["ingress"] == []
    ports = sorted((p["protocol"], p["port"]) for rule in spec["egress"] for p in rule["ports"])
    assert ports == [("TCP", 53), ("TCP", 443), ("TCP", 5672), ("UDP", 53)]
    https = next(r for r in spec["egress"] if r["ports"] == [{"protocol": "TCP", "port": 443}])
    assert_public_only(https)


def assert_public_only(rule: kp.Manifest) -> None:
    """Every ipBlock of an egress rule excludes private ranges and the metadata address."""
    must_block = [
        ipaddress.ip_address(a) for a in ("10.0.0.1", "172.16.0.1", "192.168.1.1", "169.254.169.254")
    ]
    v4 = [b["ipBlock"] for b in rule["to"] if ipaddress.ip_network(b["ipBlock"]["cidr"]).version == 4]
    assert v4
    for block in v4:
        excepted = [ipaddress.ip_network(c) for c in block.get("except", [])]
        for address in must_block:
            assert any(address in net for net in excepted), f"{address} is reachable"
    for block in (b["ipBlock"] for b in rule["to"]):
        if ipaddress.ip_network(block["cidr"]).version == 6:
            assert ipaddress.ip_address("fd00:ec2::254") in ipaddress.ip_network(block["except"][0])


# --- images ---------------------------------------------------------------------------------
DOCKERFILES = {
    "processor": kp.ROOT / "Dockerfile.processor",
    "loader": kp.ROOT / "Dockerfile.loader",
}


@pytest.mark.parametrize("image", sorted(DOCKERFILES))
def test_images_are_multi_stage_from_a_pinned_base_and_run_as_a_numeric_non_root_user(image: str) -> None:
    text = DOCKERFILES[image].read_text()
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.M)[1]
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", base)
    assert len(re.findall(r"^FROM ", text, re.M)) >= 2
    users = re.findall(r"^USER (\S+)$", text, re.M)
    assert users
    assert users[-1] in ("${UID}:${UID}", "10001:10001")
    assert re.search(r"^ARG UID=10001$", text, re.M)
    assert '"/usr/bin/tini", "--"' in text
    assert re.search(rf'^CMD \["python", "-m", "{image}"', text, re.M)


def test_the_processor_image_carries_the_renderer() -> None:
    text = DOCKERFILES["processor"].read_text()
    for package in ("git", "gource", "ffmpeg", "xvfb", "tini"):
        assert re.search(rf"\b{package}\b", text), package


def test_the_loader_image_has_the_kubernetes_client_for_launching() -> None:
    assert '".[kubernetes]"' in DOCKERFILES["loader"].read_text()


def test_the_image_build_context_holds_only_what_the_images_install() -> None:
    lines = [
        ln for ln in (kp.ROOT / ".dockerignore").read_text().splitlines() if ln and not ln.startswith("#")
    ]
    assert lines[0] == "**"
    assert {"!pyproject.toml", "!README.md", "!processor/", "!loader/"} <= set(lines)


def test_the_manifests_reference_the_images_the_dockerfiles_build() -> None:
    images = {
        c["image"].rsplit(":", 1)[0] for _, pod in kp.all_pod_specs(objects()) for c in pod["containers"]
    }
    assert {"ghcr.io/gource-batch/processor", "ghcr.io/gource-batch/loader"} <= images


def test_the_pod_security_check_notices_what_restricted_forbids() -> None:
    pod = processor_job()["spec"]["template"]["spec"]
    container = pod["containers"][0]
    container["securityContext"]["allowPrivilegeEscalation"] = True
    container["securityContext"]["capabilities"] = {"add": ["SYS_ADMIN"]}
    container["securityContext"]["readOnlyRootFilesystem"] = False
    pod["securityContext"].pop("seccompProfile")
    container["securityContext"].pop("seccompProfile")
    pod["hostNetwork"] = True
    problems = kp.restricted_violations(pod)
    assert len(problems) == 6, problems


@pytest.mark.parametrize("script", ["kind-e2e.sh", "install-helm.sh"])
def test_the_deployment_scripts_are_valid_bash(script: str) -> None:
    path = kp.ROOT / "scripts" / script
    subprocess.run(["bash", "-n", str(path)], check=True)
    assert path.stat().st_mode & 0o111, f"{script} is not executable"


def test_the_kind_end_to_end_run_stays_out_of_ci() -> None:
    ci = kp.ROOT / ".ci" / "run"
    if ci.exists():
        assert "kind-e2e" not in ci.read_text()
    assert "helm upgrade --install" in (kp.ROOT / "scripts" / "kind-e2e.sh").read_text()

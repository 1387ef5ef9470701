"""Write the chart's values.schema.json from the shapes below and values.yaml's descriptions.

values.yaml is where an operator reads what a value means: the `# --` comment above a key
(helm-docs' convention) is its one description. This file says what each value may be,
with the shapes that recur (an image, resources, a security context, extra volumes, ...)
written once under `$defs` and described here, since they mean the same wherever they are
used. The two together make charts/gource-batch/values.schema.json, which `helm install`
enforces and editors read; tests/test_helm_chart.py fails when the committed file is stale.

    python scripts/values_schema.py   # rewrites charts/gource-batch/values.schema.json
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import yaml

CHART = Path(__file__).resolve().parent.parent / "charts" / "gource-batch"
Schema = dict[str, Any]
KeyPath = tuple[str, ...]


# --- building blocks ------------------------------------------------------------------------
def obj(properties: Schema, *required: str, description: str | None = None) -> Schema:
    """A closed object: a misspelt key is refused rather than silently ignored."""
    schema: Schema = {"type": "object", "additionalProperties": False, "properties": properties}
    if required:
        schema["required"] = list(required)
    return described(schema, description)


def ref(name: str, description: str | None = None) -> Schema:
    return described({"$ref": f"#/$defs/{name}"}, description)


def described(schema: Schema, description: str | None) -> Schema:
    return schema if description is None else {"description": description, **schema}


def integer(minimum: int | None = None, maximum: int | None = None) -> Schema:
    bounds = {"minimum": minimum, "maximum": maximum}
    return {"type": "integer", **{k: v for k, v in bounds.items() if v is not None}}


def nullable(schema: Schema) -> Schema:
    """Null allowed too: in a user's values, Helm takes null to remove the chart's default."""
    if "enum" in schema:
        return {**schema, "enum": [*schema["enum"], None]}
    return {**schema, "type": [schema["type"], "null"]}


def enum(*values: Any) -> Schema:
    return {"enum": list(values)}


def string(pattern: str) -> Schema:
    return {"type": "string", "pattern": pattern}


BOOLEAN: Schema = {"type": "boolean"}
POSITIVE: Schema = {"type": "number", "exclusiveMinimum": 0}
URL_OR_EMPTY = "^$|^https?://.+"
RESOLUTION = "^[0-9]{2,5}x[0-9]{2,5}$"
FRAMERATES = enum(25, 30, 60)
CAPTIONS = enum("tags", "off")


# --- the shapes under $defs: each written and described once -----------------------------
def _request(url_key: str, url: Schema, extra: Schema, description: str | None = None) -> Schema:
    """One spelling of a render request (SPEC.md wire format; processor/contract.py owns it)."""
    properties = {
        "type": described(enum("gource"), "The kind of request: gource."),
        url_key: url,
        **extra,
        "captions": described(CAPTIONS, "tags: release tags as captions; off: none."),
    }
    return described({"type": "object", "required": [url_key], "properties": properties}, description)


_REPO_URL = described({"type": "string", "minLength": 1}, "The repository to render (a git URL).")
_REPO_URLS = described(
    {"type": "array", "minItems": 1, "maxItems": 100, "items": {"type": "string", "minLength": 1}},
    "The repositories merged into one video (git URLs).",
)
_ORGANISATION = "An organisation video: several repositories in one video."

# Who a container's processes are: fields pod and container security contexts share.
_PROCESS_IDENTITY: Schema = {
    "runAsNonRoot": described(nullable(BOOLEAN), "Refuse to start a container whose user is root."),
    "runAsUser": described(
        nullable(integer(0)), "User id of the processes; null: the image's, or the one OpenShift assigns."
    ),
    "runAsGroup": described(
        nullable(integer(0)), "Group id of the processes; null: the image's, or OpenShift's."
    ),
    "seccompProfile": ref("profile", "The seccomp profile (restricted: RuntimeDefault or Localhost)."),
    "appArmorProfile": ref("profile", "The AppArmor profile."),
    "seLinuxOptions": described(nullable({"type": "object"}), "SELinux user, role, type and level."),
    "windowsOptions": described(nullable({"type": "object"}), "Windows-specific settings."),
}

DEFS: Schema = {
    "quantity": {
        "description": "A Kubernetes quantity: 500m, 2, 512Mi, 1.5Gi, ...",
        "anyOf": [
            string(r"^[0-9]+(\.[0-9]+)?(m|k|Ki|Mi|Gi|Ti|Pi|Ei|M|G|T|P|E)?$"),
            {"type": "number", "minimum": 0},
        ],
    },
    "resourceList": obj(
        {
            "cpu": ref("quantity", "CPU, e.g. 500m or 2."),
            "memory": ref("quantity", "Memory, e.g. 256Mi or 2Gi."),
            "ephemeral-storage": ref(
                "quantity", "Node disk the container's logs and writable layer may use."
            ),
        },
        "cpu",
        "memory",
        description="cpu and memory (both required), and ephemeral-storage.",
    ),
    "resources": obj(
        {
            "requests": ref("resourceList", "What the scheduler reserves for the container."),
            "limits": ref("resourceList", "The most the container may use."),
        },
        "requests",
        "limits",
        description="Requests and limits (cpu, memory, ephemeral-storage): both required.",
    ),
    "image": obj(
        {
            "repository": described({"type": "string", "minLength": 1}, "Registry and repository."),
            "tag": described(
                string("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$|^$"),
                "Image tag; empty, for the processor and loader images: the chart's appVersion.",
            ),
            "pullPolicy": described(enum("Always", "IfNotPresent", "Never"), "When the kubelet pulls it."),
        },
        "repository",
        description="A container image.",
    ),
    "objectName": {
        "description": "Name of an object in the release's namespace; empty: none.",
        "type": "string",
        "pattern": r"^$|^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
        "maxLength": 253,
    },
    "dataKey": described(string("^[-._a-zA-Z0-9]+$"), "A key of a Secret's or ConfigMap's data."),
    "cidrs": {
        "description": "IPv4 or IPv6 networks in CIDR notation, e.g. 10.20.0.0/16.",
        "type": "array",
        "items": string("^[0-9a-fA-F:.]+/[0-9]{1,3}$"),
    },
    "stringMap": {
        "description": "Names to string values (labels, annotations).",
        "type": "object",
        "additionalProperties": {"type": "string"},
    },
    "nodeSelector": {"description": "Node labels the pod must match.", "type": "object"},
    "tolerations": {"description": "Taints the pod tolerates (Toleration objects).", "type": "array"},
    "affinity": {"description": "The pod's Affinity (node, pod and anti-affinity).", "type": "object"},
    "serviceAccount": obj(
        {
            "create": described(BOOLEAN, "Create it. Off: use `name`, or the namespace's default."),
            "name": ref("objectName", "Its name; empty: <fullname>-<component>."),
            "annotations": ref("stringMap", "Annotations of the ServiceAccount."),
        },
        description="A ServiceAccount the chart creates or names.",
    ),
    "env": {
        "description": "Environment variables (EnvVar objects), added after the chart's own.",
        "type": "array",
        "items": {"type": "object", "required": ["name"]},
    },
    "volumes": {
        "description": "Volumes (Volume objects: a name and one source), added after the chart's own.",
        "type": "array",
        "items": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": described(
                    {**string("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"), "maxLength": 63},
                    "The volume's name, unique in the pod (the chart's own names are refused).",
                )
            },
        },
    },
    "volumeMounts": {
        "description": "Where the container mounts volumes (VolumeMount objects).",
        "type": "array",
        "items": {
            "type": "object",
            "required": ["name", "mountPath"],
            "properties": {
                "name": described({"type": "string", "minLength": 1}, "The volume mounted."),
                "mountPath": described(string("^/"), "Where: an absolute path in the container."),
                "readOnly": described(BOOLEAN, "Mount it read-only."),
            },
        },
    },
    "podSecurityContext": nullable(
        obj(
            {
                **_PROCESS_IDENTITY,
                "fsGroup": described(
                    nullable(integer(0)), "Group that owns the pod's volumes; null: none, or OpenShift's."
                ),
                "fsGroupChangePolicy": described(
                    nullable(enum("OnRootMismatch", "Always")), "When the volumes' ownership is re-applied."
                ),
                "supplementalGroups": described(
                    nullable({"type": "array", "items": integer(0)}), "More group ids of the processes."
                ),
                "supplementalGroupsPolicy": described(
                    nullable(enum("Merge", "Strict")), "Whether the image's groups are added to those."
                ),
                "seLinuxChangePolicy": described(
                    nullable(enum("MountOption", "Recursive")), "How volumes get the pod's SELinux label."
                ),
                "sysctls": described(
                    nullable(
                        {
                            "type": "array",
                            "items": obj(
                                {
                                    "name": described({"type": "string"}, "The sysctl."),
                                    "value": described({"type": "string"}, "Its value."),
                                },
                                "name",
                                "value",
                            ),
                        }
                    ),
                    "Namespaced kernel parameters of the pod.",
                ),
            },
            description="A pod's security context (PodSecurityContext); null: none.",
        )
    ),
    "containerSecurityContext": nullable(
        obj(
            {
                **_PROCESS_IDENTITY,
                "allowPrivilegeEscalation": described(
                    nullable(BOOLEAN), "Whether a process may gain more privileges than its parent."
                ),
                "privileged": described(nullable(BOOLEAN), "Run as privileged (never, under restricted)."),
                "readOnlyRootFilesystem": described(
                    nullable(BOOLEAN), "Mount the image read-only; writes go to the emptyDir volumes."
                ),
                "capabilities": nullable(
                    obj(
                        {
                            "add": described(
                                {"type": "array", "items": {"type": "string"}}, "Capabilities added."
                            ),
                            "drop": described(
                                {"type": "array", "items": {"type": "string"}}, "Capabilities dropped (ALL)."
                            ),
                        },
                        description="Linux capabilities added and dropped.",
                    )
                ),
                "procMount": described(nullable(enum("Default", "Unmasked")), "How /proc is mounted."),
            },
            description="A container's security context (SecurityContext); null: none.",
        )
    ),
    "profile": nullable(
        obj(
            {
                "type": described(enum("RuntimeDefault", "Localhost", "Unconfined"), "Which profile."),
                "localhostProfile": described({"type": "string"}, "The node's profile, with type Localhost."),
            },
            "type",
            description="A seccomp or AppArmor profile.",
        )
    ),
    "request": {
        "description": "A render request (SPEC.md wire format), in one of its spellings.",
        "anyOf": [
            _request(
                "repoURL",
                _REPO_URL,
                {
                    "videoId": described(
                        string("^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$"),
                        "The video's id; rendered once, then found by its fingerprint.",
                    ),
                    "gource": {"description": "gource options, e.g. --start-date.", "type": "object"},
                },
                "A render request (SPEC.md wire format).",
            ),
            _request("repo_url", _REPO_URL, {}),
            _request("repoURLs", _REPO_URLS, {}, _ORGANISATION),
            _request("repo_urls", _REPO_URLS, {}, _ORGANISATION),
        ],
    },
}


# --- the values -------------------------------------------------------------------------------
SCHEDULING: Schema = {
    "nodeSelector": ref("nodeSelector"),
    "tolerations": ref("tolerations"),
    "affinity": ref("affinity"),
}
SECURITY: Schema = {
    "podSecurityContext": ref("podSecurityContext"),
    "containerSecurityContext": ref("containerSecurityContext"),
}
EXTRAS: Schema = {
    "extraEnv": ref("env"),
    "extraVolumes": ref("volumes"),
    "extraVolumeMounts": ref("volumeMounts"),
}

VALUES: Schema = obj(
    {
        "global": {
            "description": "Helm's values shared with subcharts (the chart has none).",
            "type": "object",
        },
        "nameOverride": {"type": "string", "maxLength": 40},
        "fullnameOverride": {"type": "string", "maxLength": 40},
        "image": obj({"processor": ref("image"), "loader": ref("image")}, "processor", "loader"),
        "imagePullSecrets": {
            "type": "array",
            "items": obj(
                {"name": described({"type": "string", "minLength": 1}, "Name of the Secret.")}, "name"
            ),
        },
        "broker": obj(
            {
                "renderQueue": string("^[A-Za-z0-9][A-Za-z0-9_.:-]{0,100}$"),
                "queueType": enum("auto", "quorum", "classic"),
                "deliveryLimit": integer(1, 100),
                "setup": obj(
                    {
                        "enabled": BOOLEAN,
                        "managementUrl": string("^(|https?://.+)$"),
                        "migrate": BOOLEAN,
                        "backoffLimit": integer(0, 10),
                        **SECURITY,
                    }
                ),
                "bundled": obj(
                    {
                        "enabled": BOOLEAN,
                        "image": ref("image"),
                        "username": string("^[A-Za-z0-9_.-]{1,64}$"),
                        "password": {"type": "string"},
                        "existingSecret": ref("objectName"),
                        "consumerTimeoutMinutes": integer(1, 10080),
                        "persistence": obj(
                            {"size": ref("quantity"), "storageClassName": {"type": "string"}}, "size"
                        ),
                        "resources": ref("resources"),
                        **SCHEDULING,
                        **SECURITY,
                    },
                    "enabled",
                ),
                "external": obj(
                    {
                        "existingSecret": ref("objectName"),
                        "urlKey": ref("dataKey"),
                        "cidrs": ref("cidrs"),
                        "port": integer(1, 65535),
                    }
                ),
            },
            "bundled",
        ),
        "output": obj(
            {
                "url": string("^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$"),
                "endpoint": string(URL_OR_EMPTY),
                "region": string("^$|^[a-z0-9-]+$"),
                "existingSecret": ref("objectName"),
                "format": enum("mp4", "hls", "both"),
                "publicUrlBase": string(URL_OR_EMPTY),
                "presignSeconds": integer(0, 604800),
            },
            "url",
        ),
        "serviceAccount": obj({"processor": ref("serviceAccount"), "loader": ref("serviceAccount")}),
        "render": obj(
            {
                "resolution": string(RESOLUTION),
                "maxResolution": string(RESOLUTION),
                "framerate": FRAMERATES,
                "maxFramerate": FRAMERATES,
                "videoSeconds": POSITIVE,
                "maxVideoSeconds": POSITIVE,
                "secondsPerDay": {"type": ["number", "null"], "exclusiveMinimum": 0},
                "maxSecondsPerDay": POSITIVE,
                "timeoutSeconds": integer(1),
                "cloneTimeoutSeconds": integer(1),
                "ffmpegPreset": enum(
                    "ultrafast",
                    "superfast",
                    "veryfast",
                    "faster",
                    "fast",
                    "medium",
                    "slow",
                    "slower",
                    "veryslow",
                ),
                "ffmpegCrf": integer(0, 51),
                "gitAllowedProtocols": {
                    "type": "array",
                    "minItems": 1,
                    "uniqueItems": True,
                    "items": enum("https", "http", "ssh", "git", "file"),
                },
                "captions": enum("off", "tags"),
                "maxReposPerVideo": integer(1, 100),
                "maxHistoryChanges": integer(1),
            }
        ),
        "git": obj(
            {
                "tokenUsername": string(r"^[^:\s]{1,100}$"),
                "credentials": obj({"existingSecret": ref("objectName"), "key": ref("dataKey")}),
                "caBundle": obj({"existingConfigMap": ref("objectName"), "key": ref("dataKey")}),
                "allowedNetworks": ref("cidrs"),
            }
        ),
        "retries": obj(
            {
                "maxAttempts": integer(1, 20),
                "delaySeconds": integer(1, 86400),
                "backoff": {"type": "number", "minimum": 1, "maximum": 10},
            }
        ),
        "processor": obj(
            {
                "runOnInstall": BOOLEAN,
                "parallelism": integer(1, 1000),
                "backoffLimit": integer(0, 1000),
                "activeDeadlineSeconds": integer(60),
                "ttlSecondsAfterFinished": integer(0),
                "terminationGracePeriodSeconds": integer(10, 3600),
                "idleTimeoutSeconds": POSITIVE,
                "logFormat": enum("auto", "json", "text"),
                "logLevel": enum("DEBUG", "INFO", "WARNING", "ERROR"),
                "resources": ref("resources"),
                "workDirSizeLimit": ref("quantity"),
                "tmpSizeLimit": ref("quantity"),
                **EXTRAS,
                **SECURITY,
                "podAnnotations": ref("stringMap"),
                "podLabels": ref("stringMap"),
                **SCHEDULING,
                "priorityClassName": {"type": "string"},
            }
        ),
        "requests": obj(
            {
                "inline": {"type": "array", "items": ref("request")},
                "existingConfigMap": ref("objectName"),
                "key": ref("dataKey"),
                "priority": enum("high", "normal", "low"),
            }
        ),
        "loader": obj(
            {
                "runOnInstall": BOOLEAN,
                "backoffLimit": integer(0, 100),
                "activeDeadlineSeconds": integer(60),
                "ttlSecondsAfterFinished": integer(0),
                "resources": ref("resources"),
                **SCHEDULING,
                **EXTRAS,
                **SECURITY,
                "launch": obj(
                    {
                        "enabled": BOOLEAN,
                        "minProcessors": integer(1, 1000),
                        "maxProcessors": integer(1, 1000),
                        "requestsPerProcessor": integer(1),
                    }
                ),
            }
        ),
        "schedule": obj(
            {
                "enabled": BOOLEAN,
                "cron": string(r"^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|(\S+\s+){4}\S+)$"),
                "timeZone": string("^$|^[A-Za-z_]+(/[A-Za-z0-9_+-]+)*$"),
                "suspend": BOOLEAN,
                "startingDeadlineSeconds": integer(10),
                "successfulJobsHistoryLimit": integer(0, 100),
                "failedJobsHistoryLimit": integer(0, 100),
            }
        ),
        "networkPolicy": obj(
            {
                "enabled": BOOLEAN,
                "blockedCidrs": {"type": "array", "items": string("^[0-9.]+/[0-9]{1,2}$")},
                "extraEgress": {"type": "array", "items": {"type": "object"}},
            }
        ),
        "keda": obj(
            {
                "enabled": BOOLEAN,
                "pollingInterval": integer(1),
                "maxReplicaCount": integer(1),
                "queueLength": integer(1),
                "scalingStrategy": enum("default", "accurate", "eager"),
                "pendingPodConditions": {
                    "type": "array",
                    "uniqueItems": True,
                    "items": enum(
                        "PodScheduled", "PodReadyToStartContainers", "Initialized", "ContainersReady", "Ready"
                    ),
                },
                "successfulJobsHistory": integer(0),
                "failedJobsHistory": integer(0),
            }
        ),
        "metrics": obj(
            {
                "port": integer(1024, 65535),
                "podMonitor": obj(
                    {
                        "enabled": BOOLEAN,
                        "interval": string("^[0-9]+(ms|s|m|h)$"),
                        "labels": ref("stringMap"),
                    }
                ),
                "pushgatewayUrl": string("^(https?://.+)?$"),
                "grafanaDashboard": obj(
                    {
                        "enabled": BOOLEAN,
                        "labels": ref("stringMap"),
                        "annotations": ref("stringMap"),
                    }
                ),
            }
        ),
    },
    "image",
    "broker",
    "output",
)

# Checks across values that `required` alone cannot say (the chart's templates refuse the rest).
RULES = [
    {
        "description": "Without the bundled broker, an existing Secret must hold the AMQP URL.",
        "if": {
            "properties": {
                "broker": {"properties": {"bundled": {"properties": {"enabled": {"const": False}}}}}
            }
        },
        "then": {
            "properties": {
                "broker": {
                    "required": ["external"],
                    "properties": {
                        "external": {
                            "required": ["existingSecret"],
                            "properties": {"existingSecret": {"minLength": 1}},
                        }
                    },
                }
            }
        },
    }
]


# --- values.yaml's descriptions -------------------------------------------------------------
_KEY = re.compile(r"( *)([A-Za-z0-9_.-]+):(?:\s|$)")


def descriptions(values_yaml: str) -> dict[KeyPath, str]:
    """Key path -> its `# --` comment, joined with the comment lines that follow it.

    Comment lines before the `# --` marker, or after a blank line, are notes, not descriptions.
    """
    found: dict[KeyPath, str] = {}
    keys: list[tuple[int, str]] = []  # (indent, key) from the document's root to the current key
    pending: list[str] | None = None
    for line in values_yaml.splitlines():
        text = line.strip()
        key = _KEY.match(line)
        if text.startswith("# --"):
            pending = [text.removeprefix("# --").strip()]
        elif text.startswith("#"):
            if pending is not None:
                pending.append(text.removeprefix("#").strip())
        elif key:
            indent = len(key[1])
            while keys and keys[-1][0] >= indent:
                keys.pop()
            keys.append((indent, key[2]))
            if pending is not None:
                found[tuple(k for _, k in keys)] = " ".join(pending)
            pending = None
        else:
            pending = None
    return found


def _holds(values: Any, path: KeyPath) -> bool:
    for key in path:
        if not isinstance(values, dict) or key not in values:
            return False
        values = values[key]
    return True


def _describe(node: Schema, path: KeyPath, notes: dict[KeyPath, str], problems: list[str]) -> None:
    """Give every property below `node` its values.yaml description (one home each)."""
    for key, child in node.get("properties", {}).items():
        here = (*path, key)
        note = notes.pop(here, None)
        name = ".".join(here)
        if note is not None and "description" in child:
            problems.append(f"{name}: described both in values.yaml and in {Path(__file__).name}")
        elif note is not None:
            node["properties"][key] = {"description": note, **child}  # shares child's properties
        elif "description" not in child:
            problems.append(f"{name}: no `# --` description in values.yaml")
        if "$ref" not in child:
            _describe(child, here, notes, problems)


def build(values_yaml: str) -> Schema:
    """The whole schema; ValueError names every value left undescribed or described twice."""
    notes = descriptions(values_yaml)
    defaults = yaml.safe_load(values_yaml)
    problems = [f"{'.'.join(p)}: values.yaml has no such key" for p in notes if not _holds(defaults, p)]
    values = copy.deepcopy(VALUES)
    _describe(values, (), notes, problems)
    problems += [
        f"{'.'.join(p)}: a `# --` description of something the schema does not have, or of a field of a "
        f"shared shape (describe that in $defs)"
        for p in notes
    ]
    if problems:
        raise ValueError("values.yaml and the schema disagree:\n  " + "\n  ".join(sorted(problems)))
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "gource-batch Helm values",
        **values,
        "allOf": RULES,
        "$defs": DEFS,
    }


_SCALAR_LIST = re.compile(r"\[\n\s+([^\[\]{}]*?)\n\s+\]")  # a JSON list of strings or numbers


def render() -> str:
    """The schema as JSON, a list of plain values (an enum, `required`) on one line."""
    text = json.dumps(build((CHART / "values.yaml").read_text()), indent=2, ensure_ascii=False)
    return _SCALAR_LIST.sub(lambda m: "[" + re.sub(r",\n\s+", ", ", m[1]) + "]", text) + "\n"


def main() -> None:
    (CHART / "values.schema.json").write_text(render())


if __name__ == "__main__":
    main()

"""`python -m processor setup-broker`: what an operator, or the chart's hook Job, runs per install.

It declares the layout, recreates 0.1.0's work queues plain when asked (`--migrate`), and
applies the work queues' policy through the management API. None of this is needed for
requests to flow (processors and loaders declare what they use, producers may declare the
work queues themselves); the policy adds the broker's own dead-lettering and delivery
limit behind the processor's. Exit codes: 0 done, 69 broker unreachable, 75 no management
API, 78 refused (credentials, processors running).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from processor import policies
from processor.broker.connection import AMQP_ERRORS, Connection
from processor.errors import BrokerUnavailable, ConfigurationError, ManagementUnreachable
from processor.exit_codes import ExitCode
from processor.logs import redact
from processor.migrate import migrate as migrate_queues
from processor.settings import SharedSettings
from processor.topology import Topology

WHAT_TO_DO = (
    "enable the plugin (rabbitmq-plugins enable rabbitmq_management), set MANAGEMENT_URL, or load "
    "`setup-broker --definitions FILE` at boot; requests still flow without the policy"
)


def write_definitions(settings: SharedSettings, path: Path, include_user: bool) -> None:
    topology = Topology.for_broker(settings, knows_quorum=False)
    username, password, vhost = policies.amqp_identity(settings)
    document = policies.definitions(topology, vhost, (username, password) if include_user else None)
    # It may hold a password: readable by its owner only.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(document, out, indent=2)
    names = ", ".join(p["name"] for p in document["policies"])
    print(f"wrote the policies {names} for vhost {vhost!r} to {path}")


def setup_broker(
    settings: SharedSettings,
    *,
    definitions: Path | None = None,
    include_user: bool = False,
    migrate: bool = False,
) -> int:
    """Run the command; every way it ends is one line and an exit code."""
    if definitions is not None:
        write_definitions(settings, definitions, include_user)
        return ExitCode.OK
    management = policies.Management.for_settings(settings)
    try:
        stored = _set_up(settings, management, migrate)
    except ManagementUnreachable as exc:
        print(f"setup-broker: {exc}: {WHAT_TO_DO}", file=sys.stderr)
        return ExitCode.NO_MANAGEMENT
    except ConfigurationError as exc:
        print(f"setup-broker: configuration error: {exc}", file=sys.stderr)
        return ExitCode.CONFIGURATION
    except (BrokerUnavailable, *AMQP_ERRORS) as exc:
        print(f"setup-broker: the broker is unavailable: {redact(str(exc))}", file=sys.stderr)
        return ExitCode.UNAVAILABLE
    for policy in stored:
        definition = json.dumps(policy["definition"])
        print(f"policy {policy['name']} applies to {policy['pattern']} on {management}: {definition}")
    return ExitCode.OK


def _set_up(settings: SharedSettings, management: policies.Management, migrate: bool) -> list[dict[str, Any]]:
    connection = Connection(settings, "setup-broker")
    try:
        if migrate:
            for queue, count in migrate_queues(connection.amqp, connection.topology).items():
                print(f"{queue}: {count} request(s) moved, declared without arguments")
        return policies.apply(connection.topology, management)
    finally:
        connection.close()

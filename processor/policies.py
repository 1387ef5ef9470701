"""The work queues' policies, applied through RabbitMQ's management HTTP API or a definitions file.

RabbitMQ recommends policies over x-arguments for dead-lettering and delivery limits: they
change without deleting the queue, and they leave the declare a producer makes plain. The
processor does not depend on them (it dead-letters and counts deliveries itself); they make
the broker back it up. AMQP cannot set policies, hence HTTP; where the management plugin
is off, `definitions()` is the same content for a broker to load at boot.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from processor.errors import ConfigurationError, ManagementUnreachable
from processor.settings import BrokerSettings
from processor.topology import Topology

MANAGEMENT_PORT = 15672
MANAGEMENT_TLS_PORT = 15671


@dataclass(frozen=True)
class Management:
    """Where the management API is and who to be there; `str()` never shows the password."""

    url: str
    username: str
    password: str = field(repr=False)
    vhost: str = "/"

    @classmethod
    def for_settings(cls, settings: BrokerSettings) -> Management:
        """MANAGEMENT_URL, or AMQP_URL's host on the management port, with AMQP_URL's credentials."""
        amqp = urlsplit(settings.amqp_url)
        username, password, vhost = amqp_identity(settings)
        if settings.management_url:
            given = urlsplit(settings.management_url)
            if given.username:
                username, password = unquote(given.username), unquote(given.password or "")
            netloc = _host(given.hostname)
            if given.port:
                netloc = f"{netloc}:{given.port}"
            return cls(f"{given.scheme}://{netloc}{given.path.rstrip('/')}", username, password, vhost)
        tls = amqp.scheme == "amqps"
        port = MANAGEMENT_TLS_PORT if tls else MANAGEMENT_PORT
        return cls(f"{'https' if tls else 'http'}://{_host(amqp.hostname)}:{port}", username, password, vhost)

    def __str__(self) -> str:
        return self.url

    def request(self, method: str, path: str, body: Any = None) -> Any:
        """One API call; ManagementUnreachable or ConfigurationError when it cannot be made."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.url}/api/{path}", data=data, method=method)  # noqa: S310
        token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=15) as response:  # noqa: S310 - http(s) only
                text = response.read()
        except urllib.error.HTTPError as exc:
            if exc.code in (401, 403):
                raise ConfigurationError(
                    f"the management API at {self} refused user {self.username!r} (HTTP {exc.code}): "
                    "policies need a user tagged policymaker or administrator"
                ) from None
            if exc.code == 404 and path == "overview":
                raise ManagementUnreachable(f"{self} answers, but is no RabbitMQ management API") from None
            raise ConfigurationError(f"the management API at {self} answered {exc.code} to {path}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ManagementUnreachable(f"no RabbitMQ management API at {self} ({reason})") from None
        return json.loads(text) if text else None


def amqp_identity(settings: BrokerSettings) -> tuple[str, str, str]:
    """User, password and vhost of AMQP_URL, with pika's defaults (guest, guest, /)."""
    amqp = urlsplit(settings.amqp_url)
    vhost = unquote(amqp.path[1:]) if len(amqp.path) > 1 else "/"
    return unquote(amqp.username or "guest"), unquote(amqp.password or "guest"), vhost


def _host(name: str | None) -> str:
    host = name or "localhost"
    return f"[{host}]" if ":" in host else host


def apply(topology: Topology, management: Management) -> list[dict[str, Any]]:
    """Create or update the work queues' policies; what the broker now holds."""
    management.request("GET", "overview")
    stored = []
    for policy in topology.work_policies():
        path = "policies/" + "/".join(quote(p, safe="") for p in (management.vhost, policy["name"]))
        body = {k: policy[k] for k in ("pattern", "definition", "priority", "apply-to")}
        management.request("PUT", path, body)
        stored.append(management.request("GET", path))
    return stored


def definitions(topology: Topology, vhost: str, user: tuple[str, str] | None = None) -> dict[str, Any]:
    """A definitions document (rabbitmq.conf `load_definitions`) that sets up the same policy.

    RabbitMQ creates no default user when it imports definitions at boot, so a broker that
    loads this file at first start needs `user` (name, password) in it to let anyone in.
    With QUEUE_TYPE set, the vhost's default queue type (RabbitMQ 3.11+) becomes that
    type; from 4.0 a declare without x-queue-type gets it, so a producer's plain declare
    creates, and matches, the same kind of queue.
    """
    host: dict[str, Any] = {"name": vhost}
    if topology.work_queue_type:
        host["default_queue_type"] = topology.work_queue_type
        host["metadata"] = {"default_queue_type": topology.work_queue_type}
    document: dict[str, Any] = {
        "vhosts": [host],
        "policies": [{"vhost": vhost, **policy} for policy in topology.work_policies()],
    }
    if user is not None:
        name, password = user
        document["users"] = [{"name": name, "password": password, "tags": "administrator"}]
        document["permissions"] = [
            {"user": name, "vhost": vhost, "configure": ".*", "write": ".*", "read": ".*"}
        ]
    return document

"""One error hierarchy, so every failure is routed by its class, not by its message.

Library errors (pika, boto3, subprocess) are translated into these at the module that
talks to the library; everything above that boundary only knows these classes.
"""

from __future__ import annotations


class GourceBatchError(Exception):
    """Base of every error this project raises on purpose."""

    reason = "error"


class PermanentError(GourceBatchError):
    """Retrying cannot help: the request is dead-lettered at once."""

    reason = "permanent"


class InvalidRequest(PermanentError):
    """The message is not a valid render request (JSON, schema, bounds)."""

    reason = "invalid-request"


class RepositoryRejected(PermanentError):
    """The repository URL is not allowed, does not exist, or has nothing to render."""

    reason = "repository-rejected"


class NothingLeft(PermanentError):
    """The request's exclusions leave none of the selected history's changes to show."""

    reason = "excluded-everything"


class TooExpensive(PermanentError):
    """The render is predicted to run past RENDER_TIMEOUT: refused up front, not tried three times."""

    reason = "too-expensive"


class AuthenticationFailed(PermanentError):
    """The git server refused the request's token or the operator's credentials (401, 403)."""

    reason = "auth-failed"


class EmptyRepository(RepositoryRejected):
    """The repository has no commits: nothing of it can be shown."""


class DeliveryLimitExceeded(PermanentError):
    """The request was delivered DELIVERY_LIMIT times and killed its processor each time."""

    reason = "delivery-limit"


class TransientError(GourceBatchError):
    """May succeed later: retried with back-off, then dead-lettered."""

    reason = "transient"


class CloneFailed(TransientError):
    """git could not fetch the repository (network, server, time limit)."""

    reason = "clone-failed"


class RenderFailed(TransientError):
    """gource, ffmpeg or Xvfb failed, or produced a video that does not check out."""

    reason = "render-failed"


class RenderTimeout(RenderFailed):
    """The render ran past the operator's time limit and was stopped."""

    reason = "render-timeout"


class StorageUnavailable(TransientError):
    """The object store could not take the upload right now (network, 5xx, throttling)."""

    reason = "storage-unavailable"


class BrokerUnavailable(TransientError):
    """The broker could not be reached or dropped the connection."""

    reason = "broker-unavailable"


class BatchNotFound(GourceBatchError):
    """No progress queue for that batch: never loaded here, or expired after BATCH_TTL."""

    reason = "batch-not-found"


class ManagementUnreachable(GourceBatchError):
    """The RabbitMQ management API (needed to apply policies) does not answer."""

    reason = "management-unreachable"


class ConfigurationError(GourceBatchError):
    """The deployment is wrong (settings, bucket, credentials): stop, keep the request."""

    reason = "configuration"

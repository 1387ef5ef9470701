"""Which git transport a repository URL names, read from its text alone.

The wire contract needs to know (a request's token travels over https only) as much as git
does (only allowed transports are cloned); here it is told once, without loading what clones,
so the loader validates requests without the processor's machinery.
"""

from __future__ import annotations

import re

from processor.errors import RepositoryRejected

# `https://host/...`: a URL with a scheme, which git reads as that transport.
SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")
_SCP_LIKE = re.compile(r"^[^/:]+@[^/:]+:")


def transport(url: str) -> str:
    """The git transport a URL would use: https, http, ssh, git, file, or what it names."""
    if url.startswith("-"):
        raise RepositoryRejected("a repository URL must not start with '-'")
    match = SCHEME.match(url)
    if match:
        return match[1].lower()
    if "::" in url:
        return url.split("::", 1)[0].lower()  # remote helpers such as ext::
    if _SCP_LIKE.match(url):
        return "ssh"
    return "file"  # a plain path

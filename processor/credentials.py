"""Who git says it is, and whom it trusts: a request's token, the operator's credentials, CAs.

All of it reaches git as GIT_CONFIG_COUNT / GIT_CONFIG_KEY_n / GIT_CONFIG_VALUE_n
environment variables of the clone alone: never argv (any user on the node can read a
process's command line; its environment only the same user and root, in
/proc/<pid>/environ), never a URL (git quotes URLs in its errors), never a file (nothing to
leave behind). A request's token goes only to the https origin of its own repository.
"""

from __future__ import annotations

import base64
import shlex
from urllib.parse import urlsplit

from pydantic import SecretStr

from processor.errors import RepositoryRejected
from processor.settings import ProcessorSettings


def git_config_env(url: str, token: SecretStr | None, settings: ProcessorSettings) -> dict[str, str]:
    """The environment that gives one clone of `url` its credentials and trusted CAs."""
    entries: list[tuple[str, str]] = []
    if settings.git_ca_bundle is not None:
        entries.append(("http.sslCAInfo", str(settings.git_ca_bundle)))
    if token is not None:
        parts = urlsplit(url)
        if parts.scheme.lower() != "https":  # the contract refuses these; never send one in clear
            raise RepositoryRejected("a token is sent over https only")
        origin = f"https://{parts.netloc.rsplit('@', 1)[-1].lower()}/"
        pair = f"{settings.git_token_username}:{token.get_secret_value()}"
        basic = base64.b64encode(pair.encode()).decode()
        entries.append((f"http.{origin}.extraHeader", f"Authorization: Basic {basic}"))
    elif settings.git_credentials_file is not None:
        # credential-store would erase a line the server refused once and rewrite the file
        # after every success: ask it only to `get`.
        store = shlex.quote(str(settings.git_credentials_file))
        helper = f'!f() {{ test "$1" = get && git credential-store --file={store} get; }}; f'
        entries.append(("credential.helper", helper))
    env = {"GIT_CONFIG_COUNT": str(len(entries))}
    for n, (key, value) in enumerate(entries):
        env[f"GIT_CONFIG_KEY_{n}"], env[f"GIT_CONFIG_VALUE_{n}"] = key, value
    return env

"""A private git host on 127.0.0.1: smart HTTP over TLS, behind basic auth, like a small Gitea.

`git http-backend` (git's own CGI server) answers behind a ThreadingHTTPServer wrapped in
TLS, with a certificate from a certificate authority the test makes, so the processor
trusts it only through GIT_CA_BUNDLE. What the server was sent is kept for the test to
read: which users authenticated, and whether a secret ever showed in a process's argv.
"""

from __future__ import annotations

import base64
import datetime
import http.server
import ipaddress
import os
import ssl
import subprocess
import threading
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def make_certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A private CA and a server certificate for 127.0.0.1 / localhost: (ca.pem, cert, key)."""
    now = datetime.datetime.now(datetime.UTC)

    def build(subject: str, issuer: x509.Name | None, signer: Any, key: Any, ca: bool) -> x509.Certificate:
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
        builder = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(issuer or name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
        return builder.sign(signer, hashes.SHA256())

    ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = build("gource-batch test CA", None, ca_key, ca_key, ca=True)
    server = build("127.0.0.1", ca.subject, ca_key, server_key, ca=False)
    paths = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(server.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return paths


class PrivateGitHost:
    """Serves the bare repositories under `root` to the users in `accounts` (user: password)."""

    def __init__(self, root: Path, certificates: tuple[Path, Path, Path], accounts: dict[str, str]):
        self.root = root
        self.accounts = accounts
        self.authenticated: list[str] = []
        self.refused = 0
        self.argv_leaks: list[str] = []
        host = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_: object) -> None:
                pass

            def do_GET(self) -> None:
                host.handle(self)

            do_POST = do_GET  # noqa: N815

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certificates[1], certificates[2])
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def url(self, repo: str, scheme: str = "https") -> str:
        return f"{scheme}://127.0.0.1:{self.port}/{repo}"

    def handle(self, request: http.server.BaseHTTPRequestHandler) -> None:
        self._look_for_secrets_in_argv()
        user = self._authenticate(request.headers.get("Authorization", ""))
        body = self._read_body(request)
        if user is None:
            self.refused += 1
            request.send_response(401)
            request.send_header("WWW-Authenticate", 'Basic realm="private"')
            request.send_header("Content-Length", "0")
            request.end_headers()
            return
        self.authenticated.append(user)
        path, _, query = request.path.partition("?")
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": str(self.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "REQUEST_METHOD": request.command,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "REMOTE_USER": user,
            "REMOTE_ADDR": "127.0.0.1",
            "CONTENT_TYPE": request.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "HTTP_CONTENT_ENCODING": request.headers.get("Content-Encoding", ""),
            "GIT_PROTOCOL": request.headers.get("Git-Protocol", ""),
        }
        out = subprocess.run(
            ["git", "http-backend"], input=body, env=env, capture_output=True, check=False, timeout=60
        ).stdout
        head, _, payload = out.partition(b"\r\n\r\n")
        if not _:
            head, _, payload = out.partition(b"\n\n")
        headers = [line.split(":", 1) for line in head.decode().splitlines() if ":" in line]
        status = next((int(v.split()[0]) for k, v in headers if k.lower() == "status"), 200)
        request.send_response(status)
        for key, value in headers:
            if key.lower() not in ("status", "content-length"):
                request.send_header(key, value.strip())
        request.send_header("Content-Length", str(len(payload)))
        request.end_headers()
        request.wfile.write(payload)

    def _authenticate(self, header: str) -> str | None:
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, _, password = base64.b64decode(encoded).decode().partition(":")
        except ValueError:
            return None
        return user if self.accounts.get(user) == password else None

    @staticmethod
    def _read_body(request: http.server.BaseHTTPRequestHandler) -> bytes:
        if request.headers.get("Transfer-Encoding", "").lower() != "chunked":
            return request.rfile.read(int(request.headers.get("Content-Length") or 0))
        chunks = []
        while True:
            size = int(request.rfile.readline().split(b";")[0], 16)
            chunks.append(request.rfile.read(size))
            request.rfile.readline()
            if size == 0:
                return b"".join(chunks)

    def _look_for_secrets_in_argv(self) -> None:
        """While git talks to us, could anyone on the machine read a password in its argv?"""
        for entry in Path("/proc").iterdir():
            try:
                argv = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            for user, secret in self.accounts.items():
                if secret.encode() in argv or base64.b64encode(f"{user}:{secret}".encode()) in argv:
                    self.argv_leaks.append(argv.decode(errors="replace"))

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

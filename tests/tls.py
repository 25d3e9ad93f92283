"""A throw-away PKI and a Mosquitto with a TLS listener, for the tests of ``mqtts://``.

The certificates are made with the ``openssl`` CLI: a CA, a server certificate for 127.0.0.1
signed by it, and a second CA that signed nothing (a client trusting it must be refused). The
broker keeps its plain listener (``server.url``) next to the TLS one (``url``).
"""

from __future__ import annotations

import os
import pwd
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.servers import MosquittoServer, free_port, mosquitto


@dataclass(frozen=True)
class Pki:
    ca: Path
    other_ca: Path
    cert: Path
    key: Path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


def _make_ca(directory: Path, name: str) -> None:
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", f"{name}.key", "-out", f"{name}.crt", "-days", "2", "-subj", f"/CN={name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=directory,
    )  # fmt: skip


def make_pki(d: Path) -> Pki:
    """The CAs and the server certificate, in the existing directory ``d``."""
    _make_ca(d, "ca")
    _make_ca(d, "other-ca")
    _openssl(
        "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1",
        cwd=d,
    )  # fmt: skip
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "san.ext",
        cwd=d,
    )  # fmt: skip
    return Pki(d / "ca.crt", d / "other-ca.crt", d / "server.crt", d / "server.key")


def _wait_port(port: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"port {port} did not open within {timeout} s")


@dataclass(frozen=True)
class TlsBroker:
    server: MosquittoServer
    tls_port: int

    @property
    def url(self) -> str:
        return f"mqtts://127.0.0.1:{self.tls_port}"


@contextmanager
def tls_mosquitto(tmp: Path, pki: Pki) -> Iterator[TlsBroker]:
    """A Mosquitto with a TLS listener (certificate signed by ``pki.ca``) on a free port."""
    tls_port = free_port()
    listener = (
        # Started as root, Mosquitto would drop to its own user, which cannot read the keys in
        # pytest's private temp dir: it stays the user running the tests.
        f"user {pwd.getpwuid(os.getuid()).pw_name}\n"
        f"listener {tls_port} 127.0.0.1\n"
        f"cafile {pki.ca}\ncertfile {pki.cert}\nkeyfile {pki.key}\n"
        "tls_version tlsv1.2\n"
    )
    with mosquitto(tmp, listener) as server:
        _wait_port(tls_port)
        yield TlsBroker(server, tls_port)

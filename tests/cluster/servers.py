"""Real NATS and PostgreSQL servers for the cluster tests, on free loopback ports.

``nats-server`` (Debian package ``nats-server``) and PostgreSQL 15 (Debian ``postgresql``,
binaries in /usr/lib/postgresql/15/bin) are installed by ``scripts/setup.sh --test``.
PostgreSQL refuses to run as root, so as root the cluster is made and run as the
``postgres`` user, in a temporary folder of its own.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest


def free_port() -> int:
    """A loopback TCP port nobody listens on (now)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    """Return once something accepts TCP connections on loopback ``port``."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")
        time.sleep(0.05)


def missing(tool: str) -> None:
    """Skip (developer machine) or fail (CI) when a server binary is not installed."""
    message = f"{tool} is not installed (bash scripts/setup.sh --test installs it)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


class NatsServer:
    """A ``nats-server`` with JetStream (its storage in a temporary folder) on a loopback
    port; ``stop``/``start`` restart it on the same port and storage; ``remove`` deletes
    the storage."""

    def __init__(self, jetstream: bool = True) -> None:
        self.jetstream = jetstream
        self.binary = shutil.which("nats-server") or "/usr/sbin/nats-server"
        if not os.path.exists(self.binary):
            missing("nats-server")
        self.port = free_port()
        self.store_dir = tempfile.mkdtemp(prefix="assist-nats-")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``nats://127.0.0.1:PORT``."""
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start the server and wait for its port."""
        jetstream = ["-js", "-sd", self.store_dir] if self.jetstream else []
        self.proc = subprocess.Popen(
            [self.binary, "-a", "127.0.0.1", "-p", str(self.port), *jetstream],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port)

    def stop(self) -> None:
        """Stop the server (its clients see the connection drop)."""
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None

    def remove(self) -> None:
        """Stop the server and delete its storage."""
        self.stop()
        shutil.rmtree(self.store_dir, ignore_errors=True)


def _pg_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        missing("PostgreSQL (initdb)")
    return Path(found[-1]).parent


class PostgresServer:
    """A throw-away PostgreSQL cluster on a loopback port (trust authentication);
    ``database()`` makes a fresh database and returns its DSN."""

    def __init__(self) -> None:
        self.bin = _pg_bin()
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="assist-pg-"))
        self.data = self.dir / "data"
        self._as_root = os.geteuid() == 0
        if self._as_root:
            shutil.chown(self.dir, "postgres", "postgres")

    def _run(self, *args: str) -> None:
        command = [*(["runuser", "-u", "postgres", "--"] if self._as_root else []), *args]
        subprocess.run(command, check=True, capture_output=True, cwd=self.dir)

    def start(self) -> None:
        """Make the cluster (fsync off: a test database) and start it."""
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres")
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options, "-l",
            str(self.dir / "log"), "-w", "start",
        )  # fmt: skip
        wait_for_port(self.port)

    def database(self) -> str:
        """A new empty database: its DSN."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        self._run(
            str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U",
            "postgres", name,
        )  # fmt: skip
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        """Stop the cluster and delete its folder."""
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)

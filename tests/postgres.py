"""A throw-away PostgreSQL server for tests and benchmarks: Debian's binaries, a temporary data directory,
a free port on 127.0.0.1, trust authentication for the local user ``stratlab``. Stopped and deleted on exit.

Run as root (CI), the server runs as the ``postgres`` system user, since PostgreSQL refuses to run as
root. ``postgres_binaries()`` is None where PostgreSQL is not installed; callers skip with that reason.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

USER = "stratlab"


def postgres_binaries() -> Path | None:
    """The folder of initdb/postgres (Debian puts them under /usr/lib/postgresql/<major>/bin)."""
    found = shutil.which("pg_config")
    if found:
        folder = Path(subprocess.run([found, "--bindir"], capture_output=True, text=True).stdout.strip())
        if (folder / "initdb").exists():
            return folder
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(candidates[-1]).parent if candidates else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalPostgres:
    """``with LocalPostgres() as pg: pg.url("db")`` -- a database server that lives for the block."""

    def __init__(self) -> None:
        self.bin = postgres_binaries()
        if self.bin is None:
            raise RuntimeError("PostgreSQL is not installed (Debian: apt-get install postgresql)")
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="stratlab-pg-"))
        self.data = self.folder / "data"
        self.proc: subprocess.Popen | None = None
        self._as_postgres = os.geteuid() == 0

    def _cmd(self, *args: str) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *args] if self._as_postgres else list(args)

    def __enter__(self) -> LocalPostgres:
        if self._as_postgres:
            shutil.chown(self.folder, "postgres", "postgres")
        subprocess.run(
            self._cmd(
                str(self.bin / "initdb"), "-D", str(self.data), "-U", USER, "--auth=trust", "-E", "UTF8"
            ),
            check=True,
            capture_output=True,
        )
        log = (self.folder / "server.log").open("ab")
        self.proc = subprocess.Popen(
            self._cmd(
                str(self.bin / "postgres"),
                "-D",
                str(self.data),
                "-p",
                str(self.port),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                f"unix_socket_directories={self.folder}",
                "-c",
                "max_connections=200",
                "-c",
                "fsync=on",
            ),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while not self._ready():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise RuntimeError(f"PostgreSQL did not start; see {self.folder / 'server.log'}")
            time.sleep(0.2)
        return self

    def _ready(self) -> bool:
        done = subprocess.run(
            [str(self.bin / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-U", USER],
            capture_output=True,
        )
        return done.returncode == 0

    def create_database(self, name: str) -> str:
        """A new database; returns its URL (``postgresql://stratlab@127.0.0.1:PORT/name``)."""
        subprocess.run(
            [str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", USER, name],
            check=True,
            capture_output=True,
        )
        return self.url(name)

    def url(self, database: str, driver: str = "postgresql") -> str:
        return f"{driver}://{USER}@127.0.0.1:{self.port}/{database}"

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with_signal = signal.SIGINT  # "fast shutdown": roll back open transactions, then exit
            try:
                os.killpg(self.proc.pid, with_signal)
                self.proc.wait(30)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        shutil.rmtree(self.folder, ignore_errors=True)

"""A private, throwaway PostgreSQL cluster (initdb + pg_ctl in a temporary directory).

For tests that stop and start PostgreSQL: they must never touch a shared server. The cluster
listens on 127.0.0.1 only, on a free port, with trust authentication and its socket in the
temporary directory. initdb refuses to run as root, so as root the binaries run as the
``postgres`` OS user (``runuser``), and the directory is handed to that user.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.server import free_port

OS_USER = "postgres"


class PostgresUnavailableError(RuntimeError):
    """The PostgreSQL server binaries are missing or the cluster could not be set up."""


def postgres_bindir() -> Path:
    """The folder with initdb and pg_ctl: ``PG_BINDIR``, else PATH, else the newest Debian one."""
    explicit = os.environ.get("PG_BINDIR")
    if explicit:
        candidates = [Path(explicit)]
    else:
        on_path = shutil.which("initdb")
        candidates = [Path(on_path).resolve().parent] if on_path else []
        debian = glob.glob("/usr/lib/postgresql/*/bin")
        candidates += sorted(
            (Path(p) for p in debian),
            key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
            reverse=True,
        )
    for bindir in candidates:
        if (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file():
            return bindir
    raise PostgresUnavailableError(
        "initdb/pg_ctl not found (install the PostgreSQL server package, or set PG_BINDIR)"
    )


class PostgresCluster:
    """One cluster in ``root``: ``start``, ``stop``, ``restart``; ``url`` for SQLAlchemy."""

    def __init__(self, root: Path, bindir: Path, port: int) -> None:
        self.root = root
        self.bindir = bindir
        self.port = port
        self.data = root / "data"
        self.logfile = root / "postgres.log"
        self._as_postgres = os.geteuid() == 0

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        command = [str(self.bindir / args[0]), *args[1:]]
        if self._as_postgres:
            command = ["runuser", "-u", OS_USER, "--", *command]
        result = subprocess.run(
            command,
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return result

    def _check(self, *args: str, timeout: float = 60) -> None:
        result = self._run(*args, timeout=timeout)
        if result.returncode != 0:
            raise PostgresUnavailableError(
                f"{args[0]} {' '.join(args[1:2])} failed ({result.returncode}):\n"
                f"{result.stdout}{result.stderr}\n{self.log_tail()}"
            )

    def init(self) -> None:
        self._check(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",  # the cluster is thrown away; the server itself keeps fsync on
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
        self._check(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.logfile),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        """``fast`` ends the sessions and checkpoints; ``immediate`` is a crash (WAL recovery)."""
        self._check("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def restart(self, mode: str = "fast") -> None:
        self.stop(mode)
        self.start()

    def running(self) -> bool:
        return self._run("pg_ctl", "-D", str(self.data), "status").returncode == 0

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.logfile.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def kill(self) -> None:
        """Last resort: SIGKILL the postmaster named in postmaster.pid (our own cluster only)."""
        try:
            pid = int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except (ProcessLookupError, PermissionError):
                return
            time.sleep(0.05)


def _give_to_postgres(path: Path) -> None:
    user = pwd.getpwnam(OS_USER)
    os.chown(path, user.pw_uid, user.pw_gid)


@contextmanager
def temporary_postgres() -> Iterator[PostgresCluster]:
    """A started private cluster; stopped and deleted on exit, whatever happened."""
    bindir = postgres_bindir()
    root = Path(tempfile.mkdtemp(prefix="carbonlabel-pg-"))
    cluster: PostgresCluster | None = None
    try:
        os.chmod(root, 0o700)
        if os.geteuid() == 0:
            try:
                _give_to_postgres(root)
            except KeyError:
                raise PostgresUnavailableError(
                    f"running as root, and there is no {OS_USER!r} OS user to run initdb as"
                ) from None
        cluster = PostgresCluster(root, bindir, free_port())
        cluster.init()
        for attempt in range(3):
            try:
                cluster.start()
                break
            except PostgresUnavailableError:
                # most likely the port was taken between free_port() and the start: try another
                if attempt == 2:
                    raise
                cluster.port = free_port()
        yield cluster
    finally:
        if cluster is not None and (cluster.data / "postmaster.pid").exists():
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                cluster._run("pg_ctl", "-D", str(cluster.data), "-m", "immediate", "stop")
            cluster.kill()
        shutil.rmtree(root, ignore_errors=True)

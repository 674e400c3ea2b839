"""A throwaway PostgreSQL server for the tests: Debian's `postgresql` binaries, run on loopback
in a temporary folder under /tmp, as the `postgres` user when the tests run as root (the server
refuses to run as root). The tests' SQL storages (`postgresql://...`) point at it."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

SERVER_USER = "postgres"  # the system user Debian's package creates


def postgres_binaries() -> Path | None:
    """The folder holding initdb and pg_ctl: PATH's first, else the newest Debian one
    (/usr/lib/postgresql/<version>/bin, not on PATH on a clean Debian machine)."""
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(on_path).resolve().parent  # /usr/local/bin/initdb may be a link
    versions = [p for p in Path("/usr/lib/postgresql").glob("*/bin") if (p / "initdb").is_file()]
    versions = [p for p in versions if (p / "pg_ctl").is_file()]

    def version(bin_dir: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in bin_dir.parent.name.split(".") if part.isdigit())

    return max(versions, key=version, default=None)


def _as_root() -> bool:
    return os.geteuid() == 0


def missing_postgres() -> str | None:
    """Why a server cannot run here, in one line; None when it can."""
    if postgres_binaries() is None:
        return "Debian's postgresql package is not installed (no initdb and pg_ctl)"
    if _as_root():
        try:
            pwd.getpwnam(SERVER_USER)
        except KeyError:
            return f"the tests run as root and there is no {SERVER_USER!r} user to run it"
        if shutil.which("runuser") is None:
            return f"the tests run as root and there is no runuser to run it as {SERVER_USER!r}"
    try:
        import psycopg  # noqa: F401  (SQLAlchemy 2.1's driver for postgresql:// URLs)
    except ImportError:
        return 'no PostgreSQL driver: pip install "dlexp[postgres]"'
    return None


def _free_port() -> int:
    """A TCP port free on loopback now (the kernel's pick for port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _log_tail(log: Path, lines: int = 20) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no server log)"


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """Start a fresh server and yield its base URL, `postgresql://postgres@127.0.0.1:<port>/
    postgres` (trust authentication, loopback only); stop it at once and remove its folder on
    exit, also when starting failed. A failure raises RuntimeError with the server's output."""
    binaries = postgres_binaries()
    if binaries is None:
        raise RuntimeError("no initdb and pg_ctl: Debian's postgresql package is not installed")
    folder = Path(tempfile.mkdtemp(prefix="dlexp-postgres-"))  # short: the socket path fits
    data, log, port = folder / "data", folder / "server.log", _free_port()
    prefix: list[str] = []
    if _as_root():
        user = pwd.getpwnam(SERVER_USER)
        os.chown(folder, user.pw_uid, user.pw_gid)
        prefix = ["runuser", "-u", SERVER_USER, "--"]

    def run(*args: str, what: str) -> None:
        # cwd: the server user may not enter the tests' own folder
        proc = subprocess.run(
            [*prefix, str(binaries / args[0]), *args[1:]],
            cwd=folder, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        if proc.returncode != 0:
            output = (proc.stdout + proc.stderr).strip()
            raise RuntimeError(
                f"PostgreSQL: {what} failed ({proc.returncode}):\n{output}\n"
                f"server log ({log}):\n{_log_tail(log)}"
            )

    def stop() -> None:
        if (data / "postmaster.pid").exists():  # a server started, perhaps half-way
            run("pg_ctl", "-D", str(data), "stop", "-m", "immediate", "-w", what="pg_ctl stop")

    try:
        # --locale=C: the same server whatever locale the environment names (or lacks)
        run("initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
            "--locale=C", "--no-sync", what="initdb")  # fmt: skip
        options = f"-h 127.0.0.1 -p {port} -k {folder} -F"  # socket in the folder, no fsync
        run("pg_ctl", "-D", str(data), "-l", str(log), "-w", "-t", "60", "-o", options, "start",
            what="pg_ctl start")  # fmt: skip
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    except BaseException:
        with contextlib.suppress(Exception):  # the first error is the one to show
            stop()
        raise
    else:
        stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def create_database(base_url: str, name: str) -> str:
    """Create the database `name` on the server of `base_url`; its URL."""
    import psycopg
    from psycopg import sql

    # autocommit: CREATE DATABASE cannot run in a transaction
    with psycopg.connect(base_url, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return urlsplit(base_url)._replace(path=f"/{name}").geturl()

"""A real, throw-away PostgreSQL server on loopback for the postgres engine's tests.

The engine is proven against the server it will meet, not a mock: initdb into a
temporary folder (UTF8, a password-authenticated superuser, scram only), listen
on 127.0.0.1 on a free port with the unix socket inside the folder, and stop
(immediate) and remove it all afterwards. initdb and postgres refuse to run as
root, so as root they run as `nobody`. The password is random, kept in a file
readable by its owner only, and handed to clients through PGPASSWORD.
"""

from __future__ import annotations

import atexit
import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

USER = "chargeback"
DATABASE = "chargeback_test"


@dataclass
class PgServer:
    """A running server: where it listens and how to reach it (the password is not in the URI)."""

    root: Path
    bindir: Path
    port: int
    password: str
    run_as: list[str]

    @property
    def conninfo(self) -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{DATABASE}"

    def stop(self) -> None:
        """Immediate shutdown, then the folder goes (data, socket, password file)."""
        subprocess.run(
            [
                *self.run_as,
                str(self.bindir / "pg_ctl"),
                "stop",
                "-m",
                "immediate",
                "-D",
                str(self.root / "data"),
            ],
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(self.root, ignore_errors=True)


def find_bindir() -> Path | None:
    """The folder of initdb/pg_ctl/postgres: PATH first, then Debian's versioned folders."""
    on_path = shutil.which("initdb")
    if on_path:
        real = Path(on_path).resolve().parent
        if (real / "pg_ctl").exists() and (real / "postgres").exists():
            return real
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if all((Path(folder) / name).exists() for name in ("initdb", "pg_ctl", "postgres")):
            return Path(folder)
    return None


def free_port() -> int:
    """A port on loopback nobody listens on (the throw-away servers' and the SMTP tests')."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _unprivileged(root: Path) -> list[str]:
    """As root: the command prefix that runs as `nobody`, owning `root`; else nothing."""
    if os.geteuid() != 0:
        return []
    shutil.chown(root, user="nobody")
    runuser = shutil.which("runuser")
    if runuser:
        return [runuser, "-u", "nobody", "--"]
    setpriv = shutil.which("setpriv")
    if setpriv:
        import pwd

        entry = pwd.getpwnam("nobody")
        return [setpriv, f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--clear-groups"]
    raise RuntimeError("running as root without runuser or setpriv to drop to nobody")


def start(bindir: Path) -> PgServer:
    """initdb, start and create the test database; raises with the server's log on failure."""
    # as root the server runs as nobody, who must reach the folder: /tmp, not a private TMPDIR
    base = "/tmp" if os.geteuid() == 0 and os.path.isdir("/tmp") else None
    root = Path(tempfile.mkdtemp(prefix="chargeback-pg-", dir=base))
    os.chmod(root, 0o700)
    run_as = _unprivileged(root)
    password = secrets.token_urlsafe(24)
    pwfile = root / "pw"
    pwfile.write_text(password + "\n")
    os.chmod(pwfile, 0o600)
    if run_as:
        shutil.chown(pwfile, user="nobody")
    env = {**os.environ, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8", "TZ": "UTC"}
    env.pop("PGPASSWORD", None)
    data = root / "data"

    def run(*args: str) -> None:
        done = subprocess.run(
            [*run_as, *args], capture_output=True, text=True, env=env, cwd=root, timeout=120
        )
        if done.returncode != 0:
            log = (root / "log").read_text() if (root / "log").exists() else ""
            raise RuntimeError(f"{args[0]} failed: {done.stdout}{done.stderr}{log}")

    run(
        str(bindir / "initdb"), "-D", str(data), "-U", USER, f"--pwfile={pwfile}",
        "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync",
    )  # fmt: skip
    pwfile.unlink()
    port = free_port()
    options = (
        f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={root} "
        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=20"
    )
    run(str(bindir / "pg_ctl"), "start", "-w", "-t", "60", "-D", str(data),
        "-l", str(root / "log"), "-o", options)  # fmt: skip
    server = PgServer(root=root, bindir=bindir, port=port, password=password, run_as=run_as)
    # stopped at exit too: a session interrupted before its fixture's teardown (Ctrl-C,
    # a timeout) would leave the server running; stopping twice is harmless
    atexit.register(server.stop)
    try:
        _create_database(server)
    except Exception:
        server.stop()
        raise
    return server


def _create_database(server: PgServer) -> None:
    """The test database: UTF8, ctype C.UTF-8 (the engine lower-cases with ICU when it can)."""
    import psycopg

    admin = f"host=127.0.0.1 port={server.port} user={USER} dbname=postgres"
    deadline = time.monotonic() + 30
    while True:
        try:
            con = psycopg.connect(admin, password=server.password, autocommit=True)
            break
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    with con:
        con.execute(
            f"CREATE DATABASE {DATABASE} TEMPLATE template0 ENCODING 'UTF8' "
            "LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8'"
        )

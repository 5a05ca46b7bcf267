"""A real, throw-away Spark Connect server on loopback for the `sc://` tests.

pyspark's wheel carries the server (jars/spark-connect_*.jar) and its start script
(sbin/start-connect-server.sh), so the tests meet the protocol a cluster speaks, not
a local session standing in for it. The server listens on 127.0.0.1 on a free port,
runs in local[2] with 1 GB for its driver, and keeps its logs, pid file, warehouse
and caches in a temporary folder (its working directory), removed when it stops.
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from pg_server import free_port

IDENT = "chargeback-tests"  # spark-daemon.sh's name for the pid file: stop finds it by this


@dataclass
class ConnectServer:
    root: Path
    port: int
    env: dict[str, str] = field(repr=False)  # the environment: never printed
    home: Path

    @property
    def remote(self) -> str:
        return f"sc://127.0.0.1:{self.port}"

    def stop(self) -> None:
        """Stop the server and remove its folder; again, nothing."""
        if not self.root.exists():
            return
        script = self.home / "sbin" / "stop-connect-server.sh"
        subprocess.run(
            ["bash", str(script)], env=self.env, cwd=self.root, capture_output=True, timeout=60
        )
        shutil.rmtree(self.root, ignore_errors=True)


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def start(wait: float = 120.0) -> ConnectServer:
    """Start the server and return once its port takes connections (else stop it, raise)."""
    import pyspark

    home = Path(pyspark.__file__).parent
    root = Path(tempfile.mkdtemp(prefix="cb-spark-connect-"))
    env = {
        **os.environ,
        "SPARK_HOME": str(home),
        "SPARK_LOG_DIR": str(root / "logs"),
        "SPARK_PID_DIR": str(root / "pid"),
        "SPARK_IDENT_STRING": IDENT,
    }
    server = ConnectServer(root, free_port(), env, home)
    atexit.register(server.stop)  # a run that dies before its teardown leaves no JVM
    conf = {
        "spark.connect.grpc.binding.address": "127.0.0.1",
        "spark.connect.grpc.binding.port": str(server.port),
        "spark.ui.enabled": "false",
        "spark.sql.warehouse.dir": str(root / "warehouse"),
    }
    args = ["--master", "local[2]", "--driver-memory", "1g"]
    for key, value in conf.items():
        args += ["--conf", f"{key}={value}"]
    script = home / "sbin" / "start-connect-server.sh"
    subprocess.run(
        ["bash", str(script), *args], env=env, cwd=root, check=True, capture_output=True, timeout=60
    )
    deadline = time.monotonic() + wait
    while not _listening(server.port):
        if time.monotonic() > deadline:
            logs = "\n".join(p.read_text()[-2000:] for p in (root / "logs").glob("*.out"))
            server.stop()
            raise RuntimeError(f"Spark Connect did not start in {wait:.0f} s:\n{logs}")
        time.sleep(0.5)
    return server

"""A process that used Spark Connect ends promptly even when the server is gone by then.

pyspark's exit handler sends its ML cache's cleanup RPC and retries it for about 10
minutes against a server that went away: a cron run whose cluster went down would hang
at exit. data/spark_session.py closes the session's channel first. Real server (the
conftest's, on loopback) behind a TCP relay the test cuts after the query, so the
client sees the server gone; without the close this test times out.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import threading
import time
from urllib.parse import urlparse

import pytest

pytest.importorskip("pyspark")

# the query's ReleaseExecute is sent on a pool thread after it: waited for, so the relay
# is cut only once the client is idle (a release in flight then retries on that thread,
# which the interpreter joins before any exit handler runs: the note's open race)
SCRIPT = """
import concurrent.futures, sys, time
from chargeback.data.spark_session import session
spark = session(sys.argv[1])
assert spark.sql("SELECT 1 AS one").collect()[0].one == 1
for _ in range(3):  # a release may be submitted just after the rows are in
    time.sleep(0.2)
    concurrent.futures.wait(list(spark.client._release_futures), timeout=30)
print("ready", flush=True)
sys.stdin.readline()
"""


class Relay:
    """A loopback TCP relay to `port`, as a load balancer in front of a cluster: after
    cut() every connection through it is closed and a new one is accepted and reset at
    once, as when the server behind it went down (the client then retries)."""

    def __init__(self, port: int) -> None:
        self.target = port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        self.down = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.down:
                client.close()
                continue
            server = socket.create_connection(("127.0.0.1", self.target))
            self.sockets += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def cut(self) -> None:
        self.down = True
        for s in self.sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()


def test_exit_after_the_server_is_gone(spark_remote: str) -> None:
    port = urlparse(spark_remote.replace("sc://", "http://")).port
    assert port is not None
    relay = Relay(port)
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, f"sc://127.0.0.1:{relay.port}"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdin is not None
        line = proc.stdout.readline()
        assert line.strip() == "ready", proc.stderr.read() if proc.stderr else line
        relay.cut()  # the server is gone as far as this client can tell
        started = time.monotonic()
        proc.stdin.write("\n")
        proc.stdin.flush()
        assert proc.wait(timeout=90) == 0
        assert time.monotonic() - started < 30
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        relay.listener.close()


def test_a_requested_release_is_left_to_pyspark(monkeypatch: pytest.MonkeyPatch) -> None:
    """SPARK_CONNECT_RELEASE_SESSION_ON_EXIT asks pyspark's own handler to release the
    session at exit: then the channel is not closed before it (which would skip it)."""
    from chargeback.data import spark_session

    registered: list[object] = []
    monkeypatch.setattr(spark_session.atexit, "register", registered.append)
    one, two = object(), object()
    try:
        monkeypatch.setenv("SPARK_CONNECT_RELEASE_SESSION_ON_EXIT", "true")
        spark_session._close_at_exit(one)
        assert registered == []
        monkeypatch.setenv("SPARK_CONNECT_RELEASE_SESSION_ON_EXIT", "false")
        spark_session._close_at_exit(two)
        spark_session._close_at_exit(two)  # the same session: one handler
        assert len(registered) == 1
    finally:
        spark_session._CLOSING.discard(id(two))

"""One run at a time per output folder.

An advisory lock (fcntl.flock) on `<out>/.chargeback.lock`: the kernel drops it
when the process ends, however it ends, so a crashed run never leaves a stale
lock behind. `send`, `close` and `journal` take it after their report step
has written and released it: each writing step holds it while it writes.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from chargeback.errors import ChargebackError, Problem
from chargeback.files import made_folders, remove_folders

LOCK_NAME = ".chargeback.lock"


@contextmanager
def locked(out_dir: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock, as before
        yield
        return
    created: list[Path] = []
    lock_path = out_dir / LOCK_NAME
    try:
        created = made_folders(out_dir)
        had_lock = lock_path.exists()
        # O_NOFOLLOW: a symlink planted as the lock must not make the run write elsewhere
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
        handle = os.fdopen(fd, "r+")
    except OSError as exc:
        remove_folders(created)
        raise ChargebackError(
            Problem(f"cannot create output folder: {exc.strerror}", out_dir)
        ) from None
    ok = False
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise ChargebackError(
                Problem(
                    f"another chargeback run ({holder}) is using this output folder; "
                    "try again when it has finished",
                    out_dir,
                )
            ) from None
        handle.seek(0)
        before = handle.read()
        _rewrite(handle, f"pid {os.getpid()}")
        try:
            yield
            ok = True
        finally:
            if not ok:  # a failed run leaves the folder as it found it
                if had_lock:
                    _rewrite(handle, before)
                else:
                    lock_path.unlink(missing_ok=True)
            fcntl.flock(handle, fcntl.LOCK_UN)
    finally:
        handle.close()
        if not ok:
            remove_folders(created)


def _rewrite(handle: IO[str], text: str) -> None:
    handle.seek(0)
    handle.truncate()
    handle.write(text)
    handle.flush()

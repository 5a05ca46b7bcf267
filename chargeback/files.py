"""Files written all-or-nothing, and their digests.

Every output goes to a temporary name in its own folder first and is renamed
into place only when all of a run's files are complete, so a failed run never
leaves half a report behind. The engine never imports this module (a contract
in pyproject.toml): computing figures and writing them stay apart.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from chargeback.errors import ChargebackError, Problem


def sha256_file(path: Path) -> str:
    key = _identity(path)
    early = _early.pop(key, None) if key is not None else None
    if key is not None and early is not None:
        early.join()
        found = early.digests.get(key)
        if found is not None:
            return found
    return _digest(path)


def _digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


Identity = tuple[str, int, int]


class _Early(threading.Thread):
    """One thread hashing the files in turn (hashlib lets go of the interpreter for
    each block, so the engine's reading goes on beside it)."""

    def __init__(self, files: list[tuple[Identity, Path]]) -> None:
        super().__init__(daemon=True)  # a failed run does not wait for it
        self.files = files
        self.digests: dict[Identity, str] = {}

    def run(self) -> None:
        for key, path in self.files:
            try:
                self.digests[key] = _digest(path)
            except OSError:  # gone or unreadable: sha256_file says so when it is asked
                continue


_early: dict[Identity, _Early] = {}


def _identity(path: Path) -> Identity | None:
    """The file as it is now: one changed since it was hashed early is hashed again."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return str(path.resolve()), stat.st_size, stat.st_mtime_ns


def hash_early(paths: Iterable[Path]) -> None:
    """Start hashing a run's input files while the engine reads them, so the run's
    fingerprint (sha256_file) waits only for what is left: 0.04 s at 3M contacts in
    Parquet, 0.13 s at 10M, 1.3 s at 100M. A run that stopped before its fingerprint
    left its digests behind: the next run's call forgets them (a process running many
    reports keeps one run's at most)."""
    _early.clear()
    files = []
    for path in paths:
        key = _identity(path)
        if key is not None and key not in _early:
            files.append((key, path))
    if files:
        early = _Early(files)
        _early.update({key: early for key, _ in files})
        early.start()


def made_folders(folder: Path) -> list[Path]:
    """Create folder (and parents); return the ones this call created, deepest first."""
    missing: list[Path] = []
    probe = folder
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    folder.mkdir(parents=True, exist_ok=True)
    return missing


def remove_folders(folders: list[Path]) -> None:
    """Undo made_folders where the folders are still empty (a failed run leaves no trace)."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return


def write_error(exc: OSError, out_dir: Path) -> ChargebackError:
    reason = exc.strerror or str(exc)
    where = Path(exc.filename) if isinstance(exc.filename, str) else out_dir
    return ChargebackError(Problem(f"cannot write: {reason}", where))


@contextmanager
def staged(out_dir: Path) -> Iterator[dict[str, str | bytes]]:
    """Collect {relative name: text or bytes}; write temps, then rename all into place.

    A temp is named before it is opened, so a write that fails half-way (a full
    disk) is removed with the others, and so are the folders this run created.
    """
    files: dict[str, str | bytes] = {}
    yield files
    created: list[Path] = []
    temps: list[tuple[Path, Path]] = []
    for name in files:  # checked before anything is written: a rename that fails half-way
        final = out_dir / name  # through would leave some files new and some old
        if final.is_dir() and not final.is_symlink():
            raise ChargebackError(
                Problem("cannot write: a folder is in the way of this file; move it", final)
            )
    try:
        created = made_folders(out_dir)
        for name, content in files.items():
            final = out_dir / name
            created[:0] = made_folders(final.parent)
            temp = final.parent / f".{final.name}.tmp-{os.getpid()}"
            temps.append((temp, final))
            if isinstance(content, bytes):
                temp.write_bytes(content)
            else:
                temp.write_text(content, encoding="utf-8", newline="")
        for temp, final in temps:
            os.replace(temp, final)
    except BaseException as exc:  # a full disk, or anything else: leave no trace
        for temp, _ in temps:
            temp.unlink(missing_ok=True)
        remove_folders(created)
        if isinstance(exc, OSError):
            raise write_error(exc, out_dir) from None
        raise


def write_files(out_dir: Path, files: dict[str, str | bytes]) -> None:
    """Write {relative name: content} into out_dir, all or nothing."""
    with staged(out_dir) as pending:
        pending.update(files)

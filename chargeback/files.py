"""Files written all-or-nothing, and their digests.

Every output goes to a temporary name in its own folder first and is renamed
into place only when all of a run's files are complete, so a failed run never
leaves half a report behind. The engine never imports this module (a contract
in pyproject.toml): computing figures and writing them stay apart.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from chargeback.errors import ChargebackError, Problem


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextmanager
def staged(out_dir: Path) -> Iterator[dict[str, str | bytes]]:
    """Collect {relative name: text or bytes}; write temps, then rename all into place."""
    files: dict[str, str | bytes] = {}
    yield files
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ChargebackError(
            Problem(f"cannot create output folder: {exc.strerror}", out_dir)
        ) from None
    temps: list[tuple[Path, Path]] = []
    try:
        for name, content in files.items():
            final = out_dir / name
            final.parent.mkdir(parents=True, exist_ok=True)
            temp = final.parent / f".{final.name}.tmp-{os.getpid()}"
            if isinstance(content, bytes):
                temp.write_bytes(content)
            else:
                temp.write_text(content, encoding="utf-8", newline="")
            temps.append((temp, final))
        for temp, final in temps:
            os.replace(temp, final)
    except OSError as exc:
        for temp, _ in temps:
            temp.unlink(missing_ok=True)
        raise ChargebackError(Problem(f"cannot write: {exc.strerror}", out_dir)) from None


def write_files(out_dir: Path, files: dict[str, str | bytes]) -> None:
    """Write {relative name: content} into out_dir, all or nothing."""
    with staged(out_dir) as pending:
        pending.update(files)

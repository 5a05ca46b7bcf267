"""`chargeback init`: a small, commented workspace that runs as soon as it is made."""

from __future__ import annotations

import shutil
from pathlib import Path

from chargeback.errors import ChargebackError, Problem

STARTER = Path(__file__).resolve().parent / "starter"
SETTINGS_FILE = "chargeback.yaml"


def scaffold(dest: Path, settings: str | None = None) -> list[Path]:
    """Copy the starter workspace into dest; refuse to overwrite anything.

    With `settings` (a chargeback.yaml written for the user's own export, by
    `init --from-export`), that file stands in for the starter's and the example
    contacts stay out. dest may then be a folder already in use, as long as it
    has no chargeback.yaml; a rules/ folder it has is kept as it is.
    """
    if settings is None:
        if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
            raise ChargebackError(Problem("already exists and is not an empty folder", dest))
        shutil.copytree(STARTER, dest, dirs_exist_ok=True)
        return sorted(p for p in dest.rglob("*") if p.is_file())
    if dest.exists() and not dest.is_dir():
        raise ChargebackError(Problem("is not a folder: name the workspace's folder", dest))
    target = dest / SETTINGS_FILE
    if target.exists() or target.is_symlink():
        raise ChargebackError(
            Problem(
                "already exists: move it aside, or name another folder for the workspace", target
            )
        )
    written: list[Path] = []
    dest.mkdir(parents=True, exist_ok=True)
    if not (dest / "rules").exists():
        shutil.copytree(STARTER / "rules", dest / "rules")
        written += sorted(p for p in (dest / "rules").rglob("*") if p.is_file())
    with target.open("x", encoding="utf-8") as handle:  # "x": never over a file made meanwhile
        handle.write(settings)
    return [target, *written]

"""`chargeback init`: a small, commented workspace that runs as soon as it is made."""

from __future__ import annotations

import shutil
from pathlib import Path

from chargeback.errors import ChargebackError, Problem

STARTER = Path(__file__).resolve().parent / "starter"


def scaffold(dest: Path) -> list[Path]:
    """Copy the starter workspace into dest; refuse to overwrite anything."""
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise ChargebackError(Problem("already exists and is not an empty folder", dest))
    shutil.copytree(STARTER, dest, dirs_exist_ok=True)
    return sorted(p for p in dest.rglob("*") if p.is_file())

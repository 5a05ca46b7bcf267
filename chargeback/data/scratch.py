"""The process's private scratch folder: exports, DuckDB's spill, Spark's warehouse.

A module of its own so that the Spark session (spark_session.py) and the
warehouse sources (warehouse.py) can both use it without importing each other.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

_scratch: list[Path] = []


def scratch_dir() -> Path:
    """A private folder (0700) for this process's exports, removed when it ends."""
    if not _scratch:
        folder = Path(tempfile.mkdtemp(prefix="chargeback-source-"))
        os.chmod(folder, 0o700)
        _scratch.append(folder)
        atexit.register(shutil.rmtree, folder, True)
    return _scratch[0]

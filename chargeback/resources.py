"""Where the packaged sample workspace and report templates live.

In a wheel they are copied into `chargeback/_data/` (see pyproject's
force-include); in a source checkout or editable install they sit at the
repository root. Callers never need to know which.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_CANDIDATES = (_PACKAGE / "_data", _PACKAGE.parent)


def data_root() -> Path:
    """The folder holding rules/, sample_data/, report_templates/ and chargeback.yaml."""
    for root in _CANDIDATES:
        if (root / "rules").is_dir() and (root / "report_templates").is_dir():
            return root
    raise FileNotFoundError("the packaged sample workspace is missing from this installation")


def sample_workspace() -> Path:
    """The built-in sample workspace (a bare `chargeback report` runs on it)."""
    return data_root()


def templates_dir() -> Path:
    return data_root() / "report_templates"

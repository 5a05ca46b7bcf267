"""A closed month's seal: its figures are checked, not trusted, every time they are served.

`close` writes `closed/P/SHA256SUMS` (the `sha256sum` format, so an auditor
can run `sha256sum -c SHA256SUMS` in the folder) over manifest.json and
ledger.csv, and records the digest of SHA256SUMS itself in
`closed/history.jsonl`. Every run that reads a closed month checks both: an
edited manifest or ledger, a rewritten or deleted SHA256SUMS, stops the run
with the file named. (The documents' own digests are in the manifest, so they
are covered too.) A month closed before seals existed is served with a warning.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from chargeback.errors import ChargebackError, Problem

SUMS = "SHA256SUMS"
SEALED = ("manifest.json", "ledger.csv")
HISTORY = "history.jsonl"


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_seal(folder: Path) -> str:
    """Write folder/SHA256SUMS over the sealed files; return the digest history keeps."""
    text = "".join(f"{_digest((folder / name).read_bytes())}  {name}\n" for name in SEALED)
    (folder / SUMS).write_text(text, encoding="utf-8")
    return _digest(text.encode("utf-8"))


def recorded_seals(closed_root: Path) -> dict[str, str | None]:
    """Per closed period, the seal digest its latest close recorded (None: not recorded)."""
    path = closed_root / HISTORY
    seals: dict[str, str | None] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return seals
    except (OSError, UnicodeDecodeError) as exc:
        raise ChargebackError(Problem(f"unreadable close history ({exc})", path)) from None
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            action, period = entry["action"], entry["period"]
        except (ValueError, KeyError, TypeError):
            raise ChargebackError(
                Problem("the close history has a damaged line", path, number)
            ) from None
        if action == "close":
            seal = entry.get("seal")
            seals[str(period)] = seal if isinstance(seal, str) else None
        elif action == "reopen":
            seals.pop(str(period), None)
    return seals


def tampered(path: Path, period: str, what: str) -> ChargebackError:
    return ChargebackError(
        Problem(
            f"{what}: closed {period}'s figures may not change. Restore the folder from a "
            f"backup, or reopen the month (chargeback reopen --period {period} --force) and "
            "close it again",
            path,
        )
    )


def check_seal(folder: Path, period: str, recorded: str | None) -> str | None:
    """Raise when the sealed files changed; a warning for a month closed before seals."""
    sums = folder / SUMS
    try:
        text = sums.read_bytes()
    except FileNotFoundError:
        if recorded is None:
            return (
                f"{period} was closed before closed months were sealed: its figures are "
                "served unverified (reopen and close it again to seal it)"
            )
        raise tampered(sums, period, "the seal of a closed month is missing") from None
    except OSError as exc:
        raise ChargebackError(Problem(f"unreadable seal ({exc.strerror})", sums)) from None
    if recorded is not None and _digest(text) != recorded:
        raise tampered(sums, period, "the seal differs from the one recorded at closing")
    listed: dict[str, str] = {}
    for line in text.decode("utf-8", "replace").splitlines():
        digest, _, name = line.partition("  ")
        listed[name] = digest
    for name in SEALED:
        path = folder / name
        try:
            actual = _digest(path.read_bytes())
        except OSError:
            raise tampered(path, period, "a sealed file of a closed month is missing") from None
        if listed.get(name) != actual:
            raise tampered(path, period, "this file was changed after the month was closed")
    return None

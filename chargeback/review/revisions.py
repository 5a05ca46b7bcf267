"""Where a rule set comes from: a rules folder, or the workspace's rules/ at a git revision.

`chargeback diff` compares two rule sets; each may be a folder on disk or a
revision of the repository the workspace lives in. A revision is read with git
itself (rev-parse, ls-tree, cat-file) into a temporary folder the caller's
ExitStack removes, so the ledger is computed by the same loader as any other.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from chargeback.errors import ChargebackError, Problem, WorkspaceError


@dataclass(frozen=True)
class RuleSet:
    """A rule set ready to load: its folder, and how to name it to a person."""

    given: str  # what the user typed
    folder: Path  # the rules folder (a temporary copy for a revision)
    label: str  # "old_rules (folder)" or "origin/main (1a2b3c4)"
    revision: str | None = None  # the commit, for a revision
    shown_as: str | None = None  # "origin/main:rules", how a copied file's place is shown


def rules_folder(path: Path) -> Path:
    """A rules folder as given; a workspace folder (it has rules/ and no YAML of its own
    beside chargeback.yaml) stands for its rules/."""
    inner = path / "rules"
    own_yaml = [p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file()]
    if inner.is_dir() and all(p.name == "chargeback.yaml" for p in own_yaml):
        return inner
    return path


def resolve_rule_set(given: str, workspace: Path, stack: ExitStack) -> RuleSet:
    """A folder when `given` is one (from here, else from the workspace), else a revision."""
    for path in (Path(given), workspace / given):
        if given and path.is_dir():
            folder = rules_folder(path)
            return RuleSet(given, folder, f"{folder} (folder)")
    top, prefix = _repository(given, workspace)
    commit = _commit(given, top)
    tree = f"{prefix}rules"
    found = subprocess.run(
        ["git", "-C", str(top), "cat-file", "-t", f"{commit}:{tree}"],
        capture_output=True,
        check=False,
    )
    if found.stdout.strip() != b"tree":
        raise WorkspaceError(
            Problem(f"revision '{given}' has no {tree}/ folder (the workspace's rules/)", top)
        )
    tmp = Path(tempfile.mkdtemp(prefix="chargeback-diff-"))
    stack.callback(shutil.rmtree, tmp, ignore_errors=True)
    folder = tmp / "rules"
    folder.mkdir()
    _copy_tree(top, f"{commit}:{tree}", folder)
    return RuleSet(given, folder, f"{given} ({commit[:7]})", commit, f"{given}:{tree}")


def relabel(exc: ChargebackError, sets: list[RuleSet]) -> ChargebackError:
    """The same error, with a revision's temporary paths shown as `REV:rules/x.yaml`."""
    copies = [(s.folder, s.shown_as) for s in sets if s.shown_as is not None]
    if not copies:
        return exc
    problems = []
    for problem in exc.problems:
        path, message = problem.path, problem.message
        for folder, shown in copies:
            message = message.replace(str(folder), shown)
            if path is not None and Path(path).is_relative_to(folder):
                path = f"{shown}/{Path(path).relative_to(folder).as_posix()}"
        problems.append(
            Problem(message, path, problem.line, problem.row, problem.column, problem.severity)
        )
    return type(exc)(problems)


def _git(top: Path, *args: str, binary: bool = False) -> str:
    """Run git; a failure becomes a user error naming the command."""
    try:
        done = subprocess.run(["git", "-C", str(top), *args], capture_output=True, check=False)
    except OSError as exc:
        raise ChargebackError(
            Problem(f"git could not be run ({exc.strerror}): is git installed?")
        ) from None
    if done.returncode != 0:
        why = done.stderr.decode(errors="replace").strip().splitlines()
        raise ChargebackError(
            Problem(f"git {' '.join(args)} failed: {why[-1] if why else done.returncode}", top)
        )
    return done.stdout.decode(errors="surrogateescape")


def _repository(given: str, workspace: Path) -> tuple[Path, str]:
    """The repository's top folder and the workspace's place in it ("" or "sub/dir/")."""
    try:
        done = subprocess.run(
            ["git", "-C", str(workspace), "rev-parse", "--show-toplevel", "--show-prefix"],
            capture_output=True,
            check=False,
        )
    except OSError:
        done = None
    if done is None or done.returncode != 0:
        why = done.stderr.decode(errors="replace").strip() if done else "git is not installed"
        raise WorkspaceError(
            Problem(
                f"'{given}' is not a folder, and the workspace is not inside a git repository, "
                "so it cannot be a revision either"
                + ("" if "not a git repository" in why else f" ({why})"),
                workspace,
            )
        )
    top, prefix = [*done.stdout.decode().splitlines(), "", ""][:2]
    return Path(top), prefix


def _commit(given: str, top: Path) -> str:
    """The commit `given` names; options and unknown names are refused, never guessed."""
    done = None
    if given and not given.startswith("-"):
        done = subprocess.run(
            ["git", "-C", str(top), "rev-parse", "--verify", "--quiet", f"{given}^{{commit}}"],
            capture_output=True,
            check=False,
        )
    if done is None or done.returncode != 0:
        raise WorkspaceError(
            Problem(
                f"'{given}' is neither a folder nor a revision of the git repository",
                top,
            )
        )
    return done.stdout.decode().strip()


def _copy_tree(top: Path, tree: str, dest: Path) -> None:
    """Every file of a git tree (at any depth) into dest, read with one cat-file."""
    listing = _git(top, "ls-tree", "-r", "-z", "--full-tree", tree)
    entries = []
    for entry in listing.split("\0"):
        if not entry:
            continue
        meta, name = entry.split("\t", 1)
        _mode, kind, sha = meta.split()
        parts = PurePosixPath(name).parts
        if kind == "blob" and ".." not in parts:
            entries.append((sha, dest.joinpath(*parts)))
    if not entries:
        return
    try:
        done = subprocess.run(
            ["git", "-C", str(top), "cat-file", "--batch"],
            input="".join(f"{sha}\n" for sha, _ in entries).encode(),
            capture_output=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        raise ChargebackError(Problem(f"git cat-file could not read {tree}: {exc}", top)) from None
    data, at = done.stdout, 0
    for _, target in entries:
        header_end = data.index(b"\n", at)
        size = int(data[at:header_end].split()[2])
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data[header_end + 1 : header_end + 1 + size])
        at = header_end + 1 + size + 1  # the content is followed by a newline

"""`python -m chargeback` and the `chargeback` console script."""

from __future__ import annotations

import sys
from contextlib import suppress


def main() -> None:
    # The Typer app lives in the top-level cli.py (fixed by the design card).
    # A wheel carries it as chargeback/_cli.py; a source checkout or editable
    # install imports it from the repository root.
    import gc

    # A cron job or an old console may not speak UTF-8: degrade ▲ and · to '?',
    # never to a traceback after the ledger was written.
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="replace")
    # Importing polars, numpy, typer and the package makes many objects and no
    # garbage: the cycle collector would only walk them (0.03-0.04 s of every start).
    # Frozen, they are never walked again.
    gc.disable()
    try:
        from chargeback._cli import app
    except ModuleNotFoundError:
        from cli import app
    gc.freeze()
    gc.enable()
    try:
        app(prog_name="chargeback")
    except SystemExit as done:
        leave(done.code)
    leave(0)


def leave(code: object) -> None:
    """Exit without the interpreter's teardown, which frees polars', DuckDB's, numpy's
    and the package's modules one by one: 0.1 s of every run, after everything is
    written. The exit handlers still run (scratch folders, logging) and both streams
    are flushed. The usual exit when another thread is still alive (it waits for it)
    or a profiler or tracer is on (cProfile and coverage write their results last)."""
    import atexit
    import os
    import threading

    if threading.active_count() > 1 or sys.getprofile() or sys.gettrace():
        sys.exit(code)  # type: ignore[arg-type]
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:  # sys.exit("message"): the message on stderr, status 1, as Python does
        print(code, file=sys.stderr)
        status = 1
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with suppress(OSError, ValueError):  # a closed pipe: nothing more can reach it
            stream.flush()
    os._exit(status)


if __name__ == "__main__":
    main()

"""`python -m chargeback` and the `chargeback` console script."""

from __future__ import annotations


def main() -> None:
    # The Typer app lives in the top-level cli.py (fixed by the design card).
    # A wheel carries it as chargeback/_cli.py; a source checkout or editable
    # install imports it from the repository root.
    import gc
    import sys

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
    app(prog_name="chargeback")


if __name__ == "__main__":
    main()

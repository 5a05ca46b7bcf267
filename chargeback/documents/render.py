"""HTML and PDF from the templates. The only module that imports WeasyPrint.

- Jinja runs with autoescape on and StrictUndefined: data that looks like HTML
  stays text, and a template naming a value that does not exist fails loudly
  instead of printing a blank where a number should be.
- Templates are untrusted code (`--templates` takes any folder): they render in
  Jinja's immutable sandbox, which refuses `__class__`-style attribute walks and
  changes to the data, with `*` and `**` bounded so `{{ 9**9**9 }}` or
  `{{ 'x' * 10**9 }}` is an error, not a hung run or a full memory.
- WeasyPrint gets a URL fetcher that reads files inside the template folders
  and inline `data:` URLs only; anything else (http, https, ftp, a file
  elsewhere) is refused, so rendering never touches the network.
- PDFs render in worker processes (WeasyPrint's layout is pure Python and holds
  the GIL); the workers import WeasyPrint only, never polars.
- WeasyPrint is imported lazily, so a csv-only run does not pay for it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from multiprocessing import get_context
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import jinja2
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from chargeback.errors import ChargebackError, Problem

SERIAL_UP_TO = 2  # documents; below this a worker pool costs more than it saves


def money(value: Decimal | int | str) -> str:
    """Money as ledger.csv prints it: plain digits, two decimals, '-' when negative.

    No thousands separators or currency symbols inside the figure, so what a
    reader copies from a statement pastes into a spreadsheet as a number and
    matches the ledger character for character.
    """
    amount = Decimal(value).quantize(Decimal("0.01"), ROUND_HALF_UP)  # as the ledger rounds
    if amount == 0:
        amount = abs(amount)  # never "-0.00"
    return f"{amount:.2f}"


MAX_POWER_BITS = 4096  # how large a number `**` may make
MAX_REPEAT = 100_000  # items or characters `*` may make


class FolderLoader(jinja2.FileSystemLoader):
    """Templates from inside their folder only: a symlink pointing out of it
    (`leak.html -> /etc/passwd`) is refused, not rendered into a statement."""

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str, Callable[[], bool]]:
        source, filename, uptodate = super().get_source(environment, template)
        real = Path(filename).resolve()
        roots = [Path(s).resolve() for s in self.searchpath]
        if not any(real.is_relative_to(root) for root in roots):
            raise jinja2.TemplateNotFound(f"{template} (a link to a file outside the folder)")
        return source, filename, uptodate


class Sandbox(ImmutableSandboxedEnvironment):
    """Jinja's sandbox, with the two operators that can exhaust a machine bounded."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if (
            operator == "**"
            and isinstance(left, int)
            and isinstance(right, int)
            and abs(left) > 1
            and right * abs(left).bit_length() > MAX_POWER_BITS
        ):
            raise SecurityError(f"a template's power may have at most {MAX_POWER_BITS} bits")
        if operator == "*":
            sized, count = (left, right) if isinstance(right, int) else (right, left)
            if (
                isinstance(sized, str | list | tuple)
                and isinstance(count, int)
                and len(sized) * count > MAX_REPEAT
            ):
                raise SecurityError(f"a template may repeat at most {MAX_REPEAT:,} items")
        return super().call_binop(context, operator, left, right)


def environment(template_dirs: Sequence[Path]) -> jinja2.Environment:
    env = Sandbox(
        loader=jinja2.ChoiceLoader([FolderLoader(str(d)) for d in template_dirs]),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["money"] = money
    return env


def render_html(env: jinja2.Environment, template: str, context: dict[str, Any]) -> str:
    """Render one document; a broken template becomes an error naming its file and line."""
    try:
        return env.get_template(template).render(**context)
    except jinja2.TemplateSyntaxError as exc:
        raise ChargebackError(
            Problem(f"template syntax: {exc.message}", exc.filename or template, exc.lineno)
        ) from None
    except jinja2.TemplateNotFound as exc:
        raise ChargebackError(
            Problem(f"template '{exc.name}' not found in the template folders")
        ) from None
    except UnicodeDecodeError as exc:
        raise ChargebackError(
            Problem(f"a template is not UTF-8 text ({exc.reason} at byte {exc.start})", template)
        ) from None
    except RecursionError:
        raise ChargebackError(
            Problem("a template includes or calls itself without end", template)
        ) from None
    except (
        jinja2.TemplateError,
        TypeError,
        ValueError,
        ArithmeticError,
        AttributeError,
        KeyError,
        IndexError,
        AssertionError,  # Jinja's own filters assert on some arguments (truncate)
    ) as exc:
        path, line = _template_frame(exc)
        message = f"template error: {exc} (docs/templates.md lists what templates get)"
        raise ChargebackError(Problem(message, path, line)) from None


def _template_frame(exc: BaseException) -> tuple[str | None, int | None]:
    """The innermost template file and line in a Jinja traceback, if any."""
    found: tuple[str | None, int | None] = (None, None)
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename.endswith((".j2", ".html", ".jinja", ".css")):
            found = (frame.filename, frame.lineno)
    return found


@dataclass(frozen=True)
class PdfJob:
    html: str
    base_dir: str  # relative URLs in the HTML resolve here
    allowed: tuple[str, ...]  # folders the fetcher may read
    attachment: tuple[str, str] | None  # (file name, CSV text)
    variant: str | None
    created: str  # ISO date the document is dated; stamps the attachment too


def _fetcher(allowed: tuple[str, ...]) -> Any:
    from weasyprint.urls import URLFetcher

    roots = [Path(a).resolve() for a in allowed]

    class LocalOnly(URLFetcher):  # type: ignore[misc]
        def fetch(self, url: str, headers: Any = None) -> Any:
            if url.startswith("data:"):
                return super().fetch(url, headers)
            if url.startswith("file:"):
                from urllib.request import url2pathname  # http.client, ssl: only for PDFs

                path = Path(url2pathname(urlparse(url).path)).resolve()
                if any(path.is_relative_to(root) for root in roots):
                    return super().fetch(url, headers)
            raise ValueError(
                "refused: statements render without network access and read files "
                "from the template folder only"
            )

    return LocalOnly()


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage().splitlines()[0]
        if message.startswith("Using fontTools instead of HarfBuzz"):
            return  # about the machine's libraries, not the document; the output is the same
        if message.startswith(".notdef glyph rendered"):
            message = (
                "some characters have no glyph in the available fonts and print as boxes; "
                "install a font that has them (for CJK text, e.g. fonts-noto-cjk)"
            )
        if message not in self.messages:
            self.messages.append(message)


def render_pdf(job: PdfJob) -> tuple[bytes, list[str]]:
    """One PDF and the warnings WeasyPrint raised (refused URLs, missing fonts...)."""
    try:
        from weasyprint import HTML, Attachment
    except (OSError, ImportError) as exc:  # WeasyPrint is there, Pango is not
        raise ChargebackError(
            Problem(
                f"PDF output needs the Pango library, which WeasyPrint could not load ({exc}). "
                "On Debian or Ubuntu: apt install libpango-1.0-0 libpangoft2-1.0-0; "
                "or leave pdf out: --format html,csv,json"
            )
        ) from None

    logger = logging.getLogger("weasyprint")
    collect = _Collect()
    logger.addHandler(collect)
    logger.propagate = False
    try:
        attachments = []
        # Dated like the document, not "now": the same inputs on the same day give
        # the same bytes.
        stamp = datetime.fromisoformat(job.created).replace(tzinfo=UTC)
        if job.attachment is not None:
            name, text = job.attachment
            attachments.append(
                Attachment(
                    string=text.encode("utf-8"),
                    name=name,
                    description="The figures on this document, machine-readable",
                    relationship="Data",
                    created=stamp,
                    modified=stamp,
                )
            )
        document = HTML(
            string=job.html,
            base_url=Path(job.base_dir).resolve().as_uri() + "/",
            url_fetcher=_fetcher(job.allowed),
        )
        # A fixed identifier (from the content) keeps the same HTML -> the same bytes.
        identifier = hashlib.sha256(job.html.encode()).hexdigest()[:32].encode()
        pdf = document.write_pdf(
            attachments=attachments,
            pdf_variant=job.variant,
            pdf_identifier=identifier,
            uncompressed_pdf=False,
        )
    finally:
        logger.removeHandler(collect)
    assert pdf is not None
    return pdf, collect.messages


def workers() -> int:
    """CHARGEBACK_WORKERS if set (cron on a shared box may want 1), else the usable cores."""
    setting = os.environ.get("CHARGEBACK_WORKERS", "").strip()
    if setting.isdigit() and int(setting) > 0:
        return int(setting)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def render_pdfs(jobs: list[PdfJob]) -> list[tuple[bytes, list[str]]]:
    """Render in parallel when there is enough to do; results in the jobs' order."""
    n = min(workers(), len(jobs))
    if n <= 1 or len(jobs) <= SERIAL_UP_TO:
        return [render_pdf(job) for job in jobs]
    with ProcessPoolExecutor(max_workers=n, mp_context=get_context("spawn")) as pool:
        return list(pool.map(render_pdf, jobs, chunksize=1))

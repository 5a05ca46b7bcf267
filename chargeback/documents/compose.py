"""Statements and summaries for a run: evidence -> contexts -> HTML -> PDF.

The numbers come from the run's ledger only; evidence (reasons, channels,
examples, daily counts) is gathered once for all periods; each document's
HTML is rendered here, and the PDFs in worker processes (render.py).
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from chargeback import __version__
from chargeback.documents.book import Book
from chargeback.documents.ledger_files import book_months
from chargeback.documents.render import PdfJob, environment, render_html, render_pdfs
from chargeback.documents.statements import Builder
from chargeback.documents.value_doc import ValueBuilder
from chargeback.documents.wording import plural
from chargeback.engine.evidence import Evidence, gather
from chargeback.report import ReportOptions, RunResult, Steps
from chargeback.resources import templates_dir
from chargeback.review.check import leaky_rules


def render_documents(
    result: RunResult, opts: ReportOptions, steps: Steps, book: Book | None = None
) -> dict[str, str | bytes]:
    """{relative path: content} for every summary and statement of the run's periods.

    `book`: the output folder's book before this run; the summaries' trend reads
    it, with this run's months in it (trend.py).
    """
    ws = result.workspace
    assert result.meta is not None
    live = [p for p in result.periods if p not in result.served.frozen]  # closed: not redrawn
    with steps.step("Gathering evidence"):
        in_engine = result.extras.evidence if result.extras is not None else None
        contacts = result.contacts if in_engine is None else in_engine
        evidence = Evidence(lines={}, daily={}, first_date=None, last_date=None)
        leaky: dict[str, str] = {}
        if live and not opts.value_only:  # the statements' evidence
            assert contacts is not None  # run.py read them out when the engine gave none
            evidence = gather(ws, contacts, result.attribution, result.ledger, set(live))
            leaky = leaky_rules(ws, contacts)
        generated = datetime.fromisoformat(result.meta["generated_at"])
        today = generated.astimezone(ZoneInfo(ws.settings.timezone)).date()
        builder = Builder(
            ws,
            result.attribution,
            result.ledger,
            evidence,
            result.meta,
            today,
            leaky,
            book=book_months(result, book),
        )
        docs = [] if opts.value_only else builder.documents(live)
        if result.value is not None:
            value = ValueBuilder(ws, result.value, result.ledger)
            docs += [value.document(p, builder.common(p)) for p in live]
    folders = [opts.templates, templates_dir()] if opts.templates else [templates_dir()]
    template_dirs = [f for f in folders if f is not None]
    env = environment(template_dirs)
    files: dict[str, str | bytes] = {}
    for name, data in result.served.documents.items():  # closed months, as they were
        wanted = name.endswith(".pdf") and "pdf" in opts.formats
        wanted |= name.endswith(".html") and "html" in opts.formats
        if wanted and (not opts.value_only or name.endswith(("/cs-value.pdf", "/cs-value.html"))):
            files[name] = data
    jobs: list[tuple[str, PdfJob]] = []
    with steps.step(f"Rendering {plural(len(docs), 'document')}"):
        for doc in docs:
            context = dict(doc.context)
            context["title"] = doc.title
            context["subject"] = doc.subject
            html = render_html(env, doc.template, context)
            if "html" in opts.formats:
                files[f"{doc.name}.html"] = html
            if "pdf" in opts.formats:
                job = PdfJob(
                    html=html,
                    base_dir=str(template_dirs[0]),
                    allowed=tuple(str(d) for d in template_dirs),
                    attachment=doc.attachment,
                    variant=opts.pdf_variant,
                    created=today.isoformat(),
                )
                jobs.append((f"{doc.name}.pdf", job))
        cache = RenderCache(result.out_dir, template_dirs)
        reused = {name: cache.get(name, job) for name, job in jobs}
        todo = [(name, job) for name, job in jobs if reused[name] is None]
        fresh = dict(zip([n for n, _ in todo], render_pdfs([j for _, j in todo]), strict=True))
    for name, job in jobs:
        pdf, warnings = reused[name] or fresh[name]
        files[name] = pdf
        cache.put(name, job, pdf, warnings)
        for message in warnings:
            # about the fonts, not one document: said once per run
            text = message if message.startswith("some characters") else f"{name}: {message}"
            if text not in result.warnings:
                result.warnings.append(text)
    if jobs:
        files[CACHE_NAME] = cache.dump()
    return files


CACHE_NAME = ".render-cache.json"


class RenderCache:
    """Which PDF each document's HTML gave last time, so a re-run does not redraw it.

    A PDF is reused only when everything it is made from is the same: the HTML
    (which carries the figures and the date), the attachment, the variant, the
    template folders' files (a logo the HTML refers to) and chargeback's
    version; and when the file on disk still has the bytes that were written.
    Rendering is deterministic, so a reused PDF is the PDF a render would give.
    """

    def __init__(self, out_dir: Path, template_dirs: list[Path]) -> None:
        self.out_dir = out_dir
        try:
            self.entries: dict[str, dict[str, Any]] = json.loads(
                (out_dir / CACHE_NAME).read_text(encoding="utf-8")
            )
        except (OSError, ValueError):
            self.entries = {}
        if not isinstance(self.entries, dict):  # damaged: a cache is only ever a shortcut
            self.entries = {}
        digest = hashlib.sha256(__version__.encode())
        for folder in template_dirs:
            for path in sorted(p for p in folder.rglob("*") if p.is_file()):
                digest.update(str(path.relative_to(folder)).encode() + b"\0")
                digest.update(path.read_bytes())
        self.templates = digest.hexdigest()
        self.fresh: dict[str, dict[str, Any]] = {}

    def key(self, job: PdfJob) -> str:
        digest = hashlib.sha256(self.templates.encode())
        for part in (job.html, job.variant or "", job.created, *(job.attachment or ())):
            digest.update(part.encode() + b"\0")
        return digest.hexdigest()

    def get(self, name: str, job: PdfJob) -> tuple[bytes, list[str]] | None:
        entry = self.entries.get(name)
        if not isinstance(entry, dict) or entry.get("key") != self.key(job):
            return None
        try:
            pdf = (self.out_dir / name).read_bytes()
        except OSError:
            return None
        if hashlib.sha256(pdf).hexdigest() != entry.get("sha256"):
            return None  # changed or replaced since: draw it again
        warnings = entry.get("warnings", [])
        if not isinstance(warnings, list) or not all(isinstance(w, str) for w in warnings):
            return None  # a damaged entry: draw it again
        return pdf, warnings

    def put(self, name: str, job: PdfJob, pdf: bytes, warnings: list[str]) -> None:
        self.fresh[name] = {
            "key": self.key(job),
            "sha256": hashlib.sha256(pdf).hexdigest(),
            "warnings": warnings,
        }

    def dump(self) -> str:
        """Earlier runs' entries (other months) kept, this run's replacing theirs."""
        return json.dumps({**self.entries, **self.fresh}, indent=1, sort_keys=True) + "\n"

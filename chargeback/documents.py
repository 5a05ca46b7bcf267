"""Statements and summaries for a run: evidence -> contexts -> HTML -> PDF.

The numbers come from the run's ledger only; evidence (reasons, channels,
examples, daily counts) is gathered once for all periods; each document's
HTML is rendered here, and the PDFs in worker processes (render.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from .evidence import Evidence, gather
from .render import PdfJob, environment, render_html, render_pdfs
from .resources import templates_dir
from .statements import Builder
from .value_doc import ValueBuilder

if TYPE_CHECKING:
    from .run import ReportOptions, RunResult, Steps


def render_documents(
    result: RunResult, opts: ReportOptions, steps: Steps
) -> dict[str, str | bytes]:
    """{relative path: content} for every summary and statement of the run's periods."""
    ws = result.workspace
    assert result.meta is not None
    live = [p for p in result.periods if p not in result.served.frozen]  # closed: not redrawn
    with steps.step("Gathering evidence"):
        if live and not opts.value_only:  # the statements' evidence
            evidence = gather(ws, result.loaded.frame, result.attribution, result.ledger, set(live))
        else:
            evidence = Evidence(lines={}, daily={}, first_date=None, last_date=None)
        generated = datetime.fromisoformat(result.meta["generated_at"])
        today = generated.astimezone(ZoneInfo(ws.settings.timezone)).date()
        builder = Builder(ws, result.attribution, result.ledger, evidence, result.meta, today)
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
    with steps.step(f"Rendering {len(docs)} documents"):
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
        rendered = render_pdfs([job for _, job in jobs])
    for (name, _), (pdf, warnings) in zip(jobs, rendered, strict=True):
        files[name] = pdf
        for message in warnings:
            # about the fonts, not one document: said once per run
            text = message if message.startswith("some characters") else f"{name}: {message}"
            if text not in result.warnings:
                result.warnings.append(text)
    return files

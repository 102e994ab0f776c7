"""Scheduled delivery of the steering report (``[[reports]]`` in pmolens.toml).

``deliver`` builds one configured report (``reports.steering.build_report``, HTML or PDF) as of
the results kept for the latest committed sync, then writes it to ``to_folder`` (atomically: a
reader never sees half a file) and/or mails it (SMTP, STARTTLS, login from environment
variables), and records the attempt in ``report_deliveries``: ``success``, or ``failed`` with one
redacted line naming what failed. ``/health`` and ``pmolens status`` show the last one per report.

``schedule_reports`` registers every report on the server's scheduler as a job that follows the
syncs of the sources in its scope (pipeline/schedule.py says what "follows" means).

Secrets: the SMTP password is read from its environment variable only when a mail is sent and
remembered as a secret (``warehouse.secrets``), so every log line, stored error and answer
masks it in every form, base64 of an AUTH exchange included.
"""

from __future__ import annotations

import asyncio
import logging
import os
import smtplib
import ssl
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Literal

from pmolens.pipeline.schedule import SyncScheduler
from pmolens.reports.i18n import add_labels, day, moment, translator
from pmolens.reports.steering import build_report
from pmolens.warehouse.config import ReportConfig, Settings, SmtpConfig
from pmolens.warehouse.results import kept_as_of
from pmolens.warehouse.secrets import redact
from pmolens.warehouse.store import Warehouse, utcnow

log = logging.getLogger("pmolens.reports")

MAX_ERROR = 500  # one line, short enough for a status table

add_labels(
    {
        "delivery_subject": {
            "en": "{title} {name} ({scope}): data as of {as_of}",
            "nl": "{title} {name} ({scope}): peildatum {as_of}",
        },
        "delivery_scope_all": {"en": "whole chain", "nl": "hele keten"},
        "delivery_body": {
            "en": "Attached is the steering report {name} for {scope}, with data as of {as_of}."
            "\n\n{how}\n\nThis message was sent automatically by pmolens on its schedule.",
            "nl": "Bijgevoegd is de stuurrapportage {name} voor {scope}, met peildatum {as_of}."
            "\n\n{how}\n\nDit bericht is automatisch volgens planning verstuurd door pmolens.",
        },
        "delivery_body_scope_all": {"en": "the whole chain", "nl": "de hele keten"},
        "delivery_how_html": {
            "en": "Open the HTML file in a web browser; it also works without an internet "
            "connection.",
            "nl": "Open het HTML-bestand in een webbrowser; het werkt ook zonder "
            "internetverbinding.",
        },
        "delivery_how_pdf": {
            "en": "The PDF can be read and printed as it is.",
            "nl": "De pdf kunt u zo lezen en afdrukken.",
        },
    }
)


@dataclass(frozen=True)
class Document:
    """One built report: the bytes, their file name and MIME type, and the data moment."""

    content: bytes
    filename: str
    mime: tuple[str, str]
    as_of: datetime


@dataclass(frozen=True)
class Delivered:
    """What one delivery did, as recorded in ``report_deliveries``."""

    delivery_id: int
    report: str
    outcome: Literal["success", "failed"]
    target: str
    as_of: datetime | None
    error: str | None
    files: tuple[Path, ...] = ()


class DeliveryError(RuntimeError):
    """A target refused the report (e.g. the relay refused every recipient)."""


def target_text(settings: Settings, report: ReportConfig) -> str:
    """Where a report goes, for the record (addresses, never credentials)."""
    parts = []
    folder = settings.report_folder(report)
    if folder is not None:
        parts.append(f"folder {folder}")
    if report.smtp is not None:
        smtp = report.smtp
        parts.append(f"smtp {smtp.host}:{smtp.port} to {', '.join(smtp.recipients)}")
    return "; ".join(parts)


def build(warehouse: Warehouse, settings: Settings, report: ReportConfig) -> Document:
    """The report as of the results kept for the latest committed sync (or as of now when
    none are kept for it yet), in the report's language, scope and format."""
    kept, _ = kept_as_of(warehouse, warehouse.generation())
    as_of = kept or utcnow()
    html = build_report(
        warehouse, settings, lang=report.lang, organisation=report.organisation, as_of=as_of
    )
    stem = f"{report.name}-{as_of.astimezone(UTC):%Y-%m-%d-%H%M}"
    if report.format == "pdf":
        from pmolens.reports.pdf import print_html  # headless Chromium, only when asked

        pdf = print_html(html, report.lang).pdf
        return Document(pdf, f"{stem}.pdf", ("application", "pdf"), as_of)
    return Document(html.encode("utf-8"), f"{stem}.html", ("text", "html"), as_of)


def write_atomic(folder: Path, document: Document) -> Path:
    """Write the file next to its final name, then rename it into place (one step on POSIX
    and Windows), so a file share's reader never sees half a report."""
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / document.filename
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{document.filename}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(document.content)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, final)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return final


def message(report: ReportConfig, smtp: SmtpConfig, document: Document) -> EmailMessage:
    """The mail: subject naming the report, its scope and data moment; a short body in the
    report's language; the report attached."""
    t = translator(report.lang)
    mail = EmailMessage()
    mail["From"] = smtp.sender
    mail["To"] = ", ".join(smtp.recipients)
    mail["Subject"] = t("delivery_subject").format(
        title=t("report_title"),
        name=report.name,
        scope=report.organisation or t("delivery_scope_all"),
        as_of=day(document.as_of, report.lang),
    )
    mail["Date"] = formatdate(usegmt=True)
    mail["Message-ID"] = make_msgid(domain=smtp.sender.rsplit("@", 1)[-1])
    mail.set_content(
        t("delivery_body").format(
            name=report.name,
            scope=report.organisation or t("delivery_body_scope_all"),
            as_of=moment(document.as_of, report.lang),
            how=t(f"delivery_how_{report.format}"),
        )
    )
    maintype, subtype = document.mime
    if maintype == "text":  # named charset, so every mail client reads the Dutch right
        mail.add_attachment(
            document.content.decode("utf-8"),
            subtype=subtype,
            charset="utf-8",
            cte="base64",
            filename=document.filename,
        )
    else:
        mail.add_attachment(
            document.content, maintype=maintype, subtype=subtype, filename=document.filename
        )
    return mail


def send(smtp: SmtpConfig, mail: EmailMessage, base_dir: Path) -> None:
    """Hand the mail to the relay: STARTTLS (certificate and host name checked) before any
    login; credentials only from the environment. Fails when a recipient is refused."""
    credentials = smtp.credentials()
    with smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout_seconds) as client:
        client.ehlo()
        if smtp.starttls:
            ca_file = None
            if smtp.ca_file:
                ca_file = Path(smtp.ca_file)
                ca_file = ca_file if ca_file.is_absolute() else base_dir / ca_file
            client.starttls(context=ssl.create_default_context(cafile=ca_file))
            client.ehlo()
        if credentials is not None:
            client.login(*credentials)
        refused = client.send_message(mail, from_addr=smtp.sender, to_addrs=smtp.recipients)
    if refused:
        raise DeliveryError(f"recipients refused: {', '.join(sorted(refused))}")


def one_line(where: str, exc: BaseException, secrets: tuple[str, ...] = ()) -> str:
    """``<where>: <what went wrong>`` on one line, every known secret masked."""
    if isinstance(exc, smtplib.SMTPResponseException):
        text = exc.smtp_error
        said = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
        what = f"{type(exc).__name__}: {exc.smtp_code} {said}"
    else:
        what = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return redact(" ".join(f"{where}: {what}".split()), secrets)[:MAX_ERROR]


def deliver(warehouse: Warehouse, settings: Settings, report: ReportConfig) -> Delivered:
    """Build, write and/or mail one report and record the attempt. Never raises for a
    delivery problem: it is recorded as ``failed`` with one line (every target is tried; the
    folder copy is written even when the mail fails)."""
    target = target_text(settings, report)
    delivery_id = warehouse.begin_delivery(report.name, target)
    errors: list[str] = []
    files: list[Path] = []
    as_of: datetime | None = None
    try:
        document = build(warehouse, settings, report)
        as_of = document.as_of
    except Exception as exc:
        log.debug("building report %s failed", report.name, exc_info=True)
        errors.append(one_line("build", exc))
    else:
        folder = settings.report_folder(report)
        if folder is not None:
            try:
                files.append(write_atomic(folder, document))
            except Exception as exc:
                errors.append(one_line(f"folder {folder}", exc))
        if report.smtp is not None:
            smtp = report.smtp
            try:
                send(smtp, message(report, smtp, document), settings.base_dir)
            except Exception as exc:
                secret = os.environ.get(smtp.password_env or "", "")
                errors.append(one_line(f"smtp {smtp.host}:{smtp.port}", exc, (secret,)))
    error = "; ".join(errors)[:MAX_ERROR] or None
    warehouse.finish_delivery(delivery_id, error=error, as_of=as_of)
    if error:
        log.error("report %s not delivered: %s", report.name, error)
    else:
        log.info("report %s delivered to %s", report.name, target)
    return Delivered(
        delivery_id,
        report.name,
        "failed" if error else "success",
        target,
        as_of,
        error,
        tuple(files),
    )


def schedule_reports(scheduler: SyncScheduler, warehouse: Warehouse, settings: Settings) -> None:
    """Every ``[[reports]]`` entry as a scheduler job on its cron, following the syncs of the
    sources in its scope; the delivery runs in a worker thread (building and mailing block)."""
    for report in settings.reports:

        async def run(report: ReportConfig = report) -> Delivered:
            return await asyncio.to_thread(deliver, warehouse, settings, report)

        scheduler.add_job(
            f"report:{report.name}", report.cron, run, follows=settings.report_sources(report)
        )

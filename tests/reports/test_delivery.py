"""Scheduled report delivery (issue 14, point 4) against a real SMTP server on loopback.

aiosmtpd runs in the test on a free port: plain, and with STARTTLS and AUTH over a self-signed
certificate made here (the client trusts it through ``smtp.ca_file``, so the host name and
certificate checks stay on). Delivery failures are recorded with one line that never holds the
SMTP password, in any form; /health and `pmolens status` show them.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import email
import email.policy
import ipaddress
import logging
import shutil
import socket
import ssl
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from pmolens.api.app import create_app
from pmolens.api.cli import app as cli
from pmolens.api.runtime import make_runtime
from pmolens.connectors.http import TrackerClient
from pmolens.pipeline.manager import SyncManager
from pmolens.pipeline.schedule import SyncScheduler, validate_schedules
from pmolens.reports import delivery
from pmolens.reports.delivery import deliver, schedule_reports
from pmolens.warehouse.config import ConfigError, Settings, settings_from_dict
from pmolens.warehouse.results import kept_as_of
from pmolens.warehouse.secrets import forms
from pmolens.warehouse.store import Warehouse
from tests.api.conftest import OPERATOR, VIEWER, auth, chain_settings, seed
from tests.connectors.fake_jira import BASE, FakeJira

PASSWORD = "s3cret-Relay-pass!"
USER = "pmolens@relay.example"
AS_OF = dt.datetime(2026, 11, 22, 9, 30, tzinfo=dt.UTC)


# ------------------------------------------------------------------ a local SMTP server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Inbox:
    """Collects what the server accepted (and whether it came over TLS, and who logged in)."""

    def __init__(self) -> None:
        self.mails: list[tuple[str, list[str], EmailMessage, bool]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.mails.append(
            (envelope.mail_from, list(envelope.rcpt_tos), parsed, session.ssl is not None)
        )
        return "250 OK"


def self_signed(tmp: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp / "relay.pem", tmp / "relay.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def echoing_authenticator(server, session, envelope, mechanism, auth_data) -> AuthResult:
    """Accepts USER/PASSWORD; a wrong login is refused with a reply that echoes the AUTH PLAIN
    blob and the password, as a badly behaved relay might."""
    assert isinstance(auth_data, LoginPassword)
    if auth_data.login == USER.encode() and auth_data.password == PASSWORD.encode():
        return AuthResult(success=True)
    blob = base64.b64encode(b"\0" + auth_data.login + b"\0" + auth_data.password).decode()
    said = auth_data.password.decode()
    return AuthResult(
        success=False, handled=False, message=f"535 5.7.8 rejected AUTH PLAIN {blob} ({said})"
    )


@pytest.fixture
def relay(tmp_path):
    """(inbox, port, ca_file): an SMTP server that requires STARTTLS before AUTH."""
    cert_file, key_file = self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    inbox, port = Inbox(), free_port()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        tls_context=context,
        require_starttls=True,
        authenticator=echoing_authenticator,
        auth_require_tls=True,
    )
    controller.start()
    yield inbox, port, cert_file
    controller.stop()


@pytest.fixture
def plain_relay():
    """(inbox, port): a relay on loopback that takes mail without TLS or login."""
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


# ------------------------------------------------------------------ settings and data


def with_reports(settings: Settings, base: Path, *reports: dict[str, Any]) -> Settings:
    """The chain settings with ``[[reports]]`` entries (validated as a config file would be)."""
    data = settings.model_dump(exclude={"base_dir"}, exclude_defaults=True)
    return settings_from_dict({**data, "reports": list(reports)}, base_dir=base)


def smtp(port: int, **extra: Any) -> dict[str, Any]:
    return {
        "host": "127.0.0.1",
        "port": port,
        "starttls": False,
        "sender": "pmo@chain.example",
        "recipients": ["board@chain.example", "cpo@contoso.example"],
        "timeout_seconds": 5,
        **extra,
    }


def tls_smtp(port: int, ca_file: Path, **extra: Any) -> dict[str, Any]:
    return smtp(
        port,
        starttls=True,
        ca_file=str(ca_file),
        username_env="TEST_SMTP_USER",
        password_env="TEST_SMTP_PASSWORD",
        **extra,
    )


@pytest.fixture(scope="module")
def seeded(tmp_path_factory) -> Path:
    """The two-organisation chain, synced and refreshed once; each test works on a copy."""
    tmp = tmp_path_factory.mktemp("seeded")
    settings = chain_settings(tmp)
    with Warehouse(settings.warehouse_path) as warehouse:
        seed(warehouse, settings)
    return settings.warehouse_path


@pytest.fixture
def chain(tmp_path, monkeypatch, seeded):
    """The seeded chain's settings (without reports) and a warehouse of its own."""
    monkeypatch.setenv("TEST_VIEWER_TOKEN", VIEWER)
    monkeypatch.setenv("TEST_OPERATOR_TOKEN", OPERATOR)
    monkeypatch.setenv("TEST_SMTP_USER", USER)
    monkeypatch.setenv("TEST_SMTP_PASSWORD", PASSWORD)
    settings = chain_settings(tmp_path)
    shutil.copy(seeded, settings.warehouse_path)
    with Warehouse(settings.warehouse_path) as warehouse:
        yield settings, warehouse


@pytest.fixture
def quick_report(monkeypatch):
    """A small stand-in for the rendered report where the test is about delivery, not the
    report (the real build is exercised by test_real_report_by_mail_and_folder)."""
    calls: list[dict[str, Any]] = []

    def build_report(warehouse, settings, **kwargs):
        calls.append(kwargs)
        return f"<html lang={kwargs['lang']}><body>report {kwargs['organisation']}</body></html>"

    monkeypatch.setattr(delivery, "build_report", build_report)
    return calls


def rows(warehouse: Warehouse) -> list[dict[str, Any]]:
    return warehouse.query("SELECT * FROM report_deliveries ORDER BY delivery_id").to_dicts()


def assert_no_password(text: str) -> None:
    assert PASSWORD not in text
    for form in forms(PASSWORD):
        assert form not in text, form
    blob = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode()
    assert blob not in text


# ------------------------------------------------------------------ delivery


def test_real_report_by_mail_over_starttls_and_to_a_folder(chain, relay, tmp_path):
    """The steering report, built by build_report in Dutch for one organisation, mailed over
    STARTTLS with a login and written to the folder; the delivery is recorded with its as-of."""
    base, warehouse = chain
    inbox, port, ca_file = relay
    settings = with_reports(
        base,
        tmp_path,
        {
            "name": "weekly-contoso",
            "cron": "0 7 * * mon",
            "lang": "nl",
            "organisation": "Contoso",
            "to_folder": "out",
            "smtp": tls_smtp(port, ca_file),
        },
    )
    done = deliver(warehouse, settings, settings.reports[0])
    assert done.outcome == "success", done.error
    kept, _ = kept_as_of(warehouse, warehouse.generation())
    assert done.as_of == kept
    [(sender, recipients, mail, over_tls)] = inbox.mails
    assert over_tls
    assert sender == "pmo@chain.example"
    assert recipients == ["board@chain.example", "cpo@contoso.example"]
    assert mail["To"] == "board@chain.example, cpo@contoso.example"
    assert mail["Subject"].startswith("Stuurrapportage weekly-contoso (Contoso): peildatum ")
    assert kept is not None and kept.strftime("%d-%m-%Y") in mail["Subject"]
    body = mail.get_body(("plain",))
    assert body is not None and "Bijgevoegd is de stuurrapportage" in body.get_content()
    [attachment] = list(mail.iter_attachments())
    assert attachment.get_content_type() == "text/html"
    filename = attachment.get_filename()
    assert filename and filename.startswith("weekly-contoso-") and filename.endswith(".html")
    page = attachment.get_content()
    assert "Stuurrapportage" in page and "CO-1" in page
    [written] = done.files
    assert written == tmp_path / "out" / filename
    assert written.read_text(encoding="utf-8") == page.removesuffix("\n")  # mail ends lines
    assert [p.name for p in (tmp_path / "out").iterdir()] == [filename]  # no temporary left
    [row] = rows(warehouse)
    assert row["outcome"] == "success" and row["error"] is None and row["as_of"] == kept
    assert row["target"] == (
        f"folder {tmp_path / 'out'}; smtp 127.0.0.1:{port} to "
        "board@chain.example, cpo@contoso.example"
    )


def test_starttls_login_attachment_subject_recipients(chain, relay, tmp_path, quick_report):
    """The mail path alone (the report stubbed): STARTTLS with the certificate checked against
    ``ca_file``, then the login, one mail to every recipient with the report attached."""
    base, warehouse = chain
    inbox, port, ca_file = relay
    settings = with_reports(
        base,
        tmp_path,
        {"name": "weekly", "cron": "0 7 * * mon", "smtp": tls_smtp(port, ca_file)},
    )
    done = deliver(warehouse, settings, settings.reports[0])
    assert done.outcome == "success", done.error
    [(sender, recipients, mail, over_tls)] = inbox.mails
    assert over_tls and sender == "pmo@chain.example"
    assert recipients == ["board@chain.example", "cpo@contoso.example"]
    assert mail["Subject"] == (
        f"Steering report weekly (whole chain): data as of {done.as_of:%-d %b %Y}"  # type: ignore[str-format]
    )
    [attachment] = list(mail.iter_attachments())
    assert attachment.get_filename() == f"weekly-{done.as_of:%Y-%m-%d-%H%M}.html"  # type: ignore[str-format]
    assert attachment.get_content() == "<html lang=en><body>report None</body></html>\n"


def test_plain_relay_english_whole_chain(chain, plain_relay, tmp_path, quick_report):
    base, warehouse = chain
    inbox, port = plain_relay
    settings = with_reports(
        base, tmp_path, {"name": "daily", "cron": "0 6 * * *", "smtp": smtp(port)}
    )
    done = deliver(warehouse, settings, settings.reports[0])
    assert done.outcome == "success", done.error
    assert quick_report == [{"lang": "en", "organisation": None, "as_of": done.as_of}]
    [(_, recipients, mail, over_tls)] = inbox.mails
    assert not over_tls and len(recipients) == 2
    assert mail["Subject"].startswith("Steering report daily (whole chain): data as of ")
    body = mail.get_body(("plain",))
    assert body is not None and "for the whole chain" in body.get_content()


def test_a_wrong_password_is_recorded_failed_without_the_password(
    chain, relay, tmp_path, quick_report, monkeypatch, caplog
):
    base, warehouse = chain
    _, port, ca_file = relay
    monkeypatch.setenv("TEST_SMTP_PASSWORD", PASSWORD + "-wrong")
    settings = with_reports(
        base,
        tmp_path,
        {"name": "weekly", "cron": "0 7 * * mon", "smtp": tls_smtp(port, ca_file)},
    )
    with caplog.at_level(logging.DEBUG):
        done = deliver(warehouse, settings, settings.reports[0])
    assert done.outcome == "failed" and done.error is not None
    assert done.error.startswith(f"smtp 127.0.0.1:{port}: SMTPAuthenticationError: 535 5.7.8")
    assert "\n" not in done.error and "***" in done.error
    wrong = PASSWORD + "-wrong"
    for text in (done.error, rows(warehouse)[0]["error"], caplog.text):
        assert wrong not in text
        for form in forms(wrong):
            assert form not in text, form
    [row] = rows(warehouse)
    assert row["outcome"] == "failed" and row["finished"] is not None


def test_a_refused_port_is_recorded_failed_in_one_line(chain, tmp_path, quick_report):
    base, warehouse = chain
    port = free_port()  # nothing listens there
    settings = with_reports(
        base,
        tmp_path,
        {"name": "weekly", "cron": "0 7 * * mon", "to_folder": "out", "smtp": smtp(port)},
    )
    done = deliver(warehouse, settings, settings.reports[0])
    assert done.outcome == "failed"
    assert done.error == (
        f"smtp 127.0.0.1:{port}: ConnectionRefusedError: [Errno 111] Connection refused"
    )
    assert len(done.files) == 1 and done.files[0].exists()  # the folder copy is still written


def test_starttls_is_required_when_asked(chain, plain_relay, tmp_path, quick_report):
    """A relay that does not offer STARTTLS gets no mail (and never a login)."""
    base, warehouse = chain
    inbox, port = plain_relay
    settings = with_reports(
        base,
        tmp_path,
        {"name": "weekly", "cron": "0 7 * * mon", "smtp": smtp(port, starttls=True)},
    )
    done = deliver(warehouse, settings, settings.reports[0])
    assert done.outcome == "failed" and done.error is not None
    assert "STARTTLS extension not supported" in done.error
    assert inbox.mails == []


def test_an_unset_password_variable_names_the_key(
    chain, relay, tmp_path, monkeypatch, quick_report
):
    base, warehouse = chain
    _, port, ca_file = relay
    monkeypatch.delenv("TEST_SMTP_PASSWORD")
    settings = with_reports(
        base, tmp_path, {"name": "weekly", "cron": "0 7 * * mon", "smtp": tls_smtp(port, ca_file)}
    )
    done = deliver(warehouse, settings, settings.reports[0])
    assert done.error == (
        f"smtp 127.0.0.1:{port}: ConfigError: smtp.password_env: environment variable "
        "TEST_SMTP_PASSWORD is not set - export it (the mail relay's login)"
    )


def test_folder_delivery_writes_the_file(chain, tmp_path, quick_report):
    base, warehouse = chain
    settings = with_reports(
        base,
        tmp_path,
        {"name": "weekly-nl", "cron": "0 7 * * mon", "lang": "nl", "to_folder": "share/pmo"},
    )
    done = deliver(warehouse, settings, settings.reports[0])
    assert done.outcome == "success"
    [written] = done.files
    assert written.parent == tmp_path / "share" / "pmo"
    assert written.read_text(encoding="utf-8") == "<html lang=nl><body>report None</body></html>"
    assert written.name == f"weekly-nl-{done.as_of:%Y-%m-%d-%H%M}.html"  # type: ignore[str-format]


def test_a_report_that_cannot_be_built_is_recorded(chain, tmp_path, monkeypatch):
    base, warehouse = chain

    def broken(*args, **kwargs):
        raise ValueError("unknown organisation 'Contoso'\nsecond line")

    monkeypatch.setattr(delivery, "build_report", broken)
    settings = with_reports(
        base, tmp_path, {"name": "weekly", "cron": "0 7 * * mon", "to_folder": "out"}
    )
    done = deliver(warehouse, settings, settings.reports[0])
    assert done.error == "build: ValueError: unknown organisation 'Contoso' second line"
    assert not (tmp_path / "out").exists()


@pytest.mark.browser
@pytest.mark.skipif(
    shutil.which("chromium") is None, reason="needs Debian chromium (make chromium)"
)
def test_pdf_to_a_folder(chain, tmp_path):
    pytest.importorskip("pmolens.reports.pdf")  # the PDF printer (issue 14, point 2)
    base, warehouse = chain
    settings = with_reports(
        base,
        tmp_path,
        {"name": "pack", "cron": "0 7 * * mon", "format": "pdf", "to_folder": "out"},
    )
    done = deliver(warehouse, settings, settings.reports[0])
    assert done.outcome == "success", done.error
    [written] = done.files
    assert written.suffix == ".pdf" and written.read_bytes().startswith(b"%PDF")


# ------------------------------------------------------------------ configuration


def config_error(tmp_path, report: dict[str, Any]) -> str:
    data = chain_settings(tmp_path).model_dump(exclude={"base_dir"}, exclude_defaults=True)
    with pytest.raises(ConfigError) as caught:
        settings = settings_from_dict({**data, "reports": [report]}, source_name="pmolens.toml")
        validate_schedules(settings)
    return str(caught.value)


def test_config_errors_name_the_key_and_the_fix(tmp_path):
    base = {"name": "weekly", "cron": "0 7 * * mon", "to_folder": "out"}
    assert config_error(tmp_path, {**base, "organisation": "Nobody"}) == (
        "pmolens.toml: reports (weekly).organisation: 'Nobody' is not a configured organisation "
        "(known: ['Contoso', 'Northwind']); leave it out for the whole chain"
    )
    assert config_error(tmp_path, {**base, "cron": "every monday"}).startswith(
        "reports (weekly).cron: 'every monday' is not a cron expression"
    )
    assert config_error(tmp_path, {**base, "format": "docx"}) == (
        "pmolens.toml: reports[0] (weekly).format: Input should be 'html' or 'pdf' (got 'docx')"
    )
    assert "reports[0] (weekly).lang" in config_error(tmp_path, {**base, "lang": "de"})
    assert "reports[0] (weekly).smtp.sender: required key is missing" in config_error(
        tmp_path, {**base, "smtp": {"host": "relay", "recipients": ["a@b.example"]}}
    )
    plain_login = config_error(
        tmp_path,
        {**base, "smtp": {**smtp(25), "username_env": "U", "password_env": "P"}},
    )
    assert "reports[0] (weekly).smtp: credentials are never sent in clear" in plain_login
    pasted = config_error(tmp_path, {**base, "smtp": {**smtp(25), "password_env": "hunter2!"}})
    assert "reports[0] (weekly).smtp.password_env" in pasted
    nowhere = config_error(tmp_path, {"name": "weekly", "cron": "0 7 * * mon"})
    assert "reports[0] (weekly): a report needs somewhere to go" in nowhere
    assert "report names must be unique" in config_error_many(tmp_path, [base, base])


def config_error_many(tmp_path, reports: list[dict[str, Any]]) -> str:
    data = chain_settings(tmp_path).model_dump(exclude={"base_dir"}, exclude_defaults=True)
    with pytest.raises(ConfigError) as caught:
        settings_from_dict({**data, "reports": reports})
    return str(caught.value)


# ------------------------------------------------------------------ scheduling


async def _no_sleep(seconds: float) -> None:
    return None


def test_the_report_job_runs_after_the_sync_in_its_scope(tmp_path, quick_report):
    """Source and report on the same cron: at 10:10 the sync starts and the report waits for
    it (and the results refresh after it), then runs on that sync's kept results. A report
    whose scope has no running sync does not wait."""
    settings = settings_from_dict(
        {
            "warehouse": {"path": str(tmp_path / "s.duckdb")},
            "organisations": [{"name": "Fake"}, {"name": "Other"}],
            "sources": [
                {
                    "name": "fk",
                    "kind": "jira_cloud",
                    "organisation": "Fake",
                    "base_url": BASE,
                    "email": "a@b.example",
                    "token_env": "FK_TOKEN",
                    "jql": "project = FK",
                    "schedule": "*/10 * * * *",
                }
            ],
            "reports": [
                {"name": "fake", "cron": "*/10 * * * *", "organisation": "Fake", "to_folder": "o"},
                {
                    "name": "other",
                    "cron": "*/10 * * * *",
                    "organisation": "Other",
                    "to_folder": "o",
                },
            ],
        },
        base_dir=tmp_path,
    )
    now = [dt.datetime(2026, 11, 22, 10, 9, tzinfo=dt.UTC)]
    fake = FakeJira(count=2)

    async def scenario() -> None:
        gate = asyncio.Event()

        async def held(request: httpx.Request) -> httpx.Response:
            await gate.wait()  # the sync stays running until the test lets go
            with respx.mock(assert_all_called=False) as router:
                fake.mount(router)
                async with httpx.AsyncClient() as inner:
                    return await inner.send(request)

        with Warehouse(settings.warehouse_path) as warehouse:
            manager = SyncManager(
                warehouse,
                settings,
                client_factory=lambda c: TrackerClient(
                    c.base_url, transport=httpx.MockTransport(held), sleep=_no_sleep
                ),
            )
            scheduler = SyncScheduler(settings, manager, clock=lambda: now[0])
            schedule_reports(scheduler, warehouse, settings)
            assert scheduler.tick() == []
            now[0] = dt.datetime(2026, 11, 22, 10, 10, tzinfo=dt.UTC)
            assert scheduler.tick() == ["fk"]
            assert scheduler.jobs["report:fake"].due_since == now[0]  # waits for fk
            assert scheduler.jobs["report:fake"].task is None
            assert scheduler.jobs["report:other"].task is not None  # nothing to wait for
            assert scheduler.seconds_to_next() == 1.0
            await asyncio.sleep(0.05)
            assert scheduler.tick_jobs() == []  # still syncing
            gate.set()
            await manager.wait()
            now[0] += dt.timedelta(seconds=30)
            assert scheduler.tick_jobs() == ["report:fake"]
            await scheduler.wait_jobs()
            [run_id] = warehouse.query("SELECT run_id FROM sync_runs")["run_id"].to_list()
            kept, _ = kept_as_of(warehouse, run_id)
            assert kept is not None
            delivered = warehouse.query(
                "SELECT report, outcome, as_of FROM report_deliveries ORDER BY report"
            ).rows()
            assert delivered[0] == ("fake", "success", kept)  # the sync's kept results
            assert delivered[1][:2] == ("other", "success")
            # the next fire time is the report's own cron, missed times coalesced
            assert scheduler.jobs["report:fake"].next_fire == dt.datetime(
                2026, 11, 22, 10, 20, tzinfo=dt.UTC
            )

    asyncio.run(scenario())


# ------------------------------------------------------------------ visible


def test_health_and_status_show_the_last_delivery(chain, tmp_path, quick_report, monkeypatch):
    base, warehouse = chain
    port = free_port()
    settings = with_reports(
        base,
        tmp_path,
        {"name": "weekly", "cron": "0 7 * * mon", "to_folder": "out"},
        {
            "name": "mailed",
            "cron": "0 7 * * mon",
            "smtp": tls_smtp(port, tmp_path / "no-ca-needed.pem"),
        },
        {"name": "never", "cron": "0 7 1 * *", "to_folder": "out"},
    )
    assert deliver(warehouse, settings, settings.reports[0]).outcome == "success"
    failed = deliver(warehouse, settings, settings.reports[1])
    assert failed.outcome == "failed" and failed.error and "ConnectionRefusedError" in failed.error
    warehouse.close()

    runtime = make_runtime(settings)
    with TestClient(create_app(runtime)) as client:
        anonymous = client.get("/health").json()
        viewer = client.get("/health", headers=auth(VIEWER)).json()
    runtime.warehouse.close()
    assert anonymous["status"] == "degraded"
    assert [(r["report"], r["last_outcome"]) for r in anonymous["reports"]] == [
        ("weekly", "success"),
        ("mailed", "failed"),
        ("never", None),
    ]
    assert all(r["last_error"] is None for r in anonymous["reports"])
    assert viewer["reports"][1]["last_error"] == failed.error
    assert viewer["reports"][0]["as_of"] is not None

    config = tmp_path / "pmolens.toml"
    config.write_text(
        f"""
[warehouse]
path = "{settings.warehouse_path}"

[[organisations]]
name = "Northwind"

[[organisations]]
name = "Contoso"

[[reports]]
name = "weekly"
cron = "0 7 * * mon"
to_folder = "out"

[[reports]]
name = "mailed"
cron = "0 7 * * mon"
[reports.smtp]
host = "127.0.0.1"
port = {port}
sender = "pmo@chain.example"
recipients = ["board@chain.example"]
""",
        encoding="utf-8",
    )
    result = CliRunner().invoke(cli, ["status", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "weekly" in result.output and "success" in result.output
    assert f"mailed: {failed.error}" in result.output.replace("\n", "")
    assert_no_password(result.output)


def test_cli_deliver_now(chain, tmp_path, quick_report):
    base, warehouse = chain
    warehouse.close()
    config = tmp_path / "pmolens.toml"
    config.write_text(
        f"""
[warehouse]
path = "{base.warehouse_path}"

[[reports]]
name = "weekly"
cron = "0 7 * * mon"
lang = "nl"
to_folder = "out"
""",
        encoding="utf-8",
    )
    done = CliRunner().invoke(cli, ["deliver", "weekly", "--config", str(config)])
    assert done.exit_code == 0, done.output
    assert f"delivered weekly to folder {tmp_path / 'out'}" in done.output.replace("\n", "")
    assert len(list((tmp_path / "out").glob("weekly-*.html"))) == 1
    unknown = CliRunner().invoke(cli, ["deliver", "monthly", "--config", str(config)])
    assert unknown.exit_code == 2
    assert "no report named 'monthly' under [[reports]] (known: ['weekly'])" in unknown.output

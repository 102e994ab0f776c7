"""Configuration: one ``pmolens.toml`` read into one Settings object.

Secrets are never in the file: a source names the environment variable that holds its token
(``token_env``), and the token is read only when a connector is built. Every error names the key
and the fix.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pmolens.warehouse import secrets
from pmolens.warehouse.errors import ConfigError as ConfigError
from pmolens.warehouse.model import CATEGORIES, LEVELS
from pmolens.warehouse.settings_analytics import (
    AnalyticsSettings,
    CustomRule,
    RulesSettings,
    duplicate_ids,
    explain,
)

SourceKind = Literal["jira_cloud", "jira_dc", "azure_devops"]
DEFAULT_CONFIG = "pmolens.toml"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FieldMap(Strict):
    """Tracker field ids for the things every organisation keeps in a different place."""

    story_points: str | None = None  # Jira Cloud: often customfield_10016
    sprint: str | None = None  # Jira: customfield_10020 (Cloud) / the Sprint custom field (DC)
    team: str | None = None  # a team custom field, when teams_from = "field"
    epic_link: str | None = None  # Jira DC / older company-managed: the Epic Link custom field
    flagged: str | None = None  # Jira "Flagged" custom field
    rank: str | None = None  # Jira "Rank" custom field (LexoRank), often customfield_10019
    business_value: str | None = None
    cost: str | None = None
    time_criticality: str | None = None
    risk_reduction: str | None = None
    target_date: str | None = (
        None  # defaults: Jira duedate, ADO Microsoft.VSTS.Scheduling.TargetDate
    )


class LinkTypes(Strict):
    """Which tracker link type names mean what. Names are compared case-insensitively.

    ``blocks``: the *outward* issue is blocked ("A blocks B"). ``depends``: the outward issue is the
    blocker ("A depends on B"). Anything not listed is kept as ``relates`` and reported once.
    """

    blocks: list[str] = ["Blocks"]
    depends: list[str] = ["Dependency", "Depends", "Depends on"]
    relates: list[str] = ["Relates", "Cloners", "Relation"]
    duplicates: list[str] = ["Duplicate"]


class CrossLinkPattern(Strict):
    """A text reference to another tracker's item, e.g. ``ADO#1234`` in a label or summary.

    ``pattern`` is a regex with one group capturing the native id; ``source`` names the source
    that id belongs to.
    """

    pattern: str
    source: str

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            compiled = re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression ({exc})") from exc
        if compiled.groups != 1:
            raise ValueError("needs exactly one capture group for the native id")
        return value


class SourceConfig(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    kind: SourceKind
    organisation: str
    base_url: str
    token_env: str = Field(description="environment variable holding the API token / PAT")
    email: str | None = None  # Jira Cloud basic auth user
    # Jira
    jql: str | None = None  # scope, e.g. "project in (ABC, DEF)"
    boards: list[int] = []  # Jira agile boards to read sprints from
    # Jira has no bulk remote-link API: remote links (cross-tracker dependencies) are read per issue,
    # only for changed issues matching this JQL (e.g. 'labels = chain'); None = do not read them.
    remote_links_jql: str | None = None
    # Azure DevOps
    project: str | None = None
    area_paths: list[str] = []  # limit to these area paths (under), empty = whole project
    # Mapping
    teams_from: Literal["field", "component", "project", "board", "area_path"] = "field"
    team_map: dict[str, str] = {}  # raw team value (field value, component, area path) -> team
    levels: dict[str, str] = {}  # issue / work item type -> level, over the defaults
    status_categories: dict[str, str] = {}  # status name -> category, over the tracker's own
    blocked_statuses: list[str] = ["Blocked", "Impeded", "On Hold"]
    fields: FieldMap = FieldMap()
    link_types: LinkTypes = LinkTypes()
    # Sync behaviour
    schedule: str | None = None  # cron expression, e.g. "*/30 * * * *"
    concurrency: int = Field(8, ge=1, le=64)
    page_size: int = Field(100, ge=1, le=5000)
    overlap_minutes: int = Field(60, ge=0)
    reconcile: bool = True
    # reconciliation never marks more than this share of the source's live items deleted in one
    # run (a wrong scope or token would otherwise wipe it); `pmolens sync --allow-mass-delete`
    max_delete_share: float = Field(0.2, ge=0, le=1)
    timeout_seconds: float = Field(30.0, gt=0)
    max_retries: int = Field(5, ge=0, le=20)

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not re.match(r"^https?://[^\s/]+", value):
            raise ValueError("must start with https:// (or http:// for a local simulator)")
        return value.rstrip("/")

    @field_validator("levels")
    @classmethod
    def _levels(cls, value: dict[str, str]) -> dict[str, str]:
        for type_name, level in value.items():
            if level not in LEVELS:
                raise ValueError(f"{type_name!r} -> {level!r}: level must be one of {LEVELS}")
        return value

    @field_validator("status_categories")
    @classmethod
    def _categories(cls, value: dict[str, str]) -> dict[str, str]:
        for status, category in value.items():
            if category not in CATEGORIES:
                raise ValueError(f"{status!r} -> {category!r}: must be one of {CATEGORIES}")
        return value

    @model_validator(mode="after")
    def _kind_needs(self) -> SourceConfig:
        if self.kind == "jira_cloud" and not self.email:
            raise ValueError("kind 'jira_cloud' needs email (the account the API token belongs to)")
        if self.kind == "jira_cloud" and not (self.jql or "").strip():
            raise ValueError(
                "kind 'jira_cloud' needs jql (Jira Cloud refuses unbounded searches), "
                'e.g. jql = "project in (ABC, DEF)"'
            )
        if self.kind == "azure_devops" and not self.project:
            raise ValueError("kind 'azure_devops' needs project (the Azure DevOps project name)")
        if self.kind != "azure_devops" and self.teams_from == "area_path":
            raise ValueError("teams_from = 'area_path' is for azure_devops sources")
        return self

    def token(self) -> str:
        """The secret, read from the environment only now; a clear error when it is missing."""
        value = os.environ.get(self.token_env, "")
        if not value:
            raise ConfigError(
                f"source {self.name!r}: environment variable {self.token_env} "
                f"(sources.token_env) is not set - export it with the API token or PAT"
            )
        secrets.remember(value)  # from now on masked in every message, in every form
        return value


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class OrganisationConfig(Strict):
    """One organisation of the chain. ``time_zone`` (IANA, e.g. "Europe/Amsterdam") cuts its
    days and ISO weeks: cycle time in whole days, throughput per week, WIP and CFD per day
    (docs/flow.md). The config decides; without it the organisation's calendar is UTC.
    ``working_days`` (e.g. ["mon", "tue", "wed", "thu", "fri"]) counts working days of a cycle.
    """

    name: str
    description: str = ""
    time_zone: str = "UTC"
    working_days: list[str] = list(WEEKDAYS[:5])

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f'{value!r} is not an IANA time zone; write e.g. time_zone = "Europe/Amsterdam"'
            ) from exc
        return value

    @field_validator("working_days")
    @classmethod
    def _days(cls, value: list[str]) -> list[str]:
        days = [day.strip().lower()[:3] for day in value]
        wrong = [given for given, day in zip(value, days, strict=True) if day not in WEEKDAYS]
        if wrong:
            raise ValueError(f"{wrong} are not weekdays; use {list(WEEKDAYS)}")
        if not days:
            raise ValueError(f"needs at least one day of {list(WEEKDAYS)}")
        return sorted(set(days), key=WEEKDAYS.index)


class TokenConfig(Strict):
    role: Literal["viewer", "operator"]
    env: str  # environment variable holding the bearer token
    # who signs in with it in the web app (saved views are kept per name); default: the env name
    name: str | None = None

    @property
    def viewer(self) -> str:
        return self.name or self.env


class ServerConfig(Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=8765, ge=1, le=65535)
    auth: Literal["token", "none"] = "token"
    tokens: list[TokenConfig] = []
    # environment variable holding the key that signs web-app session cookies; needed when
    # several replicas serve one app (a cookie signed by one is read by another). Unset: a random
    # key per process (sessions end when the server restarts).
    session_secret_env: str | None = None

    @model_validator(mode="after")
    def _none_only_on_loopback(self) -> ServerConfig:
        if self.auth == "none" and self.host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(
                f"auth = 'none' is only allowed when host is loopback (127.0.0.1), not {self.host!r}"
            )
        return self


ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"  # an environment variable's name, never its value


class SmtpConfig(Strict):
    """Where a report is mailed. Credentials are named, never written: ``username_env`` and
    ``password_env`` are environment variables read at delivery time; they are sent only after
    STARTTLS, so a config with credentials needs ``starttls = true``."""

    host: str = Field(min_length=1)
    port: int = Field(587, ge=1, le=65535)
    starttls: bool = True
    username_env: str | None = Field(None, pattern=ENV_NAME)
    password_env: str | None = Field(None, pattern=ENV_NAME)
    # a CA bundle (PEM) that signs the mail relay's certificate, e.g. an internal CA; relative to
    # the config's directory. Default: the system's trusted CAs.
    ca_file: str | None = None
    sender: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")
    recipients: list[str] = Field(min_length=1)
    timeout_seconds: float = Field(30.0, gt=0)

    @field_validator("recipients")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        wrong = [a for a in value if not re.match(r"^[^@\s,;]+@[^@\s,;]+$", a)]
        if wrong:
            raise ValueError(f"{wrong} are not mail addresses; one address per list entry")
        return value

    @model_validator(mode="after")
    def _credentials(self) -> SmtpConfig:
        if bool(self.username_env) != bool(self.password_env):
            raise ValueError("username_env and password_env go together: set both or neither")
        if self.username_env and not self.starttls:
            raise ValueError(
                "credentials are never sent in clear: set starttls = true "
                "(or drop username_env/password_env for a relay that needs no login)"
            )
        return self

    def credentials(self) -> tuple[str, str] | None:
        """(user, password) read from the environment only now; the password is remembered as a
        secret, so it is masked in every message from then on."""
        if not self.username_env or not self.password_env:
            return None
        values = []
        for key, env in (("username_env", self.username_env), ("password_env", self.password_env)):
            value = os.environ.get(env, "")
            if not value:
                raise ConfigError(
                    f"smtp.{key}: environment variable {env} is not set - export it "
                    "(the mail relay's login)"
                )
            values.append(value)
        secrets.remember(values[1])
        return values[0], values[1]


class ReportConfig(Strict):
    """A steering report delivered on a cron (``[[reports]]``): built in ``lang`` for one
    organisation (or the whole chain), as HTML or PDF, mailed (``smtp``) and/or written to
    ``to_folder``. When it runs and with which sync's data: docs/delivery.md."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    cron: str = Field(min_length=1)  # five fields, e.g. "0 7 * * mon"; checked at start-up
    lang: Literal["nl", "en"] = "en"
    organisation: str | None = None  # None: every organisation of the chain
    format: Literal["html", "pdf"] = "html"
    to_folder: str | None = None  # relative to the config's directory
    smtp: SmtpConfig | None = None

    @model_validator(mode="after")
    def _somewhere(self) -> ReportConfig:
        if not self.to_folder and self.smtp is None:
            raise ValueError(
                'a report needs somewhere to go: add to_folder = "reports" and/or an '
                "[reports.smtp] table"
            )
        return self


S3_OPTIONS = {
    "s3_key_id_env",
    "s3_secret_env",
    "s3_endpoint",
    "s3_region",
    "s3_url_style",
    "s3_use_ssl",
}


class WarehouseConfig(Strict):
    """Where the warehouse lives. ``duckdb`` (the default): one file, one writing process.
    ``ducklake``: a DuckLake whose catalog is a PostgreSQL database (``catalog``, a libpq
    connection string without the password; the password is read from ``password_env``) and whose
    data files go to ``data_path`` (a directory every worker and replica reaches, or an
    ``s3://bucket/prefix/`` URL on S3 or an S3-compatible store), for sync workers and API replicas
    on several machines (README: when to choose the lake).

    On S3 the credentials are read from the environment variables named by ``s3_key_id_env`` and
    ``s3_secret_env`` (default AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY), never from the file;
    ``s3_endpoint`` (host:port, e.g. a MinIO service), ``s3_region``, ``s3_url_style`` and
    ``s3_use_ssl`` say how to reach the store."""

    kind: Literal["duckdb", "ducklake"] = "duckdb"
    path: str = "pmolens.duckdb"  # kind duckdb
    catalog: str | None = None  # kind ducklake: "host=db port=5432 dbname=pmolens user=pmolens"
    password_env: str | None = None  # kind ducklake: the variable holding the catalog password
    data_path: str | None = None  # kind ducklake: relative to the config's directory
    snapshot_retention_days: int = Field(90, ge=1)  # kind ducklake: `pmolens warehouse expire`
    # data_path = "s3://bucket/prefix/": the store's credentials, by environment variable name
    s3_key_id_env: str = Field("AWS_ACCESS_KEY_ID", pattern=ENV_NAME)
    s3_secret_env: str = Field("AWS_SECRET_ACCESS_KEY", pattern=ENV_NAME)
    # and how to reach it: host[:port] of an S3-compatible store (MinIO, Ceph, R2...), None = AWS
    s3_endpoint: str | None = None
    s3_region: str | None = None  # e.g. "eu-west-1"; None: DuckDB's default (us-east-1)
    # "path" (bucket in the path: MinIO and most S3-compatible stores) or "vhost" (AWS);
    # None: "path" with an s3_endpoint, "vhost" without
    s3_url_style: Literal["path", "vhost"] | None = None
    s3_use_ssl: bool = True  # false only for a store on plain http (a loopback MinIO)

    @field_validator("s3_endpoint")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if "://" in value:
            raise ValueError(
                f"write host[:port] without the scheme, e.g. s3_endpoint = "
                f'"{value.split("://", 1)[1].rstrip("/")}" (and s3_use_ssl = false for http)'
            )
        if not re.fullmatch(
            r"[A-Za-z0-9.-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?", value
        ):
            raise ValueError(f'{value!r} is not host[:port]; write e.g. s3_endpoint = "minio:9000"')
        return value

    @field_validator("s3_region")
    @classmethod
    def _region(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[a-z0-9-]{2,40}", value):
            raise ValueError(f'{value!r} is not a region name; write e.g. s3_region = "eu-west-1"')
        return value

    @model_validator(mode="after")
    def _lake_needs(self) -> WarehouseConfig:
        if self.kind != "ducklake":
            return self
        if not self.catalog or not self.data_path:
            raise ValueError(
                'kind = "ducklake" needs catalog (a PostgreSQL connection string, e.g. '
                '"host=db dbname=pmolens user=pmolens") and data_path (a shared directory, '
                'or "s3://bucket/prefix/")'
            )
        if re.search(r"(?i)\bpassword\s*=|://[^/@:]*:[^/@]*@", self.catalog):
            raise ValueError(
                "catalog must not hold the password: name the environment variable that holds "
                "it in password_env"
            )
        if "://" in self.data_path:
            scheme, _, rest = self.data_path.partition("://")
            if scheme != "s3":
                raise ValueError(
                    "data_path: a directory (local or a shared mount) or an s3:// URL "
                    f"(also for S3-compatible stores, with s3_endpoint), not {scheme}:// - write "
                    'e.g. data_path = "s3://bucket/pmolens/"'
                )
            if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[^\s]*)?", rest):
                raise ValueError(
                    f"data_path: {self.data_path!r} does not start with a bucket name (3 to 63 "
                    "lowercase letters, digits, dots, hyphens) - write e.g. data_path = "
                    '"s3://bucket/pmolens/"'
                )
        else:
            s3_keys = sorted(k for k in self.model_fields_set & S3_OPTIONS)
            if s3_keys:
                raise ValueError(
                    f"{', '.join(s3_keys)}: only for an S3 data_path "
                    f'(data_path = "s3://bucket/prefix/"); remove it for a directory'
                )
        return self

    @property
    def on_s3(self) -> bool:
        """Whether the lake's data files are on S3 (or an S3-compatible store)."""
        return self.kind == "ducklake" and (self.data_path or "").startswith("s3://")

    def s3_credentials(self) -> tuple[str, str]:
        """(key id, secret access key) from ``s3_key_id_env``/``s3_secret_env``, read only now;
        the secret is remembered (masked in every message from then on)."""
        values = []
        for key, env, what in (
            ("s3_key_id_env", self.s3_key_id_env, "access key id"),
            ("s3_secret_env", self.s3_secret_env, "secret access key"),
        ):
            value = os.environ.get(env, "")
            if not value:
                raise ConfigError(
                    f"warehouse.{key}: environment variable {env} is not set - export it with "
                    f"the S3 {what}"
                )
            values.append(value)
        secrets.remember(values[1])
        return values[0], values[1]

    def password(self) -> str | None:
        """The catalog password from ``password_env``, read only now and remembered as a secret
        (masked in every message from then on); None when no variable is named."""
        if not self.password_env:
            return None
        value = os.environ.get(self.password_env, "")
        if not value:
            raise ConfigError(
                f"warehouse.password_env: environment variable {self.password_env} is not set - "
                "export it with the catalog database's password"
            )
        secrets.remember(value)
        return value


class Settings(Strict):
    warehouse: WarehouseConfig = WarehouseConfig()
    server: ServerConfig = ServerConfig()
    organisations: list[OrganisationConfig] = []
    sources: list[SourceConfig] = []
    cross_links: list[CrossLinkPattern] = []
    # per-rule switches and thresholds, typed (warehouse/settings_analytics.py)
    rules: RulesSettings = RulesSettings()
    custom_rules: list[CustomRule] = []  # organisation rules written as SQL
    reports: list[ReportConfig] = []  # scheduled delivery (docs/delivery.md)
    analytics: AnalyticsSettings = AnalyticsSettings()  # [analytics.<domain>] knobs, typed
    base_dir: Path = Path(".")  # directory of the config file; relative paths resolve here

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        names = [s.name for s in self.sources]
        dupes = {n for n in names if names.count(n) > 1}
        if dupes:
            raise ValueError(f"source names must be unique, repeated: {sorted(dupes)}")
        known = {o.name for o in self.organisations}
        for source in self.sources:
            if known and source.organisation not in known:
                raise ValueError(
                    f"source {source.name!r} names organisation {source.organisation!r}, "
                    f"which is not under [[organisations]] (known: {sorted(known)})"
                )
        for pattern in self.cross_links:
            if pattern.source not in names:
                raise ValueError(f"cross_links pattern names unknown source {pattern.source!r}")
        reports = [r.name for r in self.reports]
        repeated = {n for n in reports if reports.count(n) > 1}
        if repeated:
            raise ValueError(f"report names must be unique, repeated: {sorted(repeated)}")
        organisations = known or {s.organisation for s in self.sources}
        for report in self.reports:
            if report.organisation is not None and report.organisation not in organisations:
                raise ValueError(
                    f"reports ({report.name}).organisation: {report.organisation!r} is not a "
                    f"configured organisation (known: {sorted(organisations)}); leave it out for "
                    "the whole chain"
                )
        problem = duplicate_ids(self.custom_rules) or self.rules.unknown_ids(
            rule.id for rule in self.custom_rules
        )
        if problem:
            raise ValueError(problem)
        return self

    @property
    def lake_data_path(self) -> Path | str:
        """The lake's data directory (kind ducklake), relative paths at the config's directory;
        an ``s3://`` URL as written, with a trailing slash."""
        if self.warehouse.on_s3:
            return (self.warehouse.data_path or "").rstrip("/") + "/"
        path = Path(self.warehouse.data_path or "lake")
        return path if path.is_absolute() else self.base_dir / path

    @property
    def warehouse_path(self) -> Path:
        path = Path(os.environ.get("PMOLENS_WAREHOUSE", self.warehouse.path))
        return path if path.is_absolute() else self.base_dir / path

    def report_folder(self, report: ReportConfig) -> Path | None:
        """Where ``report`` is written (relative paths resolve at the config's directory)."""
        if not report.to_folder:
            return None
        path = Path(report.to_folder)
        return path if path.is_absolute() else self.base_dir / path

    def report(self, name: str) -> ReportConfig:
        for report in self.reports:
            if report.name == name:
                return report
        raise ConfigError(
            f"no report named {name!r} under [[reports]] (known: {[r.name for r in self.reports]})"
        )

    def report_sources(self, report: ReportConfig) -> list[str]:
        """The sources in a report's scope: its organisation's, or all of them."""
        return [
            s.name
            for s in self.sources
            if report.organisation is None or s.organisation == report.organisation
        ]

    def source(self, name: str) -> SourceConfig:
        for source in self.sources:
            if source.name == name:
                return source
        raise ConfigError(
            f"no source named {name!r} in the config (known: {[s.name for s in self.sources]})"
        )


def load_settings(path: str | Path | None = None) -> Settings:
    """Read the TOML config; ``PMOLENS_CONFIG`` points elsewhere. Errors name key and fix."""
    path = Path(path or os.environ.get("PMOLENS_CONFIG", DEFAULT_CONFIG))
    if not path.exists():
        raise ConfigError(f"{path}: no config file - run `pmolens init` to write a commented one")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    return settings_from_dict(data, source_name=str(path), base_dir=path.parent)


def settings_from_dict(
    data: dict[str, Any], *, source_name: str = "config", base_dir: Path | None = None
) -> Settings:
    try:
        settings = Settings(**data, base_dir=base_dir or Path("."))
    except ValidationError as exc:
        raise ConfigError(explain(data, exc, Settings, source=source_name)) from None
    return settings

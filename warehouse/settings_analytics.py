"""Typed settings of the analyses: ``[analytics.*]``, ``[rules.*]`` and ``[[custom_rules]]``.

Bottom layer (next to ``warehouse.config``, which imports it): every section is a pydantic model
with ``extra="forbid"``, checked once when the config loads; the transforms receive these objects
and never re-parse or re-check them. Defaults live here and only here. Every error names the key
path and the fix, e.g. ``analytics.flow.window_dayz: unknown key (known: window_days, ...)``.
Definitions of the settings: docs/flow.md, docs/backlog-health.md, docs/kpis.md, docs/forecast.md,
docs/dependencies.md, docs/impediments.md, docs/alignment.md.
"""

from __future__ import annotations

import re
import types
from collections.abc import Iterable, Mapping, Sequence
from typing import Annotated, Any, ClassVar, Literal, Self, Union, get_args, get_origin

import duckdb
import polars as pl
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from pmolens.warehouse.errors import ConfigError
from pmolens.warehouse.model import SCHEMAS

# --------------------------------------------------------------------------- value types


def _whole(least: int | None = None, most: int | None = None) -> BeforeValidator:
    def check(value: Any) -> Any:
        bad = isinstance(value, bool) or not isinstance(value, int)
        if bad or (least is not None and value < least) or (most is not None and value > most):
            bound = f" >= {least}" if least is not None else ""
            bound += f" and <= {most}" if most is not None else ""
            raise ValueError(f"must be a whole number{bound} (got {value!r})")
        return value

    return BeforeValidator(check)


def _number(least: float | None = None, most: float | None = None) -> BeforeValidator:
    def check(value: Any) -> Any:
        bad = isinstance(value, bool) or not isinstance(value, int | float)
        if bad or (least is not None and value < least) or (most is not None and value > most):
            bound = f" >= {least:g}" if least is not None else ""
            bound += f" and <= {most:g}" if most is not None else ""
            raise ValueError(f"must be a number{bound} (got {value!r})")
        return value

    return BeforeValidator(check)


def _strings(value: Any) -> Any:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ValueError(f'must be a list of strings, e.g. ["a", "b"] (got {value!r})')
    return tuple(value)


def _string_list(value: Any) -> Any:
    return list(_strings(value))


def _switch(value: Any) -> Any:
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false (got {value!r})")
    return value


def _at_least(least: int) -> AfterValidator:
    def check(value: int) -> int:
        if value < least:
            raise ValueError(f"must be >= {least} (got {value})")
        return value

    return AfterValidator(check)


def _weeks(value: Any) -> Any:
    if (
        not isinstance(value, list | tuple)
        or not value
        or any(isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in value)
    ):
        raise ValueError(
            f"must be a list of whole weeks >= 1, e.g. [2, 4, 6, 8, 12] (got {value!r})"
        )
    return tuple(value)


def _percentiles(value: Any) -> Any:
    if not isinstance(value, list | tuple) or any(
        isinstance(p, bool) or not isinstance(p, int) or not 1 <= p <= 100 for p in value
    ):
        raise ValueError(
            f"must be a list of whole percentiles 1..100, e.g. [50, 85] (got {value!r})"
        )
    return tuple(value)


Strings = Annotated[tuple[str, ...], BeforeValidator(_strings)]
Switch = Annotated[bool, BeforeValidator(_switch)]
Share = Annotated[float, _number(0, 1)]
NonNegative = Annotated[float, _number(0)]
#: A rule threshold: a number kept as written (an int stays an int in the catalogue).
Num = Annotated[int | float, _number()]
StringList = Annotated[list[str], BeforeValidator(_string_list)]


# --------------------------------------------------------------------------- explaining errors


def explain(
    data: Any,
    exc: ValidationError,
    model: type[BaseModel],
    *,
    source: str | None = None,
    root: tuple[str, ...] = (),
) -> str:
    """One line per problem: ``<key path>: <what is wrong and the fix>``; one problem = one line
    (``pmolens.toml: analytics.flow.window_dayz: unknown key (known: ...)``)."""
    problems = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        key = key_path(data, loc, root)
        message = _message(error, model, loc, key)
        problems.append(f"{key}: {message}" if key else message)
    if len(problems) == 1:
        return f"{source}: {problems[0]}" if source else problems[0]
    head = f"{source or 'config'}: {len(problems)} problem(s)"
    return "\n".join([head, *(f"  {p}" for p in problems)])


def _message(error: Any, model: type[BaseModel], loc: tuple[Any, ...], key: str) -> str:
    kind = error["type"]
    message = str(error["msg"]).removeprefix("Value error, ")
    if kind == "extra_forbidden":
        known = known_keys(model, loc[:-1])
        if known:
            return f"unknown key (known: {', '.join(known)})"
        return "unknown key - check the spelling against `pmolens init` output"
    if kind == "missing":
        return "required key is missing - add it"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return f"must be a table, e.g. [{key}] (got {error.get('input')!r})"
    if kind in ("literal_error", "list_type", "tuple_type", "string_type", "bool_type"):
        return f"{message} (got {error.get('input')!r})"
    return message


def key_path(data: Any, loc: tuple[int | str, ...], root: tuple[str, ...] = ()) -> str:
    """pydantic's ('sources', 0, 'kind') as ``sources[0] (name).kind`` for humans; list entries
    are labelled with their ``name`` or ``id``."""
    parts: list[str] = list(root[:1]) + [f".{r}" for r in root[1:]]
    node: Any = data
    for part in loc:
        if isinstance(part, int):
            label = f"[{part}]"
            if isinstance(node, list) and part < len(node) and isinstance(node[part], dict):
                name = node[part].get("name") or node[part].get("id")
                label += f" ({name})" if isinstance(name, str) and name else ""
            parts.append(label)
            node = node[part] if isinstance(node, list) and part < len(node) else None
        else:
            parts.append(("." if parts else "") + str(part))
            node = node.get(part) if isinstance(node, dict) else None
    return "".join(parts)


def _core(annotation: Any, owner: type[BaseModel]) -> Any:
    if annotation is Self:
        return owner
    origin = get_origin(annotation)
    if origin is Annotated:
        return _core(get_args(annotation)[0], owner)
    if origin in (Union, types.UnionType):
        for arg in get_args(annotation):
            core = _core(arg, owner)
            if isinstance(core, type) and issubclass(core, BaseModel):
                return core
    return annotation


def known_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The keys the table at ``loc`` (relative to ``model``) accepts; [] when not a model."""
    owner, current = model, _core(model, model)
    for part in loc:
        if isinstance(current, type) and issubclass(current, BaseModel):
            owner = current
            field = current.model_fields.get(part) if isinstance(part, str) else None
            if field is None:
                return []
            current = _core(field.annotation, owner)
        elif get_origin(current) is dict:
            current = _core(get_args(current)[1], owner)
        elif get_origin(current) in (list, tuple):
            current = _core(get_args(current)[0], owner)
        else:
            return []
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


# --------------------------------------------------------------------------- [analytics.*]


class Params(BaseModel):
    """One ``[analytics.<section>]`` table: strict keys, immutable (hashable like the old
    dataclasses)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    section: ClassVar[str] = ""

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> Self:
        """Parse a plain mapping (tests, benchmarks): ``ConfigError`` naming the key and the fix,
        exactly as the config load reports it. The running product gets these objects from
        ``Settings.analytics`` instead."""
        if values is None:
            return cls()
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            raise ConfigError(explain(values, exc, cls, root=("analytics", cls.section))) from None


#: Raw status names (case-insensitive) that count as waiting even in the in-progress category.
WAITING_STATUSES = (
    "blocked",
    "impeded",
    "on hold",
    "waiting",
    "waiting for review",
    "ready for review",
    "ready for test",
    "ready for testing",
    "ready for release",
    "ready for deployment",
    "awaiting approval",
)
WORK_LEVELS = ("story", "bug", "task")


class FlowParams(Params):
    """``[analytics.flow]``: knobs of the flow metrics (docs/flow.md)."""

    section: ClassVar[str] = "flow"

    window_days: Annotated[int, _whole(1)] = 90  # look-back for percentiles, throughput, ...
    percentiles: Annotated[tuple[int, ...], BeforeValidator(_percentiles)] = (50, 70, 85, 95)
    work_levels: Strings = WORK_LEVELS
    #: Raw status names (case-insensitive) that count as active work. Empty = every in-progress
    #: status that is not a waiting status.
    active_statuses: Strings = ()
    waiting_statuses: Strings = WAITING_STATUSES
    defect_types: Strings = ("bug", "defect", "incident", "production bug")
    risk_types: Strings = ("risk",)
    risk_labels: Strings = ("risk", "security", "compliance")
    debt_types: Strings = ("technical debt", "tech debt")
    debt_labels: Strings = ("tech-debt", "techdebt", "technical-debt", "debt", "refactoring")
    littles_tolerance: NonNegative = 0.25  # |avg WIP / (throughput x cycle time) - 1| = ok


class BacklogParams(Params):
    """``[analytics.backlog]``: thresholds of backlog health (docs/backlog-health.md)."""

    section: ClassVar[str] = "backlog"

    work_levels: Strings = WORK_LEVELS  # delivery items (sub-tasks excluded)
    programme_levels: Strings = ("epic", "feature")  # the Chief PO's backlog
    stale_days: Annotated[int, _whole(1)] = 90  # not updated for this long = stale
    velocity_sprints: Annotated[int, _whole(1)] = 3  # closed sprints averaged for velocity
    top_n: Annotated[int, _whole(1)] = 10  # "top of the backlog" size, per source
    #: Raw status names (case-insensitive) meaning "ready". A workflow *has* a ready state when any
    #: item of the same source and type currently sits in one; only then is it required.
    ready_statuses: Strings = (
        "ready",
        "ready for development",
        "ready for dev",
        "ready for sprint",
        "approved",
    )
    min_estimated: Share = 0.8
    min_ranked: Share = 0.95
    min_top_ready: Share = 0.8
    ready_depth_min: NonNegative = 2.0  # sprints; below = starving
    ready_depth_max: NonNegative = 4.0  # sprints; above = refined too far ahead (waste risk)
    max_stale_share: Share = 0.2
    max_age_p85_days: NonNegative = 180.0
    max_intake_ratio: NonNegative = 1.2  # intake / throughput per sprint above = backlog grows
    #: Look-back of scope added: items added to an open epic in these days / items it held before.
    scope_window_days: Annotated[int, _whole(1)] = 90
    min_epics_with_stories: Share = 0.8
    min_initiatives_with_epics: Share = 0.8

    @model_validator(mode="after")
    def _depth_order(self) -> Self:
        if self.ready_depth_min > self.ready_depth_max:
            raise ValueError(
                f"ready_depth_min ({self.ready_depth_min:g}) must not exceed ready_depth_max "
                f"({self.ready_depth_max:g})"
            )
        return self


def _job_size(value: Any) -> Any:
    if value not in ("estimate", "cost"):
        raise ValueError(f"must be 'estimate' or 'cost' (got {value!r})")
    return value


class KpiParams(Params):
    """``[analytics.kpis]`` (docs/kpis.md)."""

    section: ClassVar[str] = "kpis"

    #: A defect is *escaped* (found after release) when its raw type or a label says so.
    escaped_types: Strings = ("incident", "production bug", "escaped defect", "live defect")
    escaped_labels: Strings = ("escaped", "production", "prod-bug", "escaped-defect")
    #: WSJF job size: "estimate" (estimate sum of the work below, else own estimate, else cost)
    #: or "cost" (cost, else the estimate sum).
    job_size: Annotated[Literal["estimate", "cost"], BeforeValidator(_job_size)] = "estimate"
    trend_sprints: Annotated[int, _whole(1)] = 3  # closed sprints averaged for snapshot KPIs


class ForecastParams(Params):
    """``[analytics.forecast]`` (docs/forecast.md)."""

    section: ClassVar[str] = "forecast"

    trials: Annotated[int, _whole(100)] = 10_000
    seed: Annotated[int, _whole()] = 0  # fixed: the same snapshot always gives the same dates
    window_days: Annotated[int, _whole(1)] = 90  # history of daily throughput sampled
    max_horizon_days: Annotated[int, _whole(1)] = 3650  # not done by then = beyond the horizon
    how_many_weeks: Annotated[tuple[int, ...], BeforeValidator(_weeks)] = (2, 4, 6, 8, 12)
    default_weeks: Annotated[int, _whole(1)] = 6  # /forecast/teams without a date
    max_epics: Annotated[int, _whole(1)] = 100  # open epics forecast, first in backlog order
    #: Cap on simulated nodes (the epics plus their blockers, nearest first): bounds time and
    #: memory on dense dependency graphs; blockers beyond it count as unforecast_blockers.
    max_nodes: Annotated[int, _whole(1)] = 200


class DependencyParams(Params):
    """``[analytics.dependencies]`` (docs/dependencies.md).

    ``sketch_size``: k of the bottom-k reachability sketches; transitive counts are exact while
    the waiting set has at most k items, estimated above. Bottleneck weight =
    item_weight * dependents + estimate_weight * their estimate + value_weight * their value
    (the impediment backlog's weighting).
    """

    section: ClassVar[str] = "dependencies"

    sketch_size: Annotated[int, _whole(0), _at_least(2)] = 32
    item_weight: NonNegative = 1.0
    estimate_weight: NonNegative = 1.0
    value_weight: NonNegative = 0.1
    seed: Annotated[int, _whole(0)] = 20260101  # rank permutation of the sketches: fixed


class ImpedimentParams(Params):
    """``[analytics.impediments]``: escalation thresholds and weights (docs/impediments.md).
    (Blocked statuses are per source: ``[[sources]] blocked_statuses``.)

    An impediment goes to the Scrum of Scrums when its age reaches ``sos_age_days`` or its weight
    reaches ``sos_weight``, to the Executive Action Team at ``eat_age_days`` / ``eat_weight``.
    weight = item_weight * held_up_items + estimate_weight * held_up_estimate
             + value_weight * held_up_value.
    """

    section: ClassVar[str] = "impediments"

    sos_age_days: NonNegative = 5.0
    eat_age_days: NonNegative = 15.0
    sos_weight: NonNegative = 10.0
    eat_weight: NonNegative = 40.0
    item_weight: NonNegative = 1.0
    estimate_weight: NonNegative = 1.0
    value_weight: NonNegative = 0.1

    @model_validator(mode="after")
    def _escalates_upwards(self) -> Self:
        if self.sos_age_days > self.eat_age_days or self.sos_weight > self.eat_weight:
            raise ValueError(
                "the Scrum of Scrums thresholds (sos_age_days, sos_weight) must not exceed the "
                "Executive Action Team ones (eat_age_days, eat_weight)"
            )
        return self


class AnalyticsSettings(BaseModel):
    """``[analytics]``: one typed table per domain."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    flow: FlowParams = FlowParams()
    backlog: BacklogParams = BacklogParams()
    kpis: KpiParams = KpiParams()
    forecast: ForecastParams = ForecastParams()
    dependencies: DependencyParams = DependencyParams()
    impediments: ImpedimentParams = ImpedimentParams()


# --------------------------------------------------------------------------- [rules.*]

SEVERITIES = ("info", "warning", "critical")
OWNER_ROLES = ("Team PO", "Chief PO", "SoS Master", "PMO", "Executive Action Team")


class RuleSettings(BaseModel):
    """``[rules.<id>]``: ``enabled``, the rule's thresholds, and per-organisation overrides
    (``[rules.<id>.organisations."Org"]``, same keys, no nesting). The thresholds (every field
    but ``enabled`` and ``organisations``) are what the rule function receives."""

    model_config = ConfigDict(extra="forbid")

    enabled: Switch = True
    organisations: dict[str, Self] = {}

    @model_validator(mode="after")
    def _flat(self) -> Self:
        for org, override in self.organisations.items():
            if override.organisations:
                raise ValueError(
                    f"organisations.{org}.organisations: an organisation's settings cannot "
                    "name organisations again - remove it"
                )
        return self

    def thresholds(self) -> dict[str, Any]:
        return self.model_dump(exclude={"enabled", "organisations"})

    def overridden(self, override: RuleSettings) -> tuple[bool, dict[str, Any]]:
        """(enabled, thresholds) in force where ``override`` (an organisation's table) applies:
        the keys it sets, over this rule's settings."""
        given = override.model_dump(include=override.model_fields_set - {"organisations"})
        thresholds = {**self.thresholds(), **{k: v for k, v in given.items() if k != "enabled"}}
        return bool(given.get("enabled", self.enabled)), thresholds


class OrphanWork(RuleSettings):
    levels: StringList = ["feature", "story"]
    include_done: Switch = False


class EpicWithoutStrategicParent(RuleSettings):
    include_done: Switch = False


class NoOwner(RuleSettings):
    levels: StringList = ["epic", "feature"]
    include_done: Switch = False


class UnestimatedCommitted(RuleSettings):
    levels: StringList = ["story", "bug", "task"]
    sprint_states: StringList = ["active", "future"]


class PriorityInversion(RuleSettings):
    max_rank: Num = 2
    unprioritised_is_low: Switch = True


class DependencyTimingConflict(RuleSettings):
    critical_slip_days: Num = 14
    unscheduled_blocker: Switch = True


class SprintCadenceMisalignment(RuleSettings):
    window_weeks: Num = 12
    min_teams: Num = 2


def _team_products(value: Any) -> Any:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ValueError(
            f'must be a table of team = product, e.g. {{ "Team A" = "Shop" }} (got {value!r})'
        )
    return value


def _limits(value: Any) -> Any:
    if not isinstance(value, dict) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in value.values()
    ):
        raise ValueError(f'values must be numbers, e.g. {{ "Team A" = 8 }} (got {value!r})')
    return value


class DodDrift(RuleSettings):
    levels: StringList = ["story"]
    min_items: Num = 5
    window_days: Num = 90
    products: Annotated[dict[str, str], BeforeValidator(_team_products)] = {}
    required_states: StringList = []


class StaleWork(RuleSettings):
    levels: StringList = ["story", "bug", "task"]
    stale_days: Num = 14
    epic_stale_days: Num = 30
    include_todo_epics: Switch = False


class DoneButOpen(RuleSettings):
    pass


class EpicSpread(RuleSettings):
    max_teams: Num = 3


class WipOverload(RuleSettings):
    levels: StringList = ["story", "bug", "task"]
    limits: Annotated[dict[str, int | float], BeforeValidator(_limits)] = {}
    percentile: Annotated[int | float, _number(0, 1)] = 0.85
    history_days: Num = 90
    min_history_days: Num = 28


class DuplicateEffort(RuleSettings):
    levels: StringList = ["epic", "feature", "story"]
    min_jaccard: Annotated[int | float, _number(0, 1)] = 0.8
    min_tokens: Num = 3
    max_group: Num = 25
    max_block: Num = 5000


class UnassignedInActiveSprint(RuleSettings):
    levels: StringList = ["story", "bug", "task"]
    categories: StringList = ["todo", "in_progress"]


class CustomRuleSettings(RuleSettings):
    """``[rules.<custom id>]``: a custom SQL rule takes ``enabled`` (and per organisation) only."""


class RulesSettings(BaseModel):
    """``[rules]``: one table per built-in rule (docs/alignment.md), plus ``enabled`` switches of
    the custom rules (checked against ``[[custom_rules]]`` ids by the Settings)."""

    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, CustomRuleSettings] = Field(init=False)

    orphan_work: OrphanWork = OrphanWork()
    epic_without_strategic_parent: EpicWithoutStrategicParent = EpicWithoutStrategicParent()
    no_owner: NoOwner = NoOwner()
    unestimated_committed: UnestimatedCommitted = UnestimatedCommitted()
    priority_inversion: PriorityInversion = PriorityInversion()
    dependency_timing_conflict: DependencyTimingConflict = DependencyTimingConflict()
    sprint_cadence_misalignment: SprintCadenceMisalignment = SprintCadenceMisalignment()
    dod_drift: DodDrift = DodDrift()
    stale_work: StaleWork = StaleWork()
    done_but_open: DoneButOpen = DoneButOpen()
    epic_spread: EpicSpread = EpicSpread()
    wip_overload: WipOverload = WipOverload()
    duplicate_effort: DuplicateEffort = DuplicateEffort()
    unassigned_in_active_sprint: UnassignedInActiveSprint = UnassignedInActiveSprint()

    def rule(self, rule_id: str) -> RuleSettings:
        """The settings of a built-in or custom rule (a custom rule not named: defaults)."""
        if rule_id in type(self).model_fields:
            got: RuleSettings = getattr(self, rule_id)
            return got
        return (self.model_extra or {}).get(rule_id) or CustomRuleSettings()

    def unknown_ids(self, custom_ids: Iterable[str]) -> str | None:
        """The problem with ``[rules.<id>]`` tables naming no rule, or None."""
        customs = set(custom_ids)
        for rule_id in self.model_extra or {}:
            if rule_id not in customs:
                return (
                    f"rules.{rule_id}: unknown rule id - known rules: {', '.join(sorted(RULE_IDS))}"
                    + (f"; custom rules: {', '.join(sorted(customs))}" if customs else "")
                )
        return None

    @classmethod
    def from_mapping(
        cls, values: Mapping[str, Any] | None, custom_ids: Iterable[str] = ()
    ) -> RulesSettings:
        """Parse a plain mapping (tests, benchmarks); ``ConfigError`` as at load."""
        try:
            rules = cls.model_validate(values or {})
        except ValidationError as exc:
            raise ConfigError(explain(values, exc, cls, root=("rules",))) from None
        problem = rules.unknown_ids(custom_ids)
        if problem:
            raise ConfigError(problem)
        return rules


#: The built-in rules' ids, in catalogue order (each has a field of ``RulesSettings``).
RULE_IDS = tuple(RulesSettings.model_fields)


# --------------------------------------------------------------------------- [[custom_rules]]

#: The findings columns every rule returns (``warehouse.transforms.alignment.FINDINGS_SCHEMA``).
FINDINGS_COLUMNS = (
    "rule",
    "severity",
    "item_id",
    "key",
    "url",
    "team",
    "organisation",
    "owner_role",
    "message",
    "since",
)
CUSTOM_KEYS = ("id", "title", "rationale", "severity", "owner_role", "sql")


def custom_connection(frames: Mapping[str, pl.DataFrame]) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB in which every canonical table (work_items, links, sprints,
    status_changes, teams, organisations, sources) is a view of the given frame (empty when
    absent). Custom rules run here, never on the warehouse: they see exactly the snapshot the
    built-in rules see (live items only), and cannot change anything."""
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    for name, schema in SCHEMAS.items():
        got = frames.get(name)
        con.register(name, (got if got is not None else pl.DataFrame(schema=schema)).to_arrow())
    return con


def clean_sql(sql: str) -> str:
    return sql.strip().rstrip(";").strip()


def check_sql(sql: str) -> None:
    """Bind a custom rule's query against empty canonical tables: one SELECT whose columns are
    exactly the findings columns, ``since`` a timestamp or date. Computes nothing."""
    with custom_connection({}) as con:
        try:
            statements = con.extract_statements(sql)
        except duckdb.Error as exc:
            raise ValueError(f"does not parse: {exc}") from None
        if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
            raise ValueError(
                "must be exactly one SELECT (or WITH ... SELECT) statement, got "
                f"{[s.type.name for s in statements]} - custom rules only read"
            )
        try:
            schema = con.sql(f"SELECT * FROM (\n{sql}\n) AS custom_rule LIMIT 0").pl().schema
        except duckdb.Error as exc:
            raise ValueError(
                f"does not run against the canonical tables ({', '.join(SCHEMAS)}): {exc}"
            ) from None
    columns = list(schema)
    got, want = set(columns), set(FINDINGS_COLUMNS)
    problems = []
    if want - got:
        problems.append(f"missing columns {sorted(want - got)}")
    if got - want:
        problems.append(f"unexpected columns {sorted(got - want)}")
    dupes = sorted({c for c in columns if columns.count(c) > 1})
    if dupes:
        problems.append(f"repeated columns {dupes}")
    if problems:
        raise ValueError(
            f"{'; '.join(problems)} - the query must return exactly the findings columns "
            f"{', '.join(FINDINGS_COLUMNS)} (rename with AS; use NULL AS url for what you do "
            "not have)"
        )
    since = schema["since"]
    if not isinstance(since, pl.Datetime | pl.Date | pl.Null):
        raise ValueError(
            f"column since is {since}, must be a timestamp or date "
            "(e.g. created AS since, or NULL AS since)"
        )


class CustomRule(BaseModel):
    """``[[custom_rules]]``: an organisation rule written as SQL over the canonical tables
    (docs/alignment.md). The query is bound against empty tables when the config loads."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    title: str
    rationale: str
    severity: str
    owner_role: str
    sql: str

    @model_validator(mode="before")
    @classmethod
    def _exact_keys(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            raise ValueError(f"must be a table with keys {', '.join(CUSTOM_KEYS)}")
        missing = [k for k in CUSTOM_KEYS if k not in data]
        extra = sorted(set(data) - set(CUSTOM_KEYS))
        if missing or extra:
            problems = [f"missing keys {missing} - add them"] if missing else []
            problems += [f"unknown keys {extra} - remove them"] if extra else []
            raise ValueError(
                f"{'; '.join(problems)} (a custom rule has exactly: {', '.join(CUSTOM_KEYS)})"
            )
        return data

    @field_validator("id", mode="before")
    @classmethod
    def _id(cls, value: Any) -> Any:
        if not isinstance(value, str) or not re.fullmatch(r"[a-z][a-z0-9_]*", value):
            raise ValueError(
                f"{value!r} must be lowercase letters, digits and _ (e.g. 'missing_component')"
            )
        if value in RULE_IDS:
            raise ValueError(f"{value!r} is a built-in rule - choose another id")
        return value

    @field_validator("severity", mode="before")
    @classmethod
    def _severity(cls, value: Any) -> Any:
        return _one_of(value, SEVERITIES)

    @field_validator("owner_role", mode="before")
    @classmethod
    def _owner_role(cls, value: Any) -> Any:
        return _one_of(value, OWNER_ROLES)

    @field_validator("sql", mode="before")
    @classmethod
    def _sql(cls, value: Any) -> Any:
        if not isinstance(value, str) or not value.strip():
            raise ValueError("must be a non-empty SQL SELECT statement")
        check_sql(clean_sql(value))
        return value

    @classmethod
    def list_from(cls, values: Sequence[CustomRule | Mapping[str, Any]]) -> list[CustomRule]:
        """Custom rules from plain mappings (tests, benchmarks); ``ConfigError`` as at load."""
        if all(isinstance(v, CustomRule) for v in values):
            return [v for v in values if isinstance(v, CustomRule)]
        data = {
            "custom_rules": [v.model_dump() if isinstance(v, CustomRule) else v for v in values]
        }
        try:
            rules = _CustomRules.model_validate(data).custom_rules
        except ValidationError as exc:
            raise ConfigError(explain(data, exc, _CustomRules)) from None
        problem = duplicate_ids(rules)
        if problem:
            raise ConfigError(problem)
        return rules


class _CustomRules(BaseModel):
    custom_rules: list[CustomRule]


def _one_of(value: Any, allowed: Sequence[str]) -> Any:
    if value not in allowed:
        raise ValueError(f"{value!r} - must be one of {list(allowed)}")
    return value


def duplicate_ids(rules: Sequence[CustomRule]) -> str | None:
    """The problem with two custom rules of one id, or None."""
    seen: set[str] = set()
    for index, rule in enumerate(rules):
        if rule.id in seen:
            return f"custom_rules[{index}] ({rule.id}).id: {rule.id!r} is used twice - ids must be unique"
        seen.add(rule.id)
    return None

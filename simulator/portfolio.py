"""A deterministic synthetic portfolio: three organisations, their teams, sprints and work items.

Why compact: benchmarks ask for up to a million items, so every attribute is one numpy array
(one slot per item, all tenants side by side) and status histories are one CSR block. Payloads
are rendered per request from these arrays by ``jira_api`` and ``azure_devops_api``; nothing is
pre-rendered. Same ``(seed, size, anchor, tenants)`` -> same portfolio, byte for byte.

Planted cases (for the analytics to find) are listed in ``Portfolio.planted``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

DAY = 86_400
HOUR = 3_600
SPRINT_DAYS = 14

# --------------------------------------------------------------------------- reference tables


@dataclass(frozen=True)
class TenantSpec:
    """One simulated tracker: an organisation's Jira Cloud, Jira DC or Azure DevOps."""

    name: str  # URL path prefix
    kind: str  # jira_cloud | jira_dc | azure_devops
    organisation: str
    source: str
    teams: tuple[str, ...]
    projects: tuple[tuple[str, str], ...]  # (key, name); ADO: one project
    id_base: int  # first native id
    board_base: int  # first Jira board id
    sprint_base: int  # first Jira sprint id
    share: float  # share of ``size`` when all tenants run
    email_domain: str

    @property
    def is_jira(self) -> bool:
        return self.kind != "azure_devops"


TENANTS: dict[str, TenantSpec] = {
    "northwind": TenantSpec(
        "northwind",
        "jira_cloud",
        "Northwind",
        "northwind-jira",
        ("Payments", "Checkout", "Mobile", "Platform", "Search"),
        (("NW", "Northwind Delivery"), ("NWOPS", "Northwind Operations")),
        10_000,
        1,
        1,
        0.45,
        "northwind.example",
    ),
    "fabrikam": TenantSpec(
        "fabrikam",
        "jira_dc",
        "Fabrikam",
        "fabrikam-jira-dc",
        ("Routing", "Fleet", "Invoicing"),
        (("FAB", "Fabrikam Logistics"), ("FABSUP", "Fabrikam Support")),
        20_000,
        11,
        101,
        0.25,
        "fabrikam.example",
    ),
    "contoso": TenantSpec(
        "contoso",
        "azure_devops",
        "Contoso",
        "contoso-ado",
        ("Identity", "Data", "Portal"),
        (("Delivery", "Delivery"),),
        1,
        0,
        0,
        0.30,
        "contoso.example",
    ),
}
TENANT_ORDER = ("northwind", "fabrikam", "contoso")
ADO_PROJECT = "Delivery"
OFFSET_TEAM = ("northwind", "Mobile")  # sprints start a week later than everyone else's
DRIFT_TEAM = ("northwind", "Platform")  # a different workflow (no review step): DoD drift
OVERLOAD_TEAM = ("fabrikam", "Routing")  # far more work in progress than the others

# Item types (codes); names per tracker family.
INITIATIVE, EPIC, FEATURE, STORY, BUG, TASK, SUBTASK, IMPEDIMENT = range(8)
JIRA_TYPES = {
    INITIATIVE: ("Initiative", "10100", 2),
    EPIC: ("Epic", "10000", 1),
    STORY: ("Story", "10001", 0),
    TASK: ("Task", "10002", 0),
    SUBTASK: ("Sub-task", "10003", -1),
    BUG: ("Bug", "10004", 0),
    IMPEDIMENT: ("Impediment", "10005", 0),
}
ADO_TYPES = {
    EPIC: "Epic",
    FEATURE: "Feature",
    STORY: "User Story",
    BUG: "Bug",
    TASK: "Task",
    IMPEDIMENT: "Impediment",
}
LEAF_TYPES = (STORY, BUG, TASK, SUBTASK, IMPEDIMENT)


@dataclass(frozen=True)
class Status:
    name: str
    jira_category: str  # new | indeterminate | done
    ado_category: str  # Proposed | InProgress | Resolved | Completed | Removed
    jira_id: str
    color: str

    @property
    def category(self) -> str:
        """Canonical category: todo / in_progress / done."""
        return {"new": "todo", "indeterminate": "in_progress", "done": "done"}[self.jira_category]


STATUSES: tuple[Status, ...] = (
    Status("To Do", "new", "Proposed", "10000", "b2b2b2"),  # 0
    Status("In Progress", "indeterminate", "InProgress", "3", "007acc"),  # 1
    Status("In Review", "indeterminate", "InProgress", "10001", "007acc"),  # 2
    Status("Done", "done", "Completed", "10002", "339933"),  # 3
    Status("Blocked", "indeterminate", "InProgress", "10003", "cc293d"),  # 4
    Status("Backlog", "new", "Proposed", "10004", "b2b2b2"),  # 5
    Status("Released", "done", "Completed", "10005", "339933"),  # 6
    Status("Open", "new", "Proposed", "1", "b2b2b2"),  # 7
    Status("Code Review", "indeterminate", "InProgress", "10006", "007acc"),  # 8
    Status("New", "new", "Proposed", "0", "b2b2b2"),  # 9
    Status("Active", "indeterminate", "InProgress", "0", "007acc"),  # 10
    Status("Resolved", "done", "Resolved", "0", "ff9d00"),  # 11
    Status("Closed", "done", "Completed", "0", "339933"),  # 12
    Status("Removed", "done", "Removed", "0", "ffffff"),  # 13
    Status("Waiting for Partner", "indeterminate", "InProgress", "0", "f2cb1d"),  # 14
)
S_BLOCKED, S_REMOVED, S_WAITING = 4, 13, 14
STATUS_INDEX = {s.name: i for i, s in enumerate(STATUSES)}

# Workflows: status codes from the first (to do) to the last (done) position.
WF_JIRA, WF_JIRA_DRIFT, WF_JIRA_EPIC, WF_DC, WF_DC_EPIC, WF_ADO, WF_ADO_TASK, WF_ADO_IMP = range(8)
WORKFLOWS: tuple[tuple[int, ...], ...] = (
    (0, 1, 2, 3),  # Jira Cloud: To Do, In Progress, In Review, Done
    (5, 1, 6),  # Platform: Backlog, In Progress, Released (no review: DoD drift)
    (0, 1, 3),  # Jira epics and initiatives
    (7, 1, 8, 3),  # Jira DC: Open, In Progress, Code Review, Done
    (7, 1, 3),  # Jira DC epics
    (9, 10, 11, 12),  # ADO: New, Active, Resolved, Closed
    (9, 10, 12),  # ADO task: New, Active, Closed
    (7, 12),  # ADO impediment: Open, Closed
)
WF_TABLE = np.full((len(WORKFLOWS), 5), -1, dtype=np.int16)
for _w, _codes in enumerate(WORKFLOWS):
    WF_TABLE[_w, : len(_codes)] = _codes
WF_LEN = np.array([len(w) for w in WORKFLOWS], dtype=np.int16)


def _positions(kind: str) -> tuple[np.ndarray, np.ndarray]:
    """(count, padded table) of workflow positions per workflow whose category is ``kind``."""
    table = np.zeros((len(WORKFLOWS), 4), dtype=np.int16)
    count = np.zeros(len(WORKFLOWS), dtype=np.int16)
    for w, codes in enumerate(WORKFLOWS):
        found = [p for p, c in enumerate(codes) if p > 0 and STATUSES[c].category == kind]
        count[w] = len(found)
        table[w, : len(found)] = found
    return count, table


IP_COUNT, IP_TABLE = _positions("in_progress")
DONE_COUNT, DONE_TABLE = _positions("done")

JIRA_PRIORITIES = (("Highest", "1"), ("High", "2"), ("Medium", "3"), ("Low", "4"), ("Lowest", "5"))
LABELS = ("backend", "frontend", "customer", "tech-debt", "security", "compliance", "chain")
CHAIN_BIT = 1 << LABELS.index("chain")

# Link types (codes) as Jira names them; Azure DevOps maps them to its own reference names.
L_BLOCKS, L_DEPENDENCY, L_RELATES, L_DUPLICATE, L_CHAIN = range(5)
JIRA_LINK_TYPES = {
    L_BLOCKS: ("10000", "Blocks", "is blocked by", "blocks"),
    L_DEPENDENCY: ("10005", "Dependency", "is depended on by", "depends on"),
    L_RELATES: ("10003", "Relates", "relates to", "relates to"),
    L_DUPLICATE: ("10002", "Duplicate", "is duplicated by", "duplicates"),
    L_CHAIN: ("10100", "Chain Handoff", "receives handoff from", "hands off to"),
}

FIRST = (
    "Anna", "Bram", "Chloe", "Daan", "Eva", "Finn", "Gijs", "Hanna", "Ivo", "Julia", "Kees",
    "Lotte", "Milan", "Noor", "Olaf", "Pien", "Quinten", "Roos", "Sem", "Tess", "Umar", "Vera",
    "Wout", "Yara", "Zoe", "Amir", "Bo", "Cas", "Dewi", "Emre",
)  # fmt: skip
LAST = (
    "de Vries", "Jansen", "Bakker", "Visser", "Smit", "Meijer", "Mulder", "de Boer", "Bos",
    "Vos", "Peters", "Hendriks", "Dekker", "Brouwer", "de Wit", "Dijkstra", "Kok", "Jacobs",
    "Vermeulen", "van Leeuwen", "Kaya", "Yilmaz", "Nguyen", "Okafor", "Haddad",
)  # fmt: skip
VERBS = (
    "Add", "Improve", "Show", "Validate", "Refactor", "Support", "Export", "Import", "Track",
    "Notify about", "Cache", "Migrate", "Audit", "Simplify", "Secure", "Localise", "Retry",
    "Archive", "Search", "Schedule",
)  # fmt: skip
OBJECTS = (
    "invoice status", "payment webhook", "order history", "delivery slot", "customer profile",
    "parcel label", "refund request", "login session", "partner API token", "route plan",
    "address lookup", "price rule", "stock level", "shipment event", "consent record",
    "discount code", "driver roster", "return label", "loyalty points", "tax report",
    "audit trail", "SSO mapping", "notification preference", "fleet telemetry", "card vault",
)  # fmt: skip
QUALIFIERS = (
    "in the app", "on the portal", "for business customers", "in the back office", "via the API",
    "for partners", "per region", "in bulk", "for new users", "on mobile", "in the nightly batch",
    "for the helpdesk", "with audit logging", "under load", "for the EU market", "",
)  # fmt: skip
BUG_SYMPTOMS = (
    "shows wrong total", "times out", "is lost after refresh", "fails for long names",
    "is duplicated", "rounds incorrectly", "is not translated", "crashes on empty input",
)  # fmt: skip
EPIC_THEMES = (
    "Invoice payments", "Self-service returns", "Real-time parcel tracking", "Partner onboarding",
    "Single sign-on", "Checkout redesign", "Fleet electrification", "Data platform migration",
    "Mobile app 3.0", "Dynamic pricing", "Customer consent centre", "Route optimisation",
    "Loyalty programme", "Fraud detection", "Warehouse automation", "EU tax compliance",
    "Search relevance", "Customer notifications", "Driver app", "B2B ordering portal",
)  # fmt: skip
EPIC_QUALIFIERS = ("", "phase 2", "for partners", "MVP", "at scale", "Benelux", "v2", "pilot")
INITIATIVES = (
    "Grow B2B revenue", "Chain-wide visibility of deliveries", "Cost to serve down 15%",
    "Customer self-service first", "Platform modernisation", "Regulatory readiness",
)  # fmt: skip
IMPEDIMENTS = (
    "Waiting for partner test environment", "Licence for load-test tool not approved",
    "Shared staging database unavailable", "Security review backlog at central IT",
    "API contract with partner not signed", "Key expert on long leave",
)  # fmt: skip
NEAR_DUPLICATES = (
    ("Customer can pay by invoice at checkout", "Customers can pay by invoice at check-out"),
    ("Track parcel delivery status in real time", "Track parcel delivery status in realtime"),
    ("Single sign-on for the partner portal", "Single sign on for partner portal"),
)


# --------------------------------------------------------------------------- the portfolio


@dataclass
class Portfolio:
    """All tenants' items in parallel arrays; index = global item index (see module doc)."""

    seed: int
    size: int
    anchor: datetime
    tenants: tuple[str, ...]
    specs: list[TenantSpec]
    tenant_lo: list[int]  # item range [lo, hi) per tenant position
    tenant_hi: list[int]
    teams: list[tuple[int, str]]  # global team index -> (tenant position, name)
    people: list[tuple[int, str, str]]  # global person -> (team index, display name, account id)
    # items
    tenant: np.ndarray
    nid: np.ndarray
    project: np.ndarray
    keynum: np.ndarray
    itype: np.ndarray
    team: np.ndarray
    parent: np.ndarray
    wf: np.ndarray
    status: np.ndarray
    priority: np.ndarray
    assignee: np.ndarray
    created: np.ndarray
    updated: np.ndarray
    resolved: np.ndarray
    due: np.ndarray  # days since epoch, -1 = none
    sprint: np.ndarray
    prev_sprint: np.ndarray
    points: np.ndarray
    rank: np.ndarray
    labels: np.ndarray
    bv: np.ndarray
    cost: np.ndarray
    tc: np.ndarray
    rr: np.ndarray
    has_desc: np.ndarray
    has_ac: np.ndarray
    words: np.ndarray  # (n, 3) title word indices
    flag_on: np.ndarray
    flag_off: np.ndarray
    edit_at: np.ndarray  # a plain edit after the last change (a revision in ADO), -1 = none
    deleted: np.ndarray
    # status history (CSR): entries hptr[i]..hptr[i+1] of item i, to-status and time
    hptr: np.ndarray
    hstatus: np.ndarray
    htime: np.ndarray
    # sprints (global index)
    s_team: np.ndarray
    s_number: np.ndarray
    s_start: np.ndarray
    s_end: np.ndarray
    s_native: np.ndarray
    # intra-tenant links: src/dst item, type, native link id
    l_src: np.ndarray
    l_dst: np.ndarray
    l_type: np.ndarray
    l_id: np.ndarray
    # cross-organisation links: recorded on x_rec, pointing at x_other; x_blocks: rec blocks other
    x_rec: np.ndarray
    x_other: np.ndarray
    x_blocks: np.ndarray
    x_id: np.ndarray
    title_override: dict[int, str] = field(default_factory=dict)
    planted: dict[str, Any] = field(default_factory=dict)
    # mutable state (mutations)
    clock: int = 0
    extra: dict[int, list[tuple[int, str, Any]]] = field(default_factory=dict)
    old_keys: dict[tuple[int, str], int] = field(default_factory=dict)
    next_keynum: dict[tuple[int, int], int] = field(default_factory=dict)
    version: int = 0

    # -- lookups

    @property
    def n(self) -> int:
        return int(self.nid.shape[0])

    def position(self, tenant_name: str) -> int | None:
        return self.tenants.index(tenant_name) if tenant_name in self.tenants else None

    def key(self, i: int) -> str:
        spec = self.specs[int(self.tenant[i])]
        if not spec.is_jira:
            return str(int(self.nid[i]))
        return f"{spec.projects[int(self.project[i])][0]}-{int(self.keynum[i])}"

    def title(self, i: int) -> str:
        if i in self.title_override:
            return self.title_override[i]
        kind = int(self.itype[i])
        a, b, c = (int(x) for x in self.words[i])
        if kind == INITIATIVE:
            return INITIATIVES[a % len(INITIATIVES)] + (f" {2026 + b % 2}" if c % 2 else "")
        if kind == EPIC:
            qualifier = EPIC_QUALIFIERS[b % len(EPIC_QUALIFIERS)]
            return EPIC_THEMES[a % len(EPIC_THEMES)] + (f" {qualifier}" if qualifier else "")
        if kind == IMPEDIMENT:
            return IMPEDIMENTS[a % len(IMPEDIMENTS)]
        obj = OBJECTS[b % len(OBJECTS)]
        if kind == BUG:
            return f"{obj[0].upper()}{obj[1:]} {BUG_SYMPTOMS[c % len(BUG_SYMPTOMS)]}"
        qualifier = QUALIFIERS[c % len(QUALIFIERS)]
        text = f"{VERBS[a % len(VERBS)]} {obj}" + (f" {qualifier}" if qualifier else "")
        if kind == FEATURE:
            return f"{obj[0].upper()}{obj[1:]} {qualifier or 'end to end'}"
        return text

    def team_name(self, i: int) -> str | None:
        t = int(self.team[i])
        return self.teams[t][1] if t >= 0 else None

    def category(self, i: int) -> str:
        return STATUSES[int(self.status[i])].category

    def sprint_state(self, s: int) -> str:
        if int(self.s_end[s]) <= self.clock:
            return "closed"
        return "active" if int(self.s_start[s]) <= self.clock else "future"

    def events(self, i: int) -> list[tuple[int, str, Any, int]]:
        """Every change of item ``i`` oldest first: (time, kind, value, history id).

        kind: "status" (value = to-status code), "flag_on", "flag_off", "edit" (another field
        changed), "move" (value = (old, new) key or area path). Creation is not an event.
        """
        out: list[tuple[int, str, Any, int]] = []
        lo, hi = int(self.hptr[i]), int(self.hptr[i + 1])
        for j in range(lo, hi):
            out.append((int(self.htime[j]), "status", int(self.hstatus[j]), 1_000_000 + j))
        if self.flag_on[i] >= 0:
            out.append((int(self.flag_on[i]), "flag_on", None, 900_000_000 + 2 * i))
        if self.flag_off[i] >= 0:
            out.append((int(self.flag_off[i]), "flag_off", None, 900_000_001 + 2 * i))
        if self.edit_at[i] >= 0:
            out.append((int(self.edit_at[i]), "edit", None, 0))
        out.sort(key=lambda e: (e[0], _KIND_ORDER[e[1]], e[3]))
        out += [(t, kind, value, hid) for (t, kind, value), hid in self._extra(i)]
        return out

    def _extra(self, i: int) -> list[tuple[tuple[int, str, Any], int]]:
        return [(e, 2_000_000_000 + i * 1000 + n) for n, e in enumerate(self.extra.get(i, []))]

    def initial_status(self, i: int) -> int:
        return int(WF_TABLE[int(self.wf[i]), 0])

    def tenant_range(self, position: int) -> tuple[int, int]:
        return self.tenant_lo[position], self.tenant_hi[position]

    def index_of_native(self, position: int, native: int) -> int | None:
        lo, hi = self.tenant_range(position)
        spec = self.specs[position]
        i = lo + native - spec.id_base
        if lo <= i < hi and int(self.nid[i]) == native:
            return i
        return None

    def index_of_key(self, position: int, key: str) -> int | None:
        """A Jira key (current or from before a move) or a native id -> item index."""
        if key.isdigit():
            return self.index_of_native(position, int(key))
        if (position, key) in self.old_keys:
            return self.old_keys[(position, key)]
        spec = self.specs[position]
        project_key, _, number = key.rpartition("-")
        projects = [p[0] for p in spec.projects]
        if project_key not in projects or not number.isdigit():
            return None
        code, num = projects.index(project_key), int(number)
        lo, hi = self.tenant_range(position)
        hits = np.nonzero((self.project[lo:hi] == code) & (self.keynum[lo:hi] == num))[0]
        return lo + int(hits[0]) if hits.size else None


_KIND_ORDER = {"status": 1, "flag_on": 2, "flag_off": 3, "move": 4, "edit": 5}


def default_anchor() -> datetime:
    """The start of the current hour (UTC): the demo looks fresh and nothing lies in the future."""
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


def split_size(size: int, tenants: tuple[str, ...]) -> list[int]:
    """Items per tenant: the tenants' shares of ``size`` (all of it when there is one)."""
    shares = [TENANTS[t].share for t in tenants]
    total = sum(shares)
    counts = [int(size * s / total) for s in shares]
    counts[0] += size - sum(counts)
    return counts


MIN_PER_TENANT = 120


def generate(
    seed: int = 7,
    size: int = 2000,
    anchor: datetime | None = None,
    tenants: tuple[str, ...] = TENANT_ORDER,
) -> Portfolio:
    """Build the portfolio. Deterministic for (seed, size, anchor, tenants)."""
    anchor = anchor or default_anchor()
    anchor = (anchor if anchor.tzinfo else anchor.replace(tzinfo=UTC)).astimezone(UTC)
    tenants = tuple(t for t in TENANT_ORDER if t in tenants)
    if not tenants:
        raise ValueError(f"tenants must name at least one of {TENANT_ORDER}")
    counts = split_size(size, tenants)
    if min(counts) < MIN_PER_TENANT:
        raise ValueError(
            f"size {size} is too small: each tenant needs at least {MIN_PER_TENANT} items "
            f"(got {dict(zip(tenants, counts, strict=True))})"
        )
    now = int(anchor.timestamp())
    parts: list[dict[str, Any]] = []
    teams: list[tuple[int, str]] = []
    people: list[tuple[int, str, str]] = []
    planted: dict[str, Any] = {}
    offsets = {"item": 0, "team": 0, "person": 0, "sprint": 0, "hist": 0, "link": 0}
    for position, (name, count) in enumerate(zip(tenants, counts, strict=True)):
        spec = TENANTS[name]
        rng = np.random.default_rng([seed, position, TENANT_ORDER.index(name)])
        gen = _TenantGen(spec, position, count, rng, now, offsets, people)
        part = gen.build()
        for t_name in spec.teams:
            teams.append((position, t_name))
        parts.append(part)
        for case, value in gen.planted.items():
            planted.setdefault(case, []).extend(value)
        offsets["item"] += count
        offsets["team"] += len(spec.teams)
        offsets["sprint"] += len(part["s_team"])
        offsets["hist"] += len(part["hstatus"])
        offsets["link"] += len(part["l_src"])

    def cat(name: str) -> np.ndarray:
        return np.concatenate([p[name] for p in parts])

    hptr = [np.zeros(1, dtype=np.int64)]
    base = 0
    for p in parts:
        hptr.append(p["hptr"][1:] + base)
        base += int(p["hptr"][-1])
    names = [
        "tenant", "nid", "project", "keynum", "itype", "team", "parent", "wf", "status",
        "priority", "assignee", "created", "updated", "resolved", "due", "sprint", "prev_sprint",
        "points", "rank", "labels", "bv", "cost", "tc", "rr", "has_desc", "has_ac", "words",
        "flag_on", "flag_off", "edit_at", "hstatus", "htime", "s_team", "s_number", "s_start", "s_end",
        "s_native", "l_src", "l_dst", "l_type", "l_id",
    ]  # fmt: skip
    arrays: dict[str, Any] = {n: cat(n) for n in names}
    lo = list(np.cumsum([0, *counts[:-1]]).tolist())
    hi = list(np.cumsum(counts).tolist())
    portfolio = Portfolio(
        seed=seed,
        size=size,
        anchor=anchor,
        tenants=tenants,
        specs=[TENANTS[t] for t in tenants],
        tenant_lo=lo,
        tenant_hi=hi,
        teams=teams,
        people=people,
        deleted=np.zeros(size, dtype=bool),
        hptr=np.concatenate(hptr),
        x_rec=np.zeros(0, dtype=np.int64),
        x_other=np.zeros(0, dtype=np.int64),
        x_blocks=np.zeros(0, dtype=bool),
        x_id=np.zeros(0, dtype=np.int64),
        planted=planted,
        clock=now,
        **arrays,
    )
    for part in parts:
        portfolio.title_override.update(part["titles"])
    _cross_links(portfolio, np.random.default_rng([seed, 99]))
    _near_duplicates(portfolio, np.random.default_rng([seed, 98]))
    return portfolio


# --------------------------------------------------------------------------- one tenant


class _TenantGen:
    """Generates one tenant's items in local index space; ``build`` returns global arrays."""

    def __init__(
        self,
        spec: TenantSpec,
        position: int,
        n: int,
        rng: np.random.Generator,
        now: int,
        offsets: dict[str, int],
        people: list[tuple[int, str, str]],
    ) -> None:
        self.spec = spec
        self.position = position
        self.n = n
        self.rng = rng
        self.now = now
        self.off = offsets
        self.people = people
        self.k = len(spec.teams)
        self.ado = spec.kind == "azure_devops"
        self.planted: dict[str, list[Any]] = {}
        self.titles: dict[int, str] = {}

    # -- helpers

    def pick(self, pool: np.ndarray, count: int = 1) -> list[int]:
        if pool.size == 0:
            return []
        chosen = self.rng.choice(pool, size=min(count, pool.size), replace=False)
        return [int(x) for x in chosen]

    def plant(self, case: str, *local: int) -> None:
        g = [self.off["item"] + x for x in local]
        self.planted.setdefault(case, []).append(g[0] if len(g) == 1 else tuple(g))

    def team_index(self, name: str) -> int:
        return self.spec.teams.index(name) if name in self.spec.teams else -1

    # -- build

    def build(self) -> dict[str, Any]:
        rng, n, now = self.rng, self.n, self.now
        self._sprints()
        # A. types and creation times, then creation order = id order
        n_epic = max(4, round(n / 50))
        n_init = max(2, round(n_epic / 6)) if self.spec.kind == "jira_cloud" else 0
        n_feat = 3 * n_epic if self.ado else 0
        n_leaf = n - n_epic - n_init - n_feat
        leaf_types = rng.choice(
            np.array([STORY, BUG, TASK, SUBTASK, IMPEDIMENT], dtype=np.int8),
            size=n_leaf,
            p=_leaf_probs(self.ado),
        )
        itype = np.concatenate(
            [
                np.full(n_init, INITIATIVE, np.int8),
                np.full(n_epic, EPIC, np.int8),
                np.full(n_feat, FEATURE, np.int8),
                leaf_types,
            ]
        )
        t0 = now - 182 * DAY
        created = np.concatenate(
            [
                t0 - 40 * DAY + rng.integers(0, 60 * DAY, n_init),
                t0 - 25 * DAY + rng.integers(0, 150 * DAY, n_epic),
                t0 - 10 * DAY + rng.integers(0, 150 * DAY, n_feat),
                t0 + rng.integers(0, 181 * DAY, n_leaf),
            ]
        ).astype(np.int64)
        order = np.lexsort((np.arange(n), created))
        itype, created = itype[order], created[order]
        # enough impediments to find
        leaves = np.nonzero(np.isin(itype, LEAF_TYPES))[0]
        if int((itype == IMPEDIMENT).sum()) < 3:
            itype[self.pick(leaves[itype[leaves] == STORY], 3)] = IMPEDIMENT
        self.itype, self.created = itype, created
        self.nid = self.spec.id_base + np.arange(n, dtype=np.int64)
        # B. teams, parents, sprints, categories
        self._teams_and_parents()
        self._plan_leaves()
        self._attributes()
        # C. planted cases, D. times and histories
        links = self._links()
        self._plants(links)
        self._leaf_times()
        self._derive_parents()
        self._history()
        self._keys()
        return self._export(links)

    def _sprints(self) -> None:
        """Two-week sprints per team over ~6 months, the current one and two future ones."""
        anchor_day = datetime.fromtimestamp(self.now, UTC)
        start_day = anchor_day - timedelta(days=182)
        monday = start_day - timedelta(days=start_day.weekday())
        base = int(monday.replace(hour=7, minute=0, second=0, microsecond=0).timestamp())
        starts: list[int] = []
        teams: list[int] = []
        numbers: list[int] = []
        self.team_first_sprint = np.zeros(self.k, dtype=np.int64)
        self.team_sprints = np.zeros(self.k, dtype=np.int64)
        self.team_base = np.zeros(self.k, dtype=np.int64)
        self.team_active = np.zeros(self.k, dtype=np.int64)
        for t, name in enumerate(self.spec.teams):
            offset = 7 * DAY if (self.spec.name, name) == OFFSET_TEAM else 0
            team_base = base + offset
            count = (self.now + 2 * SPRINT_DAYS * DAY - team_base) // (SPRINT_DAYS * DAY) + 1
            self.team_first_sprint[t] = len(starts)
            self.team_sprints[t] = count
            self.team_base[t] = team_base
            self.team_active[t] = (self.now - team_base) // (SPRINT_DAYS * DAY)
            for j in range(count):
                starts.append(team_base + j * SPRINT_DAYS * DAY)
                teams.append(t)
                numbers.append(j + 1)
        s_start = np.array(starts, dtype=np.int64)
        s_team = np.array(teams, dtype=np.int64)
        order = np.lexsort((s_team, s_start))  # native ids in creation order across boards
        native = np.empty(len(starts), dtype=np.int64)
        native[order] = self.spec.sprint_base + np.arange(len(starts))
        self.s_start, self.s_team, self.s_number = s_start, s_team, np.array(numbers, np.int64)
        self.s_end = s_start + SPRINT_DAYS * DAY - HOUR
        self.s_native = native

    def _teams_and_parents(self) -> None:
        rng, n, k, itype = self.rng, self.n, self.k, self.itype
        team = rng.integers(0, k, n).astype(np.int64)
        parent = np.full(n, -1, dtype=np.int64)
        for kind in (INITIATIVE, EPIC, FEATURE):
            idx = np.nonzero(itype == kind)[0]
            team[idx] = np.arange(idx.size) % k  # a home team each, round robin
        epics = np.nonzero(itype == EPIC)[0]
        inits = np.nonzero(itype == INITIATIVE)[0]
        feats = np.nonzero(itype == FEATURE)[0]
        if inits.size:  # Northwind: most epics under an initiative
            has = rng.random(epics.size) < 0.85
            parent[epics[has]] = rng.choice(inits, int(has.sum()))
        if feats.size:  # Contoso: features under epics, same home team mostly
            has = rng.random(feats.size) < 0.92
            parent[feats[has]] = rng.choice(epics, int(has.sum()))
            team[feats[has]] = team[parent[feats[has]]]
        holders = feats if feats.size else epics  # what a story hangs under
        leaves = np.nonzero(np.isin(itype, (STORY, BUG, TASK)))[0]
        orphan = rng.random(leaves.size) < 0.03
        own_team = rng.random(leaves.size) < 0.8
        for t in range(k):
            mine = holders[team[holders] == t]
            sel = leaves[(team[leaves] == t) & own_team & ~orphan]
            if mine.size and sel.size:
                parent[sel] = rng.choice(mine, sel.size)
        sel = leaves[~own_team & ~orphan]
        parent[sel] = rng.choice(holders, sel.size)
        # sub-tasks under an earlier story, in its team
        stories = np.nonzero(itype == STORY)[0]
        subs = np.nonzero(itype == SUBTASK)[0]
        if subs.size:
            before = np.searchsorted(stories, subs)
            ok = before > 0
            choice = (rng.random(subs.size) * np.maximum(before, 1)).astype(np.int64)
            parent[subs[ok]] = stories[choice[ok]]
            team[subs[ok]] = team[parent[subs[ok]]]
            self.itype[subs[~ok]] = TASK
        self.team, self.parent = team, parent
        # workflow per item
        wf = np.full(n, WF_JIRA, dtype=np.int8)
        top = np.isin(itype, (INITIATIVE, EPIC, FEATURE))
        if self.ado:
            wf[:] = WF_ADO
            wf[itype == TASK] = WF_ADO_TASK
            wf[itype == IMPEDIMENT] = WF_ADO_IMP
        elif self.spec.kind == "jira_dc":
            wf[:] = WF_DC
            wf[top] = WF_DC_EPIC
        else:
            wf[top] = WF_JIRA_EPIC
            drift = self.team_index(DRIFT_TEAM[1]) if self.spec.name == DRIFT_TEAM[0] else -1
            wf[(team == drift) & ~top] = WF_JIRA_DRIFT
        self.wf = wf

    def _plan_leaves(self) -> None:
        """Sprint and category of each leaf from when it was created (vectorised)."""
        rng, n = self.rng, self.n
        leaf = np.isin(self.itype, LEAF_TYPES)
        self.leaf = leaf
        team = self.team
        sprint = np.full(n, -1, dtype=np.int64)
        prev = np.full(n, -1, dtype=np.int64)
        cat = np.zeros(n, dtype=np.int8)  # 0 todo, 1 in progress, 2 done
        base = self.team_base[team]
        j0 = -((base - self.created) // (SPRINT_DAYS * DAY))  # first sprint starting after
        j0 = np.maximum(j0, 0)
        delay = rng.choice(4, n, p=[0.5, 0.3, 0.15, 0.05])
        j = j0 + delay
        backlog = rng.random(n) < 0.15
        planned = leaf & ~backlog & (j < self.team_sprints[team])
        sprint[planned] = self.team_first_sprint[team[planned]] + j[planned]
        active = self.team_first_sprint[team] + self.team_active[team]
        u = rng.random(n)
        closed = planned & (self.s_end[np.maximum(sprint, 0)] <= self.now)
        is_active = planned & (sprint == active)
        cat[closed & (u < 0.88)] = 2
        carry = closed & (u >= 0.88)
        prev[carry] = sprint[carry]
        sprint[carry] = active[carry]
        cat[carry & (u < 0.95)] = 1
        overload = self.team_index(OVERLOAD_TEAM[1]) if self.spec.name == OVERLOAD_TEAM[0] else -1
        heavy = team == overload
        cat[is_active & ~heavy & (u < 0.35)] = 2
        cat[is_active & ~heavy & (u >= 0.35) & (u < 0.75)] = 1
        cat[is_active & heavy & (u < 0.2)] = 2
        cat[is_active & heavy & (u >= 0.2) & (u < 0.9)] = 1
        loose = leaf & ~planned
        cat[loose & (u < 0.07)] = 2
        cat[loose & (u >= 0.07) & (u < 0.15)] = 1
        if overload >= 0:  # the overloaded team also pulls backlog work into progress
            cat[loose & heavy & (u >= 0.15) & (u < 0.5)] = 1
        # impediments are either open (to do) or done
        imp = self.itype == IMPEDIMENT
        cat[imp & (cat == 1)] = 0
        self.sprint, self.prev, self.cat, self.active_sprint = sprint, prev, cat, active
        self.bounces = np.where(rng.random(n) < 0.05, 1, 0).astype(np.int64)
        self.override = np.full(n, -1, dtype=np.int64)
        self.stale = np.zeros(n, dtype=bool)

    def _attributes(self) -> None:
        rng, n, itype = self.rng, self.n, self.itype
        leaf = self.leaf
        top = ~leaf
        # people: six per team
        first_person = len(self.people)
        for t in range(self.k):
            for m in range(6):
                h = (self.position * 97 + t * 13 + m * 7) % (len(FIRST) * len(LAST))
                name = f"{FIRST[h % len(FIRST)]} {LAST[(h // len(FIRST)) % len(LAST)]}"
                account = f"{(self.position + 1) * 0x5B10A000 + t * 16 + m:x}".rjust(24, "0")
                self.people.append((self.off["team"] + t, name, account))
        member = first_person + self.team * 6 + rng.integers(0, 6, n)
        assigned = np.where(leaf, rng.random(n) < 0.88, rng.random(n) < 0.78)
        self.assignee = np.where(assigned, member, -1).astype(np.int64)
        if self.ado:
            prio = rng.choice(np.arange(1, 5), n, p=[0.1, 0.25, 0.5, 0.15])
        else:
            prio = rng.choice(np.arange(1, 6), n, p=[0.05, 0.15, 0.55, 0.2, 0.05])
        self.priority = prio.astype(np.int8)
        fib = np.array([1, 2, 3, 5, 8, 13], dtype=np.float32)
        points = fib[rng.integers(0, 6, n)]
        missing = np.select(
            [itype == STORY, itype == BUG, itype == TASK],
            [rng.random(n) < 0.12, rng.random(n) < 0.4, rng.random(n) < 0.7],
            default=True,
        )
        if self.ado:  # effort on epics and features
            effort = rng.random(n) < 0.6
            missing = np.where(top, ~effort, missing)
            points = np.where(top, rng.integers(20, 200, n).astype(np.float32), points)
        self.points = np.where(missing, np.nan, points).astype(np.float32)
        self.rank = rng.permutation(n).astype(np.int64)
        bits = np.zeros(n, dtype=np.int64)
        for b in range(len(LABELS) - 1):
            bits |= np.where(rng.random(n) < 0.12, 1 << b, 0)
        self.labels = bits
        value = top & (rng.random(n) < 0.82)
        self.bv = np.where(value, rng.integers(1, 21, n) * 5, np.nan).astype(np.float32)
        self.cost = np.where(
            top & (rng.random(n) < 0.72), rng.integers(2, 60, n) * 5, np.nan
        ).astype(np.float32)
        self.tc = np.where(value, rng.integers(1, 21, n), np.nan).astype(np.float32)
        self.rr = np.where(value, rng.integers(1, 21, n), np.nan).astype(np.float32)
        self.has_desc = np.where(leaf, rng.random(n) < 0.75, rng.random(n) < 0.85)
        self.has_ac = (itype == STORY) & (rng.random(n) < 0.4)
        self.words = rng.integers(0, 1000, (n, 3)).astype(np.int16)
        # due / target dates (days since epoch)
        due = np.full(n, -1, dtype=np.int64)
        s_end = self.s_end[np.maximum(self.sprint, 0)]
        some = leaf & (rng.random(n) < 0.08)
        with_sprint = some & (self.sprint >= 0)
        due[with_sprint] = (s_end[with_sprint] // DAY) + rng.integers(-3, 8, n)[with_sprint]
        without = some & (self.sprint < 0)
        due[without] = (self.created[without] // DAY) + rng.integers(14, 90, n)[without]
        tops = top & (rng.random(n) < 0.55)
        due[tops] = (self.now - 182 * DAY) // DAY + rng.integers(90, 260, n)[tops]
        self.due = due
        self.project = np.zeros(n, dtype=np.int64)
        if self.spec.is_jira:
            self.project[leaf & (rng.random(n) < 0.15)] = 1
        self.flag_on = np.full(n, -1, dtype=np.int64)
        self.flag_off = np.full(n, -1, dtype=np.int64)

    # -- links

    def _links(self) -> list[tuple[int, int, int]]:
        """Random intra-tenant links (blocker, dependent, type); plants add more later."""
        rng, n = self.rng, self.n
        pool = np.nonzero(np.isin(self.itype, (STORY, BUG, TASK)))[0]
        want = round(0.135 * n)
        m = want * 3 + 20
        a = rng.choice(pool, m)
        b = rng.choice(pool, m)
        cross = rng.random(m) < 0.7
        good = (a != b) & ((self.team[a] != self.team[b]) == cross)
        a, b = a[good], b[good]
        lo, hi = np.minimum(a, b), np.maximum(a, b)
        _, first = np.unique(lo * n + hi, return_index=True)
        first.sort()
        a, b = a[first][:want], b[first][:want]
        if self.ado:
            kinds = np.full(a.size, L_BLOCKS)
        else:
            kinds = np.where(rng.random(a.size) < 0.75, L_BLOCKS, L_DEPENDENCY)
        links = [(int(x), int(y), int(t)) for x, y, t in zip(a, b, kinds, strict=True)]
        seen = {(min(x, y), max(x, y)) for x, y, _ in links}
        for kind, rate in ((L_RELATES, 0.03), (L_DUPLICATE, 0.004)):
            count = max(1, round(rate * n))
            xs, ys = rng.choice(pool, count), rng.choice(pool, count)
            for x, y in zip(xs.tolist(), ys.tolist(), strict=True):
                if x != y and (min(x, y), max(x, y)) not in seen:
                    seen.add((min(x, y), max(x, y)))
                    links.append((x, y, kind))
        return links

    # -- planted cases

    def _plants(self, links: list[tuple[int, int, int]]) -> None:
        rng, k = self.rng, self.k
        itype, team, cat = self.itype, self.team, self.cat
        used: set[int] = set()
        stories = np.nonzero(itype == STORY)[0]
        blocks = L_BLOCKS

        def fresh(pool: np.ndarray, count: int = 1) -> list[int]:
            pool = pool[~np.isin(pool, np.fromiter(used, np.int64, len(used)))]
            got = self.pick(pool, count)
            used.update(got)
            return got

        def of_team(t: int, old: bool = False) -> np.ndarray:
            pool = stories[team[stories] == t]
            return pool[self.created[pool] < self.now - 60 * DAY] if old else pool

        def schedule(i: int, where: str, category: int) -> None:
            t = int(team[i])
            active = int(self.active_sprint[i])
            self.sprint[i] = {"active": active, "future": active + 2, "none": -1}[where]
            self.prev[i] = -1
            self.cat[i] = category
            self.due[i] = -1
            del t

        def link(blocker: int, dependent: int, case: str, kind: int = blocks) -> None:
            links.append((blocker, dependent, kind))
            self.plant(case, blocker, dependent)

        # a 3-team dependency cycle
        if k >= 3:
            trio = [fresh(of_team(t, old=True)) for t in range(3)]
            if all(trio):
                a, b, c = (x[0] for x in trio)
                for i in (a, b, c):
                    schedule(i, "active", 1)
                links += [(a, b, blocks), (b, c, blocks), (c, a, blocks)]
                self.plant("cycle", a, b, c)
        for r in range(3):  # timing conflicts: dependent planned before its blocker
            t1, t2 = r % k, (r + 1) % k
            got = fresh(of_team(t1, True)), fresh(of_team(t2, True))
            if all(got):
                blocker, dependent = got[1][0], got[0][0]
                schedule(blocker, "future", 0)
                schedule(dependent, "active", 1)
                link(blocker, dependent, "timing_conflict")
        for r in range(2):  # same sprint, both open: at risk
            pair = fresh(of_team(r % k, True), 2)
            if len(pair) == 2:
                schedule(pair[0], "active", 1)
                schedule(pair[1], "active", 0)
                link(pair[0], pair[1], "same_sprint")
        for r in range(2):  # unscheduled blocker
            got = fresh(of_team(r % k, True)), fresh(of_team((r + 1) % k, True))
            if all(got):
                schedule(got[0][0], "none", 0)
                schedule(got[1][0], "active", 0)
                link(got[0][0], got[1][0], "unscheduled_blocker")
        for r in range(2):  # priority inversion: urgent work waits on low-priority work
            got = fresh(of_team(r % k, True)), fresh(of_team((r + 2) % k, True))
            if all(got):
                blocker, dependent = got[0][0], got[1][0]
                schedule(blocker, "active", 0)
                schedule(dependent, "future", 0)
                self.sprint[dependent] = self.active_sprint[dependent] + 1
                self.priority[dependent] = 1
                self.priority[blocker] = 4
                link(blocker, dependent, "priority_inversion")
        if self.spec.is_jira:  # a link type nobody configured
            for _ in range(2):
                pair = fresh(stories, 2)
                if len(pair) == 2:
                    link(pair[0], pair[1], "unknown_link_type", L_CHAIN)
        # long history: > 100 status changes
        team0 = fresh(of_team(0, True))
        for i in team0:
            self.cat[i], self.bounces[i] = 2, 55
            if self.sprint[i] >= self.active_sprint[i]:
                self.sprint[i] = -1
            self.plant("long_changelog", i)
        # stale work in progress
        old_ip = stories[(cat[stories] == 1) & (self.created[stories] < self.now - 90 * DAY)]
        for i in fresh(old_ip, 3) or fresh(of_team(1 % k, True), 3):
            self.cat[i], self.stale[i] = 1, True
            self.plant("stale_in_progress", i)
        # blocked status / custom waiting state / removed
        open_ip = np.nonzero(self.leaf & (cat == 1) & (itype != IMPEDIMENT))[0]
        blocked = rng.random(open_ip.size) < 0.015
        self.override[open_ip[blocked]] = S_BLOCKED
        for i in fresh(open_ip, 2):
            self.override[i] = S_BLOCKED
        self.planted["blocked_status"] = [
            self.off["item"] + int(i) for i in np.nonzero(self.override == S_BLOCKED)[0][:5]
        ]
        if self.ado:
            waiting = open_ip[(rng.random(open_ip.size) < 0.01) & (self.override[open_ip] < 0)]
            self.override[waiting] = S_WAITING
            for i in fresh(open_ip[self.override[open_ip] < 0], 1):
                self.override[i] = S_WAITING
            todo = np.nonzero(self.leaf & (cat == 0) & (itype != IMPEDIMENT))[0]
            self.override[todo[rng.random(todo.size) < 0.02]] = S_REMOVED
        # flagged items
        open_leaf = np.nonzero(self.leaf & (cat < 2) & ~self.stale)[0]
        self.flag_pick = open_leaf[rng.random(open_leaf.size) < 0.025]
        forced = fresh(open_leaf, 2)
        self.flag_pick = np.union1d(self.flag_pick, np.array(forced, dtype=np.int64))
        self.planted["flagged"] = [self.off["item"] + int(i) for i in self.flag_pick[:5]]
        # unassigned and unestimated in the active / a future sprint
        old_stories = stories[self.created[stories] < self.now - 60 * DAY]
        for i in fresh(old_stories, 2):
            schedule(i, "active", 0)
            self.assignee[i] = -1
            self.plant("unassigned_active", i)
        for i in fresh(old_stories, 2):
            schedule(i, "future", 0)
            self.points[i] = np.nan
            self.plant("unestimated_planned", i)
        # epics: one spread over every team, one done with open children, one open but finished
        holders = np.nonzero(itype == (FEATURE if self.ado else EPIC))[0]
        epics = np.nonzero(itype == EPIC)[0]
        spread = fresh(holders)
        if spread:
            for t in range(k):
                for i in fresh(of_team(t), 2 if t == 0 else 1):
                    self.parent[i] = spread[0]
            self.plant(
                "epic_many_teams", spread[0] if not self.ado else int(self.parent[spread[0]])
            )
        self.force_done_epic = fresh(epics)
        self.force_open_epic = fresh(epics)
        for e in self.force_open_epic:
            kids = self._descendant_leaves(e)
            self.cat[kids] = 2
            self.sprint[kids[self.sprint[kids] >= self.active_sprint[kids]]] = -1
            self.prev[kids] = -1
            self.override[kids] = -1
            self.flag_pick = np.setdiff1d(self.flag_pick, kids)
            if kids.size == 0:  # make sure it has a finished child
                for i in fresh(stories):
                    self.parent[i] = e if not self.ado else self._feature_of(e)
                    self.cat[i] = 2
                    self.sprint[i] = -1
        for e in self.force_done_epic:
            kids = self._descendant_leaves(e)
            if kids.size == 0 or (self.cat[kids] == 2).all():
                for i in fresh(stories):
                    self.parent[i] = e if not self.ado else self._feature_of(e)
                    schedule(i, "active", 1)

    def _feature_of(self, epic: int) -> int:
        feats = np.nonzero((self.itype == FEATURE) & (self.parent == epic))[0]
        if feats.size:
            return int(feats[0])
        feat = int(np.nonzero(self.itype == FEATURE)[0][0])
        self.parent[feat] = epic
        return feat

    def _descendant_leaves(self, epic: int) -> np.ndarray:
        holders = np.array([epic], dtype=np.int64)
        if self.ado:
            holders = np.nonzero((self.itype == FEATURE) & (self.parent == epic))[0]
        return np.nonzero(self.leaf & np.isin(self.parent, holders))[0]

    # -- times

    def _leaf_times(self) -> None:
        """Workflow position and first/last transition time of every leaf."""
        rng, n, now = self.rng, self.n, self.now
        leaf, cat, wf, created = self.leaf, self.cat, self.wf, self.created
        u1, u2, u3 = rng.random(n), rng.random(n), rng.random(n)
        pos = np.zeros(n, dtype=np.int64)
        ip_n = IP_COUNT[wf].astype(np.int64)
        ip_pos = IP_TABLE[wf, np.minimum((u1 * np.maximum(ip_n, 1)).astype(np.int64), 3)]
        pos = np.where((cat == 1) & (ip_n > 0), ip_pos, pos)
        done_n = DONE_COUNT[wf].astype(np.int64)
        last = DONE_TABLE[wf, np.maximum(done_n - 1, 0)]
        first_done = DONE_TABLE[wf, 0]
        pos = np.where(cat == 2, np.where(u1 < 0.85, last, first_done), pos)
        pos[self.bounces >= 55] = last[self.bounces >= 55]
        sprint = np.maximum(self.sprint, 0)
        has_sprint = self.sprint >= 0
        s_lo = np.where(has_sprint, self.s_start[sprint], created)
        prev = np.maximum(self.prev, 0)
        s_lo = np.where(self.prev >= 0, self.s_start[prev], s_lo)
        s_hi = np.where(has_sprint, np.minimum(self.s_end[sprint], now - HOUR), now - HOUR)
        lo = np.maximum(created + HOUR, s_lo)
        hi = np.maximum(lo + HOUR, s_hi)
        hi = np.minimum(hi, now - HOUR)
        lo = np.minimum(lo, hi - 60)
        # done: resolved inside the window, work started a few days before
        resolved = lo + (u2 * (hi - lo)).astype(np.int64)
        started = np.maximum(created + 60, resolved - (1 + u3 * 9) * DAY).astype(np.int64)
        # in progress: started inside the window, last moved some time after
        ip_start = lo + (u2 * (hi - lo)).astype(np.int64)
        ip_end = ip_start + (u3 * 0.5 * (now - HOUR - ip_start)).astype(np.int64)
        t_start = np.where(cat == 2, started, ip_start)
        t_end = np.where(cat == 2, resolved, ip_end)
        # removed (ADO): decided some days after creation
        removed = self.override == S_REMOVED
        t_start = np.where(removed, np.minimum(created + (1 + u3 * 20) * DAY, now - HOUR), t_start)
        t_end = np.where(removed, t_start, t_end)
        # stale: nothing moved for 35-70 days
        stale = self.stale
        t_start = np.where(
            stale, np.maximum(created + HOUR, now - (35 + u2 * 35) * DAY), t_start
        ).astype(np.int64)
        t_end = np.where(stale, t_start + (u3 * DAY).astype(np.int64), t_end)
        self.pos = np.where(leaf, pos, 0)
        self.t_start, self.t_end = t_start.astype(np.int64), t_end.astype(np.int64)
        # flags: flagged now, and flagged once then cleared
        self.flag_on = np.full(n, -1, dtype=np.int64)
        self.flag_off = np.full(n, -1, dtype=np.int64)
        fp = self.flag_pick
        base = np.maximum(created[fp], np.where(cat[fp] > 0, t_start[fp], created[fp]))
        self.flag_on[fp] = base + (rng.random(fp.size) * (now - HOUR - base)).astype(np.int64)
        was = np.nonzero(leaf & ~stale & (rng.random(n) < 0.03) & (self.flag_on < 0))[0]
        on = created[was] + (rng.random(was.size) * (now - 2 * DAY - created[was])).astype(np.int64)
        on = np.maximum(on, created[was] + 60)
        self.flag_on[was] = on
        self.flag_off[was] = np.minimum(on + (HOUR + rng.random(was.size) * 5 * DAY), now - 60)

    def _derive_parents(self) -> None:
        """Features, epics and initiatives take their state from their children."""
        rng, now, itype = self.rng, self.now, self.itype
        n = self.n
        for level in (FEATURE, EPIC, INITIATIVE):
            holders = np.nonzero(itype == level)[0]
            if holders.size == 0:
                continue
            kids = np.nonzero(np.isin(self.parent, holders) & (itype != SUBTASK))[0]
            par = self.parent[kids]
            total = np.bincount(par, minlength=n)
            done = np.bincount(par, weights=(self.cat[kids] == 2), minlength=n)
            started = np.bincount(par, weights=(self.cat[kids] >= 1), minlength=n)
            first = np.full(n, now, dtype=np.int64)
            lastt = np.zeros(n, dtype=np.int64)
            moved = kids[self.cat[kids] >= 1]
            np.minimum.at(first, self.parent[moved], self.t_start[moved])
            np.maximum.at(lastt, self.parent[moved], self.t_end[moved])
            h = holders
            cat = np.where(
                (total[h] > 0) & (done[h] == total[h]), 2, np.where(started[h] > 0, 1, 0)
            )
            if level == FEATURE:  # the finished epic's features are finished too
                for e in self.force_open_epic:
                    cat[self.parent[h] == e] = 2
            if level == EPIC:
                for e in self.force_done_epic:
                    cat[h == e] = 2
                    self.plant("done_epic_open_children", e)
                for e in self.force_open_epic:
                    cat[h == e] = 1
                    self.plant("open_epic_children_done", e)
            self.cat[h] = cat
            t_start = np.clip(first[h], self.created[h] + HOUR, now - 2 * HOUR)
            t_end = np.where(cat == 2, np.maximum(lastt[h], t_start + HOUR), t_start)
            t_end = np.minimum(t_end, now - HOUR)
            self.t_start[h], self.t_end[h] = t_start, t_end
            wf = self.wf[h]
            done_n = DONE_COUNT[wf].astype(np.int64)
            last = DONE_TABLE[wf, np.maximum(done_n - 1, 0)]
            ip_first = IP_TABLE[wf, 0]
            self.pos[h] = np.where(cat == 2, last, np.where(cat == 1, ip_first, 0))
            self.bounces[h] = 0
        del rng

    def _history(self) -> None:
        """Status histories as one CSR block; updated = last change (+ an edit, sometimes)."""
        rng, n, now = self.rng, self.n, self.now
        pos, bounces = self.pos, np.where(self.pos >= 2, self.bounces, 0)
        has_ovr = self.override >= 0
        steps = pos + 2 * bounces
        count = steps + has_ovr
        span = 60 * np.maximum(count - 1, 0)
        t_end = np.maximum(self.t_end, self.t_start + span)
        over = t_end > now - 60
        t_end = np.where(over, now - 60, t_end)
        t_start = np.where(over, t_end - span, self.t_start)
        t_start = np.maximum(t_start, self.created + 1)
        t_end = np.maximum(t_end, t_start + span)
        hptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(count, out=hptr[1:])
        total = int(hptr[-1])
        item = np.repeat(np.arange(n), count)
        r = np.arange(total) - hptr[item]
        b = bounces[item]
        seq = np.where(
            r < 2, r + 1, np.where(r < 2 + 2 * b, 1 + (r - 2) % 2, r - 2 * b + 1)
        ).astype(np.int64)
        seq = np.minimum(seq, 4)
        code = WF_TABLE[self.wf[item], seq].astype(np.int64)
        is_ovr = has_ovr[item] & (r == count[item] - 1)
        code = np.where(is_ovr, self.override[item], code)
        k = np.maximum(count[item] - 1, 1)
        times = t_start[item] + ((t_end[item] - t_start[item]) * r) // k
        self.hptr, self.hstatus, self.htime = hptr, code.astype(np.int16), times.astype(np.int64)
        final = WF_TABLE[self.wf, 0].astype(np.int64)
        has = count > 0
        final[has] = code[hptr[1:][has] - 1]
        self.status = final.astype(np.int16)
        last = np.where(has, t_end, self.created)
        last = np.maximum(last, np.maximum(self.flag_on, self.flag_off))
        edit = np.where(rng.random(n) < 0.4, (rng.random(n) * 3 * DAY).astype(np.int64), 0)
        edit = np.where(self.stale, np.minimum(edit, 2 * HOUR), edit)
        self.updated = np.minimum(last + edit, now - 60).astype(np.int64)
        self.updated = np.maximum(self.updated, last)
        self.edit_at = np.where(self.updated > last, self.updated, -1).astype(np.int64)
        done = np.array([STATUSES[c].category == "done" for c in range(len(STATUSES))])
        self.resolved = np.where(done[self.status] & has, t_end, -1).astype(np.int64)

    def _keys(self) -> None:
        """Jira keys count up per project in creation order."""
        keynum = np.zeros(self.n, dtype=np.int64)
        for code in range(len(self.spec.projects)):
            idx = np.nonzero(self.project == code)[0]
            keynum[idx] = np.arange(1, idx.size + 1)
        self.keynum = keynum if self.spec.is_jira else self.nid.copy()

    def _export(self, links: list[tuple[int, int, int]]) -> dict[str, Any]:
        o = self.off
        n = self.n
        shift = np.where(self.parent >= 0, self.parent + o["item"], -1)
        arr = np.array(links, dtype=np.int64).reshape(-1, 3)
        base_link = 10_000 + 1_000_000 * self.position
        return {
            "tenant": np.full(n, self.position, dtype=np.int8),
            "nid": self.nid,
            "project": self.project.astype(np.int8),
            "keynum": self.keynum,
            "itype": self.itype,
            "team": (self.team + o["team"]).astype(np.int16),
            "parent": shift.astype(np.int64),
            "wf": self.wf,
            "status": self.status,
            "priority": self.priority,
            "assignee": self.assignee.astype(np.int32),
            "created": self.created,
            "updated": self.updated,
            "resolved": self.resolved,
            "due": self.due.astype(np.int32),
            "sprint": np.where(self.sprint >= 0, self.sprint + o["sprint"], -1).astype(np.int32),
            "prev_sprint": np.where(self.prev >= 0, self.prev + o["sprint"], -1).astype(np.int32),
            "points": self.points,
            "rank": self.rank,
            "labels": self.labels.astype(np.int16),
            "bv": self.bv,
            "cost": self.cost,
            "tc": self.tc,
            "rr": self.rr,
            "has_desc": self.has_desc,
            "has_ac": self.has_ac,
            "words": self.words,
            "flag_on": self.flag_on,
            "flag_off": self.flag_off,
            "edit_at": self.edit_at,
            "hptr": self.hptr,
            "hstatus": self.hstatus,
            "htime": self.htime,
            "s_team": (self.s_team + o["team"]).astype(np.int16),
            "s_number": self.s_number,
            "s_start": self.s_start,
            "s_end": self.s_end,
            "s_native": self.s_native,
            "l_src": arr[:, 0] + o["item"],
            "l_dst": arr[:, 1] + o["item"],
            "l_type": arr[:, 2].astype(np.int8),
            "l_id": base_link + np.arange(arr.shape[0], dtype=np.int64),
            "titles": {o["item"] + i: t for i, t in self.titles.items()},
        }


def _leaf_probs(ado: bool) -> list[float]:
    """Story, bug, task, sub-task, impediment shares (no sub-tasks in ADO)."""
    return [0.66, 0.19, 0.12, 0.0, 0.03] if ado else [0.64, 0.19, 0.12, 0.03, 0.02]


# --------------------------------------------------------------------------- across tenants


def _cross_links(p: Portfolio, rng: np.random.Generator) -> None:
    """Dependencies between organisations, recorded once: a Jira remote link (the issue carries
    the label ``chain``) or an Azure DevOps Hyperlink (tag ``chain``) on one end."""
    if len(p.tenants) < 2:
        return
    pools = []
    for position in range(len(p.tenants)):
        lo, hi = p.tenant_range(position)
        idx = lo + np.nonzero(np.isin(p.itype[lo:hi], (STORY, BUG, TASK)))[0]
        pools.append(idx)
    count = max(8, round(0.015 * p.n))
    pairs = [(a, b) for a in range(len(pools)) for b in range(len(pools)) if a != b]
    rec, other, blocks = [], [], []
    seen: set[tuple[int, int]] = set()
    for j in range(count):
        ta, tb = pairs[j % len(pairs)] if j < len(pairs) else pairs[rng.integers(len(pairs))]
        a = int(rng.choice(pools[ta]))
        b = int(rng.choice(pools[tb]))
        if (min(a, b), max(a, b)) in seen:
            continue
        seen.add((min(a, b), max(a, b)))
        rec.append(a)
        other.append(b)
        blocks.append(bool(rng.random() < 0.5))
    p.x_rec = np.array(rec, dtype=np.int64)
    p.x_other = np.array(other, dtype=np.int64)
    p.x_blocks = np.array(blocks, dtype=bool)
    p.x_id = 50_000 + np.arange(len(rec), dtype=np.int64)
    p.labels[p.x_rec] |= CHAIN_BIT
    p.planted["cross_org"] = [
        (int(a), int(b)) if blk else (int(b), int(a))
        for a, b, blk in zip(p.x_rec, p.x_other, p.x_blocks, strict=True)
    ]


def _near_duplicates(p: Portfolio, rng: np.random.Generator) -> None:
    """The same piece of work, worded slightly differently, in two organisations."""
    if len(p.tenants) < 2:
        return
    found = []
    for j, (first, second) in enumerate(NEAR_DUPLICATES):
        ta, tb = j % len(p.tenants), (j + 1) % len(p.tenants)
        pair = []
        for position, title in ((ta, first), (tb, second)):
            lo, hi = p.tenant_range(position)
            pool = lo + np.nonzero(p.itype[lo:hi] == STORY)[0]
            pool = pool[[int(x) not in p.title_override for x in pool]]
            i = int(rng.choice(pool))
            p.title_override[i] = title
            pair.append(i)
        found.append(tuple(pair))
    p.planted["near_duplicates"] = found


def jira_time(ts: int, tz: Any) -> str:
    """Jira field timestamps: '2026-05-04T09:12:33.000+0200' in the user's zone."""
    return datetime.fromtimestamp(ts, tz).strftime("%Y-%m-%dT%H:%M:%S.000%z")


def ado_time(ts: int) -> str:
    """Azure DevOps timestamps: '2026-05-04T07:12:33.47Z' (UTC)."""
    frac = (ts * 7919) % 1000
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:03d}Z"


def day_text(days: int) -> str:
    return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(days=int(days))).strftime("%Y-%m-%d")


def is_nan(value: float) -> bool:
    return math.isnan(value)

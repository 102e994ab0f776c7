"""The simulator's HTTP side: one ASGI app, three tenants by path prefix, knobs for faults.

``/northwind`` is Jira Cloud, ``/fabrikam`` Jira Data Center, ``/contoso`` Azure DevOps. Control
endpoints live under ``/_sim`` (stats, mutate, faults). ``Simulator`` runs the app with uvicorn
in a background thread on a free loopback port; ``serve_forever`` runs it in the foreground.

Faults are deterministic: the n-th request gets the n-th draw of a counter-based generator
seeded with the simulator's seed, so a test that sends the same requests sees the same faults.
Besides 429s, 5xx and latency, ``rate_malformed`` answers a share of tracker requests ``200`` with
the wrong shape, as gateways and trackers in maintenance do: alternately the JSON error object
``{"errorMessages": ["maintenance"]}`` and an HTML maintenance page.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import numpy as np

from pmolens.simulator.azure_devops_api import AdoTenant
from pmolens.simulator.jira_api import JiraTenant
from pmolens.simulator.portfolio import (
    STATUSES,
    TENANT_ORDER,
    WORKFLOWS,
    Portfolio,
    generate,
)
from pmolens.simulator.protocol import Call, HttpError, RawBody, RawJson, Reply, json_bytes

DEMO_TOKEN = "demo-token"  # noqa: S105 - the public demo token, not a secret
LOOPBACK = "127.0.0.1"


MAINTENANCE_JSON = {"errorMessages": ["maintenance"]}
MAINTENANCE_HTML = (
    b"<!DOCTYPE html><html><head><title>Down for maintenance</title></head>"
    b"<body><h1>We'll be back soon</h1><p>This site is down for scheduled maintenance.</p>"
    b"</body></html>"
)


# --------------------------------------------------------------------------- state


@dataclass
class Faults:
    latency_ms: float = 0.0
    rate_429: float = 0.0
    rate_5xx: float = 0.0
    hint_rate: float = 0.0
    rate_malformed: float = 0.0  # 200 with the wrong shape: maintenance JSON or HTML, alternately


def _draw(seed: int, stream: int, counter: int) -> float:
    """Counter-based uniform draw in [0, 1) (splitmix64): reproducible without shared state."""
    mask = (1 << 64) - 1
    z = (seed * 0x9E3779B97F4A7C15 + stream * 0xD1B54A32D192ED03 + counter + 1) & mask
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
    z ^= z >> 31
    return z / 2**64


class SimState:
    """The portfolio, the tenant APIs over it, knobs, counters; one lock guards them all."""

    def __init__(
        self,
        portfolio: Portfolio,
        *,
        faults: Faults | None = None,
        tokens: Iterable[str] | None = (DEMO_TOKEN,),
        wiql_cap: int = 20_000,
    ) -> None:
        self.portfolio = portfolio
        self.faults = faults or Faults()
        self.tokens = set(tokens or ())
        self.lock = threading.RLock()
        self.counter = 0
        self.requests: dict[str, int] = {}
        self.fault_counts = {"429": 0, "5xx": 0, "hint": 0, "malformed": 0}
        self.routes: dict[str, list[tuple[str, re.Pattern[str], str, Callable[..., Reply]]]] = {}
        self.kinds: dict[str, str] = {}
        self.apis: dict[str, Any] = {}
        self.base = ""  # http://host:port as the last request named it (render cache key)
        for position, spec in enumerate(portfolio.specs):
            api: Any
            if spec.is_jira:
                api = JiraTenant(portfolio, position)
            else:
                api = AdoTenant(portfolio, position, wiql_cap=wiql_cap)
            self.kinds[spec.name] = spec.kind
            self.apis[spec.name] = api
            compiled = []
            for method, template, handler in api.routes():
                pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template)
                flags = re.IGNORECASE if not spec.is_jira else 0
                compiled.append((method, re.compile(f"^{pattern}/?$", flags), template, handler))
            self.routes[spec.name] = compiled

    def count(self, name: str) -> None:
        with self.lock:
            self.requests[name] = self.requests.get(name, 0) + 1

    def next_counter(self) -> int:
        with self.lock:
            self.counter += 1
            return self.counter

    def stats(self) -> dict[str, Any]:
        with self.lock:
            return {
                "requests": dict(sorted(self.requests.items())),
                "total": sum(self.requests.values()),
                "faults": dict(self.fault_counts),
                "clock": datetime.fromtimestamp(self.portfolio.clock, UTC).isoformat(),
                "items": int((~self.portfolio.deleted).sum()),
                "version": self.portfolio.version,
            }

    def set_faults(
        self,
        *,
        rate_429: float | None = None,
        rate_5xx: float | None = None,
        latency_ms: float | None = None,
        hint_rate: float | None = None,
        rate_malformed: float | None = None,
    ) -> dict[str, float]:
        with self.lock:
            if rate_429 is not None:
                self.faults.rate_429 = float(rate_429)
            if rate_5xx is not None:
                self.faults.rate_5xx = float(rate_5xx)
            if latency_ms is not None:
                self.faults.latency_ms = float(latency_ms)
            if hint_rate is not None:
                self.faults.hint_rate = float(hint_rate)
            if rate_malformed is not None:
                self.faults.rate_malformed = float(rate_malformed)
            return dict(vars(self.faults))

    def warm(self, fields: list[str] | None = None, history: int = 0) -> dict[str, Any]:
        """Render every tenant's cacheable answers now (see ``AdoTenant.warm``; ``history``:
        per-item /updates and /revisions of that many items too), so a benchmark times the
        client and the configured latency, not the simulator's first render."""
        started = time.perf_counter()
        rendered = 0
        with self.lock:
            for api in self.apis.values():
                if hasattr(api, "warm"):
                    rendered += api.warm(self.base, fields, history)
        return {"rendered": rendered, "seconds": round(time.perf_counter() - started, 3)}

    def mutate(self, **options: Any) -> dict[str, Any]:
        with self.lock:
            return mutate(self.portfolio, **options)


# --------------------------------------------------------------------------- mutations


def mutate(
    p: Portfolio,
    fraction: float = 0.01,
    seed: int = 1,
    deletes: int | None = None,
    moves: int | None = None,
    advance_minutes: int = 60,
) -> dict[str, Any]:
    """Advance the clock and change the portfolio as a working day would.

    ``fraction`` of the live items move one step in their workflow (or get an edit when they are
    finished), ``deletes`` items disappear, ``moves`` items move: a Jira issue to the other
    project of its site (same id, new key), an Azure DevOps work item to another team's area.
    Every change sets ``updated`` to a moment inside the advanced window.
    """
    rng = np.random.default_rng([p.seed, seed, p.version, 4242])
    window = max(1, int(advance_minutes * 60))
    start = p.clock
    p.clock += window
    live = np.nonzero(~p.deleted)[0]
    count = max(1, round(fraction * live.size)) if fraction > 0 else 0
    chosen: Any = rng.choice(live, size=min(count, live.size), replace=False) if count else []
    summary: dict[str, Any] = {"updated": [], "deleted": [], "moved": []}

    def when(i: int) -> int:
        t = start + 1 + int(rng.integers(0, window))
        return max(t, int(p.updated[i]) + 1)

    def describe(i: int) -> dict[str, Any]:
        spec = p.specs[int(p.tenant[i])]
        return {"tenant": spec.name, "id": str(int(p.nid[i])), "key": p.key(i)}

    for i in sorted(int(x) for x in chosen):
        t = when(i)
        flow = WORKFLOWS[int(p.wf[i])]
        current = int(p.status[i])
        if current in flow and flow.index(current) < len(flow) - 1:
            new = flow[flow.index(current) + 1]
        elif current not in flow and STATUSES[current].category == "in_progress":
            new = flow[1]  # blocked / waiting work picked up again
        else:
            new = -1  # finished work: an edit only
        if new >= 0:
            p.extra.setdefault(i, []).append((t, "status", new))
            p.status[i] = new
            done = STATUSES[new].category == "done"
            p.resolved[i] = t if done else -1
        else:
            p.extra.setdefault(i, []).append((t, "edit", None))
        p.updated[i] = t
        summary["updated"].append(describe(i))
    rest = np.setdiff1d(live, np.asarray(chosen, dtype=np.int64))
    n_del = max(1, count // 20) if deletes is None else int(deletes)
    n_mov = max(1, count // 20) if moves is None else int(moves)
    drawn: Any = (
        rng.choice(rest, size=min(n_del + n_mov, rest.size), replace=False) if rest.size else []
    )
    picked = [int(x) for x in drawn]
    for i in picked[:n_del]:
        summary["deleted"].append(describe(i))
        p.deleted[i] = True
    for i in picked[n_del : n_del + n_mov]:
        t = when(i)
        position = int(p.tenant[i])
        spec = p.specs[position]
        before = describe(i)
        if spec.is_jira:
            old_code = int(p.project[i])
            new_code = (old_code + 1) % len(spec.projects)
            old_key = p.key(i)
            slot = (position, new_code)
            if slot not in p.next_keynum:
                lo, hi = p.tenant_range(position)
                same = p.project[lo:hi] == new_code
                p.next_keynum[slot] = int(p.keynum[lo:hi][same].max(initial=0)) + 1
            p.project[i] = new_code
            p.keynum[i] = p.next_keynum[slot]
            p.next_keynum[slot] += 1
            p.old_keys[(position, old_key)] = i

            def proj(code: int, position: int = position, spec: Any = spec) -> tuple[str, str]:
                return str(10000 + 100 * position + code), spec.projects[code][1]

            value: Any = ((old_key, proj(old_code)), (p.key(i), proj(new_code)))
        else:
            teams = [g for g, (pos, _) in enumerate(p.teams) if pos == position]
            old = int(p.team[i])
            new_team = teams[(teams.index(old) + 1) % len(teams)] if old in teams else teams[0]
            old_area = f"Delivery\\{p.teams[old][1]}" if old >= 0 else "Delivery"
            p.team[i] = new_team
            p.sprint[i] = -1  # the old team's iteration is not the new team's
            value = (old_area, f"Delivery\\{p.teams[new_team][1]}")
        p.extra.setdefault(i, []).append((t, "move", value))
        p.updated[i] = t
        summary["moved"].append({**before, "new_key": p.key(i)})
    p.version += 1
    summary["clock"] = datetime.fromtimestamp(p.clock, UTC).isoformat()
    return summary


# --------------------------------------------------------------------------- the ASGI app


class SimApp:
    """Routes ``/<tenant>/...`` to the tenant's API and ``/_sim/...`` to the controls."""

    def __init__(self, state: SimState) -> None:
        self.state = state

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":  # pragma: no cover - uvicorn runs with lifespan off
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        reply = await self.handle(scope, body)
        content_type = b"application/json; charset=utf-8"
        if isinstance(reply.body, RawJson):
            payload = reply.body.data
        elif isinstance(reply.body, RawBody):
            payload, content_type = reply.body.data, reply.body.content_type.encode()
        else:
            payload = json_bytes(reply.body) if reply.body is not None else b""
        headers = [
            (b"content-type", content_type),
            (b"content-length", str(len(payload)).encode()),
        ]
        headers += [(k.lower().encode(), str(v).encode()) for k, v in reply.headers.items()]
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    async def handle(self, scope: dict[str, Any], raw: bytes) -> Reply:
        state = self.state
        method = scope["method"].upper()
        path = scope["path"]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        params = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        host = headers.get("host") or f"{scope['server'][0]}:{scope['server'][1]}"
        base = f"{scope.get('scheme', 'http')}://{host}"
        state.base = base
        if path.startswith("/_sim/"):
            return self.control(method, path, raw)
        tenant, _, rest = path.lstrip("/").partition("/")
        routes = state.routes.get(tenant)
        if routes is None:
            state.count(f"{method} (unknown)")
            return Reply(404, {"message": f"No simulated tracker at /{tenant}"})
        rest = "/" + rest
        match = None
        for route_method, pattern, template, handler in routes:
            found = pattern.match(rest)
            if found and route_method == method:
                match = (template, handler, found.groupdict())
                break
        kind = state.kinds[tenant]
        name = f"{method} /{tenant}{match[0] if match else ' (no route)'}"
        state.count(name)
        faults = state.faults
        if faults.latency_ms > 0:
            await asyncio.sleep(faults.latency_ms / 1000)
        auth = self.authorise(kind, headers.get("authorization", ""))
        if auth is not None:
            return auth
        n = state.next_counter()
        seed = state.portfolio.seed
        draw = _draw(seed, 1, n)
        if draw < faults.rate_429:
            with state.lock:
                state.fault_counts["429"] += 1
            return self.throttled(kind)
        if draw < faults.rate_429 + faults.rate_5xx:
            with state.lock:
                state.fault_counts["5xx"] += 1
            body: Any = {"errorMessages": ["Service unavailable (simulated)."], "errors": {}}
            if kind == "azure_devops":
                body = {
                    "$id": "1",
                    "message": "Service unavailable (simulated).",
                    "typeKey": "ServiceUnavailableException",
                    "errorCode": 0,
                    "eventId": 0,
                }
            return Reply(503, body)
        if match is None:
            if kind == "azure_devops":
                return Reply(
                    404,
                    {
                        "$id": "1",
                        "message": f"The resource {rest} was not found.",
                        "typeKey": "NotFoundException",
                        "errorCode": 0,
                        "eventId": 0,
                    },
                )
            return Reply(404, {"errorMessages": [f"No API at {rest}"], "errors": {}})
        rates = faults.rate_429 + faults.rate_5xx
        if draw < rates + faults.rate_malformed:
            with state.lock:
                state.fault_counts["malformed"] += 1
                html = state.fault_counts["malformed"] % 2 == 0
            if html:
                return Reply(200, RawBody(MAINTENANCE_HTML, "text/html; charset=utf-8"))
            return Reply(200, dict(MAINTENANCE_JSON))
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            return self.bad_json(kind)
        call = Call(method, rest, params, parsed, base, f"{base}/{tenant}", headers)
        template, handler, path_params = match
        try:
            with state.lock:
                reply = handler(call, **path_params)
        except HttpError as exc:
            reply = Reply(exc.status, exc.body)
        # Azure DevOps slows clients down with headers on successful responses before it 429s
        hint = kind == "azure_devops" and reply.status == 200
        if hint and _draw(seed, 2, n) < faults.hint_rate:
            with state.lock:
                state.fault_counts["hint"] += 1
            reply.headers.update(
                {
                    "Retry-After": "1",
                    "X-RateLimit-Resource": "ATCLI",
                    "X-RateLimit-Delay": "0.5",
                    "X-RateLimit-Limit": "200",
                    "X-RateLimit-Remaining": "20",
                    "X-RateLimit-Reset": str(int(time.time()) + 5),
                }
            )
        return reply

    def authorise(self, kind: str, header: str) -> Reply | None:
        """Jira Cloud and Azure DevOps: Basic (user:token); Jira DC: Bearer token (a personal
        access token) or Basic (user:password, here the token), as DC accepts both."""
        scheme, _, value = header.partition(" ")
        secret: str | None = None
        if kind == "jira_dc" and scheme.lower() == "bearer":
            if value:
                secret = value.strip()
        elif scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(value.strip()).decode("utf-8")
            except ValueError:
                decoded = ""
            if ":" in decoded:
                secret = decoded.split(":", 1)[1]
        tokens = self.state.tokens
        if secret is not None and (not tokens or secret in tokens):
            return None
        if kind == "azure_devops":
            return Reply(
                401,
                {
                    "$id": "1",
                    "innerException": None,
                    "message": "TF400813: The user is not authorized to access this resource.",
                    "typeName": "Microsoft.TeamFoundation.Framework.Server.UnauthorizedRequestException",
                    "typeKey": "UnauthorizedRequestException",
                    "errorCode": 0,
                    "eventId": 3000,
                },
                {"WWW-Authenticate": 'Basic realm="https://dev.azure.com/"'},
            )
        return Reply(
            401,
            {
                "errorMessages": [
                    "You are not authenticated. Authentication required to perform this operation."
                ],
                "errors": {},
            },
            {"WWW-Authenticate": 'OAuth realm="jira"' if kind == "jira_cloud" else "Bearer"},
        )

    def throttled(self, kind: str) -> Reply:
        reset = int(time.time()) + 1
        if kind == "azure_devops":
            return Reply(
                429,
                {
                    "$id": "1",
                    "message": "TF400733: The request has been throttled (simulated).",
                    "typeKey": "RequestBlockedException",
                    "errorCode": 0,
                    "eventId": 3000,
                },
                {
                    "Retry-After": "1",
                    "X-RateLimit-Resource": "ATCLI",
                    "X-RateLimit-Delay": "1",
                    "X-RateLimit-Limit": "200",
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": str(reset),
                },
            )
        return Reply(
            429,
            {"errorMessages": ["Rate limit exceeded."], "errors": {}},
            {
                "Retry-After": "1",
                "X-RateLimit-Limit": "100",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": datetime.fromtimestamp(reset, UTC).strftime("%Y-%m-%dT%H:%MZ"),
                "RateLimit-Reason": "jira-burst-based",
            },
        )

    @staticmethod
    def bad_json(kind: str) -> Reply:
        if kind == "azure_devops":
            return Reply(
                400,
                {
                    "$id": "1",
                    "message": "The request body is not valid JSON.",
                    "typeKey": "VssRequestContentException",
                    "errorCode": 0,
                    "eventId": 3000,
                },
            )
        return Reply(400, {"errorMessages": ["Invalid request payload."], "errors": {}})

    def control(self, method: str, path: str, raw: bytes) -> Reply:
        state = self.state
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            return Reply(400, {"error": "body must be JSON"})
        if not isinstance(body, dict):
            return Reply(400, {"error": "body must be a JSON object"})
        try:
            if path == "/_sim/stats" and method == "GET":
                return Reply(200, state.stats())
            if path == "/_sim/mutate" and method == "POST":
                allowed = {"fraction", "seed", "deletes", "moves", "advance_minutes"}
                return Reply(200, state.mutate(**{k: v for k, v in body.items() if k in allowed}))
            if path == "/_sim/warm" and method == "POST":
                allowed = {"fields", "history"}
                return Reply(200, state.warm(**{k: v for k, v in body.items() if k in allowed}))
            if path == "/_sim/faults" and method == "POST":
                allowed = {"rate_429", "rate_5xx", "latency_ms", "hint_rate", "rate_malformed"}
                return Reply(
                    200, state.set_faults(**{k: v for k, v in body.items() if k in allowed})
                )
        except (TypeError, ValueError) as exc:
            return Reply(400, {"error": str(exc)})
        return Reply(404, {"error": f"no control endpoint {method} {path}"})


# --------------------------------------------------------------------------- running it


class Simulator:
    """The simulator in a background thread: ``with Simulator(size=2000) as sim: sim.url``."""

    def __init__(
        self,
        seed: int = 7,
        size: int = 2000,
        anchor: datetime | None = None,
        latency_ms: float = 0.0,
        rate_429: float = 0.0,
        rate_5xx: float = 0.0,
        hint_rate: float = 0.0,
        tokens: Iterable[str] | None = (DEMO_TOKEN,),
        tenants: Iterable[str] = TENANT_ORDER,
        rate_malformed: float = 0.0,
        wiql_cap: int = 20_000,
        host: str = LOOPBACK,
        port: int = 0,
    ) -> None:
        self.portfolio = generate(seed=seed, size=size, anchor=anchor, tenants=tuple(tenants))
        faults = Faults(latency_ms, rate_429, rate_5xx, hint_rate, rate_malformed)
        self.state = SimState(self.portfolio, faults=faults, tokens=tokens, wiql_cap=wiql_cap)
        self.host = host
        self.port = port
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def base_url(self, tenant: str) -> str:
        if tenant not in self.portfolio.tenants:
            raise KeyError(f"tenant {tenant!r} is not running (running: {self.portfolio.tenants})")
        return f"{self.url}/{tenant}"

    @property
    def stats(self) -> dict[str, Any]:
        return self.state.stats()

    def mutate(
        self,
        fraction: float = 0.01,
        seed: int = 1,
        deletes: int | None = None,
        moves: int | None = None,
        advance_minutes: int = 60,
    ) -> dict[str, Any]:
        return self.state.mutate(
            fraction=fraction,
            seed=seed,
            deletes=deletes,
            moves=moves,
            advance_minutes=advance_minutes,
        )

    def set_faults(self, **faults: float | None) -> dict[str, float]:
        return self.state.set_faults(**faults)

    def start(self) -> Simulator:
        import uvicorn

        # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY on accepted sockets only then;
        # without it every small response waits ~40 ms for a delayed ACK (Nagle).
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        self._socket = sock
        config = uvicorn.Config(
            SimApp(self.state),
            log_level="warning",
            access_log=False,
            lifespan="off",
            loop="asyncio",
            http="h11",
            timeout_keep_alive=30,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="pmolens-sim", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the simulator did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_forever(
    host: str = LOOPBACK,
    port: int = 8901,
    size: int = 2000,
    seed: int = 7,
    latency_ms: float = 0.0,
    *,
    tenants: Iterable[str] = TENANT_ORDER,
    anchor: datetime | None = None,
    rate_429: float = 0.0,
    rate_5xx: float = 0.0,
    hint_rate: float = 0.0,
    rate_malformed: float = 0.0,
    tokens: Iterable[str] | None = (DEMO_TOKEN,),
    wiql_cap: int = 20_000,
) -> None:
    """Run the simulator in the foreground until interrupted (``pmolens simulator``)."""
    import uvicorn

    started = time.perf_counter()
    portfolio = generate(seed=seed, size=size, anchor=anchor, tenants=tuple(tenants))
    faults = Faults(latency_ms, rate_429, rate_5xx, hint_rate, rate_malformed)
    state = SimState(portfolio, faults=faults, tokens=tokens, wiql_cap=wiql_cap)
    took = time.perf_counter() - started
    print(
        f"pmolens simulator: {size:,} items over {', '.join(portfolio.tenants)} "
        f"(seed {seed}, generated in {took:.1f}s)",
        flush=True,
    )
    for name in portfolio.tenants:
        print(f"  {name:<10} http://{host}:{port}/{name}", flush=True)
    print(f"  controls   http://{host}:{port}/_sim/stats | /_sim/mutate | /_sim/faults", flush=True)
    uvicorn.run(
        SimApp(state),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        loop="asyncio",
        http="h11",
    )

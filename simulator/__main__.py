"""``python -m pmolens.simulator --port 8901 --size 50000 --latency-ms 20 --seed 7``."""

from __future__ import annotations

import argparse
from datetime import datetime

from pmolens.simulator.portfolio import TENANT_ORDER
from pmolens.simulator.server import DEMO_TOKEN, LOOPBACK, serve_forever


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m pmolens.simulator",
        description="Loopback Jira Cloud / Jira DC / Azure DevOps over a synthetic portfolio.",
    )
    parser.add_argument("--host", default=LOOPBACK)
    parser.add_argument("--port", type=int, default=8901)
    parser.add_argument("--size", type=int, default=2000, help="work items over all tenants")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--latency-ms", type=float, default=0.0, help="added to every response")
    parser.add_argument(
        "--tenants",
        default=",".join(TENANT_ORDER),
        help=f"comma-separated subset of {','.join(TENANT_ORDER)} (all items go to these)",
    )
    parser.add_argument("--anchor", default=None, help="the simulated 'now', ISO 8601 (UTC)")
    parser.add_argument("--rate-429", type=float, default=0.0)
    parser.add_argument("--rate-5xx", type=float, default=0.0)
    parser.add_argument("--hint-rate", type=float, default=0.0)
    parser.add_argument(
        "--rate-malformed",
        type=float,
        default=0.0,
        help="share of answers that are 200 with the wrong shape (maintenance JSON or HTML)",
    )
    parser.add_argument("--wiql-cap", type=int, default=20_000)
    parser.add_argument(
        "--token",
        action="append",
        default=None,
        help=f"accepted API token (repeatable; default {DEMO_TOKEN!r})",
    )
    parser.add_argument("--any-token", action="store_true", help="accept any token")
    args = parser.parse_args(argv)
    tenants = tuple(t.strip() for t in args.tenants.split(",") if t.strip())
    unknown = [t for t in tenants if t not in TENANT_ORDER]
    if unknown:
        parser.error(f"unknown tenant(s) {unknown}; choose from {list(TENANT_ORDER)}")
    anchor = datetime.fromisoformat(args.anchor.replace("Z", "+00:00")) if args.anchor else None
    tokens = () if args.any_token else tuple(args.token or (DEMO_TOKEN,))
    serve_forever(
        host=args.host,
        port=args.port,
        size=args.size,
        seed=args.seed,
        latency_ms=args.latency_ms,
        tenants=tenants,
        anchor=anchor,
        rate_429=args.rate_429,
        rate_5xx=args.rate_5xx,
        hint_rate=args.hint_rate,
        rate_malformed=args.rate_malformed,
        tokens=tokens,
        wiql_cap=args.wiql_cap,
    )


if __name__ == "__main__":
    main()

"""`python -m bench [name ...] [--scale F]`: every benchmark on its own fresh embedded PostgreSQL
and Redis, each figure next to a raw baseline measured in the same run. One line per benchmark,
then a Markdown table on stdout; the rows replace those of the same benchmarks in bench/RESULTS.md
(or --results PATH), dated, and the other benchmarks' rows stay."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import platform
import sys
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path

from bench import env as E
from bench.common import Result, markdown
from bench.results import merge

BENCHMARKS = ["issuance", "graphql-issuance", "wallet-read", "expiry", "hot-listing", "catalog", "cer-purchase"]
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


async def _run(name: str, env: E.Embedded, scale: float) -> list[Result]:
    if name == "issuance":
        from bench.issuance import issuance
        return await issuance(env, scale)
    if name == "graphql-issuance":
        from bench.issuance import graphql_issuance
        return await graphql_issuance(env, scale)
    if name == "wallet-read":
        from bench.wallet_read import wallet_read
        return await wallet_read(env, scale)
    if name == "expiry":
        from bench.expiry import expiry
        return await expiry(env, scale)
    if name == "hot-listing":
        from bench.hot_listing import hot_listing
        return await hot_listing(env, scale)
    if name == "catalog":
        from bench.catalog import catalog
        return await catalog(env, scale)
    if name == "cer-purchase":
        from bench.cer_purchase import cer_purchase
        return await cer_purchase(env, scale)
    raise ValueError(name)


def run_one(name: str, scale: float) -> list[Result]:
    import uvloop

    env = E.Embedded()
    try:
        env.start()
        return uvloop.run(_run(name, env, scale))
    finally:
        env.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", metavar="name", help=f"benchmarks to run (default all): {', '.join(BENCHMARKS)}")
    parser.add_argument("--scale", type=float, default=1.0, help="shrink (or grow) every workload, e.g. 0.05")
    parser.add_argument("--results", type=Path, default=None, help=f"where to write the table (default {RESULTS})")
    args = parser.parse_args(argv)
    aliases = {"graphql": "graphql-issuance", "wallet": "wallet-read", "read": "wallet-read", "hot": "hot-listing", "cer": "cer-purchase"}
    names = [aliases.get(n, n).replace("_", "-") for n in args.names] or BENCHMARKS
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    if args.scale <= 0:
        parser.error("--scale must be positive")

    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    logging.basicConfig(level=logging.WARNING)
    os.chdir(E.ROOT)
    started = time.perf_counter()
    results: list[Result] = []
    timings: list[tuple[str, float]] = []
    for name in names:
        print(f"== {name} (scale {args.scale:g})", flush=True)
        t0 = time.perf_counter()
        for result in run_one(name, args.scale):
            print(result.line(), flush=True)
            results.append(result)
        timings.append((name, time.perf_counter() - t0))
    total = time.perf_counter() - started
    table = markdown(results)
    print()
    print(table)
    print(f"\ntotal {total:.0f} s (" + ", ".join(f"{n} {s:.0f} s" for n, s in timings) + ")")

    target = args.results or RESULTS
    command = "python -m bench" + (" " + " ".join(args.names) if args.names else "") + (
        f" --scale {args.scale:g}" if args.scale != 1 else "")
    now = datetime.now(timezone.utc)
    run = f"{now:%Y-%m-%d}" + (f" (scale {args.scale:g})" if args.scale != 1 else "")
    run_line = (f"- {now:%Y-%m-%d %H:%M} UTC: `{command}`, {os.cpu_count()} cores, Python {platform.python_version()}, "
                f"{total:.0f} s in all ({', '.join(f'{n} {s:.0f} s' for n, s in timings)})")
    target.write_text(merge(target, BENCHMARKS, names, results, run, run_line))
    print(f"written to {target}")
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())

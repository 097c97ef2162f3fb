"""Login under a wrong-password flood: what the failed-login limits buy (docs/production.md "Limits against abuse").

Starts one worker (`python -m server.serve`, as `make run` does) at the production bcrypt cost
(BCRYPT_ROUNDS=12) behind a simulated proxy (PROXY_HEADERS on; each client names its address in
X-Forwarded-For, as nginx would). One client floods /auth/login with wrong passwords (200 requests, 20 in
flight) while a second client, from another address, logs in normally, one login after another. The run
is done twice — with the default limits, and with them off (0) — and for each it prints:

- the normal client's login latency, p50/p95, before the flood (the reference, same run) and during it;
- how the flood was answered and how long it took: each 400 "Invalid email or password" cost a bcrypt
  check, each 429 none;
- the worker's CPU time for a further flood request once the flood is over the limits (a refusal) or, with
  the limits off, another bcrypt check — measured alone, after the flood.

`--target one` floods one existing account (the per-email limit, 5, stops it); `--target many` sprays
unknown emails (the per-address limit, 50, stops it). Not a test: a measurement to compare runs with.

    .venv/bin/python -m bench.login_flood                      # both targets, limits on and off
    .venv/bin/python -m bench.login_flood --target one --save run.json
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import secrets
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from bench.stats import percentile
from tests.servers import DaphneServer, process_cpu_seconds, scratch_database

NORMAL_ADDRESS = "198.51.100.7"
FLOOD_ADDRESSES = itertools.count(1)
PASSWORD = "right-password"
LIMITS_OFF = {"LOGIN_FAILURES_PER_EMAIL": "0", "LOGIN_FAILURES_PER_IP": "0"}


def login_body(email: str, password: str) -> dict[str, str]:
    return {"email": email, "password": password}


async def timed_login(client: httpx.AsyncClient, email: str) -> float:
    began = time.perf_counter()
    response = await client.post("/auth/login", json=login_body(email, PASSWORD),
                                 headers={"X-Forwarded-For": NORMAL_ADDRESS})
    assert response.status_code == 200, response.text
    return time.perf_counter() - began


async def normal_logins_until(client: httpx.AsyncClient, email: str,
                              stop: asyncio.Event) -> list[tuple[float, float]]:
    """(when it started, how long it took) of each login, one after another until `stop`."""
    times = []
    while True:
        began = time.perf_counter()
        times.append((began, await timed_login(client, email)))
        if stop.is_set():
            return times


async def flood(client: httpx.AsyncClient, emails: list[str], requests: int, in_flight: int,
                address: str) -> dict[str, Any]:
    semaphore = asyncio.Semaphore(in_flight)
    statuses: Counter[int] = Counter()
    refused: list[float] = []
    first_refusal = [float("inf")]

    async def one(i: int) -> None:
        async with semaphore:
            began = time.perf_counter()
            response = await client.post("/auth/login", json=login_body(emails[i % len(emails)], "wrong-guess"),
                                         headers={"X-Forwarded-For": address})
            statuses[response.status_code] += 1
            if response.status_code == 429:
                refused.append(time.perf_counter() - began)
                first_refusal[0] = min(first_refusal[0], began)

    began = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(requests)))
    return {
        "flood_s": round(time.perf_counter() - began, 2),
        "flood_400": statuses.pop(400, 0),  # each one bcrypt check
        "flood_429": statuses.pop(429, 0),
        "flood_other": dict(statuses),
        "refusal_p50_ms": round(percentile(refused, 50) * 1000, 1) if refused else None,
        "first_refusal": first_refusal[0],
    }


async def measure(server: DaphneServer, target: str, args: argparse.Namespace) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=args.in_flight + 2)
    async with httpx.AsyncClient(base_url=server.http_url, timeout=300, limits=limits) as flooder, \
            httpx.AsyncClient(base_url=server.http_url, timeout=300) as normal:
        tag = secrets.token_hex(3)
        emails = {}
        for who in ("normal", "victim"):
            emails[who] = f"{who}-{tag}@bench.example.com"
            body = {"name": who, "email": emails[who], "password": PASSWORD, "role": "student"}
            (await normal.post("/auth/signup", json=body)).raise_for_status()
        await timed_login(normal, emails["normal"])  # warm-up
        cpu_before = process_cpu_seconds(server.process.pid)
        reference = [await timed_login(normal, emails["normal"]) for _ in range(args.reference)]
        cpu_per_check = (process_cpu_seconds(server.process.pid) - cpu_before) / args.reference

        targets = [emails["victim"]] if target == "one" else [f"guess{i}-{tag}@bench.example.com"
                                                             for i in range(args.requests)]
        address = f"203.0.113.{next(FLOOD_ADDRESSES)}"  # a fresh address per flood: counts of its own
        stop = asyncio.Event()
        normal_task = asyncio.create_task(normal_logins_until(normal, emails["normal"], stop))
        flooded = await flood(flooder, targets, args.requests, args.in_flight, address)
        stop.set()
        timed = await normal_task
        during = [took for _, took in timed]
        # Logins that started once the flood was being refused: the limit's steady state.
        first_refusal = flooded.pop("first_refusal")
        limited = [took for began, took in timed if began >= first_refusal]
        # What one more answer to the flood costs once it is over the limits (or with them off, a check).
        cpu_before = process_cpu_seconds(server.process.pid)
        after = await flood(flooder, targets, args.reference, 1, address)
        cpu_per_answer = (process_cpu_seconds(server.process.pid) - cpu_before) / args.reference
    return {
        "reference_p50_ms": round(percentile(reference, 50) * 1000, 1),
        "reference_p95_ms": round(percentile(reference, 95) * 1000, 1),
        "during_n": len(during),
        "during_p50_ms": round(percentile(during, 50) * 1000, 1),
        "during_p95_ms": round(percentile(during, 95) * 1000, 1),
        "p50_ratio": round(percentile(during, 50) / percentile(reference, 50), 1),
        "p95_ratio": round(percentile(during, 95) / percentile(reference, 95), 1),
        "once_refusing_n": len(limited),
        "once_refusing_p50_ms": round(percentile(limited, 50) * 1000, 1) if limited else None,
        **flooded,
        "bcrypt_check_cpu_ms": round(cpu_per_check * 1000, 1),
        "next_answer": "429" if after["flood_429"] == args.reference else "400",
        "next_answer_cpu_ms": round(cpu_per_answer * 1000, 1),
    }


def report(results: dict[str, dict[str, Any]], previous: dict[str, Any] | None) -> None:
    for name, values in results.items():
        print(f"\n== {name}")
        for key, value in values.items():
            before = (previous or {}).get(name, {}).get(key)
            print(f"  {key:22} {value!s:>12}" + (f"   (was {before})" if before is not None else ""))
    print("\n| run | normal login p50 / p95, no flood | during the flood | ratio p50 / p95 | p50 once the flood "
          "is refused | flood answered (400 = a bcrypt check / 429) | CPU per further flood request |")
    print("|---|---|---|---|---|---|---|")
    for name, v in results.items():
        once = f"{v['once_refusing_p50_ms']:.0f} ms" if v["once_refusing_p50_ms"] is not None else "–"
        print(f"| {name} | {v['reference_p50_ms']:.0f} / {v['reference_p95_ms']:.0f} ms | {v['during_p50_ms']:.0f} / "
              f"{v['during_p95_ms']:.0f} ms | {v['p50_ratio']} / {v['p95_ratio']} | {once} | {v['flood_400']} / "
              f"{v['flood_429']} in {v['flood_s']:.0f} s | {v['next_answer_cpu_ms']} ms ({v['next_answer']}) |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", choices=["one", "many", "both"], default="both")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--in-flight", type=int, default=20)
    parser.add_argument("--reference", type=int, default=20, help="normal logins before the flood")
    parser.add_argument("--rounds", default="12", help="BCRYPT_ROUNDS of the worker")
    parser.add_argument("--limits", choices=["on", "off", "both"], default="both")
    parser.add_argument("--save", type=Path)
    parser.add_argument("--compare", type=Path)
    args = parser.parse_args()
    previous = json.loads(args.compare.read_text()) if args.compare else None
    targets = ["one", "many"] if args.target == "both" else [args.target]

    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for limits_on in [mode == "on" for mode in (["on", "off"] if args.limits == "both" else [args.limits])]:
            with scratch_database(Path(tmp)) as db_env:
                env = {**db_env, "BCRYPT_ROUNDS": args.rounds, "PROXY_HEADERS": "1", "LOG_LEVEL": "WARNING",
                       **({} if limits_on else LIMITS_OFF)}
                server = DaphneServer(env, log_path=Path(tmp) / "server.log")
                server.migrate()
                server.start()
                try:
                    for target in targets:
                        name = f"limits {'on' if limits_on else 'off'}, flood of {target} email(s)"
                        results[name] = asyncio.run(measure(server, target, args))
                        print(f"{name}: done", file=sys.stderr)
                finally:
                    server.stop()
    report(results, previous)
    if args.save:
        args.save.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()

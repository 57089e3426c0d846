"""The server's prime cache: clients that send requests back to back, with it and without it.

`charrnn serve` on 127.0.0.1 (the default 1x512 model, untrained weights), once as it starts
(`--prime-cache 256`) and once with `--prime-cache 0`, in alternating rounds. In each round every
client sends streaming requests one after another for a fixed time, each for 500 characters after a
100-character prime: one prime for every request (a page's default text, a shared preamble), or a
different prime each time (where the cache cannot help, so nothing should change). Printed: the
aggregate characters a second and the time to the first character (p50/p99) over all requests, as
medians over the rounds. Loopback only; bounded in time.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import tempfile
import time
from pathlib import Path

from bench_serve import NEW_CHARS, PRIME_CHARS, Server, make_run, one_raw_client, percentile

from common import CORPORA, print_table, save_results


async def back_to_back(url: str, count: int, seconds: float, primes) -> dict:
    """`count` clients, each sending its next request as soon as the last one ends, for `seconds`."""
    results = []
    start = time.perf_counter()

    async def client(index: int) -> None:
        for number in range(10**6):
            if time.perf_counter() - start > seconds:
                return
            results.append(await one_raw_client(url, primes(index, number), seed=index * 10**6 + number))

    await asyncio.gather(*(client(index) for index in range(count)))
    firsts = [r["first"] for r in results]
    return {
        "chars_per_s": sum(r["chars"] for r in results) / (time.perf_counter() - start),
        "requests": len(results),
        "first_p50": percentile(firsts, 0.5),
        "first_p99": percentile(firsts, 0.99),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", default="1,8")
    parser.add_argument("--seconds", type=float, default=8.0, help="each round's length")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per setting (medians)")
    args = parser.parse_args()
    text = CORPORA["anna"].read_text(encoding="utf-8")
    fresh = itertools.count()  # never the same start twice, across rounds and servers
    kinds = {
        "one prime": lambda index, number: text[5000 : 5000 + PRIME_CHARS],
        "a new prime each": lambda index, number: text[next(fresh) * 104729 % 10**6 :][:PRIME_CHARS],
    }
    rows = []
    with tempfile.TemporaryDirectory(prefix="charrnn-primes-") as workdir:
        run = make_run("1x512", Path(workdir))
        servers = {cache: Server(run, "--max-queue", "1024", "--prime-cache", cache) for cache in ("256", "0")}
        try:
            for kind, primes in kinds.items():
                for count in map(int, args.clients.split(",")):
                    rounds = {cache: [] for cache in servers}
                    for server in servers.values():  # warm-up: each server's first batches of this size
                        asyncio.run(back_to_back(server.url, count, 1.0, primes))
                    for _ in range(args.rounds):
                        for cache, server in servers.items():
                            rounds[cache].append(asyncio.run(back_to_back(server.url, count, args.seconds, primes)))
                    for cache, runs in rounds.items():
                        rows.append({"primes": kind, "clients": count, "prime_cache": int(cache),
                                     **{k: statistics.median(r[k] for r in runs) for k in runs[0]}})  # fmt: skip
        finally:
            for server in servers.values():
                server.close()
    print_table(
        ["primes", "clients", "--prime-cache", "chars/s", "requests", "first char p50 ms", "p99 ms"],
        [[r["primes"], r["clients"], r["prime_cache"], f"{r['chars_per_s']:,.0f}", f"{r['requests']:.0f}",
          f"{r['first_p50'] * 1e3:.0f}", f"{r['first_p99'] * 1e3:.0f}"] for r in rows],
        title=f"charrnn serve, 1x512: requests back to back, {NEW_CHARS} characters after a {PRIME_CHARS}-character "
        f"prime; medians of {args.rounds} rounds of {args.seconds:g} s",
    )  # fmt: skip
    save_results("prime-cache", {"rows": rows})


if __name__ == "__main__":
    main()

"""Serving throughput and latency: `charrnn serve` on 127.0.0.1 against 1, 8 and 64 streaming clients.

For each model size (the default 1x512 and the notebook's 2x512; untrained weights, which cost the
same as trained ones) and each client count: every client streams 500 characters after a
100-character prime; printed are the aggregate characters a second, the time to the first character
(p50/p99), the time between characters (p50/p99) and the share of the machine's cores the clients
took (they run in this process, on the server's cores). Beside them, in the same run: `generate_many`
offline with as many samples (the bound batching can reach; measured after each served run, and
the share of offline is the median of those pairs) and the same server with batching off
(`--max-batch 1`: one request at a time, as a plain wrapper around a sampler serves), and the
scheduler alone without HTTP (what the clients and the event loop cost is the difference). Then memory:
the server's RSS (the HTTP process and the model process) after request 1,000 and after request 10,000 of
short requests.
Loopback only; every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx

import charrnn
from charrnn.generate.picking import SamplingOptions
from charrnn.serve.job import Job
from charrnn.serve.protocol import End
from charrnn.serve.scheduler import Scheduler

from common import CORPORA, print_table, save_results

SIZES = {"1x512": ["--hidden", "512", "--layers", "1"], "2x512": ["--hidden", "512", "--layers", "2"]}
# Not run by default: a model whose step costs next to nothing, so that its figures are what HTTP,
# the pipe and the clients cost by themselves (`--sizes floor`).
FLOOR = {"floor": ["--hidden", "8", "--layers", "1", "--embed-dim", "8"]}
ALL_SIZES = {**SIZES, **FLOOR}
PRIME_CHARS, NEW_CHARS = 100, 500


def make_run(size: str, workdir: Path) -> Path:
    out = workdir / size
    argv = [
        sys.executable,
        "-m",
        "charrnn",
        "train",
        str(CORPORA["anna"]),
        "--out",
        str(out),
        *ALL_SIZES[size],
    ]
    subprocess.run([*argv, "--max-steps", "1", "--val-fraction", "0.01"], check=True, capture_output=True)
    return out


class Server:
    def __init__(self, run: Path, *flags: str):
        argv = [sys.executable, "-m", "charrnn", "serve", str(run), "--port", "0", *flags]
        self.process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.url = self.process.stdout.readline().split(" on ")[1].split()[0].rstrip("/")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/health", timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError("server did not start")

    def rss_mb(self) -> float:
        """The server's resident memory: the HTTP process and its model process."""
        pid = self.process.pid
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        model = [c for c in children if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]
        return sum(_rss_mb(p) for p in [pid, *model])

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(60)


def _rss_mb(pid: int | str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def one_client(client: httpx.AsyncClient, prime: str, seed: int) -> dict:
    start = time.perf_counter()
    arrivals = []  # (time, characters) per event
    body = {"prime": prime, "max_new_chars": NEW_CHARS, "seed": seed, "temperature": 0.8}
    async with client.stream("POST", "/generate/stream", json=body) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if line.startswith("data: ") and '"text"' in line:
                arrivals.append((time.perf_counter(), len(json.loads(line[6:])["text"])))
    gaps = [(b[0] - a[0]) / max(b[1], 1) for a, b in itertools.pairwise(arrivals)]
    return {"first": arrivals[0][0] - start, "gaps": gaps, "chars": sum(n for _, n in arrivals), "end": arrivals[-1][0]}


async def one_raw_client(url: str, prime: str, seed: int) -> dict:
    """The same request over a bare asyncio connection: HTTP/1.1 written and its chunked SSE body read by
    hand, so that the clients, which share the server's cores here, take as little of them as they can."""
    address = urlsplit(url)
    start = time.perf_counter()
    reader, writer = await asyncio.open_connection(address.hostname, address.port)
    body = json.dumps({"prime": prime, "max_new_chars": NEW_CHARS, "seed": seed, "temperature": 0.8}).encode()
    writer.write(
        f"POST /generate/stream HTTP/1.1\r\nhost: {address.netloc}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n".encode()
        + body
    )
    status = await reader.readline()
    if b" 200 " not in status:
        raise RuntimeError(f"the server answered {status!r}")
    while await reader.readline() not in (b"\r\n", b""):
        pass
    arrivals, pending = [], b""
    while size := int((await reader.readline()).split(b";")[0], 16):  # chunked transfer: size, data, CRLF
        pending += (await reader.readexactly(size + 2))[:-2]
        *events, pending = pending.split(b"\n\n")
        now = time.perf_counter()
        arrivals += [
            (now, len(json.loads(e[6:])["text"])) for e in events if e.startswith(b"data: ") and b'"text"' in e
        ]
    writer.close()
    gaps = [(b[0] - a[0]) / max(b[1], 1) for a, b in itertools.pairwise(arrivals)]
    return {"first": arrivals[0][0] - start, "gaps": gaps, "chars": sum(n for _, n in arrivals), "end": arrivals[-1][0]}


async def clients(url: str, count: int, prime: str, kind: str = "raw") -> dict:
    limits = httpx.Limits(max_connections=count + 4)
    before = resource.getrusage(resource.RUSAGE_SELF)
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as client:
        start = time.perf_counter()
        if kind == "raw":
            results = await asyncio.gather(*(one_raw_client(url, prime, seed) for seed in range(count)))
        else:
            results = await asyncio.gather(*(one_client(client, prime, seed) for seed in range(count)))
    after = resource.getrusage(resource.RUSAGE_SELF)
    end = max(r["end"] for r in results)
    return {
        "chars_per_s": sum(r["chars"] for r in results) / (end - start),
        "firsts": [r["first"] for r in results],
        "gaps": [g for r in results for g in r["gaps"]],
        "client_cpu_s": after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime,
        "seconds": end - start,
    }


def percentile(values: list[float], q: float) -> float:
    values = sorted(values) or [float("nan")]
    return values[min(len(values) - 1, int(q * len(values)))]


def served_and_offline(url: str, run: Path, count: int, prime: str, kind: str, repeats: int) -> dict:
    """The served figure and the offline one, measured alternately `repeats` times after one unmeasured
    served run; chars/s and the share of offline are medians, latencies percentiles over every run."""
    asyncio.run(clients(url, count, prime, kind))  # warm-up: the server's first batches of this size
    served, offline = [], []
    for _ in range(repeats):
        served.append(asyncio.run(clients(url, count, prime, kind)))
        offline.append(offline_chars_per_s(run, count, prime))
    firsts = [f for r in served for f in r["firsts"]]
    gaps = [g for r in served for g in r["gaps"]]
    return {
        "chars_per_s": statistics.median(r["chars_per_s"] for r in served),
        "offline": statistics.median(offline),
        "share": statistics.median(r["chars_per_s"] / o for r, o in zip(served, offline, strict=True)),
        "shares": [r["chars_per_s"] / o for r, o in zip(served, offline, strict=True)],
        "client_cpu_share": statistics.median(
            r["client_cpu_s"] / ((os.cpu_count() or 1) * r["seconds"]) for r in served
        ),
        "first_p50": statistics.median(firsts),
        "first_p99": percentile(firsts, 0.99),
        "gap_p50": statistics.median(gaps) if gaps else float("nan"),
        "gap_p99": percentile(gaps, 0.99),
    }


def offline_chars_per_s(run: Path, count: int, prime: str) -> float:
    sampler = charrnn.load(run)
    sampler.generate_many(prime, 20, num_samples=count, seed=0)  # warm-up
    start = time.perf_counter()
    sampler.generate_many(prime, NEW_CHARS, num_samples=count, seed=0, temperature=0.8)
    return count * NEW_CHARS / (time.perf_counter() - start)


def scheduler_chars_per_s(run: Path, count: int, prime: str) -> float:
    """The scheduler alone on this process's main thread, as `charrnn serve` runs it, with no HTTP."""
    sampler = charrnn.load(run)
    scheduler = Scheduler(sampler, max(count, 1), 1024)
    jobs = [Job(prime, NEW_CHARS, SamplingOptions(temperature=0.8), seed=seed) for seed in range(count)]
    for job in jobs:
        scheduler.submit(job)

    def stop_when_done() -> None:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and any(not j.events or not isinstance(j.events[-1], End) for j in jobs):
            time.sleep(0.005)
        scheduler.stop()

    threading.Thread(target=stop_when_done).start()
    start = time.perf_counter()
    scheduler.run()
    return count * NEW_CHARS / (time.perf_counter() - start)


def memory_growth(url: str, server: Server, requests: int) -> tuple[float, float]:
    """RSS after request 1,000 and after the last of `requests` short requests, one after another."""
    at_1000 = float("nan")
    with httpx.Client(base_url=url, timeout=60) as client:
        for index in range(1, requests + 1):
            client.post("/generate", json={"prime": "The", "max_new_chars": 5, "seed": index}).raise_for_status()
            if index == 1000:
                at_1000 = server.rss_mb()
    return at_1000, server.rss_mb()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default=",".join(SIZES), help=f"of {', '.join(ALL_SIZES)}")
    parser.add_argument("--clients", default="1,8,64")
    parser.add_argument("--memory-requests", type=int, default=10_000)
    parser.add_argument(
        "--client",
        choices=("httpx", "raw"),
        default="raw",
        help="the streaming clients: HTTP/1.1 read by hand over asyncio (the default: they share the server's "
        "cores, so the lighter they are, the more the figure is the server's), or httpx's AsyncClient",
    )
    parser.add_argument("--repeats", type=int, default=3, help="measured runs per client count (medians)")
    parser.add_argument(
        "--serve-flag",
        action="append",
        default=[],
        help="a flag for both servers, e.g. --serve-flag=--stream-events=200",
    )
    args = parser.parse_args()
    gc.freeze()  # the clients' own full collections (100-200 ms here) would count against the server
    prime = CORPORA["anna"].read_text(encoding="utf-8")[5000 : 5000 + PRIME_CHARS]
    counts = [int(c) for c in args.clients.split(",")]
    rows, memory = [], []
    with tempfile.TemporaryDirectory(prefix="charrnn-serve-") as workdir:
        for size in args.sizes.split(","):
            run = make_run(size, Path(workdir))
            batched = Server(run, "--max-batch", str(max(counts)), "--max-queue", "1024", *args.serve_flag)
            unbatched = Server(run, "--max-batch", "1", "--max-queue", "1024", *args.serve_flag)
            try:
                for count in counts:
                    served = served_and_offline(batched.url, run, count, prime, args.client, args.repeats)
                    alone = asyncio.run(clients(unbatched.url, count, prime, args.client))
                    bare = scheduler_chars_per_s(run, count, prime)
                    rows.append({"size": size, "clients": count, **served, "unbatched": alone["chars_per_s"],
                                 "scheduler": bare})  # fmt: skip
                if args.memory_requests:
                    memory.append((size, *memory_growth(batched.url, batched, args.memory_requests)))
            finally:
                batched.close()
                unbatched.close()
    print_table(
        ["size", "clients", "chars/s", "offline generate_many", "of offline", "each run", "scheduler alone",
         "batching off", "vs off", "clients' CPU", "first char p50 ms", "p99 ms", "per char p50 ms", "p99 ms"],
        [[r["size"], r["clients"], f"{r['chars_per_s']:,.0f}", f"{r['offline']:,.0f}", f"{r['share']:.0%}",
          " ".join(f"{x:.0%}" for x in r["shares"]), f"{r['scheduler']:,.0f}", f"{r['unbatched']:,.0f}",
          f"{r['chars_per_s'] / r['unbatched']:.1f}x", f"{r['client_cpu_share']:.0%}",
          f"{r['first_p50'] * 1e3:.0f}", f"{r['first_p99'] * 1e3:.0f}", f"{r['gap_p50'] * 1e3:.2f}",
          f"{r['gap_p99'] * 1e3:.2f}"] for r in rows],
        title=f"charrnn serve {' '.join(args.serve_flag)}: {args.client} streaming clients, {NEW_CHARS} characters "
        f"each after a {PRIME_CHARS}-character prime; medians of {args.repeats} runs",
    )  # fmt: skip
    if memory:
        print_table(
            ["size", "RSS after request 1,000 MB", f"after request {args.memory_requests:,} MB", "growth MB"],
            [[m[0], f"{m[1]:.0f}", f"{m[2]:.0f}", f"{m[2] - m[1]:+.0f}"] for m in memory],
            title="server memory over many short requests",
        )
    save_results("serve", {"client": args.client, "rows": rows, "memory": memory})


if __name__ == "__main__":
    main()

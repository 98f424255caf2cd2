#!/usr/bin/env python3
"""What the durable log history costs an app: `logs` throughput of an app that prints 200k lines
through `dozen server`, with the history on (the default) and off (DOZEN_LOG_HISTORY=off, memory
only, as before the history existed), in the same run, reported as a ratio.

usage: bench/log_history.py [--dozen target/release/dozen] [--lines 200000] [--reps 7]

Each run starts a fresh server (SQLite store in a scratch directory), deploys a one-process app
whose `worker` is bench/producer.py, scales it to one and measures the time from the scale
request until the server holds the producer's end marker (polled on the API every 10 ms). The
producer blocks in write(2) whenever the server reads its pipe slower than it writes, so this is
the rate at which the server takes an app's lines: the app is slowed exactly when it drops.
The producer also reports its own write time (PRODUCER_TIMING=1: from its first write until its
last returned), which leaves out the process start and the polling: at 200k lines a run is a
quarter of a second, so those fixed costs are a fair part of the first figure and thin the
ratio out. Both ratios are reported; the goal applies to each.
Modes alternate (off, on, off, on, ...) so that a change of the machine's load hits both.
Results: printed as Markdown and written to bench/results/log_history.{md,json}.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
TOKEN = "dzn_bench_token_" + "0123456789"
APP = "shop"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def api(port: int, method: str, path: str, body: object | None = None) -> bytes:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=120) as r:
        return r.read()


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far (its threads included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one_run(dozen: str, lines: int, history: bool) -> tuple[float, float, float]:
    """Seconds from the scale request until the server holds the end marker, the seconds the
    producer spent writing its lines, and the server's CPU seconds in between."""
    with tempfile.TemporaryDirectory(prefix="dozen-loghist-") as tmp:
        data, src = Path(tmp) / "data", Path(tmp) / "src"
        src.mkdir()
        shutil.copy(BENCH / "producer.py", src / "producer.py")
        (src / "Procfile").write_text(
            f"worker: PRODUCER_TIMING=1 exec python3 producer.py bench {lines}\n"
        )
        port = free_port()
        env = {
            **os.environ,
            "PORT": str(port),
            "DOZEN_ROUTER_PORT": str(free_port()),
            "DOZEN_DATA_DIR": str(data),
            "DOZEN_API_TOKEN": TOKEN,
            "DOZEN_LOG_HISTORY": "on" if history else "off",
            "NO_COLOR": "1",
        }
        env.pop("DATABASE_URL", None)
        subprocess.run([dozen, "migrate"], env=env, check=True, capture_output=True)
        server = subprocess.Popen(
            [dozen, "server"], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        try:
            for line in server.stdout:
                if "listening on" in line:
                    break
            else:
                raise SystemExit("the server exited before it listened")
            client = {**env, "DOZEN_URL": f"http://127.0.0.1:{port}"}
            subprocess.run([dozen, "apps:create", APP], env=client, check=True, capture_output=True)
            subprocess.run(
                [dozen, "deploy", "-a", APP, "-d", str(src)],
                env=client,
                check=True,
                capture_output=True,
            )
            marker = "#bench# done"
            start = time.monotonic()
            cpu0 = cpu_seconds(server.pid)
            api(port, "PATCH", f"/v1/apps/{APP}/formation", {"worker": 1})
            while True:
                last = api(port, "GET", f"/v1/apps/{APP}/logs?lines=1&ps=worker.1")
                if marker.encode() in last:
                    took = time.monotonic() - start
                    cpu = cpu_seconds(server.pid) - cpu0
                    wrote = re.search(rb"done in ([0-9.]+) s", last)
                    if not wrote:
                        raise SystemExit(f"the end marker has no write time: {last[-300:]!r}")
                    return took, float(wrote.group(1)), cpu
                if time.monotonic() - start > 600:
                    raise SystemExit("no end marker after 600 s")
                time.sleep(0.01)
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dozen", default=str(ROOT / "target" / "release" / "dozen"))
    p.add_argument("--lines", type=int, default=200_000)
    p.add_argument("--reps", type=int, default=7)
    a = p.parse_args()
    if not Path(a.dozen).is_file():
        raise SystemExit(f"{a.dozen}: not built (cargo build --release -p dozen)")
    through: dict[str, list[float]] = {"off": [], "on": []}
    writing: dict[str, list[float]] = {"off": [], "on": []}
    cpu: dict[str, list[float]] = {"off": [], "on": []}
    for rep in range(a.reps):
        for mode in ("off", "on"):
            secs, wrote, used = one_run(a.dozen, a.lines, mode == "on")
            through[mode].append(secs)
            writing[mode].append(wrote)
            cpu[mode].append(used)
            print(
                f"rep {rep + 1} history {mode}: {a.lines / secs:,.0f} lines/s through the server, "
                f"{a.lines / wrote:,.0f} lines/s written by the app, server CPU {used:.2f} s",
                file=sys.stderr,
            )
    rate = {m: a.lines / statistics.median(v) for m, v in through.items()}
    app = {m: a.lines / statistics.median(v) for m, v in writing.items()}
    server_cpu = {m: statistics.median(v) for m, v in cpu.items()}
    ratio = rate["on"] / rate["off"]
    app_ratio = app["on"] / app["off"]
    md = (
        f"### Log history: what it costs an app ({a.lines:,} lines of 100 bytes, median of {a.reps})\n\n"
        "| history | lines/s through the server | lines/s the app writes |\n|---|---|---|\n"
        f"| off (memory only) | {rate['off']:,.0f} | {app['off']:,.0f} |\n"
        f"| on (default) | {rate['on']:,.0f} | {app['on']:,.0f} |\n"
        f"| **ratio on/off** | **{ratio:.2f}** | **{app_ratio:.2f}** |\n\n"
        "The goal: at least 0.90 for each.\n\n"
        f"Server CPU for the {a.lines:,} lines (user and system): {server_cpu['off']:.2f} s off, "
        f"{server_cpu['on']:.2f} s on.\n"
    )
    print(md)
    results = BENCH / "results"
    results.mkdir(exist_ok=True)
    (results / "log_history.md").write_text(md)
    (results / "log_history.json").write_text(
        json.dumps(
            {
                "lines": a.lines,
                "seconds_through_the_server": through,
                "seconds_the_app_writes": writing,
                "server_cpu_seconds": cpu,
                "lines_per_s": rate,
                "app_lines_per_s": app,
                "ratio": ratio,
                "app_ratio": app_ratio,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()

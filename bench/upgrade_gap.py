#!/usr/bin/env python3
"""How long the apps stop answering while `dozen server` restarts, as an upgrade restarts it.

Starts a `dozen server` (SQLite, scratch data dir, loopback only), deploys examples/hello with two
web processes, puts wrk on the router (32 connections, Host: shop.localhost) as load, and probes
the router from four threads, each with one request every 5 ms on a new connection (1 s timeout).
Then restarts the server N times the way the Debian package's unit does on an upgrade: SIGTERM to
the server (systemd's KillMode=mixed; the server stops its apps itself), `dozen migrate`
(ExecStartPre),
`dozen server` again on the same data directory and ports. The apps' processes come back from the
store. For each restart it reports the gap (from the last 200 answer before the probes started
failing to the first 200 answer from the new server), how long the old server still answered
after SIGTERM, what the failed probes got (refused: no router listening; 503: the router up, no
web process up yet), and how long each step took: stop (SIGTERM to exit), migrate, start (to the
server's "listening" line), and apps (from "listening" to the first 200 answer). wrk's totals
cover all restarts together.

Usage: bench/upgrade_gap.py [--restarts 5] [--dozen target/release/dozen]
"""
import argparse
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# A throwaway token for the scratch server this script starts.
TOKEN = "dzn_bench_" + secrets.token_hex(16)
HOST = "shop.localhost"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def probe_once(port):
    """One GET through the router on a new connection: "200", another status, or the error."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.settimeout(1)
            s.sendall(f"GET / HTTP/1.0\r\nHost: {HOST}\r\n\r\n".encode())
            head = s.recv(64)
            if not head.startswith(b"HTTP/1."):
                return "no answer"
            return head[9:12].decode("ascii", "replace")
    except ConnectionRefusedError:
        return "refused"
    except socket.timeout:
        return "timeout"
    except OSError as e:
        return type(e).__name__


class Prober:
    """Four threads, each probing every 5 ms, keeping (start time, outcome) of every probe; four,
    so that a probe waiting for its timeout does not leave the others blind meanwhile."""

    def __init__(self, port, threads=4):
        self.port, self.events, self.stop = port, [], threading.Event()
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(threads)]

    def start(self):
        for i, t in enumerate(self.threads):
            t.start()
            time.sleep(0.005 / len(self.threads) * (i + 1))

    def run(self):
        while not self.stop.is_set():
            t = time.monotonic()
            self.events.append((t, probe_once(self.port)))
            time.sleep(max(0.0, 0.005 - (time.monotonic() - t)))

    def ok_since(self, t0):
        return any(t >= t0 and got == "200" for t, got in list(self.events))


def gap(events, sigterm, listening, end):
    """The gap: from the last 200 answer before the first probe after `sigterm` that failed, to
    the first 200 answer after the new server said `listening`. And what the probes that failed
    in [sigterm, end] got, by kind."""
    first_fail = min((t for t, got in events if t >= sigterm and got != "200"), default=None)
    if first_fail is None:
        return 0.0, sigterm, {}
    last_ok = max((t for t, got in events if t < first_fail and got == "200"), default=sigterm)
    back = min(t for t, got in events if t >= listening and got == "200")
    failed = {}
    for t, got in events:
        if sigterm <= t <= end and got != "200":
            failed[got] = failed.get(got, 0) + 1
    return back - last_ok, last_ok, failed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--restarts", type=int, default=5)
    ap.add_argument("--dozen", default=os.path.join(ROOT, "target/release/dozen"))
    args = ap.parse_args()
    data = tempfile.mkdtemp(prefix="dozen-bench-upgrade-")
    port, router = free_port(), free_port()
    env = dict(os.environ, PORT=str(port), DOZEN_ROUTER_PORT=str(router), DOZEN_DATA_DIR=data,
               DOZEN_API_TOKEN=TOKEN, DOZEN_BIND="127.0.0.1", DOZEN_URL=f"http://127.0.0.1:{port}",
               NO_COLOR="1")
    env.pop("DATABASE_URL", None)

    def dozen(*a):
        return subprocess.run([args.dozen, *a], env=env, check=True, capture_output=True, text=True)

    def start():
        """ExecStartPre, then ExecStart; returns the server once it says it is listening."""
        t = time.monotonic()
        dozen("migrate")
        migrated = time.monotonic()
        server = subprocess.Popen([args.dozen, "server"], env=env, stdout=subprocess.PIPE,
                                  text=True)
        for line in server.stdout:
            if "listening" in line:
                break
        # Keep reading its output, so the server never blocks on a full pipe.
        threading.Thread(target=lambda: [None for _ in server.stdout], daemon=True).start()
        return server, migrated - t, time.monotonic() - migrated

    server, _, _ = start()
    wrk = None
    prober = Prober(router)
    try:
        dozen("apps:create", "shop")
        dozen("deploy", "-a", "shop", "-d", os.path.join(ROOT, "examples/hello"))
        dozen("ps:scale", "-a", "shop", "web=2")
        while probe_once(router) != "200":
            time.sleep(0.05)
        load = os.getloadavg()[0]
        wrk = subprocess.Popen(
            ["wrk", "-t2", "-c32", "-d3600s", "--timeout", "5s", "-H", f"Host: {HOST}",
             f"http://127.0.0.1:{router}/"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        prober.start()
        time.sleep(3)
        runs = []
        for _ in range(args.restarts):
            t0 = time.monotonic()
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=120)
            stopped = time.monotonic()
            server, migrate_s, start_s = start()
            listening = time.monotonic()
            while not prober.ok_since(listening):
                time.sleep(0.005)
            back = time.monotonic()
            time.sleep(3)  # serving again, before the next restart
            longest, last_ok, failed = gap(list(prober.events), t0, listening, time.monotonic())
            runs.append({"gap_s": longest, "answered_after_sigterm_s": max(0.0, last_ok - t0),
                         "failed_probes": failed, "stop_s": stopped - t0,
                         "migrate_s": migrate_s, "start_s": start_s, "apps_s": back - listening})
        prober.stop.set()
        wrk.send_signal(signal.SIGINT)
        out, _ = wrk.communicate(timeout=30)
        wrk = None
        print(out)
        total = int(re.search(r"(\d+) requests in", out).group(1))
        non2xx = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0
        sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
        sock_errors = {k: int(v) for k, v in zip(["connect", "read", "write", "timeout"],
                                                  sock.groups())} if sock else {}
        result = {"restarts": runs, "load_average_at_start": load,
                  "wrk": {"requests": total, "non_2xx": non2xx, "socket_errors": sock_errors}}
        print(json.dumps(result, indent=2))
        print("\n| restart | gap (no 200 answer) | answered after SIGTERM | failed probes | stop | "
              "migrate | start | apps |")
        print("|---:|---:|---:|---|---:|---:|---:|---:|")
        for i, r in enumerate(runs, 1):
            failed = ", ".join(f"{n} {k}" for k, n in sorted(r["failed_probes"].items())) or "0"
            print(f"| {i} | {r['gap_s']:.2f} s | {r['answered_after_sigterm_s']:.2f} s | {failed} | "
                  f"{r['stop_s']:.2f} s | "
                  f"{r['migrate_s']:.2f} s | {r['start_s']:.2f} s | {r['apps_s']:.2f} s |")
        print(f"\nwrk: {total} requests, {non2xx} non-2xx, socket errors {sock_errors}; "
              f"longest gap {max(r['gap_s'] for r in runs):.2f} s")
        os.makedirs(os.path.join(ROOT, "bench/results"), exist_ok=True)
        with open(os.path.join(ROOT, "bench/results/upgrade_gap.json"), "w") as f:
            json.dump(result, f, indent=2)
        return 0
    finally:
        prober.stop.set()
        if wrk:
            wrk.kill()
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
        subprocess.run(["rm", "-rf", data])


if __name__ == "__main__":
    sys.exit(main())

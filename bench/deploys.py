#!/usr/bin/env python3
"""Failed requests across consecutive deploys under load, through dozen's router.

Starts a `dozen server` (SQLite, scratch data dir, loopback only), deploys examples/hello with two
web processes, puts wrk on the router (32 connections, Host: shop.localhost), and makes N
releases in a row with `config:set` (each a full zero-downtime rollout: new processes, health
check, one switch, drain, stop the old). Reports wrk's totals (non-2xx answers, socket errors),
each rollout's duration, and the time from "new processes healthy" to "traffic switched" that
the server logs for every release.

Usage: bench/deploys.py [--deploys 20] [--dozen target/release/dozen]
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
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# A throwaway token for the scratch server this script starts.
TOKEN = "dzn_bench_" + secrets.token_hex(16)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--deploys", type=int, default=20)
    ap.add_argument("--dozen", default=os.path.join(ROOT, "target/release/dozen"))
    args = ap.parse_args()
    data = tempfile.mkdtemp(prefix="dozen-bench-deploys-")
    port, router = free_port(), free_port()
    env = dict(os.environ, PORT=str(port), DOZEN_ROUTER_PORT=str(router), DOZEN_DATA_DIR=data,
               DOZEN_API_TOKEN=TOKEN, DOZEN_BIND="127.0.0.1", DOZEN_URL=f"http://127.0.0.1:{port}",
               NO_COLOR="1")
    env.pop("DATABASE_URL", None)

    def dozen(*a, check=True):
        return subprocess.run([args.dozen, *a], env=env, check=check, capture_output=True, text=True)

    dozen("migrate")
    server = subprocess.Popen([args.dozen, "server"], env=env, stdout=subprocess.PIPE, text=True)
    wrk = None
    try:
        for line in server.stdout:
            if "listening" in line:
                break
        dozen("apps:create", "shop")
        dozen("deploy", "-a", "shop", "-d", os.path.join(ROOT, "examples/hello"))
        dozen("ps:scale", "-a", "shop", "web=2")
        time.sleep(1)
        wrk = subprocess.Popen(
            ["wrk", "-t2", "-c32", "-d600s", "--timeout", "30s", "-H", "Host: shop.localhost",
             f"http://127.0.0.1:{router}/"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        time.sleep(2)
        tail_out = open(os.path.join(data, "events.ndjson"), "w")
        tail = subprocess.Popen([args.dozen, "logs", "-a", "shop", "--tail", "-n", "0", "--json"],
                                env=env, stdout=tail_out)
        rollouts = []
        for i in range(args.deploys):
            t = time.monotonic()
            dozen("config:set", "-a", "shop", f"GREETING=Release{i}")
            rollouts.append(time.monotonic() - t)
        time.sleep(2)
        wrk.send_signal(signal.SIGINT)
        out, _ = wrk.communicate(timeout=30)
        wrk = None
        tail.terminate()
        tail.wait()
        tail_out.close()
        logs = open(os.path.join(data, "events.ndjson")).read()
        print(out)
        lags = [int(m) for m in re.findall(r"traffic switched to the new web processes (\d+) ms", logs)]
        total = int(re.search(r"(\d+) requests in", out).group(1))
        non2xx = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0
        sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
        sock_errors = sum(int(x) for x in sock.groups()) if sock else 0
        result = {
            "deploys": args.deploys, "requests": total, "non_2xx": non2xx, "socket_errors": sock_errors,
            "rollout_s_median": sorted(rollouts)[len(rollouts) // 2], "rollout_s_max": max(rollouts),
            "switch_after_healthy_ms_max": max(lags[-args.deploys:]) if lags else None,
        }
        print(json.dumps(result, indent=2))
        print(f"\n| deploys | requests | failed (non-2xx + socket errors) | rollout median / max | healthy -> switched (max) |")
        print("|---:|---:|---:|---|---:|")
        print(f"| {args.deploys} | {total} | {non2xx + sock_errors} | {result['rollout_s_median']:.2f} s / "
              f"{result['rollout_s_max']:.2f} s | {result['switch_after_healthy_ms_max']} ms |")
        os.makedirs(os.path.join(ROOT, "bench/results"), exist_ok=True)
        with open(os.path.join(ROOT, "bench/results/deploys.json"), "w") as f:
            json.dump(result, f, indent=2)
        return 0 if non2xx + sock_errors == 0 else 1
    finally:
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

#!/usr/bin/env python3
"""dozen router benchmark: one small HTTP app reached directly, through dozen's router and through
nginx as a keep-alive reverse proxy, with the same wrk load in the same run; then round robin
against least-outstanding-requests balancing; then the router's memory with many idle keep-alive
connections. Writes bench/results/router.json and router.md. Start it with bench/router.sh."""

import argparse
import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
HOST = "bench.localhost"


def say(msg):
    print(f"[bench/router.py] {msg}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, what, limit=10.0):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"{what} exited early with status {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"{what} did not listen on port {port} within {limit}s")


def stop(proc):
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def example(name):
    path = os.path.join(ROOT, "target", "release", "examples", name)
    if not os.access(path, os.X_OK):
        raise SystemExit(f"{path} is missing: run bench/router.sh (it builds it)")
    return path


def start_backend(delay_ms=0, threads=2):
    port = free_port()
    proc = subprocess.Popen([example("bench_backend"), "--port", str(port), "--delay-ms", str(delay_ms),
                             "--threads", str(threads)], stdout=subprocess.DEVNULL)
    wait_port(port, proc, "bench_backend")
    return proc, port


def start_router(backend_ports, balance="lor", threads=2, binary=None):
    port = free_port()
    cmd = [binary or example("bench_router"), "--listen", f"127.0.0.1:{port}", "--balance", balance, "--threads", str(threads)]
    for p in backend_ports:
        cmd += ["--backend", f"127.0.0.1:{p}"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    wait_port(port, proc, "bench_router")
    return proc, port


def start_nginx(backend_port, workdir, access_log=False, workers=2):
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    port = free_port()
    conf = os.path.join(workdir, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""
daemon off;
worker_processes {workers};
pid {workdir}/nginx.pid;
error_log {workdir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    {f"access_log {workdir}/access.log;" if access_log else "access_log off;"}
    client_body_temp_path {workdir}/body;
    proxy_temp_path {workdir}/proxy;
    fastcgi_temp_path {workdir}/fastcgi;
    uwsgi_temp_path {workdir}/uwsgi;
    scgi_temp_path {workdir}/scgi;
    upstream app {{
        server 127.0.0.1:{backend_port};
        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        }}
    }}
}}
""")
    proc = subprocess.Popen([nginx, "-p", workdir, "-e", f"{workdir}/error.log", "-c", conf],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port, proc, "nginx")
    return proc, port


UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def to_ms(text):
    m = re.match(r"([\d.]+)(us|ms|s)$", text)
    return float(m.group(1)) * UNITS[m.group(2)] if m else None


def cpu_ticks(pids):
    """User + system clock ticks used so far by the processes `pids` and their children."""
    total, seen = 0, set()
    todo = list(pids)
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])
                try:
                    with open(f"/proc/{pid}/task/{task}/children") as f:
                        todo += [int(c) for c in f.read().split()]
                except OSError:
                    pass
        except OSError:
            pass
    return total


def wrk(port, args, pids=()):
    cmd = ["wrk", f"-c{args.connections}", f"-d{args.duration}s", f"-t{args.threads}", "--latency",
           "-H", f"Host: {HOST}", f"http://127.0.0.1:{port}/"]
    before = cpu_ticks(pids)
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    ticks = cpu_ticks(pids) - before
    done = int(re.search(r"(\d+) requests in", out).group(1))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", out, re.M))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "rps": rps,
        "p50_ms": to_ms(lat.get("50", "")),
        "p99_ms": to_ms(lat.get("99", "")),
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": sum(int(x) for x in errors.groups()) if errors else 0,
        # CPU time the measured process (and its children) spent per request: steadier than
        # requests/s on a shared machine.
        "cpu_us_per_request": round(ticks * 1e6 / os.sysconf("SC_CLK_TCK") / done, 2) if pids and done else None,
    }


def median_run(runs):
    """The run with the median requests/s (its latencies belong to it)."""
    ordered = sorted(runs, key=lambda r: r["rps"])
    return ordered[len(ordered) // 2]


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return None


def idle_connections(router_port, count):
    """Opens `count` connections, sends one keep-alive request on each, reads each answer, and
    keeps them open. Returns (sockets, how many got a 200)."""
    socks, ok = [], 0
    request = f"GET / HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode()
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", router_port), timeout=10)
        s.sendall(request)
        socks.append(s)
    for s in socks:
        data = b""
        while b"Hello, world!\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        ok += data.startswith(b"HTTP/1.1 200")
    return socks, ok


def memory(args):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = args.idle_conns + 1024
    if soft < need:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard) if hard != resource.RLIM_INFINITY else need, hard))
        except (ValueError, OSError):
            pass
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    count = min(args.idle_conns, soft - 200)
    backend, bport = start_backend()
    router, rport = start_router([bport])
    try:
        # Warm up: one request, so pools and buffers exist before the baseline.
        socks, _ = idle_connections(rport, 1)
        for s in socks:
            s.close()
        time.sleep(0.5)
        before = rss_kb(router.pid)
        socks, ok = idle_connections(rport, count)
        time.sleep(1.0)
        after = rss_kb(router.pid)
        for s in socks:
            s.close()
        return {
            "connections": count,
            "answered_200": ok,
            "rss_before_kb": before,
            "rss_with_idle_kb": after,
            "per_connection_kb": round((after - before) / count, 2) if count else None,
        }
    finally:
        stop(router)
        stop(backend)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--duration", type=int, default=10, help="seconds per wrk run (default 10)")
    ap.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    ap.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    ap.add_argument("--workers", type=int, default=2,
                    help="router worker threads and nginx worker processes, the same for both (default 2)")
    ap.add_argument("--reps", type=int, default=3, help="repetitions of direct/router/nginx; median shown (default 3)")
    ap.add_argument("--slow-ms", type=int, default=5, help="delay of the degraded backend in the balancing test (default 5)")
    ap.add_argument("--idle-conns", type=int, default=10000, help="idle keep-alive connections for memory (default 10000)")
    ap.add_argument("--only", default="proxy,balance,memory", help="comma list of proxy,balance,memory")
    ap.add_argument("--baseline-router", metavar="PATH",
                    help="another build of the bench_router example (an older commit's), measured in the same "
                         "repetitions right after this one; the report gives this router / that one")
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    args = ap.parse_args()
    if args.baseline_router and not os.access(args.baseline_router, os.X_OK):
        ap.error(f"--baseline-router {args.baseline_router}: not an executable")
    only = set(args.only.split(","))
    os.makedirs(args.out, exist_ok=True)
    result = {"load_start": os.getloadavg(), "wrk": f"-c{args.connections} -d{args.duration}s -t{args.threads}",
              "workers": args.workers}

    if "proxy" in only:
        runs = {"direct": [], "router": [], "nginx": [], "nginx_log": []}
        if args.baseline_router:
            runs["router_baseline"] = []
            result["baseline_router"] = args.baseline_router
        backend, bport = start_backend()
        workdir = tempfile.mkdtemp(prefix="dozen-bench-nginx-")
        try:
            for rep in range(args.reps):
                say(f"repetition {rep + 1}/{args.reps}: direct")
                runs["direct"].append(wrk(bport, args, [backend.pid]))
                say("through dozen's router")
                router, rport = start_router([bport], threads=args.workers)
                try:
                    runs["router"].append(wrk(rport, args, [router.pid]))
                finally:
                    stop(router)
                if args.baseline_router:
                    say("through the baseline router")
                    router, rport = start_router([bport], threads=args.workers, binary=args.baseline_router)
                    try:
                        runs["router_baseline"].append(wrk(rport, args, [router.pid]))
                    finally:
                        stop(router)
                for key, log in (("nginx", False), ("nginx_log", True)):
                    say("through nginx" + (" with its access log on" if log else ""))
                    nginx, nport = start_nginx(bport, workdir, access_log=log, workers=args.workers)
                    try:
                        runs[key].append(wrk(nport, args, [nginx.pid]))
                    finally:
                        stop(nginx)
        finally:
            stop(backend)
            shutil.rmtree(workdir, ignore_errors=True)
        result["proxy"] = {k: {"median": median_run(v), "runs": v} for k, v in runs.items()}
        med = {k: v["median"]["rps"] for k, v in result["proxy"].items()}
        result["ratios"] = {"router_direct": med["router"] / med["direct"], "router_nginx": med["router"] / med["nginx"],
                            "router_nginx_log": med["router"] / med["nginx_log"], "nginx_direct": med["nginx"] / med["direct"]}
        if args.baseline_router:
            result["ratios"]["router_baseline"] = med["router"] / med["router_baseline"]

    if "balance" in only:
        balance = {}
        for scenario, delays in (("two equal backends", (0, 0)), (f"one backend {args.slow_ms} ms slower", (0, args.slow_ms))):
            backends = [start_backend(d, threads=1) for d in delays]
            try:
                for mode in ("rr", "lor"):
                    say(f"balancing, {scenario}: {mode}")
                    router, rport = start_router([p for _, p in backends], balance=mode)
                    try:
                        balance.setdefault(scenario, {})[mode] = wrk(rport, args)
                    finally:
                        stop(router)
            finally:
                for proc, _ in backends:
                    stop(proc)
        result["balance"] = balance

    if "memory" in only:
        say(f"memory with {args.idle_conns} idle keep-alive connections")
        result["memory"] = memory(args)

    result["load_end"] = os.getloadavg()
    with open(os.path.join(args.out, "router.json"), "w") as f:
        json.dump(result, f, indent=2)
    md = report(result)
    with open(os.path.join(args.out, "router.md"), "w") as f:
        f.write(md)
    print(md)


def report(r):
    lines = ["# dozen router benchmark", "",
             f"wrk {r['wrk']}, Host {HOST}, 14-byte body, 2 cores shared by wrk, proxy and backend (none pinned). "
             f"Router worker threads = nginx worker processes = {r.get('workers', 2)}. "
             f"Load average at start {r['load_start'][0]:.2f}, at end {r['load_end'][0]:.2f}.", ""]
    if "proxy" in r:
        p = {k: v["median"] for k, v in r["proxy"].items()}
        lines += ["## Throughput and latency (median of the repetitions)", "",
                  "| path | requests/s | p50 ms | p99 ms | non-2xx | socket errors | proxy CPU µs/request |", "|---|---:|---:|---:|---:|---:|---:|"]
        for name, label in ((n, lbl) for n, lbl in (("direct", "direct to the app"), ("router", "through dozen's router (access events on)"),
                            ("router_baseline", "through the baseline router (access events on)"),
                            ("nginx", "through nginx (keepalive 64, access log off)"),
                            ("nginx_log", "through nginx (keepalive 64, access log to a file)")) if n in p):
            x = p[name]
            cpu = "-" if name == "direct" or x.get("cpu_us_per_request") is None else f"{x['cpu_us_per_request']:.1f}"
            lines.append(f"| {label} | {x['rps']:.0f} | {x['p50_ms']:.3f} | {x['p99_ms']:.3f} | {x['non_2xx']} | {x['socket_errors']} | {cpu} |")
        rd = p["router"]["rps"] / p["direct"]["rps"]
        rn = p["router"]["rps"] / p["nginx"]["rps"]
        nd = p["nginx"]["rps"] / p["direct"]["rps"]
        rnl = p["router"]["rps"] / p["nginx_log"]["rps"]
        lines += ["", f"- router / direct: **{rd:.2f}x** (goal >= 0.6x)",
                  f"- router / nginx: **{rn:.2f}x** (goal >= 1.2x); against nginx logging every request as the router does: {rnl:.2f}x",
                  f"- nginx / direct: {nd:.2f}x",
                  f"- CPU per request, router / nginx: {p['router']['cpu_us_per_request'] / p['nginx']['cpu_us_per_request']:.2f}x"]
        if "router_baseline" in p:
            b = p["router_baseline"]
            lines.append(f"- router / baseline router ({r.get('baseline_router')}): **{p['router']['rps'] / b['rps']:.2f}x** "
                         f"requests/s, {p['router']['cpu_us_per_request'] / b['cpu_us_per_request']:.2f}x CPU per request")
        lines.append("")
    if "balance" in r:
        lines += ["## Balancing: round robin (rr) against least outstanding requests (lor)", "",
                  "| backends | mode | requests/s | p50 ms | p99 ms |", "|---|---|---:|---:|---:|"]
        for scenario, modes in r["balance"].items():
            for mode, x in modes.items():
                lines.append(f"| {scenario} | {mode} | {x['rps']:.0f} | {x['p50_ms']:.3f} | {x['p99_ms']:.3f} |")
        lines.append("")
    if "memory" in r:
        m = r["memory"]
        lines += ["## Memory with idle keep-alive connections", "",
                  f"- {m['connections']} connections, each after one answered request ({m['answered_200']} got 200)",
                  f"- router RSS before: {m['rss_before_kb'] / 1024:.1f} MiB, with them open: {m['rss_with_idle_kb'] / 1024:.1f} MiB",
                  f"- per connection: {m['per_connection_kb']} KiB", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""dozen server benchmark: deploy time of examples/hello and API latency under load,
on SQLite and on PostgreSQL; then deploy time of a real Django app, cold and with a warm build
cache (bench/deploy_django.py).

Run it through bench/server.sh, which installs wrk and builds dozen first.
This file only measures; see bench/README.md ("dozen server") for what each number means.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import re
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.dont_write_bytecode = True  # importing bench.py must not leave bench/__pycache__ behind
from bench import (  # noqa: E402 -- same directory: the process bookkeeping of the main bench
    Interrupted,
    _live,
    _on_signal,
    become_subreaper,
    cleanup_all,
    cpu_s,
    descendants,
    loadavg,
    median,
    version_of,
)
from deploy_django import bench_django  # noqa: E402
from deploy_django import markdown as django_markdown  # noqa: E402

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
EXAMPLE = ROOT / "examples" / "hello"
APP = "shop"
TOKEN = "dzn_bench_token_" + "0123456789"
STORES = ["sqlite", "postgres"]
STORE_LABEL = {"sqlite": "SQLite", "postgres": "PostgreSQL"}
ENDPOINTS = [  # (label, path, needs the token)
    ("GET /healthz (no auth, no store)", "/healthz", False),
    (f"GET /v1/apps/{APP}/releases", f"/v1/apps/{APP}/releases", True),
    (f"GET /v1/apps/{APP}/config", f"/v1/apps/{APP}/config", True),
]
CONFIG = {"GREETING": "Hello", "TICK_SECONDS": "5", "FEATURE_X": "on"}

# Lines of the deploy stream (the build log the client prints) whose arrival marks a phase.
MARKS = [
    ("build_started", re.compile(r"build \S+ started")),
    ("build_exited", re.compile(r"build exited with code")),
    ("slug", re.compile(r"\bslug [0-9a-f]{6,}")),
    ("live", re.compile(r"\bv\d+ is live")),
]


def log(msg: str) -> None:
    print(f"[bench/server {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class BenchError(Exception):
    pass


# --------------------------------------------------------------------------
# the server under test
# --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def psql(admin_url: str, sql: str) -> None:
    subprocess.run(["psql", admin_url, "-v", "ON_ERROR_STOP=1", "-qAtc", sql],
                   check=True, capture_output=True, text=True, timeout=60)


def pg_url_for(admin_url: str, db: str) -> str:
    base, _, _ = admin_url.rpartition("/")
    return f"{base}/{db}"


class Server:
    """One `dozen server` on a scratch data directory (and, for PostgreSQL, a scratch database)."""

    def __init__(self, dozen: str, store: str, work: Path, pg_admin_url: str, extra_env: dict[str, str]):
        self.dozen = dozen
        self.store = store
        self.pg_admin_url = pg_admin_url
        self.dir = Path(tempfile.mkdtemp(prefix=f"{store}-", dir=work))
        self.port = free_port()
        self.router_port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.db: str | None = None
        self.proc: subprocess.Popen | None = None
        self.log_path = self.dir / "server.log"
        self.app_pids: set[int] = set()
        env = dict(os.environ)
        for k in ("DATABASE_URL", "DOZEN_URL", "DOZEN_APP"):
            env.pop(k, None)
        env.update({
            "DOZEN_DATA_DIR": str(self.dir / "data"),
            "PORT": str(self.port),
            "DOZEN_ROUTER_PORT": str(self.router_port),
            "DOZEN_API_TOKEN": TOKEN,
            "DOZEN_BIND": "127.0.0.1",
            "NO_COLOR": "1",
        })
        env.update(extra_env)
        self.env = env
        # The client's environment: never the server's store settings.
        self.cli_env = {k: v for k, v in env.items() if k not in ("DATABASE_URL", "PORT", "DOZEN_DATA_DIR")}
        self.cli_env["DOZEN_URL"] = self.url

    def start(self) -> None:
        if self.store == "postgres":
            name = f"dozen_bench_{os.getpid()}_{secrets.token_hex(3)}"
            psql(self.pg_admin_url, f'CREATE DATABASE "{name}"')
            self.db = name
            self.env["DATABASE_URL"] = pg_url_for(self.pg_admin_url, name)
        m = subprocess.run([self.dozen, "migrate"], env=self.env, capture_output=True, text=True, timeout=120)
        if m.returncode != 0:
            raise BenchError(f"dozen migrate failed: {m.stderr.strip() or m.stdout.strip()}")
        out = open(self.log_path, "wb")
        self.proc = subprocess.Popen([self.dozen, "server"], env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        out.close()
        _live.append(self.proc)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                if http_get(self.url + "/healthz", timeout=1)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise BenchError(f"the server did not answer /healthz within 30 s; its log:\n{self.log_tail()}")

    def log_tail(self, n: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise BenchError(f"dozen server exited (status {self.proc.returncode}) in the middle of the bench; "
                             f"its log ends:\n{self.log_tail()}")

    def api(self, path: str, method: str = "GET", body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {TOKEN}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read() or b"null")

    def cli(self, *args: str, timeout: float = 120) -> str:
        r = subprocess.run([self.dozen, *args], env=self.cli_env, capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0:
            self.check_alive()
            raise BenchError(f"dozen {' '.join(args)} failed ({r.returncode}): {r.stderr.strip() or r.stdout.strip()}")
        return r.stdout

    def stop(self) -> dict:
        """SIGTERM, and time until the server (which stops its app processes first) has exited."""
        res: dict = {"stop_s": None, "app_processes_left": None}
        if self.proc is not None and self.proc.poll() is None:
            log(f"{STORE_LABEL[self.store]}: stopping dozen server (pid {self.proc.pid}) with SIGTERM")
            t0 = time.monotonic()
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
                res["stop_s"] = round(time.monotonic() - t0, 3)
            except subprocess.TimeoutExpired:
                log("the server did not exit within 30 s of SIGTERM; killing it")
                self.proc.kill()
                self.proc.wait()
            time.sleep(0.2)
            res["app_processes_left"] = sum(1 for p in self.app_pids if Path(f"/proc/{p}").exists()
                                            and pid_state(p) not in ("Z", None))
        if self.proc in _live:
            _live.remove(self.proc)
        return res

    def drop_db(self) -> None:
        if self.db:
            try:
                t0 = time.monotonic()
                psql(self.pg_admin_url, f'DROP DATABASE IF EXISTS "{self.db}" WITH (FORCE)')
                log(f"dropped the scratch database {self.db} ({time.monotonic() - t0:.1f} s)")
                self.db = None
            except Exception as e:  # noqa: BLE001
                log(f"could not drop the scratch database {self.db}: {e}")


def pid_state(pid: int) -> str | None:
    try:
        data = Path(f"/proc/{pid}/stat").read_text(errors="replace")
        return data[data.rfind(")") + 2:].split()[0]
    except OSError:
        return None


def postgres_cpu_s() -> float:
    """CPU seconds used so far by every live `postgres` process on the machine (the store's side of
    the PostgreSQL runs; other users of the same PostgreSQL add to it)."""
    total = 0.0
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                data = Path(f"/proc/{name}/stat").read_text(errors="replace")
            except OSError:
                continue
            if data[data.find("(") + 1:data.rfind(")")].startswith("postgres"):
                total += cpu_s(int(name))
    return total


def http_get(url: str, timeout: float = 1.0) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read()


# --------------------------------------------------------------------------
# deploy time
# --------------------------------------------------------------------------


class WebWatch(threading.Thread):
    """Polls the API's ps (like `dozen ps --json`) and, once web.1 of the expected release has a
    port, GETs that port, every `interval` s. Records when it first answered, and the states seen."""

    def __init__(self, server: Server, version: int, t0: float, interval: float = 0.025):
        super().__init__(daemon=True)
        self.server, self.version, self.t0, self.interval = server, version, t0, interval
        self.returned_at: float | None = None  # set by the deploy when its command returns
        self.first_answer: float | None = None  # any time, also while the deploy still runs
        self.answer_after_return: float | None = None
        self.states: list[tuple[float, str, int | None, int]] = []  # (t, state, pid, restarts), changes only
        self.final_row: dict | None = None
        self.stop_at: float | None = None
        self.errors = 0

    def run(self) -> None:
        while True:
            now = time.monotonic()
            if self.stop_at is not None and now >= self.stop_at:
                return
            if self.returned_at is not None and self.answer_after_return is not None:
                return
            try:
                rows = self.server.api(f"/v1/apps/{APP}/ps")
            except (OSError, ValueError, http.client.HTTPException):
                self.errors += 1
                time.sleep(self.interval)
                continue
            row = next((r for r in rows if r.get("name") == "web.1" and r.get("release") == self.version), None)
            t = time.monotonic() - self.t0
            if row is not None:
                self.final_row = row
                key = (row.get("state"), row.get("pid"), row.get("restarts", 0))
                if row.get("pid"):
                    self.server.app_pids.add(int(row["pid"]))
                if not self.states or self.states[-1][1:] != key:
                    self.states.append((round(t, 3), *key))
                if row.get("port"):
                    try:
                        status, body = http_get(f"http://127.0.0.1:{row['port']}/", timeout=1)
                        ok = status == 200 and body.startswith(b"Hello from web.1")
                    except (OSError, http.client.HTTPException):
                        ok = False
                    if ok:
                        t = time.monotonic() - self.t0
                        if self.first_answer is None:
                            self.first_answer = t
                        if self.returned_at is not None and self.answer_after_return is None:
                            self.answer_after_return = t
            time.sleep(self.interval)


def deploy_once(server: Server, n: int, timeout: float) -> dict:
    releases = server.api(f"/v1/apps/{APP}/releases")
    expected = max((r["version"] for r in releases), default=0) + 1
    lines: list[tuple[float, str]] = []
    t0 = time.monotonic()
    watch = WebWatch(server, expected, t0)
    watch.start()
    p = subprocess.Popen([server.dozen, "deploy", "-a", APP, "-d", str(EXAMPLE)], env=server.cli_env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                         start_new_session=True)
    _live.append(p)

    def read() -> None:
        assert p.stdout is not None
        for raw in p.stdout:
            lines.append((time.monotonic() - t0, raw.decode(errors="replace").rstrip("\n")))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    res: dict = {"deploy": n, "release": expected}
    try:
        rc = p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        rc = p.wait()
        res["error"] = f"dozen deploy did not return within {timeout:.0f} s"
    t_ret = time.monotonic() - t0
    _live.remove(p)
    reader.join(timeout=5)
    watch.returned_at = t_ret
    watch.stop_at = t0 + t_ret + timeout
    watch.join()
    text = [l for _, l in lines]
    m = re.search(r"deployed \S+: v(\d+) is live", "\n".join(text))
    if rc != 0 and "error" not in res:
        res["error"] = f"dozen deploy exited {rc}: " + " | ".join(text[-5:])
    elif m and int(m.group(1)) != expected:
        res["error"] = f"deploy made v{m.group(1)}, the bench expected v{expected}"
    elif watch.answer_after_return is None and "error" not in res:
        res["error"] = f"web.1 of v{expected} did not answer within {timeout:.0f} s after the deploy returned"
    marks = {}
    for key, pat in MARKS:
        marks[key] = next((round(t, 3) for t, l in lines if pat.search(l)), None)
    row = watch.final_row or {}
    res.update({
        "deploy_cmd_s": round(t_ret, 3),
        "return_to_answer_s": None if watch.answer_after_return is None else round(watch.answer_after_return - t_ret, 3),
        "total_s": None if watch.answer_after_return is None else round(watch.answer_after_return, 3),
        "first_answer_s": None if watch.first_answer is None else round(watch.first_answer, 3),
        "marks_s": marks,
        "web_restarts": row.get("restarts"),
        "web_states": watch.states,
        "ps_poll_errors": watch.errors,
        "output_tail": text[-3:],
    })
    return res


def deploy_phases(r: dict) -> dict:
    """Phase lengths from the arrival times of the deploy stream's lines."""
    m = r["marks_s"]
    def span(a, b):
        return None if a is None or b is None else round(b - a, 3)
    return {
        "upload_s": m.get("build_started"),  # pack + upload, until the server says the build started
        "build_s": span(m.get("build_started"), m.get("build_exited")),
        "slug_s": span(m.get("build_exited"), m.get("slug")),
        "release_rollout_s": span(m.get("slug"), r["deploy_cmd_s"]),  # release, start new, stop old, return
    }


# --------------------------------------------------------------------------
# API latency under load
# --------------------------------------------------------------------------

WRK_LUA = r"""
local token = os.getenv("BENCH_BEARER")
if token and token ~= "" then wrk.headers["Authorization"] = "Bearer " .. token end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCHJSON {\"requests\":%d,\"duration_us\":%d,\"p50_us\":%d,\"p90_us\":%d,\"p99_us\":%d,\"max_us\":%d," ..
    "\"mean_us\":%.1f,\"connect_errors\":%d,\"read_errors\":%d,\"write_errors\":%d,\"timeouts\":%d,\"non_2xx\":%d}\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean, e.connect, e.read, e.write, e.timeout, e.status))
end
"""


def load_wrk(wrk: str, url: str, bearer: str | None, connections: int, duration: int, work: Path) -> dict:
    script = work / "bench-auth.lua"
    script.write_text(WRK_LUA)
    env = dict(os.environ)
    env["BENCH_BEARER"] = bearer or ""
    threads = max(1, min(os.cpu_count() or 1, connections))
    cmd = [wrk, f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--timeout", "5s", "-s", str(script), url]
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                         text=True, start_new_session=True)
    _live.append(p)
    try:
        out, _ = p.communicate(timeout=duration + 60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        _live.remove(p)
    line = next((l for l in out.splitlines() if l.startswith("BENCHJSON ")), None)
    if line is None:
        raise BenchError(f"wrk printed no result: {out.strip()[-500:]}")
    d = json.loads(line[len("BENCHJSON "):])
    errors = d["connect_errors"] + d["read_errors"] + d["write_errors"] + d["timeouts"] + d["non_2xx"]
    return {
        "tool": f"wrk -t{threads} -c{connections} -d{duration}s",
        "requests": d["requests"],
        "rps": d["requests"] / (d["duration_us"] / 1e6),
        "p50_ms": d["p50_us"] / 1000, "p90_ms": d["p90_us"] / 1000, "p99_ms": d["p99_us"] / 1000,
        "max_ms": d["max_us"] / 1000, "mean_ms": d["mean_us"] / 1000,
        "errors": errors, "error_detail": {k: d[k] for k in ("connect_errors", "read_errors", "write_errors", "timeouts", "non_2xx")},
    }


def load_python(url: str, bearer: str | None, connections: int, duration: int) -> dict:
    """The fallback when wrk is missing: `connections` threads, each on its own keep-alive
    connection. The GIL caps it at a few thousand requests/s, so it measures less than wrk."""
    host, port_path = url.split("//", 1)[1].split(":", 1)
    port, path = port_path.split("/", 1)
    path = "/" + path
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    lat: list[list[float]] = [[] for _ in range(connections)]
    errors = [0] * connections
    stop_at = time.monotonic() + duration

    def worker(i: int) -> None:
        conn = http.client.HTTPConnection(host, int(port), timeout=5)
        mine = lat[i]
        while time.monotonic() < stop_at:
            t = time.perf_counter()
            try:
                conn.request("GET", path, headers=headers)
                r = conn.getresponse()
                r.read()
                if r.status != 200:
                    errors[i] += 1
                mine.append(time.perf_counter() - t)
            except (OSError, http.client.HTTPException):
                errors[i] += 1
                conn.close()
                conn = http.client.HTTPConnection(host, int(port), timeout=5)
        conn.close()

    t0 = time.monotonic()
    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0
    all_lat = sorted(x for l in lat for x in l)

    def pct(q: float) -> float | None:
        return all_lat[min(len(all_lat) - 1, int(q * len(all_lat)))] * 1000 if all_lat else None

    return {
        "tool": f"python threads -c{connections} -d{duration}s (wrk not found)",
        "requests": len(all_lat), "rps": len(all_lat) / elapsed,
        "p50_ms": pct(0.50), "p90_ms": pct(0.90), "p99_ms": pct(0.99),
        "max_ms": all_lat[-1] * 1000 if all_lat else None,
        "mean_ms": sum(all_lat) / len(all_lat) * 1000 if all_lat else None,
        "errors": sum(errors), "error_detail": {},
    }


def load_once(server: Server, path: str, auth: bool, args, work: Path) -> dict:
    url = server.url + path
    bearer = TOKEN if auth else None
    # One request first: the endpoint must answer 200, or the numbers mean nothing.
    req = urllib.request.Request(url)
    if bearer:
        req.add_header("Authorization", f"Bearer {bearer}")
    with urllib.request.urlopen(req, timeout=10) as r:
        body = r.read()
    server_cpu0 = cpu_s(server.proc.pid)
    pg_cpu0 = postgres_cpu_s() if server.store == "postgres" else None
    kids0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    if args.wrk:
        res = load_wrk(args.wrk, url, bearer, args.connections, args.duration, work)
    else:
        res = load_python(url, bearer, args.connections, args.duration)
    wall = time.monotonic() - t0
    kids1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    server.check_alive()
    res["response_bytes"] = len(body)
    res["server_cpu_pct"] = round((cpu_s(server.proc.pid) - server_cpu0) / wall * 100, 1)
    if pg_cpu0 is not None:
        # A postgres process that exits during the run takes its CPU with it: clamp at 0.
        res["postgres_cpu_pct"] = max(0.0, round((postgres_cpu_s() - pg_cpu0) / wall * 100, 1))
    if args.wrk:
        res["wrk_cpu_pct"] = round(((kids1.ru_utime + kids1.ru_stime) - (kids0.ru_utime + kids0.ru_stime)) / wall * 100, 1)
    return res


# --------------------------------------------------------------------------
# one store, start to end
# --------------------------------------------------------------------------


def bench_store(store: str, args, work: Path, extra_env: dict[str, str]) -> dict:
    out: dict = {"store": store, "deploys": [], "load": {}}
    server = Server(args.dozen, store, work, args.pg_admin_url, extra_env)
    try:
        server.start()
        log(f"{STORE_LABEL[store]}: server up on {server.url} (pid {server.proc.pid})")
        server.cli("apps:create", APP)
        # Config first (a release without code), so that /config has something to return and no
        # config change restarts the app between the measured deploys.
        server.cli("config:set", "-a", APP, *[f"{k}={v}" for k, v in CONFIG.items()])
        for n in range(1, args.deploys + 1):
            server.check_alive()
            r = deploy_once(server, n, args.deploy_timeout)
            r.update(deploy_phases(r))
            out["deploys"].append(r)
            log(f"{STORE_LABEL[store]} deploy {n} (v{r['release']}): command {r['deploy_cmd_s']} s "
                f"(upload {r['upload_s']}, build {r['build_s']}, slug {r['slug_s']}, release+rollout {r['release_rollout_s']}), "
                f"then web.1 answered after {r['return_to_answer_s']} s; total {r['total_s']} s; "
                f"new web.1 first answered at {r['first_answer_s']} s; web.1 restarts {r['web_restarts']}"
                + (f"; ERROR {r['error']}" if "error" in r else ""))
        for label, path, auth in ENDPOINTS:
            server.check_alive()
            r = load_once(server, path, auth, args, work)
            out["load"][label] = r
            log(f"{STORE_LABEL[store]} {label}: {r['rps']:,.0f} req/s, p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms, "
                f"errors {r['errors']}, CPU server/wrk/postgres {cpu_cells(r)}")
        out["releases"] = len(server.api(f"/v1/apps/{APP}/releases"))
    except BenchError as e:
        out["error"] = str(e)
        log(f"{STORE_LABEL[store]}: ERROR {e}")
    finally:
        out["server_stop"] = server.stop()
        server.drop_db()
        out["server_log_tail"] = server.log_tail(5)
    return out


# --------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------


def med_max(values) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "n/a"
    return f"{median(values):.2f} / {max(values):.2f} s"


def summarize(results: dict) -> dict:
    summary: dict = {}
    for store, r in results.items():
        ds = [d for d in r["deploys"]]
        s = {
            "deploys": len(ds),
            "deploy_errors": [d["error"] for d in ds if "error" in d],
            "load": r["load"],
            "server_stop": r.get("server_stop"),
            "error": r.get("error"),
        }
        for key in ("deploy_cmd_s", "return_to_answer_s", "total_s", "first_answer_s",
                    "upload_s", "build_s", "slug_s", "release_rollout_s"):
            vals = [d.get(key) for d in ds if d.get(key) is not None]
            s[key] = {"median": median(vals), "max": max(vals) if vals else None, "all": [d.get(key) for d in ds]}
        s["web_restarts"] = [d.get("web_restarts") for d in ds]
        summary[store] = s
    return summary


def markdown(meta: dict, summary: dict) -> str:
    out: list[str] = []
    w = out.append
    w("# dozen server benchmark\n")
    w(f"{meta['date']} on {meta['machine']}; load average at start {meta['loadavg_start']}, at end {meta['loadavg_end']}.  ")
    w(f"dozen {meta['versions']['dozen']}; load generator {meta['load_tool']}; PostgreSQL {meta['versions']['postgres']}."
      + (f"  \nServer environment: {', '.join(f'{k}={v}' for k, v in meta['extra_env'].items())}." if meta['extra_env'] else "")
      + "\n")
    stores = list(summary)
    if not stores:  # --stores none: the Django deploys alone
        return "\n".join(out) + "\n"
    w(f"## Deploy time of examples/hello ({meta['deploys']} deploys per store, each a new release; median / max)\n")
    w("| | " + " | ".join(STORE_LABEL[s] for s in stores) + " |")
    w("|---|" + "---:|" * len(stores))
    rows = [
        ("`dozen deploy` (pack, upload, build, release, rollout)", "deploy_cmd_s"),
        ("deploy returned -> web.1 answers HTTP", "return_to_answer_s"),
        ("**total: deploy started -> web.1 answers**", "total_s"),
        ("new web.1 first answered (polled during the deploy too)", "first_answer_s"),
    ]
    for label, key in rows:
        w(f"| {label} | " + " | ".join(med_max(summary[s][key]["all"]) for s in stores) + " |")
    w("| web.1 restarts, per deploy | " + " | ".join(", ".join(str(x) for x in summary[s]["web_restarts"]) or "n/a" for s in stores) + " |")
    w("")
    w("Inside `dozen deploy`, from when each line of the streamed build log reached the client (median / max):\n")
    w("| phase | " + " | ".join(STORE_LABEL[s] for s in stores) + " |")
    w("|---|" + "---:|" * len(stores))
    for label, key in [("pack + upload (until \"build ... started\")", "upload_s"),
                       ("build (venv + pip install)", "build_s"),
                       ("slug (pack + digest)", "slug_s"),
                       ("release + rollout (start new web.1, stop the old one, return)", "release_rollout_s")]:
        w(f"| {label} | " + " | ".join(med_max(summary[s][key]["all"]) for s in stores) + " |")
    w("")
    w(f"All deploys, total s: " + "; ".join(
        f"{STORE_LABEL[s]} " + ", ".join("n/a" if v is None else f"{v:.2f}" for v in summary[s]["total_s"]["all"]) for s in stores))
    w("")
    w(f"## API latency under load ({meta['connections']} connections, {meta['duration']} s each)\n")
    w("| endpoint | store | requests/s | p50 | p99 | max | errors | CPU, % of one core: server / wrk / postgres |")
    w("|---|---|---:|---:|---:|---:|---:|---:|")
    labels = [e[0] for e in ENDPOINTS]
    for label in labels:
        for s in stores:
            r = summary[s]["load"].get(label)
            if not r:
                continue
            w(f"| {label} | {STORE_LABEL[s]} | {r['rps']:,.0f} | {fmt_ms(r['p50_ms'])} | {fmt_ms(r['p99_ms'])} | "
              f"{fmt_ms(r['max_ms'])} | {r['errors']} | {cpu_cells(r)} |")
    w("")
    notes = []
    for s in stores:
        st = summary[s].get("server_stop") or {}
        notes.append(f"{STORE_LABEL[s]}: SIGTERM until the server exited {st.get('stop_s')} s, "
                     f"app processes left {st.get('app_processes_left')}")
    w("Shutdown: " + "; ".join(notes) + ".")
    for s in stores:
        if summary[s].get("error"):
            w(f"\n**{STORE_LABEL[s]}: the run stopped early:** {summary[s]['error']}")
        for e in summary[s]["deploy_errors"]:
            w(f"\n**{STORE_LABEL[s]} deploy error:** {e}")
    w("")
    return "\n".join(out)


def cpu_cells(r: dict) -> str:
    def pct(v):
        return "-" if v is None else f"{v:.0f}%"
    return f"{pct(r.get('server_cpu_pct'))} / {pct(r.get('wrk_cpu_pct'))} / {pct(r.get('postgres_cpu_pct'))}"


def fmt_ms(v) -> str:
    return "n/a" if v is None else f"{v:.2f} ms"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="smoke test: 2 deploys, 3 s of load per endpoint")
    ap.add_argument("--stores", default=",".join(STORES), help="comma list of sqlite,postgres; none for the Django deploys alone")
    ap.add_argument("--deploys", type=int, help="deploys per store (default 5; 2 with --quick)")
    ap.add_argument("--duration", type=int, help="seconds of load per endpoint (default 10; 3 with --quick)")
    ap.add_argument("--connections", type=int, default=32, help="concurrent connections (default 32)")
    ap.add_argument("--deploy-timeout", type=float, default=300.0, help="seconds a deploy (and then web.1) may take")
    ap.add_argument("--pg-admin-url", default=os.environ.get("BENCH_PG_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/postgres"),
                    help="where to CREATE/DROP the scratch database (its database part is replaced for the server)")
    ap.add_argument("--server-env", action="append", default=[], metavar="KEY=VALUE",
                    help="extra environment for the server, e.g. DOZEN_CGROUPS=off (repeatable)")
    ap.add_argument("--no-django", dest="django", action="store_false",
                    help="skip the cold and warm deploys of the Django app (they need PyPI and PostgreSQL)")
    ap.add_argument("--dozen", default=str(ROOT / "target" / "release" / "dozen"))
    ap.add_argument("--wrk", default=shutil.which("wrk"), help="wrk binary (default: from PATH; without it a Python load generator)")
    ap.add_argument("--out", default=str(RESULTS), help="directory for server.json and server.md")
    args = ap.parse_args()
    args.deploys = args.deploys or (2 if args.quick else 5)
    args.duration = args.duration or (3 if args.quick else 10)
    stores = [s.strip() for s in args.stores.split(",") if s.strip() and s.strip() != "none"]
    for s in stores:
        if s not in STORES:
            ap.error(f"unknown store {s}")
    if not os.access(args.dozen, os.X_OK):
        ap.error(f"dozen not found at {args.dozen}; run bench/server.sh (it builds it)")
    if ("postgres" in stores or args.django) and not shutil.which("psql"):
        ap.error("psql not found (needed to create the scratch database); install postgresql-client or use --stores sqlite")
    extra_env = {}
    for kv in args.server_env:
        if "=" not in kv:
            ap.error(f"--server-env wants KEY=VALUE, got {kv}")
        k, v = kv.split("=", 1)
        extra_env[k] = v

    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, _on_signal)
    subreaper = become_subreaper()
    pg_version = "not used"
    if "postgres" in stores or args.django:
        try:
            pg_version = subprocess.run(["psql", args.pg_admin_url, "-Atc", "SHOW server_version"], capture_output=True,
                                        text=True, timeout=30, check=True).stdout.strip()
        except Exception as e:  # noqa: BLE001
            ap.error(f"cannot reach PostgreSQL at {args.pg_admin_url}: {e}")

    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "machine": f"{platform.system()} {platform.release()}, {os.cpu_count()} CPUs",
        "loadavg_start": loadavg(),
        "deploys": args.deploys, "duration": args.duration, "connections": args.connections,
        "stores": stores, "extra_env": extra_env, "subreaper": subreaper,
        "load_tool": (version_of([args.wrk, "-v"]).split(" Copyright")[0] if args.wrk else "python threads (wrk not found)"),
        "versions": {
            "dozen": version_of([args.dozen, "--version"]) + " built from the work tree at "
            + version_of(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
            + (" + local changes" if subprocess.run(["git", "-C", str(ROOT), "diff", "--quiet", "HEAD", "--", "crates", "Cargo.toml", "Cargo.lock"]).returncode else ""),
            "postgres": pg_version,
            "python": platform.python_version(),
        },
    }
    work = Path(tempfile.mkdtemp(prefix="dozen-bench-server-"))
    results: dict = {}
    django: dict | None = None
    code = 0
    try:
        for store in stores:
            results[store] = bench_store(store, args, work, extra_env)
        if args.django:
            django = bench_django_deploys(args, work, extra_env)
    except (Interrupted, KeyboardInterrupt) as e:
        log(f"interrupted ({e}); stopping every process the bench started and dropping scratch databases")
        code = 130
    finally:
        # Cleanup must not be interrupted half-way: ignore further signals until it is done.
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(s, signal.SIG_IGN)
        left = descendants(os.getpid())
        if left:
            log(f"stopping {len(left)} process(es) still running below the bench")
        cleanup_all()
        if "postgres" in stores or args.django:
            drop_leftover_dbs(args.pg_admin_url)
        shutil.rmtree(work, ignore_errors=True)
    if code:
        return code

    meta["loadavg_end"] = loadavg()
    summary = summarize(results)
    md = markdown(meta, summary)
    if django is not None:
        md += "\n".join(django_markdown(django)) + "\n"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "server.json").write_text(json.dumps({"meta": meta, "summary": summary, "runs": results, "django": django}, indent=2, default=str) + "\n")
    (out / "server.md").write_text(md)
    print(md)
    log(f"wrote {out / 'server.json'} and {out / 'server.md'}")
    failed = any(r.get("error") or any("error" in d for d in r["deploys"]) for r in results.values())
    failed = failed or (django is not None and (django.get("error") is not None
                                                or any("error" in d for d in django["deploys"].values())))
    return 1 if failed else 0


def bench_django_deploys(args, work: Path, extra_env: dict[str, str]) -> dict:
    """The Django app's cold and warm deploys, on a server of their own (SQLite store)."""
    server = Server(args.dozen, "sqlite", work, args.pg_admin_url, extra_env)
    try:
        server.start()
        log(f"Django: server up on {server.url} (pid {server.proc.pid}), router on {server.router_port}")
        return bench_django(server, args, psql, pg_url_for, log, server.router_port)
    except BenchError as e:
        log(f"Django: ERROR {e}")
        return {"error": str(e), "deploys": {}}
    finally:
        server.stop()


def drop_leftover_dbs(admin_url: str) -> None:
    """Drop the scratch databases of this bench process (an interrupt may leave one behind)."""
    try:
        names = subprocess.run(["psql", admin_url, "-Atc",
                                f"SELECT datname FROM pg_database WHERE datname LIKE 'dozen_bench_{os.getpid()}_%'"],
                               capture_output=True, text=True, timeout=30).stdout.split()
    except Exception:  # noqa: BLE001
        return
    for name in names:
        try:
            psql(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        except Exception as e:  # noqa: BLE001
            log(f"could not drop the scratch database {name}: {e}")


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Drain throughput and what a drain costs an app: `dozen server` sending an app's lines to a
syslog receiver, against rsyslog forwarding the same lines to the same receiver, in one run.

usage: bench/drains.py [--dozen target/release/dozen] [--lines 200000] [--reps 3] [--rsyslogd PATH]

The receiver is part of the bench: an asyncio TCP server on 127.0.0.1 that takes RFC 6587
octet-counted frames. While the clock runs it only counts the `|` that ends each producer line
(one per line, at memchr speed, so that it never becomes the bottleneck); once the clock has
stopped it parses every frame it kept and counts, per sequence number, what arrived: lost,
duplicated, out of order, torn.

Per repetition, one after the other (so that a change of the machine's load hits all of them):

1. dozen, no drain: a fresh `dozen server` (SQLite, scratch directory), an app whose `worker` is
   bench/producer.py (LINES lines of 100 bytes), scaled to one; the time from the scale request
   until the server holds the producer's end marker (what bench/log_history.py measures).
2. dozen, one drain: the same with `dozen drains:add syslog://127.0.0.1:PORT` (added after the
   deploy, before the scale); the same time, and the time until the receiver has every line.
3. a file, no forwarder: the producer writes into a file; the time until the file holds it all.
4. rsyslog: the same file, read by rsyslog's imfile (inotify) and forwarded by omfwd over TCP
   with octet-counted framing (RFC 5424 messages) to the receiver; the time until the file holds
   it all, and until the receiver has every line.

rsyslogd runs as a child of the bench with its own configuration, work directory and pid file
(`-n -f CONF -i PIDFILE`), no system inputs (no /dev/log, no klog) and no listener at all: it
only reads the bench's file and connects to the bench's receiver on 127.0.0.1.

Results: printed as Markdown and written to bench/results/drains.{md,json}.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
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
from server import APP, Server, log  # noqa: E402

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
TAG = "bench"
LINE = 100
MARKER = f"#{TAG}# done"
SEQ = re.compile(rb"@" + TAG.encode() + rb"@ (\d{7}) x+\|$")


# --------------------------------------------------------------------------
# the receiver
# --------------------------------------------------------------------------


class Receiver:
    """A syslog-over-TCP receiver (RFC 6587 octet counting) on 127.0.0.1, in a process of its
    own: in a thread of the bench it would hold the GIL against the bench's polling of the
    server, and the dozen runs with a drain would look slower than they are. It runs at nice
    19: it stands for a receiver on another host, so it should not take CPU from what is
    measured (the same for dozen and rsyslog).

    The child keeps each chunk it reads and counts `|`; the bench sees the count, whether
    anything arrived, and when the `expected`-th `|` came (`done`, `done_at`). `stop()` brings
    the chunks back, per connection, for `check()` to parse once the clock has stopped.
    """

    def __init__(self, expected: int):
        ctx = multiprocessing.get_context("fork")
        self.expected = expected
        self.port = 0
        self._bars = ctx.Value("q", 0, lock=False)
        self._any = ctx.Value("b", 0, lock=False)
        self._done_at = ctx.Value("d", 0.0, lock=False)
        self.done = ctx.Event()
        self._stop = ctx.Event()
        self._ports, child_port = ctx.Pipe(duplex=False)
        self._data, child_data = ctx.Pipe(duplex=False)
        self._child_ends = (child_port, child_data)
        self._proc = ctx.Process(target=self._run, name="receiver", daemon=True)
        self.connections: list[list[bytes]] = []

    @property
    def bars(self) -> int:
        return self._bars.value

    @property
    def done_at(self) -> float | None:
        return self._done_at.value or None

    def received_any(self) -> bool:
        return bool(self._any.value)

    def start(self) -> Receiver:
        self._proc.start()
        if not self._ports.poll(10):
            raise SystemExit("the receiver did not start")
        self.port = self._ports.recv()
        return self

    def _run(self) -> None:
        # It stands for another host: it takes only the CPU that the server and the app leave.
        os.nice(19)
        port_end, data_end = self._child_ends
        loop = asyncio.new_event_loop()
        receiver = self
        connections: list[list[bytes]] = []

        class Conn(asyncio.Protocol):
            def connection_made(self, transport):
                self.chunks: list[bytes] = []
                connections.append(self.chunks)

            def data_received(self, data: bytes):
                self.chunks.append(data)
                receiver._any.value = 1
                receiver._bars.value += data.count(b"|")
                if not receiver._done_at.value and receiver._bars.value >= receiver.expected:
                    receiver._done_at.value = time.monotonic()
                    receiver.done.set()

        async def until_stopped():
            while not receiver._stop.is_set():
                await asyncio.sleep(0.02)

        server = loop.run_until_complete(loop.create_server(Conn, "127.0.0.1", 0, backlog=16))
        port_end.send(server.sockets[0].getsockname()[1])
        loop.run_until_complete(until_stopped())
        server.close()
        loop.run_until_complete(server.wait_closed())
        loop.close()
        data_end.send([b"".join(c) for c in connections])

    def stop(self) -> None:
        if self._proc.is_alive() and not self._stop.is_set():
            self._stop.set()
            if self._data.poll(30):
                self.connections = [[c] for c in self._data.recv()]
            self._proc.join(10)
        if self._proc.is_alive():
            self._proc.kill()

    def frames(self) -> int:
        """Frames received so far (parses everything: only after the clock has stopped)."""
        return sum(len(parse_frames(b"".join(c))[0]) for c in self.connections)

    def check(self) -> dict:
        """Count what arrived: every producer line once, in order within its connection, whole?"""
        seen: dict[int, int] = {}
        order_breaks = torn = other = bad_framing = 0
        for chunks in self.connections:
            # Order is per connection: a forwarder with several connections (rsyslog opens a
            # new one after a reconnect) interleaves them at the receiver.
            last = -1
            frames, rest = parse_frames(b"".join(chunks))
            bad_framing += len(rest) > 0
            for msg in frames:
                msg = msg.rstrip(b"\n")
                at = msg.find(b"@" + TAG.encode() + b"@ ")
                if at < 0:
                    other += 1
                    continue
                m = SEQ.search(msg, at)
                if not m:
                    torn += 1
                    continue
                n = int(m.group(1))
                seen[n] = seen.get(n, 0) + 1
                if n < last:
                    order_breaks += 1
                last = n
        return {
            "connections": len(self.connections),
            "lines_received": sum(seen.values()),
            "lost": sum(1 for n in range(self.expected) if n not in seen),
            "duplicated": sum(c - 1 for c in seen.values() if c > 1),
            "out_of_order": order_breaks,
            "torn": torn,
            "other_messages": other,
            "unframed_tail_bytes": bad_framing,
        }


def parse_frames(data: bytes) -> tuple[list[bytes], bytes]:
    """RFC 6587 octet counting: `LEN SP MSG`, repeated. Returns the messages and any tail that
    is not a whole frame."""
    out = []
    at, end = 0, len(data)
    while at < end:
        sp = data.find(b" ", at, at + 12)
        if sp < 0 or not data[at:sp].isdigit():
            break
        n = int(data[at:sp])
        if sp + 1 + n > end:
            break
        out.append(data[sp + 1 : sp + 1 + n])
        at = sp + 1 + n
    return out, data[at:]


def wait_receiver(rx: Receiver, producer_done, timeout: float) -> float | None:
    """Wait until the receiver has every line; return the monotonic time it did, or None when
    lines stopped coming (1 s without progress once the producer was done) or `timeout`."""
    deadline = time.monotonic() + timeout
    last_bars, last_change = -1, time.monotonic()
    while time.monotonic() < deadline:
        if rx.done.wait(0.05):
            return rx.done_at
        if rx.bars != last_bars:
            last_bars, last_change = rx.bars, time.monotonic()
        elif producer_done() and time.monotonic() - last_change > 1.0:
            return None
    return None


# --------------------------------------------------------------------------
# dozen
# --------------------------------------------------------------------------


def app_source(work: Path, lines: int) -> Path:
    src = work / "src"
    if not src.exists():
        src.mkdir()
        shutil.copy(BENCH / "producer.py", src / "producer.py")
        (src / "Procfile").write_text(
            f"worker: PRODUCER_TIMING=1 exec python3 producer.py {TAG} {lines} {LINE}\n"
        )
    return src


def server_tree_cpu(pid: int) -> float:
    """CPU of the server and its helpers, without the app's processes."""
    total = cpu_s(pid)
    for child in descendants(pid):
        try:
            comm = Path(f"/proc/{child}/comm").read_text().strip()
        except OSError:
            continue
        if not comm.startswith("python"):
            total += cpu_s(child)
    return total


def minor_faults(pid: int) -> int:
    """Pages the process has touched for the first time so far (minor faults, all threads)."""
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    return int(data[data.rfind(")") + 2 :].split()[7])


def producer_cpu(pid: int) -> float:
    return sum(cpu_s(c) for c in descendants(pid) if _comm(c).startswith("python"))


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def dozen_run(dozen: str, work: Path, lines: int, drain: bool, timeout: float) -> dict:
    """One fresh server; the app's lines with or without a syslog drain to a receiver."""
    server = Server(dozen, "sqlite", work, "", {"DOZEN_LOG_HISTORY": "on"})
    rx = Receiver(lines).start() if drain else None
    res: dict = {"drain": drain}
    try:
        server.start()
        server.cli("apps:create", APP)
        server.cli("deploy", "-a", APP, "-d", str(app_source(work, lines)), timeout=300)
        if rx is not None:
            server.cli("drains:add", f"syslog://127.0.0.1:{rx.port}", "-a", APP)
        pid = server.proc.pid
        cpu0 = server_tree_cpu(pid)
        faults0 = minor_faults(pid)
        marker_at: list[float] = []
        start = time.monotonic()
        server.api(f"/v1/apps/{APP}/formation", "PATCH", {"worker": 1})
        while not marker_at:
            got = server.api_raw(f"/v1/apps/{APP}/logs?lines=1&ps=worker.1")
            if MARKER.encode() in got:
                marker_at.append(time.monotonic())
                took = re.search(rb"done in ([0-9.]+) s", got)
                res["write_s"] = float(took.group(1)) if took else None
                break
            if time.monotonic() - start > timeout:
                raise SystemExit(f"no end marker after {timeout:.0f} s")
            time.sleep(0.01)
        res["app_s"] = marker_at[0] - start
        res["server_faults"] = minor_faults(pid) - faults0
        res["producer_cpu_s"] = producer_cpu(pid)
        if rx is not None:
            done = wait_receiver(rx, lambda: True, timeout)
            res["drain_s"] = None if done is None else done - start
            res["server_cpu_s"] = server_tree_cpu(pid) - cpu0
            stats = server.api(f"/v1/apps/{APP}/drains")
            res["drain_stats"] = [{k: d.get(k) for k in ("state", "delivered", "queued", "dropped")} for d in stats]
            rx.stop()
            res["received"] = rx.check()
        else:
            res["server_cpu_s"] = server_tree_cpu(pid) - cpu0
    finally:
        if rx is not None:
            rx.stop()
        server.stop()
        shutil.rmtree(server.dir, ignore_errors=True)
    return res


def _api_raw(self: Server, path: str) -> bytes:
    import urllib.request

    req = urllib.request.Request(self.url + path)
    req.add_header("Authorization", f"Bearer {self.env['DOZEN_API_TOKEN']}")
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.read()


Server.api_raw = _api_raw  # the logs route answers JSON lines, not one JSON value


# --------------------------------------------------------------------------
# the file baseline and rsyslog
# --------------------------------------------------------------------------

RSYSLOG_CONF = """\
# Written by bench/drains.py: no system inputs, no listener; one file in, one TCP receiver out.
global(workDirectory="{work}" maxMessageSize="8k")
module(load="imfile" mode="inotify")
template(name="rfc5424" type="string"
         string="<%PRI%>1 %TIMESTAMP:::date-rfc3339% %HOSTNAME% %APP-NAME% - - - %msg%")
ruleset(name="fwd") {{
  action(type="omfwd" target="127.0.0.1" port="{port}" protocol="tcp"
         TCP_Framing="octet-counted" template="rfc5424")
}}
input(type="imfile" file="{file}" tag="bench" facility="local7" severity="info" ruleset="fwd")
"""


def file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def start_producer(work: Path, out: Path, lines: int) -> subprocess.Popen:
    with open(out, "ab") as f:
        p = subprocess.Popen(
            [sys.executable, str(BENCH / "producer.py"), TAG, str(lines), str(LINE)],
            stdout=f,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    _live.append(p)
    return p


def stop(p: subprocess.Popen | None) -> None:
    if p is None:
        return
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    if p in _live:
        _live.remove(p)


def file_run(rsyslogd: str | None, work: Path, lines: int, timeout: float) -> dict:
    """The producer writes into a file; with `rsyslogd`, rsyslog forwards the file to a receiver."""
    d = Path(tempfile.mkdtemp(prefix="file-", dir=work))
    out = d / "app.log"
    out.write_bytes(b"")
    want = lines * LINE + len(MARKER) + 1
    res: dict = {"rsyslog": rsyslogd is not None}
    rx: Receiver | None = None
    rs: subprocess.Popen | None = None
    producer: subprocess.Popen | None = None
    try:
        if rsyslogd:
            rx = Receiver(lines).start()
            state = d / "rsyslog"
            state.mkdir()
            conf = d / "rsyslog.conf"
            conf.write_text(RSYSLOG_CONF.format(work=state, port=rx.port, file=out))
            errlog = open(d / "rsyslogd.out", "wb")
            rs = subprocess.Popen(
                [rsyslogd, "-n", "-f", str(conf), "-i", str(d / "rsyslogd.pid")],
                stdout=errlog,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
            errlog.close()
            _live.append(rs)
            # Ready once a line written to the file reaches the receiver (it has no `|`, so the
            # receiver's count of producer lines is not touched).
            with open(out, "ab") as f:
                f.write(b"warm-up line\n")
            deadline = time.monotonic() + 30
            while not rx.received_any():
                if rs.poll() is not None:
                    raise SystemExit(f"rsyslogd exited ({rs.returncode}): {(d / 'rsyslogd.out').read_text()[-2000:]}")
                if time.monotonic() > deadline:
                    raise SystemExit("rsyslog did not forward the warm-up line within 30 s")
                time.sleep(0.02)
            want += len(b"warm-up line\n")
            cpu0 = cpu_s(rs.pid)
        start = time.monotonic()
        producer = start_producer(d, out, lines)
        while file_size(out) < want:
            if time.monotonic() - start > timeout:
                raise SystemExit(f"the producer did not finish writing in {timeout:.0f} s")
            time.sleep(0.001)
        res["app_s"] = time.monotonic() - start
        res["producer_cpu_s"] = cpu_s(producer.pid)
        if rx is not None and rs is not None:
            done = wait_receiver(rx, lambda: True, timeout)
            res["drain_s"] = None if done is None else done - start
            res["server_cpu_s"] = cpu_s(rs.pid) - cpu0
            rx.stop()
            res["received"] = rx.check()
    finally:
        stop(producer)
        stop(rs)
        if rx is not None:
            rx.stop()
        shutil.rmtree(d, ignore_errors=True)
    return res


# --------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------

MODES = [
    ("dozen", "dozen server, no drain"),
    ("dozen+drain", "dozen server, syslog drain"),
    ("file", "a file, no forwarder"),
    ("rsyslog", "a file, rsyslog imfile -> omfwd"),
]


def summarize(runs: dict[str, list[dict]], lines: int) -> dict:
    def rate(mode: str, key: str) -> float | None:
        secs = median([r.get(key) for r in runs.get(mode, [])])
        return lines / secs if secs else None

    s: dict = {"rates": {}, "lost": {}, "duplicated": {}, "cpu": {}}
    for mode, _ in MODES:
        s["rates"][mode] = {
            "app": rate(mode, "app_s"),
            "write": rate(mode, "write_s"),
            "forwarded": rate(mode, "drain_s"),
        }
        s["cpu"][mode] = {
            "forwarder_s": median([r.get("server_cpu_s") for r in runs.get(mode, [])]),
            "producer_s": median([r.get("producer_cpu_s") for r in runs.get(mode, [])]),
            "server_faults": median([r.get("server_faults") for r in runs.get(mode, [])]),
        }
        received = [r["received"] for r in runs.get(mode, []) if "received" in r]
        if received:
            s["lost"][mode] = sum(r["lost"] for r in received)
            s["duplicated"][mode] = sum(r["duplicated"] for r in received)
            s["out_of_order"] = s.get("out_of_order", 0) + sum(r["out_of_order"] for r in received)
            s["torn"] = s.get("torn", 0) + sum(r["torn"] for r in received)

    def ratio(a, b):
        return a / b if a and b else None

    r = s["rates"]
    s["ratios"] = {
        "forwarded_dozen_over_rsyslog": ratio(r["dozen+drain"]["forwarded"], r["rsyslog"]["forwarded"]),
        "app_dozen_drain_over_no_drain": ratio(r["dozen+drain"]["app"], r["dozen"]["app"]),
        "write_dozen_drain_over_no_drain": ratio(r["dozen+drain"]["write"], r["dozen"]["write"]),
        "app_rsyslog_over_no_forwarder": ratio(r["rsyslog"]["app"], r["file"]["app"]),
    }
    return s


def fmt(v, spec=",.0f", unit=""):
    return "-" if v is None else f"{v:{spec}}{unit}"


def markdown(meta: dict, s: dict, runs: dict[str, list[dict]]) -> str:
    r, q, c = s["rates"], s["ratios"], s["cpu"]
    out = [
        f"### Drains: {meta['lines']:,} lines of {LINE} bytes, median of {meta['reps']}",
        "",
        f"{meta['date']} on {meta['machine']}; load average at start {meta['loadavg_start']}, "
        f"at end {meta['loadavg_end']}.  ",
        f"dozen {meta['versions']['dozen']}, {meta['versions']['rsyslog']}, python {meta['versions']['python']}.",
        "",
        "| path | app's lines/s (producer start -> all written) | forwarded lines/s (-> receiver has all) "
        "| lost | duplicated | forwarder CPU | producer CPU |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for mode, label in MODES:
        fwd = r[mode]["forwarded"]
        out.append(
            f"| {label} | {fmt(r[mode]['app'])} | {fmt(fwd) if mode in ('dozen+drain', 'rsyslog') else ''} "
            f"| {s['lost'].get(mode, '')} | {s['duplicated'].get(mode, '')} "
            f"| {fmt(c[mode]['forwarder_s'], '.2f', ' s') if mode != 'file' else ''} "
            f"| {fmt(c[mode]['producer_s'], '.2f', ' s')} |"
        )
    out += [
        "",
        f"- forwarded, dozen / rsyslog: **{fmt(q['forwarded_dozen_over_rsyslog'], '.2f', 'x')}**",
        f"- the app's output with a drain / without (dozen; goal at least 0.90): "
        f"**{fmt(q['app_dozen_drain_over_no_drain'], '.2f', 'x')}**",
        f"- the app's own write rate with a drain / without (dozen; from its first write until "
        f"its last returned: {fmt(r['dozen+drain']['write'])} / {fmt(r['dozen']['write'])} lines/s): "
        f"**{fmt(q['write_dozen_drain_over_no_drain'], '.2f', 'x')}**",
        f"- the server's page faults while the app printed, with a drain / without: "
        f"{fmt(c['dozen+drain']['server_faults'])} / {fmt(c['dozen']['server_faults'])}",
        f"- the app's output with rsyslog reading its file / without: "
        f"**{fmt(q['app_rsyslog_over_no_forwarder'], '.2f', 'x')}**",
        f"- out of order: {s.get('out_of_order', 0)}, torn: {s.get('torn', 0)} (all runs)",
        "",
        "All runs (lines/s; app / forwarded):",
        "",
    ]
    for mode, label in MODES:
        cells = []
        for run in runs.get(mode, []):
            app = meta["lines"] / run["app_s"] if run.get("app_s") else None
            fwd = meta["lines"] / run["drain_s"] if run.get("drain_s") else None
            cells.append(fmt(app) + (f" / {fmt(fwd)}" if "drain_s" in run else ""))
        out.append(f"- {label}: {', '.join(cells)}")
    return "\n".join(out) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dozen", default=str(ROOT / "target" / "release" / "dozen"))
    ap.add_argument("--rsyslogd", default=shutil.which("rsyslogd") or "/usr/sbin/rsyslogd")
    ap.add_argument("--lines", type=int, default=200_000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds one run may take")
    ap.add_argument("--no-rsyslog", dest="rsyslog", action="store_false", help="measure dozen alone")
    ap.add_argument("--out", default=str(RESULTS), help="directory for drains.json and drains.md")
    a = ap.parse_args()
    if not os.access(a.dozen, os.X_OK):
        ap.error(f"{a.dozen}: not built (cargo build --release -p dozen)")
    if a.rsyslog and not os.access(a.rsyslogd, os.X_OK):
        ap.error(f"{a.rsyslogd}: not found (apt-get install -y rsyslog, or --no-rsyslog)")

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_signal)
    subreaper = become_subreaper()
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "machine": f"{platform.system()} {platform.release()}, {os.cpu_count()} CPUs",
        "loadavg_start": loadavg(),
        "lines": a.lines,
        "reps": a.reps,
        "subreaper": subreaper,
        "versions": {
            "dozen": version_of([a.dozen, "--version"]) + " @ "
            + version_of(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"]),
            "rsyslog": ("rsyslogd " + version_of([a.rsyslogd, "-v"]).split(" (")[0].split(",")[0]) if a.rsyslog else "no rsyslog",
            "python": platform.python_version(),
        },
    }
    work = Path(tempfile.mkdtemp(prefix="dozen-bench-drains-"))
    runs: dict[str, list[dict]] = {m: [] for m, _ in MODES}
    code = 0
    try:
        for rep in range(a.reps):
            for mode, label in MODES:
                if mode in ("file", "rsyslog") and not a.rsyslog:
                    continue
                if mode.startswith("dozen"):
                    r = dozen_run(a.dozen, work, a.lines, mode == "dozen+drain", a.timeout)
                else:
                    r = file_run(a.rsyslogd if mode == "rsyslog" else None, work, a.lines, a.timeout)
                runs[mode].append(r)
                msg = f"rep {rep + 1} {label}: app {a.lines / r['app_s']:,.0f} lines/s"
                if "drain_s" in r:
                    fwd = f"{a.lines / r['drain_s']:,.0f} lines/s" if r["drain_s"] else "did not get every line"
                    msg += f", forwarded {fwd}, lost {r['received']['lost']}"
                log(msg)
    except (Interrupted, KeyboardInterrupt) as e:
        log(f"interrupted ({e}); stopping every process the bench started")
        code = 130
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        cleanup_all()
        shutil.rmtree(work, ignore_errors=True)
    if code:
        return code
    meta["loadavg_end"] = loadavg()
    summary = summarize(runs, a.lines)
    md = markdown(meta, summary, runs)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "drains.json").write_text(json.dumps({"meta": meta, "summary": summary, "runs": runs}, indent=2) + "\n")
    (out / "drains.md").write_text(md)
    print(md)
    lost = sum(summary["lost"].values())
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())

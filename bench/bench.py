#!/usr/bin/env python3
"""dozen benchmark: dozen vs foreman vs honcho vs a plain pipe.

Run it through bench/run, which installs the peers and builds dozen first.
This file only measures; see bench/README.md for what each number means.
"""
from __future__ import annotations

import argparse
import ctypes
import json
import os
import platform
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PRODUCER = BENCH / "producer.py"
RESULTS = BENCH / "results"
LINE_SIZE = 100
READY = b"@READY@"
PEERS = ["dozen", "foreman", "honcho", "pipe"]
PEER_LABEL = {"dozen": "dozen", "foreman": "foreman", "honcho": "honcho", "pipe": "plain pipe"}

# --------------------------------------------------------------------------
# process bookkeeping and cleanup
# --------------------------------------------------------------------------

PR_SET_CHILD_SUBREAPER = 36
_live: list[subprocess.Popen] = []  # every process the bench started itself


def become_subreaper() -> bool:
    """Orphans of anything we start get re-parented to us, not to init, so
    that cleanup can find (and reap) everything, even what a runner left."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except Exception:
        return False


def proc_table() -> dict[int, tuple[int, str]]:
    """pid -> (ppid, comm) for every process."""
    table = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                data = f.read().decode(errors="replace")
        except OSError:
            continue
        lp, rp = data.find("("), data.rfind(")")
        rest = data[rp + 2 :].split()
        if rest[0] == "Z":  # zombies hold no memory and run nothing
            continue
        table[int(name)] = (int(rest[1]), data[lp + 1 : rp])
    return table


def descendants(root: int, table: dict | None = None) -> list[int]:
    table = proc_table() if table is None else table
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    out, todo = [], [root]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    """user + system CPU seconds this process has used so far."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode(errors="replace")
    except OSError:
        return 0.0
    rest = data[data.rfind(")") + 2 :].split()
    return (int(rest[11]) + int(rest[12])) / CLK_TCK


def tree_cpu(root: int) -> tuple[float, float]:
    """(runner CPU, producers' CPU): the runner and all its helpers versus the
    producer processes below it, read while they are all still alive."""
    runner = cpu_s(root)
    producers = 0.0
    for pid in descendants(root):
        if any("producer.py" in a for a in cmdline(pid)):
            producers += cpu_s(pid)
        else:
            runner += cpu_s(pid)
    return runner, producers


def status_kb(pid: int, key: str = "VmRSS") -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def pss_kb(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def reap_orphans() -> None:
    """Reap zombies that were re-parented to us (we are a subreaper). Only
    called when no Popen of ours is waiting to be reaped."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def kill_tree(root: int, sig: int) -> None:
    for pid in [root] + descendants(root):
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def stray_processes() -> list[int]:
    """Everything still alive below the bench, except the bench's own helper
    threads (threads are not processes, so: everything)."""
    return descendants(os.getpid())


def cleanup_all() -> None:
    """Kill every process below the bench: runners, their children, orphans
    re-parented to us. SIGTERM first, then SIGKILL."""
    me = os.getpid()
    if not descendants(me):
        return
    for pid in descendants(me):
        try:
            os.kill(pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline and descendants(me):
        time.sleep(0.05)
    for pid in descendants(me):
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    for p in _live:
        try:
            p.wait(timeout=2)
        except Exception:
            pass
    _live.clear()
    time.sleep(0.05)
    reap_orphans()


class Interrupted(Exception):
    pass


def _on_signal(signum, _frame):
    raise Interrupted(signal.Signals(signum).name)


# --------------------------------------------------------------------------
# peers
# --------------------------------------------------------------------------


@dataclass
class Tools:
    dozen: str
    foreman: str
    honcho: str
    python: str


def runner_cmd(peer: str, tools: Tools, procfile: Path, formation: dict[str, int] | None) -> list[str]:
    """The command line that starts one runner on one Procfile. Colours are
    off for all, timestamps stay on (every runner's default)."""
    d = str(procfile.parent)
    if peer == "dozen":
        cmd = [tools.dozen, "start", "-f", procfile.name, "-d", d, "--no-color"]
        if formation:
            cmd += ["-m", ",".join(f"{k}={v}" for k, v in formation.items())]
    elif peer == "foreman":
        # Debian's foreman 0.87: -m/--formation is the concurrency; -c is --color.
        cmd = [tools.foreman, "start", "-f", str(procfile), "-d", d]
        if formation:
            cmd += ["-m", ",".join(f"{k}={v}" for k, v in formation.items())]
    elif peer == "honcho":
        # honcho: -c/--concurrency name=N,name=N; no timestamp switch.
        cmd = [tools.honcho, "start", "-f", str(procfile), "-d", d, "--no-colour"]
        if formation:
            cmd += ["-c", ",".join(f"{k}={v}" for k, v in formation.items())]
    else:
        raise ValueError(peer)
    return cmd


def procfile_commands(procfile: Path) -> list[tuple[str, str]]:
    out = []
    for line in procfile.read_text().splitlines():
        if ":" in line and not line.startswith("#"):
            name, cmd = line.split(":", 1)
            out.append((name.strip(), cmd.strip()))
    return out


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["NO_COLOR"] = "1"
    env.pop("PORT", None)
    return env


class Run:
    """One runner (or the plain pipe baseline) whose merged output we read
    through a pipe, counting as it streams."""

    def __init__(self, peer: str, tools: Tools, procfile: Path, formation: dict[str, int] | None = None):
        self.peer = peer
        self.procs: list[subprocess.Popen] = []
        self.t0 = time.monotonic()
        if peer == "pipe":
            # The same commands, no runner: every process writes into one pipe.
            r, w = os.pipe()
            for name, cmd in procfile_commands(procfile):
                n = (formation or {}).get(name, 1)
                for _ in range(n):
                    p = subprocess.Popen(
                        ["/bin/sh", "-c", cmd], stdout=w, stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL, cwd=procfile.parent, env=child_env(),
                        start_new_session=True,
                    )
                    self.procs.append(p)
                    _live.append(p)
            os.close(w)
            self.fd = r
            self.main = None
        else:
            cmd = runner_cmd(peer, tools, procfile, formation)
            p = subprocess.Popen(
                cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                cwd=procfile.parent, env=child_env(), start_new_session=True,
            )
            _live.append(p)
            self.procs.append(p)
            self.main = p
            self.fd = p.stdout.fileno()
        # A 1 MiB pipe for every peer alike (the default is 64 KiB), so that
        # the reader can take its time (see throughput_once) without making
        # the writer wait.
        try:
            import fcntl
            fcntl.fcntl(self.fd, 1031, 1 << 20)  # F_SETPIPE_SZ
        except OSError:
            pass
        self.eof = False
        self.tail = b""  # last bytes of output, for error messages
        self._drain: threading.Thread | None = None
        self._drain_stop = threading.Event()

    @property
    def pid(self) -> int:
        return self.main.pid if self.main else self.procs[0].pid

    def read(self, timeout: float) -> bytes | None:
        """Up to 1 MiB of output; b'' on timeout, None at EOF."""
        if self.eof:
            time.sleep(min(timeout, 0.05))
            return None
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return b""
        data = os.read(self.fd, 1 << 20)
        if not data:
            self.eof = True
            return None
        self.tail = data[-4000:] if len(data) >= 4000 else (self.tail + data)[-4000:]
        return data

    def drain_in_background(self) -> None:
        """Keep reading (and dropping) the output, so the runner never blocks
        on a full pipe while we measure its memory or stop it."""
        if self._drain is not None:
            return

        def pump():
            try:
                while not self._drain_stop.is_set() and self.read(0.1) is not None:
                    pass
            except (OSError, ValueError):
                pass

        self._drain = threading.Thread(target=pump, daemon=True)
        self._drain.start()

    def exited(self) -> bool:
        return all(p.poll() is not None for p in self.procs)

    def stop(self, timeout: float = 20.0) -> tuple[float, bool]:
        """SIGTERM to the runner (to every process for the plain pipe), then
        wait for it to exit. Returns (seconds, exited_by_itself)."""
        self.drain_in_background()
        t = time.monotonic()
        for p in self.procs:
            if p.poll() is None:
                try:
                    os.kill(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        clean = True
        for p in self.procs:
            left = max(0.0, timeout - (time.monotonic() - t))
            try:
                p.wait(timeout=left)
            except subprocess.TimeoutExpired:
                clean = False
        took = time.monotonic() - t
        if not clean:
            for p in self.procs:
                kill_tree(p.pid, signal.SIGKILL)
                p.wait()
        return took, clean

    def finish(self) -> list[int]:
        """After stop(): what the runner left running below the bench (pids),
        then kill and reap it, and close our end of the pipe."""
        time.sleep(0.2)
        left = stray_processes()
        for p in self.procs:
            if p in _live:
                _live.remove(p)
        if left:
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.1)
        reap_orphans()
        self._drain_stop.set()
        if self._drain is not None:
            self._drain.join(timeout=2)
        try:
            os.close(self.fd) if self.main is None else self.main.stdout.close()
        except OSError:
            pass
        return left


# --------------------------------------------------------------------------
# measurements
# --------------------------------------------------------------------------


def write_procfile(work: Path, name: str, lines: list[str]) -> Path:
    path = work / name
    path.write_text("".join(line + "\n" for line in lines))
    return path


def throughput_once(peer: str, tools: Tools, work: Path, nproc: int, nlines: int, timeout: float) -> dict:
    tags = [f"P{i:02d}" for i in range(1, nproc + 1)]
    procfile = write_procfile(
        work, f"Procfile.tp{nproc}",
        [f"{t.lower()}: exec {tools.python} {PRODUCER} {t} {nlines} {LINE_SIZE}" for t in tags],
    )
    total_expected = nproc * nlines
    # Counting as it streams must cost as little CPU as `cat` would: the
    # reader shares 2 cores with the runner and the producers. So the
    # stream is scanned for single bytes only (memchr speed): each producer
    # line holds exactly two "@" (its tag), each "done" line two "#", and no
    # runner prints either in its own lines. A single byte cannot be split
    # across two reads, so the running counts are exact. The chunks are kept
    # (no copy) and counted per producer after the clock has stopped.
    chunks: list[bytes] = []
    ats = hashes = 0
    cpu0 = time.process_time()
    run = Run(peer, tools, procfile)
    t_end = None
    t_all_done = None
    error = None
    deadline = run.t0 + timeout
    want_ats, want_hashes = 2 * total_expected, 2 * nproc
    while True:
        now = time.monotonic()
        if now > deadline:
            error = f"timeout after {timeout:.0f} s"
            break
        data = run.read(0.2)
        if data is None:
            if run.exited():
                error = f"runner exited early (code {run.main.returncode if run.main else '?'})"
                break
            continue
        if not data:
            if t_all_done is not None and now - t_all_done > 1.0:
                break  # every producer said done; the missing lines are lost
            continue
        chunks.append(data)
        if len(data) < 65536:
            # A slow writer (foreman, honcho) hands us a line or two per read;
            # reading each one at once would make the reader take a core's
            # worth of CPU away from that writer. 1 ms of batching costs at
            # most 1 ms of wall time.
            time.sleep(0.001)
        ats += data.count(b"@")
        if b"#" in data:
            hashes += data.count(b"#")
        if ats >= want_ats and b"\n" in data[data.rfind(b"@") :]:
            t_end = time.monotonic()  # the last tagged line is complete
            break
        if hashes >= want_hashes and t_all_done is None:
            t_all_done = time.monotonic()
    if t_end is None:
        t_end = t_all_done or time.monotonic()
    wall = t_end - run.t0
    reader_cpu = time.process_time() - cpu0
    if run.main:
        runner_cpu, producer_cpu = tree_cpu(run.pid)
    else:
        runner_cpu, producer_cpu = 0.0, sum(cpu_s(p.pid) for p in run.procs)
    stop_s, clean = run.stop()
    left = run.finish()
    # Per producer, on the output as it had arrived when the clock stopped.
    out = b"".join(chunks)
    chunks.clear()
    cut = out.rfind(b"\n") + 1
    out = out[:cut]
    counts = [out.count(b"@" + t.encode() + b"@ ") for t in tags]
    got = sum(counts)
    intact = out.count(b"x|\n")  # lines still ending with the producer's own tail
    del out
    res = {
        "peer": peer, "processes": nproc, "lines_each": nlines, "wall_s": round(wall, 4),
        "lines_per_s": round(got / wall) if wall > 0 else None,
        "received": got, "lost": total_expected - got,
        "lost_per_process": {t: nlines - c for t, c in zip(tags, counts)},
        "torn_lines": got - intact,
        "cpu_s": {"runner": round(runner_cpu, 2), "producers": round(producer_cpu, 2), "bench_reader": round(reader_cpu, 2)},
        "stop_s": round(stop_s, 3), "stopped_cleanly": clean, "left_running": len(left),
    }
    if error:
        res["error"] = error
        res["output_tail"] = run.tail.decode(errors="replace")[-800:]
    return res


def spawn_once(peer: str, tools: Tools, work: Path, n: int, timeout: float) -> dict:
    procfile = write_procfile(work, "Procfile.spawn", ["r: echo @READY@ $PORT; exec sleep 1000"])
    run = Run(peer, tools, procfile, {"r": n})
    ready, carry, error = 0, b"", None
    t_ready = None
    deadline = run.t0 + timeout
    while ready < n:
        if time.monotonic() > deadline:
            error = f"timeout after {timeout:.0f} s with {ready}/{n} ready"
            break
        data = run.read(0.2)
        if data is None:
            if run.exited():
                error = f"runner exited early with {ready}/{n} ready"
                break
            continue
        buf = carry + data
        cut = buf.rfind(b"\n") + 1
        ready += buf[:cut].count(READY)
        carry = buf[cut:]
    if ready >= n:
        t_ready = time.monotonic() - run.t0
    run.drain_in_background()
    time.sleep(0.5)  # let the last "started" bookkeeping settle before stopping
    procs_before = len(descendants(run.pid)) if run.main else n
    stop_s, clean = run.stop()
    left = run.finish()
    res = {
        "peer": peer, "processes": n, "ready": ready,
        "spawn_s": round(t_ready, 3) if t_ready is not None else None,
        "stop_s": round(stop_s, 3), "stopped_by_itself": clean,
        "processes_below_runner": procs_before, "left_running": len(left),
    }
    if error:
        res["error"] = error
        res["output_tail"] = run.tail.decode(errors="replace")[-800:]
    return res


def is_workload(pid: int) -> bool:
    argv = cmdline(pid)
    return argv == ["sleep", "1000"] or (len(argv) >= 1 and argv[-1] == "sleep 1000")


def memory_once(peer: str, tools: Tools, work: Path, n: int, timeout: float) -> dict:
    procfile = write_procfile(work, "Procfile.mem", ["s: sleep 1000"])
    run = Run(peer, tools, procfile, {"s": n})
    run.drain_in_background()
    deadline = run.t0 + timeout
    error = None
    while True:
        table = proc_table()
        sleeps = [p for p in descendants(run.pid, table) if table[p][1] == "sleep"]
        if len(sleeps) >= n:
            break
        if run.exited():
            error = "runner exited early"
            break
        if time.monotonic() > deadline:
            error = f"timeout with {len(sleeps)}/{n} up"
            break
        time.sleep(0.05)
    up_s = time.monotonic() - run.t0
    time.sleep(1.0)  # all up: let the runner settle into its idle state
    table = proc_table()
    below = descendants(run.pid, table)
    helpers = [p for p in below if not is_workload(p)]
    # CPU the runner (and its helpers) use while every process just sleeps.
    idle_window = 3.0
    c0 = cpu_s(run.pid) + sum(cpu_s(p) for p in helpers)
    time.sleep(idle_window)
    idle_cpu_pct = 100 * (cpu_s(run.pid) + sum(cpu_s(p) for p in helpers) - c0) / idle_window
    guardian = [p for p in helpers if any("dozen-guardian" in a for a in cmdline(p))]
    rss = status_kb(run.pid)
    pss = pss_kb(run.pid)
    helpers_rss = sum(status_kb(p) or 0 for p in helpers)
    helpers_pss = sum(pss_kb(p) or 0 for p in helpers)
    wrappers = [p for p in below if is_workload(p) and table[p][1] != "sleep"]
    stop_s, clean = run.stop()
    left = run.finish()
    res = {
        "peer": peer, "processes": n, "up_s": round(up_s, 3),
        "runner_rss_kb": rss, "runner_pss_kb": pss,
        "helper_processes": len(helpers), "guardian_processes": len(guardian),
        "helpers_rss_kb": helpers_rss, "with_helpers_rss_kb": (rss or 0) + helpers_rss,
        "with_helpers_pss_kb": (pss or 0) + helpers_pss if pss is not None else None,
        "shell_wrappers": len(wrappers),
        "idle_cpu_pct": round(idle_cpu_pct, 1),
        "stop_s": round(stop_s, 3), "left_running": len(left),
    }
    if error:
        res["error"] = error
    return res


# --------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def ratio(a, b):
    return a / b if a is not None and b else None


def fmt_int(v):
    return "n/a" if v is None else f"{v:,.0f}"


def fmt_x(v):
    return "n/a" if v is None else f"{v:.2f}x"


def fmt_s(v):
    return "n/a" if v is None else f"{v:.2f} s"


def fmt_mb(kb):
    return "n/a" if kb is None else f"{kb / 1024:.1f} MB"


def goal_kb(n: int) -> int:
    return 5 * 1024 + 100 * n


def summarize(results: dict) -> dict:
    summary = {"throughput": {}, "spawn": {}, "memory": {}, "verdicts": []}
    for key, runs in results["throughput"].items():
        row = {}
        for peer in PEERS:
            rs = [r for r in runs if r["peer"] == peer]
            if not rs:
                continue
            row[peer] = {
                "median_lines_per_s": median([r["lines_per_s"] for r in rs if "error" not in r]),
                "all_lines_per_s": [r["lines_per_s"] for r in rs],
                "lost": sum(r["lost"] for r in rs),
                "torn": sum(r["torn_lines"] for r in rs),
                "errors": [r["error"] for r in rs if "error" in r],
                "median_cpu_s": {k: median([r["cpu_s"][k] for r in rs]) for k in ("runner", "producers", "bench_reader")},
            }
        d = row.get("dozen", {}).get("median_lines_per_s")
        for peer in ("foreman", "honcho", "pipe"):
            if peer in row:
                row[f"dozen/{peer}"] = ratio(d, row[peer]["median_lines_per_s"])
        summary["throughput"][key] = row
    for key, runs in results["spawn"].items():
        summary["spawn"][key] = {r["peer"]: r for r in runs}
    for key, runs in results["memory"].items():
        summary["memory"][key] = {r["peer"]: r for r in runs}

    v = summary["verdicts"]
    for key, row in summary["throughput"].items():
        if "dozen" not in row:
            continue
        if "dozen/foreman" in row and row["dozen/foreman"] is not None:
            v.append((f"throughput {key}: >= 10x foreman", row["dozen/foreman"] >= 10, fmt_x(row["dozen/foreman"])))
        if "dozen/pipe" in row and row["dozen/pipe"] is not None:
            v.append((f"throughput {key}: >= 0.5x plain pipe", row["dozen/pipe"] >= 0.5, fmt_x(row["dozen/pipe"])))
        lost = row["dozen"]["lost"]
        v.append((f"throughput {key}: zero lines lost (all repetitions)", lost == 0, f"{lost} lost"))
    for key, row in summary["memory"].items():
        r = row.get("dozen")
        if not r or r.get("runner_rss_kb") is None:
            continue
        n = r["processes"]
        g = goal_kb(n)
        v.append((f"memory {n} processes: dozen alone <= {fmt_mb(g)}", r["runner_rss_kb"] <= g, fmt_mb(r["runner_rss_kb"])))
        v.append((f"memory {n} processes: dozen + guardian <= {fmt_mb(g)}", r["with_helpers_rss_kb"] <= g, fmt_mb(r["with_helpers_rss_kb"])))
    return summary


def markdown(meta: dict, summary: dict) -> str:
    out = []
    w = out.append
    w(f"# dozen benchmark results ({meta['mode']})\n")
    w(f"{meta['date']} on {meta['machine']}; load average at start {meta['loadavg_start']}, at end {meta['loadavg_end']}.  ")
    w(f"dozen {meta['versions']['dozen']}, foreman {meta['versions']['foreman']}, honcho {meta['versions']['honcho']}, "
      f"producer python {meta['versions']['python']}.\n")
    w(f"Throughput: {meta['lines']:,} lines of {LINE_SIZE} bytes per process, median of {meta['reps']} "
      f"run(s); lines/s = all lines / time from runner start until the bench had read the last one. "
      f"Producers print their lines then sleep until killed (same for every peer); the bench stops the runner "
      f"with SIGTERM after counting. Timestamps on, colours off.\n")
    if summary["throughput"]:
        throughput_md(w, summary)
    if summary["spawn"]:
        spawn_md(w, summary)
    if summary["memory"]:
        memory_md(w, summary)
    if summary["verdicts"]:
        w("## Goals\n")
    for name, ok, value in summary["verdicts"]:
        w(f"- {'PASS' if ok else 'FAIL'}: {name} ({value})")
    w("")
    return "\n".join(out)


def throughput_md(w, summary: dict) -> None:
    w("## Log throughput (lines/s, higher is better)\n")
    w("| processes | dozen | foreman | honcho | plain pipe | dozen/foreman | dozen/honcho | dozen/plain pipe | lost lines (dozen / foreman / honcho / pipe) |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for key, row in summary["throughput"].items():
        cells = [fmt_int(row.get(p, {}).get("median_lines_per_s")) for p in PEERS]
        ratios = [fmt_x(row.get(f"dozen/{p}")) for p in ("foreman", "honcho", "pipe")]
        lost = " / ".join(str(row[p]["lost"]) if p in row else "n/a" for p in PEERS)
        w(f"| {key} | " + " | ".join(cells + ratios) + f" | {lost} |")
    w("")
    w("CPU seconds used during a run (median; runner = the runner and its helper processes, without the producers):\n")
    w("| processes | dozen | foreman | honcho | plain pipe | producers (in the dozen run) | bench reader (in the dozen run) |")
    w("|---|---:|---:|---:|---:|---:|---:|")
    for key, row in summary["throughput"].items():
        cells = [f"{row[p]['median_cpu_s']['runner']:.2f} s" if p in row else "n/a" for p in PEERS]
        d = row.get("dozen", {}).get("median_cpu_s", {})
        extra = [f"{d['producers']:.2f} s" if d else "n/a", f"{d['bench_reader']:.2f} s" if d else "n/a"]
        w(f"| {key} | " + " | ".join(cells + extra) + " |")
    w("")
    w("All runs (lines/s):\n")
    for key, row in summary["throughput"].items():
        parts = [f"{PEER_LABEL[p]} {', '.join(fmt_int(x) for x in row[p]['all_lines_per_s'])}" for p in PEERS if p in row]
        w(f"- {key}: " + "; ".join(parts))
        for p in PEERS:
            if p in row and (row[p]["errors"] or row[p]["torn"]):
                w(f"  - {PEER_LABEL[p]}: errors {row[p]['errors']}, torn lines {row[p]['torn']}")
    w("")


def spawn_md(w, summary: dict) -> None:
    w("## Spawn and stop\n")
    w("| | dozen | foreman | honcho | plain (no runner) |")
    w("|---|---:|---:|---:|---:|")
    for key, row in summary["spawn"].items():
        w(f"| {key}: start until all printed ready | " + " | ".join(fmt_s(row.get(p, {}).get("spawn_s")) for p in PEERS) + " |")
        w(f"| {key}: SIGTERM until runner exited | " + " | ".join(fmt_s(row.get(p, {}).get("stop_s")) for p in PEERS) + " |")
        w(f"| {key}: processes left running after exit | " + " | ".join(str(row.get(p, {}).get("left_running", "n/a")) for p in PEERS) + " |")
    for key, row in summary["spawn"].items():
        for p, r in row.items():
            if "error" in r:
                w(f"\n- {key} {PEER_LABEL[p]}: {r['error']}")
    w("")


def memory_md(w, summary: dict) -> None:
    w("## Supervisor memory (VmRSS once all `sleep 1000` processes are up)\n")
    w("| idle processes | goal | dozen | dozen + guardian | foreman | honcho | honcho + its helper processes |")
    w("|---|---:|---:|---:|---:|---:|---:|")
    for key, row in summary["memory"].items():
        n = next(iter(row.values()))["processes"]
        d, f, h = row.get("dozen", {}), row.get("foreman", {}), row.get("honcho", {})
        w(f"| {n} | <= {fmt_mb(goal_kb(n))} | {fmt_mb(d.get('runner_rss_kb'))} | {fmt_mb(d.get('with_helpers_rss_kb'))} "
          f"| {fmt_mb(f.get('runner_rss_kb'))} | {fmt_mb(h.get('runner_rss_kb'))} | {fmt_mb(h.get('with_helpers_rss_kb'))} "
          f"({h.get('helper_processes', 'n/a')} helpers) |")
    w("")
    w("CPU used while all processes sleep (runner + helpers, % of one core, over 3 s starting 1 s after all were up): " + "; ".join(
        f"{n_key}: " + ", ".join(f"{PEER_LABEL[p]} {r.get('idle_cpu_pct', 'n/a')}%" for p, r in row.items())
        for n_key, row in summary["memory"].items()) + ".")
    w("")
    w("PSS (shared pages split between processes), same moments: " + "; ".join(
        f"{n_key}: " + ", ".join(
            f"{PEER_LABEL[p]} {fmt_mb(r.get('runner_pss_kb'))}"
            + (f" (+helpers {fmt_mb(r.get('with_helpers_pss_kb'))})" if r.get("helper_processes") else "")
            for p, r in row.items() if p != "pipe")
        for n_key, row in summary["memory"].items()) + ".")
    w("")
    w("Shell wrappers kept between the runner and `sleep` (a `/bin/sh -c` that did not exec): " + "; ".join(
        f"{n_key}: " + ", ".join(f"{PEER_LABEL[p]} {r['shell_wrappers']}" for p, r in row.items())
        for n_key, row in summary["memory"].items()) + ".")
    w("")


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------


def version_of(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        text = (out.stdout.strip() or out.stderr.strip()).splitlines()[0]
        name = os.path.basename(cmd[0])
        return text[len(name) + 1 :] if text.startswith(name + " ") else text
    except Exception as e:  # noqa: BLE001
        return f"unknown ({e})"


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="smoke test: 20k lines, 1 repetition, 20 processes for spawn/memory")
    ap.add_argument("--lines", type=int, help="lines per producer (default 200000; 20000 with --quick)")
    ap.add_argument("--reps", type=int, help="throughput repetitions (default 3; 1 with --quick)")
    ap.add_argument("--peers", default=",".join(PEERS), help="comma list of dozen,foreman,honcho,pipe")
    ap.add_argument("--only", default="throughput,spawn,memory", help="comma list of throughput,spawn,memory")
    ap.add_argument("--dozen", default=str(ROOT / "target" / "release" / "dozen"))
    ap.add_argument("--foreman", default=shutil.which("foreman") or "/usr/bin/foreman")
    ap.add_argument("--honcho", default=str(BENCH / ".venv" / "bin" / "honcho"))
    ap.add_argument("--out", default=str(RESULTS), help="directory for latest.json and latest.md")
    args = ap.parse_args()

    lines = args.lines or (20_000 if args.quick else 200_000)
    reps = args.reps or (1 if args.quick else 3)
    many = 20 if args.quick else 100
    peers = [p.strip() for p in args.peers.split(",") if p.strip()]
    only = {s.strip() for s in args.only.split(",")}
    for p in peers:
        if p not in PEERS:
            ap.error(f"unknown peer {p}")
    tools = Tools(dozen=args.dozen, foreman=args.foreman, honcho=args.honcho, python=sys.executable)
    for p in peers:
        path = getattr(tools, p, None)
        if p != "pipe" and not (path and os.access(path, os.X_OK)):
            ap.error(f"{p} not found at {path}; run bench/run (it installs the peers)")

    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, _on_signal)
    subreaper = become_subreaper()

    meta = {
        "mode": "quick" if args.quick else "full",
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "machine": f"{platform.system()} {platform.release()}, {os.cpu_count()} CPUs",
        "loadavg_start": loadavg(),
        "lines": lines, "line_size": LINE_SIZE, "reps": reps, "peers": peers,
        "method": "producers print then sleep; bench sends SIGTERM to the runner once every line is counted",
        "subreaper": subreaper,
        "versions": {
            "dozen": version_of([tools.dozen, "--version"]) + " built from the work tree at " + version_of(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
            + (" + local changes" if subprocess.run(["git", "-C", str(ROOT), "diff", "--quiet", "HEAD", "--", "crates", "Cargo.toml", "Cargo.lock"]).returncode else ""),
            "foreman": version_of(["dpkg-query", "-W", "-f", "${Version}", "ruby-foreman"]),
            "honcho": version_of([tools.honcho, "--version"]),
            "python": platform.python_version(),
        },
    }
    results: dict = {"throughput": {}, "spawn": {}, "memory": {}}
    work = Path(tempfile.mkdtemp(prefix="dozen-bench-"))

    def log(msg: str) -> None:
        print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

    try:
        if "throughput" in only:
            for nproc in (2, 8):
                key = f"{nproc} x {lines // 1000}k lines"
                results["throughput"][key] = []
                for rep in range(reps):
                    for peer in peers:  # interleaved, so drift in machine load hits every peer alike
                        timeout = max(60.0, nproc * lines / 5_000)
                        r = throughput_once(peer, tools, work, nproc, lines, timeout)
                        r["rep"] = rep + 1
                        results["throughput"][key].append(r)
                        log(f"throughput {key} rep {rep + 1} {peer}: {fmt_int(r['lines_per_s'])} lines/s, "
                            f"lost {r['lost']}, stop {r['stop_s']} s" + (f", ERROR {r['error']}" if "error" in r else ""))
        if "spawn" in only:
            key = f"{many} processes"
            results["spawn"][key] = []
            for peer in peers:
                r = spawn_once(peer, tools, work, many, 120.0)
                results["spawn"][key].append(r)
                log(f"spawn {key} {peer}: ready in {r['spawn_s']} s, stop {r['stop_s']} s, left {r['left_running']}"
                    + (f", ERROR {r['error']}" if "error" in r else ""))
        if "memory" in only:
            for n in (3, many):
                key = f"{n} processes"
                results["memory"][key] = []
                for peer in peers:
                    if peer == "pipe":
                        continue
                    r = memory_once(peer, tools, work, n, 120.0)
                    results["memory"][key].append(r)
                    log(f"memory {key} {peer}: runner {fmt_mb(r['runner_rss_kb'])}, with helpers "
                        f"{fmt_mb(r['with_helpers_rss_kb'])} ({r['helper_processes']} helpers)"
                        + (f", ERROR {r['error']}" if "error" in r else ""))
    except (Interrupted, KeyboardInterrupt) as e:
        log(f"interrupted ({e}); stopping every process the bench started")
        cleanup_all()
        shutil.rmtree(work, ignore_errors=True)
        return 130
    finally:
        cleanup_all()
    shutil.rmtree(work, ignore_errors=True)

    meta["loadavg_end"] = loadavg()
    summary = summarize(results)
    md = markdown(meta, summary)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    doc = {"meta": meta, "summary": summary, "runs": results}
    (out / "latest.json").write_text(json.dumps(doc, indent=2, default=str) + "\n")
    (out / "latest.md").write_text(md)
    print(md)
    log(f"wrote {out / 'latest.json'} and {out / 'latest.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

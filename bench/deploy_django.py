"""Deploy time of a real Django app on `dozen server`, with an empty build cache and a warm one.

The app is the Django fixture of the CLI tests (crates/cli/tests/fixtures/django-notes: Django,
gunicorn, whitenoise, dj-database-url and psycopg from PyPI, pinned; `release: python manage.py
migrate` against PostgreSQL). bench/server.py calls `bench_django` with a running server; this
module only deploys and times.

- cold: the app's first deploy on a fresh server: its build cache is empty, so pip downloads
  every package from PyPI (the network is part of the figure, as it is for a user);
- warm: a second deploy of the same app after a one-line change to its code, with the cache the
  first build left (pip's download cache and whatever the Python build step keeps there).

Each figure runs from the start of `dozen deploy` until the new release's page answers through
the router (the release phase's migration and the boot of gunicorn included).
"""
from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "crates" / "cli" / "tests" / "fixtures" / "django-notes"
APP = "notes"
PAGE = re.compile(rb"^\d+ notes in postgresql\n$")

# Lines of the deploy stream whose arrival marks a phase (as in bench/server.py).
MARKS = [
    ("build_started", re.compile(r"build \S+ started")),
    ("build_exited", re.compile(r"build exited with code")),
    ("slug", re.compile(r"\bslug [0-9a-f]{6,}")),
    ("live", re.compile(r"\bv\d+ is live")),
]


def page(router_port: int) -> bytes | None:
    req = urllib.request.Request(f"http://127.0.0.1:{router_port}/", headers={"Host": f"{APP}.localhost"})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.read() if r.status == 200 else None
    except (OSError, urllib.error.URLError):
        return None


def deploy(dozen: str, cli_env: dict, src: Path, router_port: int, timeout: float) -> dict:
    """One `dozen deploy`, timed until the page answers through the router after the command
    returned (it returns once the router has switched to the new release)."""
    lines: list[tuple[float, str]] = []
    t0 = time.monotonic()
    p = subprocess.Popen([dozen, "deploy", "-a", APP, "-d", str(src)], env=cli_env, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)

    def read() -> None:
        assert p.stdout is not None
        for raw in p.stdout:
            lines.append((time.monotonic() - t0, raw.decode(errors="replace").rstrip("\n")))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    res: dict = {}
    try:
        rc = p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        rc = p.wait()
        res["error"] = f"dozen deploy did not return within {timeout:.0f} s"
    t_ret = time.monotonic() - t0
    reader.join(timeout=5)
    text = [l for _, l in lines]
    if rc != 0 and "error" not in res:
        res["error"] = f"dozen deploy exited {rc}: " + " | ".join(text[-5:])
    answered = None
    if "error" not in res:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            body = page(router_port)
            if body is not None and PAGE.match(body):
                answered = time.monotonic() - t0
                res["page"] = body.decode().strip()
                break
            time.sleep(0.05)
        if answered is None:
            res["error"] = "the new release's page did not answer through the router within 60 s of the deploy"
    marks = {key: next((round(t, 3) for t, l in lines if pat.search(l)), None) for key, pat in MARKS}

    def span(a, b):
        return None if a is None or b is None else round(b - a, 3)

    res.update({
        "deploy_cmd_s": round(t_ret, 3),
        "total_s": None if answered is None else round(answered, 3),
        "upload_s": marks["build_started"],
        "build_s": span(marks["build_started"], marks["build_exited"]),
        "slug_s": span(marks["build_exited"], marks["slug"]),
        "release_rollout_s": span(marks["slug"], t_ret),
        "build_steps": [l.split("| ", 1)[-1] for l in text if "step " in l and "/" in l][:8],
        "output_tail": text[-3:],
    })
    return res


def bench_django(server, args, psql: Callable[[str, str], None], pg_url_for: Callable[[str, str], str],
                 log: Callable[[str], None], router_port: int) -> dict:
    """Cold and warm deploys of the Django fixture on `server` (a started bench Server)."""
    out: dict = {"app": str(FIXTURE.relative_to(ROOT)), "deploys": {}}
    db = f"dozen_bench_{os.getpid()}_app_{secrets.token_hex(3)}"
    work = Path(tempfile.mkdtemp(prefix="django-", dir=server.dir))
    src = work / "src"
    shutil.copytree(FIXTURE, src)
    try:
        psql(args.pg_admin_url, f'CREATE DATABASE "{db}"')
        server.cli("apps:create", APP)
        server.cli("config:set", "-a", APP, f"DATABASE_URL={pg_url_for(args.pg_admin_url, db)}")
        for n, label in enumerate(("cold", "warm")):
            if n:
                # A code change, so that the warm deploy is a real new build of new source.
                with open(src / "notes" / "views.py", "a") as f:
                    f.write(f"\n# deploy {n + 1}\n")
            r = deploy(server.dozen, server.cli_env, src, router_port, args.deploy_timeout)
            out["deploys"][label] = r
            log(f"Django {label} deploy: total {r['total_s']} s (command {r['deploy_cmd_s']} s: upload {r['upload_s']}, "
                f"build {r['build_s']}, slug {r['slug_s']}, release+rollout {r['release_rollout_s']})"
                + (f"; ERROR {r['error']}" if "error" in r else ""))
            if "error" in r:
                break
    except Exception as e:  # noqa: BLE001 -- reported, and the rest of the bench goes on
        out["error"] = str(e)
        log(f"Django: ERROR {e}")
    finally:
        try:
            server.cli("apps:destroy", "-a", APP, "--confirm", APP)
        except Exception:  # noqa: BLE001
            pass
        try:
            psql(args.pg_admin_url, f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        except Exception as e:  # noqa: BLE001
            log(f"could not drop the app's scratch database {db}: {e}")
        shutil.rmtree(work, ignore_errors=True)
    return out


def markdown(r: dict) -> list[str]:
    """The report's section for these deploys."""
    w: list[str] = []
    w.append(f"## Deploy time of a Django app ({r['app']}; SQLite store)\n")
    w.append("| | cold (empty build cache) | warm (second deploy, cache kept) |")
    w.append("|---|---:|---:|")
    ds = r.get("deploys", {})

    def cell(label: str, key: str) -> str:
        v = ds.get(label, {}).get(key)
        return "n/a" if v is None else f"{v:.2f} s"

    for title, key in [("**total: deploy started -> the new page answers through the router**", "total_s"),
                       ("`dozen deploy` returned", "deploy_cmd_s"),
                       ("pack + upload", "upload_s"),
                       ("build (venv, pip install, collectstatic)", "build_s"),
                       ("slug (pack + digest)", "slug_s"),
                       ("release phase (migrate) + rollout", "release_rollout_s")]:
        w.append(f"| {title} | {cell('cold', key)} | {cell('warm', key)} |")
    w.append("")
    steps = ds.get("cold", {}).get("build_steps")
    if steps:
        w.append("Build steps: " + "; ".join(f"`{s}`" for s in steps) + ".")
        w.append("")
    for label, d in ds.items():
        if "error" in d:
            w.append(f"**Django {label} deploy error:** {d['error']}\n")
    if r.get("error"):
        w.append(f"**Django deploys stopped early:** {r['error']}\n")
    return w

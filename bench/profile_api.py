"""Where one worker's time goes: v2 endpoints through Django's WSGI handler, under cProfile.

    .venv/bin/python bench/profile_api.py [--endpoint post_job] [--requests 2000]
        [--top 25] [--sort tottime] [--nosync] [--ledger-rows N] [--dump FILE]

Sets up a scratch install as bench/api_bench.py does (SQLite, the local provider,
DEBUG off), then, in a child process with that install's settings, calls the WSGI
application the workers serve once per request, as gunicorn's sync worker would,
with no socket in between. Prints the CPU time per request and the profile's top
lines. `--nosync` replaces os.fsync and os.fdatasync by no-ops (the disk's wait is then
left out, which is what the CPU cost of a post is measured without). `--ledger-rows N`
first writes N finished jobs' rows into the ledger (as bench/grow_bench.py's full run
has), to show what a large ledger costs each request.
`--endpoint floor` profiles bench/floor_urls.py's constant endpoint under the same
settings, what the other endpoints are compared with.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from grow_bench import seed_ledger  # noqa: E402
from harness import PROVIDER, PYTHON, ROOT, Scratch, say  # noqa: E402

from storage_providers.names import new_object_id  # noqa: E402

BACKEND = f"{PROVIDER}_fermions_simulator"
JOB = {"experiment_0": {"instructions": [["load", [0], []], ["measure", [0], []]],
                        "num_wires": 1, "shots": 3, "wire_order": "interleaved"}}  # fmt: skip
ENDPOINTS = (
    "floor", "get_config", "get_backend_status", "backends", "get_job_status", "get_job_result",
    "post_job",
)  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--endpoint", choices=ENDPOINTS, default="post_job")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--sort", default="tottime", choices=("tottime", "cumulative"))
    parser.add_argument("--nosync", action="store_true")
    parser.add_argument("--ledger-rows", type=int, default=0, metavar="N")
    parser.add_argument("--dump", metavar="FILE", help="also write the raw profile (pstats) here")
    parser.add_argument("--inner", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.inner:
        return profile(options, json.loads(options.inner))
    with Scratch("profile-") as scratch:
        token = scratch.install()
        say(f"scratch install in {scratch.dir}")
        if options.ledger_rows:
            rows = [new_object_id() for _ in range(options.ledger_rows)]
            seed_ledger(scratch.dir / "db.sqlite3", PROVIDER, rows, [])
            say(f"{options.ledger_rows} finished jobs' rows written into the ledger")
        inner = json.dumps({"token": token})
        args = list(sys.argv[1:])
        done = subprocess.run(
            [PYTHON, __file__, *args, "--inner", inner], cwd=ROOT, env=scratch.env, check=False
        )
        return done.returncode


def environ(method: str, path: str, query: str = "", body: bytes = b"") -> dict[str, Any]:
    return {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "127.0.0.1:8000",
        "REMOTE_ADDR": "127.0.0.1",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "wsgi.version": (1, 0),
    }


def call(app: Callable, env: dict[str, Any]) -> tuple[str, bytes]:
    answer: list[str] = []

    def start_response(status: str, headers: list, exc_info: Any = None) -> None:
        answer.append(status)

    body = b"".join(app(env, start_response))
    return answer[0], body


def profile(options: argparse.Namespace, inner: dict[str, str]) -> int:
    floor = options.endpoint == "floor"  # bench/floor_urls.py, under qlued's settings
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.floor_settings" if floor else "qlued.settings"
    if options.nosync:
        os.fsync = os.fdatasync = lambda fd: None  # type: ignore[assignment]
    from qlued.wsgi import application as app

    if floor:
        return measure(app, lambda: environ("GET", "/api/v2/floor"), options)
    token = inner["token"]
    post = json.dumps({"job": json.dumps(JOB), "token": token}).encode()
    status, body = call(app, environ("POST", f"/api/v2/{BACKEND}/post_job", body=post))
    job_id = json.loads(body)["job_id"]

    def request() -> dict[str, Any]:
        name = options.endpoint
        if name == "post_job":
            return environ("POST", f"/api/v2/{BACKEND}/post_job", body=post)
        if name == "backends":
            return environ("GET", "/api/v2/backends")
        if name in ("get_job_status", "get_job_result"):
            return environ("GET", f"/api/v2/{BACKEND}/{name}", f"job_id={job_id}&token={token}")
        return environ("GET", f"/api/v2/{BACKEND}/{name}")

    return measure(app, request, options)


def measure(
    app: Callable, request: Callable[[], dict[str, Any]], options: argparse.Namespace
) -> int:
    """CPU per request unprofiled, then under cProfile, and the profile's top lines."""
    for _ in range(50):  # warm: caches, lazy imports, the database connection
        status, body = call(app, request())
    say(f"{options.endpoint}: {status} {body[:120]!r}")
    times0, wall0 = os.times(), time.perf_counter()
    for _ in range(options.requests):
        call(app, request())
    times, wall = os.times(), time.perf_counter() - wall0
    user, system = (
        1000 * (b - a) / options.requests for a, b in zip(times0[:2], times[:2], strict=True)
    )
    say(
        f"{options.requests} requests unprofiled: {user + system:.3f} ms CPU "
        f"({user:.3f} user, {system:.3f} system), {1000 * wall / options.requests:.2f} ms wall each"
    )
    profiler = cProfile.Profile()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for _ in range(options.requests):
        envs = request()
        profiler.enable()
        call(app, envs)
        profiler.disable()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    say(
        f"{options.requests} requests: {1000 * cpu / options.requests:.2f} ms CPU, "
        f"{1000 * wall / options.requests:.2f} ms wall each (profiled, so slower than served)"
    )
    if options.dump:
        profiler.dump_stats(options.dump)
    stats = pstats.Stats(profiler, stream=sys.stdout)
    stats.strip_dirs().sort_stats(options.sort).print_stats(options.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())

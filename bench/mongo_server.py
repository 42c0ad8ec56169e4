"""The benchmark's own MongoDB-wire server (secantusdb), in a process of its own.

    python -m bench.mongo_server DATA_DIR

api_bench.py starts it in its scratch folder and stops it with SIGTERM. It is the test
suite's server (tests/mongo.py: a SCRAM user, auth required), so the benchmark's
provider logs in the way a lab's does. It prints one line, `ready <provider login as
JSON>`, then serves until SIGTERM, SIGINT or SIGHUP. secantusdb is GPL-2.0 and a dev
dependency only: nothing of the service imports this module.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from tests.mongo import MongoServer


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m bench.mongo_server DATA_DIR", file=sys.stderr)
        return 2
    stop = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, handler)
    folder = Path(argv[0])
    folder.mkdir(parents=True, exist_ok=True)
    server = MongoServer(folder)
    try:
        print("ready " + json.dumps(server.login()), flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

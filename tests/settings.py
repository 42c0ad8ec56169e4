"""Settings for the test suites: the real settings, with a test key and DEBUG on."""

import os
import tempfile
from pathlib import Path

os.environ.setdefault("DEBUG", "true")
os.environ.setdefault("SECRET_KEY", "test-only-secret-key")

from qlued.settings import *  # noqa: E402,F403

# A file, not SQLite's shared in-memory database: that one fails concurrent writers at
# once ("table is locked") where the deployed file waits for them, and tests run
# concurrent posts (tests/test_post_job_*.py).
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    DATABASES["default"]["TEST"] = {  # noqa: F405
        "NAME": str(Path(tempfile.gettempdir()) / f"qlued-test-{os.getpid()}.sqlite3")
    }

# Request counters of the test run, kept out of the data folder of a developer's server.
PROMETHEUS_MULTIPROC_DIR = Path(tempfile.gettempdir()) / f"qlued-test-metrics-{os.getpid()}"

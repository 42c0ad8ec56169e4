"""Settings for the test suites: the real settings, with a test key and DEBUG on."""

import os

os.environ.setdefault("DEBUG", "true")
os.environ.setdefault("SECRET_KEY", "test-only-secret-key")

from qlued.settings import *  # noqa: E402,F403

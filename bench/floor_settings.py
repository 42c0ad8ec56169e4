"""The framework floor: qlued's own settings and middleware, with one constant endpoint."""

from qlued.settings import *  # noqa: F403 - the point is to change nothing else

ROOT_URLCONF = "bench.floor_urls"

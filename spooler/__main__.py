"""`python -m spooler --name N --type local --login JSON [--backends …]` (SPEC §9)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import NoReturn

from storage_providers import KINDS, LoginError, StorageError, TypeUnavailable, build_provider

from .cli import UsageError, add_spooler_options, configure_logging, serve


class _Parser(argparse.ArgumentParser):
    """Bad flags answer like every other bad input: one line, exit status 1."""

    def error(self, message: str) -> NoReturn:
        sys.exit(_fail(message))


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="python -m spooler", description=__doc__)
    parser.add_argument("--name", required=True, help="storage provider name (e.g. alqor)")
    parser.add_argument("--type", required=True, choices=list(KINDS), dest="storage_type")
    parser.add_argument("--login", required=True, help="the provider's login as JSON")
    add_spooler_options(parser)
    options = parser.parse_args(argv)
    configure_logging()
    try:
        login = json.loads(options.login)
        provider = build_provider(options.storage_type, options.name, login)
        serve(provider, options)
    except json.JSONDecodeError:
        return _fail("--login is not valid JSON.")
    except TypeUnavailable:
        return _fail(f"Storage type {options.storage_type} is not available in this build.")
    except (LoginError, UsageError, StorageError, ValueError) as exc:
        return _fail(str(exc))
    return 0


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())

"""Keep tokens out of every log line (SPEC §4: request logs never contain a token)."""

from __future__ import annotations

import logging
import re

_TOKEN_RE = re.compile(r"((?:^|[?&\s\"'{,])(?:token)[\"']?\s*[=:]\s*[\"']?)([^&\s\"',}]+)", re.I)
_BEARER_RE = re.compile(r"(Bearer\s+)(\S+)", re.I)


def redact(text: str) -> str:
    """Replace token values (query `token=`, JSON `"token": …`, Bearer headers) by `***`."""
    return _BEARER_RE.sub(r"\1***", _TOKEN_RE.sub(r"\1***", text))


class RedactTokens(logging.Filter):
    """A logging filter that redacts the formatted message before any handler sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True

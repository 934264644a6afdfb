"""Masking of secrets in text that leaves the process: logs, MLflow params, error messages.

Database and tracking URLs may carry a password (`postgresql://user:secret@host/db`, or
`?password=secret` in the query string). Everything that prints or logs configuration passes it
through `mask_secrets`, so the password never lands in a terminal, a log file or the MLflow store.
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import quote, quote_plus

MASK = "***"
# scheme://user:password@ -> scheme://user:***@ (the user name is kept: it helps debugging).
_USERINFO = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^:/@\s]*):(?P<secret>[^@\s]*)@")
# password=... / pwd=... / token=... in a query string or key=value text.
_QUERY = re.compile(
    r"(?P<head>\b(?:password|passwd|pwd|secret|token|api_key|access_key)=)(?P<secret>[^&\s;,'\"]+)",
    re.IGNORECASE,
)


def mask_secrets(text: str, *secrets: str | None) -> str:
    """`text` with URL passwords, password-like query parameters and every given secret (as
    written, and URL-quoted as it appears inside a URL) replaced by ***."""
    if not text:
        return text
    text = _USERINFO.sub(lambda m: f"{m['head']}:{MASK}@", text)
    text = _QUERY.sub(lambda m: f"{m['head']}{MASK}", text)
    for secret in secrets:
        if secret:
            for form in {secret, quote_plus(secret), quote(secret, safe="")}:
                text = text.replace(form, MASK)
    return text


def safe_url(url: object) -> str:
    """`url` (text or sqlalchemy URL) as text with any password shown as ***."""
    from sqlalchemy.engine import URL, make_url

    try:
        parsed = url if isinstance(url, URL) else make_url(str(url))
    except Exception:  # noqa: BLE001 - unparseable text: mask by pattern instead
        return mask_secrets(str(url))
    return mask_secrets(parsed.render_as_string(hide_password=True))


def mask_value(value: Any) -> Any:
    """Strings masked; dicts, lists and tuples masked recursively; anything else unchanged."""
    if isinstance(value, str):
        return mask_secrets(value)
    if isinstance(value, dict):
        return {k: mask_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(mask_value(v) for v in value)
    return value


class SecretFilter(logging.Filter):
    """A logging filter that masks secrets in the formatted message of every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_secrets(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True

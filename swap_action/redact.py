"""Passwords in URLs (``http://user:pass@host/``) are never shown: logs, summary and report say ``***``.

``verify-url`` may carry basic-auth credentials for a protected health endpoint. The URL handed to
curl on the LB keeps them; every displayed form goes through ``redact_credentials``, which works on
a URL or on any text that contains one (an error message, a step detail, a report field). A user
name alone (``ssh://deploy@lb``) is not a secret and is kept.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

# scheme://user:password@ -- the password runs to the last '@' before the end of the authority
# (a '/', '?', '#' or whitespace), as urlsplit reads it. The look-behind keeps the scan linear.
_CREDENTIALS = re.compile(
    r"(?<![A-Za-z0-9+.-])(?P<keep>[A-Za-z][A-Za-z0-9+.-]{0,31}://[^\s/?#:]*:)(?P<password>[^\s/?#]*)(?=@)"
)
REDACTED = "***"


def redact_credentials(text: str) -> str:
    """``text`` with the password of every URL in it replaced by ``***``."""
    return _CREDENTIALS.sub(rf"\g<keep>{REDACTED}", text)


def url_passwords(text: str) -> list[str]:
    """The passwords in ``text``'s URLs, as written and percent-decoded (to mask in the log)."""
    found = [match.group("password") for match in _CREDENTIALS.finditer(text)]
    return [secret for password in found for secret in dict.fromkeys((password, unquote(password))) if secret]


def redact_document(value: Any) -> Any:
    """A JSON-like document (dicts, lists, strings) with every string redacted."""
    if isinstance(value, str):
        return redact_credentials(value)
    if isinstance(value, dict):
        return {key: redact_document(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact_document(item) for item in value]
    return value

"""Secrets never leave: one redaction for every message that is logged, stored, printed or served.

A credential can come back to us in many forms: the raw token, ``Basic <base64 of user:token>``
(Jira Cloud, Azure DevOps PATs), ``Bearer <token>`` (Jira DC), or a whole ``Authorization:``
header line echoed by a gateway's error page. ``redact`` removes all of them:

- by pattern: ``Authorization``/``Proxy-Authorization`` header values, ``Basic``/``Bearer``
  credentials, ``token=``/``pat=``/``password=`` style pairs - whatever the secret is;
- by value: every secret read from the environment this process (``remember``, called by
  ``SourceConfig.token``), raw, URL-quoted and base64-encoded at each of the three byte
  alignments (so it is found inside a base64 blob of ``user:token`` or of a longer text).

``RedactingFilter`` applies it to every log record of the ``pmolens`` loggers.
"""

from __future__ import annotations

import base64
import logging
import re
import threading
from collections.abc import Iterable
from urllib.parse import quote

MASK = "***"
_MIN_LENGTH = 6  # shorter "secrets" would mask ordinary words; tokens are far longer

_PATTERNS = (
    # a header line, as a gateway echoes it: everything after the name to the end of the line
    re.compile(r"(?i)\b((?:proxy-)?authorization)\b(\s*[:=]\s*|\"\s*:\s*\")[^\r\n\"',}]*"),
    re.compile(r"(?i)\b(basic|bearer|token|pat)(\s+)[A-Za-z0-9+/=._~-]{8,}"),
    re.compile(
        r"(?i)\b(api[_-]?token|access[_-]?token|token|pat|password|passwd|secret)(\s*[:=]\s*)"
        r"\"?[^\s\"'&,;}]+"
    ),
)

_known: set[str] = set()
_lock = threading.Lock()


def remember(secret: str) -> None:
    """Make ``redact`` mask this secret (in every form) from now on, in this process."""
    if len(secret) >= _MIN_LENGTH:
        with _lock:
            _known.add(secret)


def forms(secret: str) -> set[str]:
    """Every text form a secret can take in a message: raw, URL-quoted, and base64 fragments.

    Base64 encodes 3 bytes as 4 characters, so inside an encoded ``user:token`` the token shows
    as one of three fragments depending on its offset; each fragment leaves out the characters
    shared with its neighbours, and is still long enough to be unique.
    """
    found = {secret, quote(secret, safe="")}
    raw = secret.encode()
    for offset in range(3):
        padded = b"\0" * offset + raw
        encoded = base64.b64encode(padded).decode().rstrip("=")
        start = -(-offset * 4 // 3) + (1 if offset else 0)  # drop chars that mix in the prefix
        end = len(encoded) - 2  # and the ones that may mix with what follows
        fragment = encoded[start:end]
        if len(fragment) >= _MIN_LENGTH:
            found.add(fragment)
            found.add(fragment.replace("+", "-").replace("/", "_"))  # urlsafe alphabet
    return {f for f in found if len(f) >= _MIN_LENGTH}


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every credential form masked: patterns first, then known secret values."""
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
    with _lock:
        values = set(_known)
    values.update(s for s in secrets if len(s) >= _MIN_LENGTH)
    for value in sorted(values, key=len, reverse=True):
        for form in sorted(forms(value), key=len, reverse=True):
            if form in text:
                text = text.replace(form, MASK)
    return text


class RedactingFilter(logging.Filter):
    """Masks secrets in a log record's final message (arguments included) before any handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if record.exc_info and record.exc_info[1] is not None:
            # the traceback text is rendered later by the handler: clean the exception's message
            exc = record.exc_info[1]
            exc.args = tuple(redact(str(a)) if isinstance(a, str) else a for a in exc.args)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def install_log_filter(logger_name: str = "pmolens") -> None:
    """Attach the redacting filter to the ``pmolens`` logger's handlers' path (idempotent)."""
    logger = logging.getLogger(logger_name)
    if not any(isinstance(f, RedactingFilter) for f in logger.filters):
        logger.addFilter(RedactingFilter())

"""Secrets never leave: one redaction for every message that is logged, stored, printed or served.

A credential can come back to us in many forms: the raw token, ``Basic <base64 of user:token>``
(Jira Cloud, Azure DevOps PATs), ``Bearer <token>`` (Jira DC), or a whole ``Authorization:``
header line echoed by a gateway's error page. ``redact`` removes all of them:

- by pattern: ``Authorization``/``Proxy-Authorization`` header values, ``Basic``/``Bearer``
  credentials, ``token=``/``pat=``/``password=`` style pairs - whatever the secret is;
- by value: every secret read from the environment this process (``remember``, called by
  ``SourceConfig.token``), raw, URL-quoted and base64-encoded at each of the three byte
  alignments (so it is found inside a base64 blob of ``user:token`` or of a longer text).

Every log record of the process is cleaned as it is made (``install_log_redaction``, done when
this module is imported - and ``warehouse.config`` imports it): a log record factory, because a
filter on the ``pmolens`` logger would not see its child loggers' records, nor reach handlers
added by others (uvicorn, pytest). The traceback of a record is rendered and cleaned then too.
"""

from __future__ import annotations

import base64
import logging
import re
import threading
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote

MASK = "***"
_MIN_LENGTH = 6  # shorter "secrets" would mask ordinary words; tokens are far longer

_PATTERNS = (
    # a header line, as a gateway echoes it: everything after the name to the end of the line
    re.compile(r"(?i)\b((?:proxy-)?authorization)\b(\s*[:=]\s*|\"\s*:\s*\")[^\r\n\"',}]*"),
    # an auth scheme and its credential
    re.compile(r"(?i)\b(basic|bearer)(\s+)[A-Za-z0-9+/=._~-]{8,}"),
    # "token <credential>": only when it has a digit or a base64 sign, so that "check the token
    # variable" stays readable (a known secret is masked by value anyway)
    re.compile(r"(?i)\b(token|pat)(\s+)(?=[\w+/=.~-]*[0-9+/=])[A-Za-z0-9+/=._~-]{8,}"),
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


def _clean_record(record: logging.LogRecord) -> logging.LogRecord:
    """Mask secrets in a record's message (arguments merged in) and its traceback text."""
    try:
        message = record.getMessage()
    except Exception:  # a bad format string is the handler's to report, as logging does
        return record
    cleaned = redact(message)
    if cleaned != message:
        record.msg, record.args = cleaned, None
    if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
        # formatters reuse ``exc_text`` once set: render the traceback now, cleaned
        record.exc_text = redact(_formatter.formatException(record.exc_info))
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    return record


_formatter = logging.Formatter()


class _RedactingFactory:
    """A log record factory that cleans every record as it is made, whoever logs it.

    A filter on the ``pmolens`` logger would miss its children's records (logger filters apply
    only to records logged on that very logger) and every handler someone else adds (uvicorn's,
    pytest's); the record factory is the one place every record passes through. Records are made
    only for messages that pass the level check, so disabled debug lines cost nothing.
    """

    def __init__(self, wrapped: Callable[..., logging.LogRecord]) -> None:
        self.wrapped = wrapped

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        return _clean_record(self.wrapped(*args, **kwargs))


def install_log_redaction() -> None:
    """Clean every log record of this process from now on (idempotent; done on import)."""
    with _lock:
        current = logging.getLogRecordFactory()
        if not isinstance(current, _RedactingFactory):
            logging.setLogRecordFactory(_RedactingFactory(current))


install_log_redaction()


install_log_redaction()

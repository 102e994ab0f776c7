"""Unit tests of warehouse.secrets: every credential form masked, in messages and in logs."""

from __future__ import annotations

import base64
import logging
import secrets as stdlib_secrets
from urllib.parse import quote

import httpx
import pytest

from pmolens.connectors.http import BearerAuth, _describe, basic_auth
from pmolens.warehouse.secrets import MASK, forms, redact, remember


def _token() -> str:
    return stdlib_secrets.token_urlsafe(24)


def test_header_lines_and_credentials_are_masked_whatever_the_secret():
    text = (
        "Authorization: Basic dXNlcjpzZWNyZXRzZWNyZXQ=\r\n"
        "proxy-authorization = Bearer abcdefghijklmnop\n"
        '{"authorization": "Basic QUJDREVGR0hJSktMTU5PUA=="} '
        "curl -H 'Bearer zyxwvutsrqponmlk' ?token=qwertyuiop&x=1 password: hunter2hunter2"
    )
    out = redact(text)
    for leaked in (
        "dXNlcjpzZWNyZXRzZWNyZXQ",
        "abcdefghijklmnop",
        "QUJDREVGR0hJSktMTU5PUA",
        "zyxwvutsrqponmlk",
        "qwertyuiop",
        "hunter2hunter2",
    ):
        assert leaked not in out
    assert out.count(MASK) >= 6
    assert "x=1" in out  # the rest of the text stays readable


def test_remembered_secret_masked_raw_quoted_and_in_base64_at_every_alignment():
    token = _token() + "+/="  # characters that URL-quoting and base64 change
    remember(token)
    assert MASK in redact(f"the token was {token}!")
    assert token not in redact(f"the token was {token}!")
    assert quote(token, safe="") not in redact(f"url?t={quote(token, safe='')}")
    for prefix in ("", "a", "ab", "a@b.example:", ":", "xyz:"):
        for suffix in ("", "!", "tail"):
            encoded = base64.b64encode(f"{prefix}{token}{suffix}".encode()).decode()
            for text in (encoded, encoded.replace("+", "-").replace("/", "_")):
                out = redact(f"echo {text} end")
                assert MASK in out, (prefix, suffix)
                # what is left of the blob is the prefix's and suffix's few characters only
                left = out.replace(MASK, "").replace("echo ", "").replace(" end", "")
                assert len(left) <= len(prefix) * 4 // 3 + len(suffix) * 4 // 3 + 8


def test_secrets_passed_in_are_masked_short_words_are_not():
    token = _token()
    assert redact(f"x {token} y", [token]) == f"x {MASK} y"
    assert redact("the cat sat", ["cat"]) == "the cat sat"  # too short to be a token
    assert all(len(f) >= 6 for f in forms(token))


def test_auth_objects_remember_their_secret():
    bearer, basic = _token(), _token()
    assert "***" in repr(BearerAuth(bearer)) and bearer not in repr(BearerAuth(bearer))
    basic_auth("a@b.example", basic)
    assert bearer not in redact(f"a {bearer} b") and basic not in redact(f"a {basic} b")


def test_tracker_error_text_is_redacted_before_it_is_cut():
    token = _token()
    remember(token)
    header = base64.b64encode(f"a@b.example:{token}".encode()).decode()
    # the secret straddles the 300-character cut: redacting after the cut would leak its head
    body = "x" * 290 + f" {token} Authorization: Basic {header}"
    response = httpx.Response(400, text=body)
    message = _describe("GET /rest/api/3/myself", response)
    assert token[:8] not in message and header[:12] not in message
    assert message.startswith("GET /rest/api/3/myself: HTTP 400: ")


@pytest.mark.parametrize("name", ["pmolens", "pmolens.sync.deep.child", "uvicorn.access", "httpx"])
def test_every_log_record_is_redacted_whoever_logs_it(caplog, name):
    """A logger filter would miss child loggers and foreign handlers; the record factory not."""
    token = _token()
    remember(token)
    caplog.set_level(logging.DEBUG)
    logger = logging.getLogger(name)
    logger.debug("sent %s with Authorization: Bearer %s", "GET /x", token)
    logger.info('127.0.0.1 - "GET /x?token=%s HTTP/1.1" 200', "abcdefghij")
    try:
        raise RuntimeError(f"tracker said: {token}")
    except RuntimeError:
        logger.exception("failed with %r", {"pat": token})
    text = caplog.text + "".join(r.getMessage() for r in caplog.records)
    assert token not in text and "abcdefghij" not in text
    assert "Traceback" in caplog.text and "tracker said" in caplog.text

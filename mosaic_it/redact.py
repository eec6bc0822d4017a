"""Masking secrets that ride in URLs (user:password@, ?api_key=...) before anything is shown or logged.

The judge URL comes from params.yaml, so it ends up on stderr, in MLflow params and in reports;
a key pasted into it must not.
"""
from __future__ import annotations

import logging
import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"
# Query parameter names that usually hold a credential (matched case-insensitively, as substrings
# for the longer ones: "x-api-key", "access_token", "client_secret").
SECRET_PARAM = re.compile(r"(^(key|sig|code|auth)$)|token|secret|passw|api[-_]?key|apikey|signature|credential|session",
                          re.IGNORECASE)
URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")


def redact_url(url: str) -> str:
    """The URL with any user:password and secret-looking query values replaced by ***."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            netloc = MASK + "@" + netloc.rsplit("@", 1)[1]
        query = parts.query
        if query:
            pairs = parse_qsl(query, keep_blank_values=True)
            query = urlencode([(k, MASK if SECRET_PARAM.search(k) else v) for k, v in pairs], safe="*")
        return urlunsplit((parts.scheme, netloc, parts.path, query, MASK if parts.fragment else ""))
    except ValueError:  # not parseable as a URL (e.g. a bad IPv6 literal): show nothing of it
        return MASK


def redact_text(text: str) -> str:
    """`text` with every URL in it redacted."""
    return URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), text)


class RedactingFilter(logging.Filter):
    """Masks URLs in the records of a logger it is added to (httpx logs every request's full URL)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = redact_text(record.getMessage()), None
        return True


def redact_logger(name: str) -> None:
    """Mask URL secrets in everything the named logger emits (installed once)."""
    logger = logging.getLogger(name)
    if not any(isinstance(f, RedactingFilter) for f in logger.filters):
        logger.addFilter(RedactingFilter())

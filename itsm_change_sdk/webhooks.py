"""Verifying where a webhook came from: the two schemes the platforms use.

A missing secret or proof is 401, a wrong one 403; secrets are compared in constant time and
never appear in a message.
"""

from __future__ import annotations

import hashlib
import hmac

from .errors import WebhookRejected
from .model import WebhookRequest

__all__ = ["hmac_sha256", "verify_hmac_sha256", "verify_shared_secret"]


def hmac_sha256(body: bytes, secret: str) -> str:
    """``sha256=<hex>`` of ``body`` under ``secret`` (GitHub/Atlassian style)."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _require_secret(request: WebhookRequest, secret: str | None) -> str:
    secret = secret or request.secret
    if not secret:
        raise WebhookRejected(
            401, f"no webhook secret is configured for {request.platform}; set "
                 f"ITSM_CHANGE_{request.platform.upper()}_WEBHOOK_SECRET (unverifiable "
                 "webhooks are refused)")
    return secret


def verify_shared_secret(request: WebhookRequest, header: str,
                         secret: str | None = None) -> None:
    """The request carries the configured secret (``secret``, else ``request.secret``) in
    ``header`` (ServiceNow business rules, Freshservice workflow webhooks: neither platform
    signs its payloads)."""
    secret = _require_secret(request, secret)
    given = request.header(header)
    if not given:
        raise WebhookRejected(401, f"the {header} header is missing")
    if not hmac.compare_digest(given.encode(), secret.encode()):
        raise WebhookRejected(403, f"the {header} header does not match")


def verify_hmac_sha256(request: WebhookRequest, header: str,
                       secret: str | None = None) -> None:
    """``header`` holds ``sha256=<hex>`` of the raw body under the configured secret (Jira's
    ``X-Hub-Signature``, the sandbox's ``X-Sandbox-Signature``)."""
    secret = _require_secret(request, secret)
    given = request.header(header)
    if not given:
        raise WebhookRejected(401, f"the {header} header is missing")
    expected = hmac_sha256(request.body, secret)
    if not hmac.compare_digest(given.strip().lower().encode(), expected.encode()):
        raise WebhookRejected(403, f"the {header} signature does not match the body")

"""The sandbox's webhooks: staff actions recorded in an outbox and forwarded, signed.

:class:`~itsm_change_sdk.sandbox.store.SandboxStore` writes one outbox row per staff action
(ticket raised or updated, comment added, task closed or reopened) in the same transaction
as the action. :class:`Forwarder` posts each row to ``serve``'s ``/webhooks/sandbox``,
signed with HMAC-SHA256 as a real platform would, and marks it sent after a 2xx answer:
delivery is at least once, and the service de-duplicates by the row's id.
"""

from __future__ import annotations

import json
import logging
import uuid
from datetime import datetime
from typing import Any

import requests
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ..ledger import UTCDateTime
from ..webhooks import hmac_sha256

__all__ = ["SIGNATURE_HEADER", "Forwarder", "event_body", "record_event", "sign"]

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Sandbox-Signature"

outbox_metadata = sa.MetaData()
outbox = sa.Table(
    "event_outbox", outbox_metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    # Random, not the sequence: a reset sandbox must not reuse ids the ledger has seen.
    sa.Column("id", sa.String(64), nullable=False, unique=True),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("sent_at", UTCDateTime, index=True),
)


def create(engine: Engine) -> None:
    outbox_metadata.create_all(engine)


def drop(engine: Engine) -> None:
    outbox_metadata.drop_all(engine)


sign = hmac_sha256


def event_body(event: str, at: datetime, event_id: str | None = None,
               **fields: Any) -> dict[str, Any]:
    """A sandbox event as :meth:`SandboxPlatform.itsm_change_parse_webhook` reads it."""
    return {"id": event_id or uuid.uuid4().hex, "event": event, "occurred_at": at.isoformat(),
            **fields}


def record_event(conn: Connection, event: str, at: datetime, **fields: Any) -> None:
    """Add one event to the outbox, inside the caller's transaction."""
    body = event_body(event, at, **fields)
    conn.execute(outbox.insert().values(id=body["id"], body=json.dumps(body, sort_keys=True),
                                        created_at=at))


class Forwarder:
    """Posts unsent outbox rows to the service's sandbox webhook.

    :param url: e.g. ``http://127.0.0.1:8080/webhooks/sandbox``.
    """

    def __init__(self, engine: Engine, url: str, secret: str, *, batch: int = 100,
                 timeout: float = 10.0, session: requests.Session | None = None) -> None:
        self.engine = engine
        self.url = url
        self.secret = secret
        self.batch = batch
        self.timeout = timeout
        self.session = session or requests.Session()
        create(engine)

    def pending(self) -> list[tuple[int, str]]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(outbox.c.seq, outbox.c.body)
                                .where(outbox.c.sent_at.is_(None))
                                .order_by(outbox.c.seq).limit(self.batch)).all()
        return [(int(r.seq), str(r.body)) for r in rows]

    def forward_once(self, now: datetime) -> int:
        """Send what is pending, in order; stops at the first failure (kept for later)."""
        sent = 0
        for seq, body in self.pending():
            data = body.encode()
            try:
                response = self.session.post(
                    self.url, data=data, timeout=self.timeout,
                    headers={"Content-Type": "application/json",
                             SIGNATURE_HEADER: sign(data, self.secret)})
            except requests.RequestException as exc:
                log.warning("sandbox events: cannot reach %s: %s", self.url, type(exc).__name__)
                break
            if response.status_code >= 500 or response.status_code in (408, 429):
                log.warning("sandbox events: %s answered %d; retrying later", self.url,
                            response.status_code)
                break
            if response.status_code >= 400:
                # Refused for good (bad signature or payload): resending cannot help.
                log.error("sandbox events: event %d refused (%d); dropped", seq,
                          response.status_code)
            with self.engine.begin() as conn:
                conn.execute(outbox.update().where(outbox.c.seq == seq).values(sent_at=now))
            sent += 1
        return sent

    def close(self) -> None:
        self.session.close()

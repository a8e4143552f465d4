"""Running past one machine: Celery workers share the work of one or more programs, Redis
carries the queue and one rate limit per platform instance, and the ledger's claims keep every
write exactly once (see ``docs/deployment.md``).

Install with ``pip install 'itsm-change-sdk[celery]'``; nothing here is imported by the
single-process commands.
"""

from __future__ import annotations

from .settings import ClusterSettings, RateLimit

__all__ = ["ClusterSettings", "RateLimit"]

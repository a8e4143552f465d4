"""Shared HTTP plumbing for platform plugins: transport, retries, pacing, pagination, redaction."""

from .pacing import BudgetPacer, KeyedLimiter, Pacer, SharedLimit, shared_limit, use_shared_limit
from .pagination import paginate_link, paginate_offset, paginate_token
from .redact import REDACTED, Redactor, redact_url
from .retry import RetryPolicy, create_once, is_uncertain, parse_rate_limit_reset, parse_retry_after
from .transport import ErrorParser, Transport, default_error_parser

__all__ = [
    "REDACTED",
    "BudgetPacer",
    "ErrorParser",
    "KeyedLimiter",
    "Pacer",
    "Redactor",
    "RetryPolicy",
    "SharedLimit",
    "Transport",
    "create_once",
    "default_error_parser",
    "is_uncertain",
    "paginate_link",
    "paginate_offset",
    "paginate_token",
    "parse_rate_limit_reset",
    "parse_retry_after",
    "redact_url",
    "shared_limit",
    "use_shared_limit",
]

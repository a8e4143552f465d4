"""Encoded queries built from values that cannot change the query.

ServiceNow's encoded query has no quoting: ``^`` starts the next condition (``^OR``, ``^NQ``
and ``^EQ`` included), ``,`` separates the values of ``IN`` and a value that starts with
``javascript:`` is evaluated on the instance. So instead of escaping, a value that carries
any of them is refused (:class:`UnsafeQueryValue`), and ``IN`` falls back to ``=`` joined by
``^OR`` when a value holds a comma. Field names come only from the plugin's own code or from
settings that were checked against ``sys_dictionary`` (see ``client.FieldGuard``), because
the instance silently drops a condition on an unknown field, which would widen the query.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from itsm_change_sdk.errors import ConfigurationError

__all__ = ["Query", "UnsafeQueryValue", "check_value", "sn_datetime"]

_FIELD_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")
_FORBIDDEN = ("^", "\n", "\r", "\x00")


class UnsafeQueryValue(ConfigurationError):
    """A value that an encoded query cannot carry without changing its meaning."""


def check_value(value: str) -> str:
    """``value`` if it is safe inside one encoded-query condition, else raise."""
    if any(ch in value for ch in _FORBIDDEN):
        raise UnsafeQueryValue(
            f"the value {value!r} contains '^' or a line break, which ServiceNow's encoded "
            "query cannot quote; rename it in the program (no '^' in names or ids)"
        )
    if value.strip().lower().startswith("javascript:"):
        raise UnsafeQueryValue(
            f"the value {value!r} starts with 'javascript:', which ServiceNow would run as a "
            "script; rename it in the program"
        )
    return value


def check_field(name: str) -> str:
    if not _FIELD_RE.match(name):
        raise ConfigurationError(
            f"{name!r} is not a ServiceNow column name (lower-case letters, digits, '_')"
        )
    return name


def sn_datetime(when: datetime) -> str:
    """UTC in the Table API's internal format ``YYYY-MM-DD HH:MM:SS``."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


@dataclass
class Query:
    """An AND of conditions; each condition may hold ``^OR`` alternatives of one field."""

    parts: list[str] = field(default_factory=list)
    order: list[str] = field(default_factory=list)
    fields_used: set[str] = field(default_factory=set)
    empty: bool = False
    """True when a condition can match nothing (an ``IN`` of no values)."""

    def _field(self, name: str) -> str:
        self.fields_used.add(check_field(name))
        return name

    def _values(self, name: str, values: Iterable[str]) -> list[str]:
        """The checked, de-duplicated ``values``; none at all makes the query match nothing."""
        wanted = [check_value(v) for v in dict.fromkeys(values)]
        self._field(name)
        if not wanted:
            self.empty = True
        return wanted

    def eq(self, name: str, value: str) -> Query:
        self.parts.append(f"{self._field(name)}={check_value(value)}")
        return self

    def gt(self, name: str, value: str) -> Query:
        self.parts.append(f"{self._field(name)}>{check_value(value)}")
        return self

    def any_of(self, name: str, values: Iterable[str]) -> Query:
        """``name`` equals one of ``values``."""
        wanted = self._values(name, values)
        if any("," in v for v in wanted):
            self.parts.append("^OR".join(f"{name}={v}" for v in wanted))
        elif wanted:
            self.parts.append(f"{name}IN{','.join(wanted)}")
        return self

    def contains_any(self, name: str, values: Iterable[str]) -> Query:
        """``name`` contains one of ``values`` (``LIKE``)."""
        wanted = self._values(name, values)
        if wanted:
            self.parts.append("^OR".join(f"{name}LIKE{v}" for v in wanted))
        return self

    def raw(self, condition: str, *names: str) -> Query:
        """A constant condition written by the plugin itself (never from a value)."""
        for name in names:
            self._field(name)
        self.parts.append(condition)
        return self

    def order_by(self, *names: str) -> Query:
        for name in names:
            self.order.append(f"ORDERBY{self._field(name)}")
        return self

    def encode(self) -> str:
        return "^".join([*self.parts, *self.order])

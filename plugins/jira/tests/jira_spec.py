"""Checks each request the tests make against Atlassian's OpenAPI specs.

Platform paths (``/rest/api/3``) are checked against the official Jira Cloud v3 spec;
``/rest/servicedeskapi`` paths against the JSM spec (a 2022 vendored copy). Both live in
``spec/`` as the subset of operations the plugin calls, cut from the full files by
``scripts/cut_spec.py``, which records the source, its SHA-256 and version in ``x-cut-from``.
Admin webhooks (``/rest/webhooks/1.0``), JSM's CSAT feedback and the OAuth token endpoint are
in neither spec: they are listed in :data:`NOT_IN_SPEC` and checked by the fake's own handlers
instead.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SPEC_DIR = Path(__file__).resolve().parent / "spec"
PLATFORM_SPEC = SPEC_DIR / "jira-platform.subset.openapi.json"
JSM_SPEC = SPEC_DIR / "jira-jsm.subset.openapi.json"
NOT_IN_SPEC = (
    re.compile(r"^/rest/webhooks/1\.0/webhook(/\d+)?$"),
    # JSM's CSAT feedback (experimental in Atlassian's docs) is newer than the 2022 JSM file.
    re.compile(r"^/rest/servicedeskapi/request/[^/]+/feedback$"),
)


@dataclass
class _Operation:
    template: str
    regex: re.Pattern[str]
    literal_parts: int
    methods: dict[str, Any]


@dataclass
class SpecValidator:
    specs: list[dict[str, Any]]
    problems: list[str] = field(default_factory=list)
    checked: int = 0

    def __post_init__(self) -> None:
        from jsonschema import Draft4Validator  # noqa: F401  (fail early if missing)
        from referencing import Registry, Resource
        from referencing.jsonschema import DRAFT4

        self._ops: list[tuple[_Operation, int]] = []
        resources = []
        for index, spec in enumerate(self.specs):
            resources.append((f"urn:spec:{index}",
                              Resource.from_contents(spec, default_specification=DRAFT4)))
            for template, methods in spec["paths"].items():
                pattern = re.sub(r"\\\{[^}]+\\\}", r"[^/]+", re.escape(template))
                literal = len([p for p in template.split("/") if p and "{" not in p])
                self._ops.append((_Operation(template, re.compile(f"^{pattern}$"), literal,
                                             methods), index))
        self._registry = Registry().with_resources(resources)

    def _find(self, path: str) -> tuple[_Operation, int] | None:
        matches = [(op, i) for op, i in self._ops if op.regex.match(path)]
        if not matches:
            return None
        return max(matches, key=lambda m: m[0].literal_parts)

    def check(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> None:
        from jsonschema import Draft4Validator

        if any(p.match(path) for p in NOT_IN_SPEC):
            return
        self.checked += 1
        found = self._find(path)
        if found is None:
            self.problems.append(f"{method} {path}: no such path in the spec")
            return
        op, index = found
        operation = op.methods.get(method.lower())
        if operation is None:
            self.problems.append(f"{method} {path}: {op.template} has no {method}")
            return
        if operation.get("deprecated"):
            self.problems.append(f"{method} {path}: deprecated operation {op.template}")
        params = {p.get("name") for p in [*operation.get("parameters", []),
                                          *op.methods.get("parameters", [])]
                  if p.get("in") == "query"}
        unknown = sorted(set(query) - params)
        if unknown:
            self.problems.append(f"{method} {path}: unknown query parameters {unknown}")
        content = (operation.get("requestBody") or {}).get("content") or {}
        schema = (content.get("application/json") or {}).get("schema")
        if body is None or schema is None:
            return
        rooted = _root_refs(schema, f"urn:spec:{index}")
        validator = Draft4Validator(rooted, registry=self._registry)
        for error in validator.iter_errors(body):
            where = "/".join(str(p) for p in error.absolute_path)
            self.problems.append(f"{method} {path} body {where}: {error.message[:200]}")


def _root_refs(schema: Any, base: str) -> Any:
    if isinstance(schema, dict):
        return {k: (f"{base}{v}" if k == "$ref" and isinstance(v, str) and v.startswith("#")
                    else _root_refs(v, base)) for k, v in schema.items()}
    if isinstance(schema, list):
        return [_root_refs(v, base) for v in schema]
    return schema


_CACHE: dict[str, SpecValidator] = {}


def load_validator() -> SpecValidator:
    """The validator, loaded once per session. The spec files are part of the repository, so a
    missing one is an error, not a reason to skip the check."""
    if "v" not in _CACHE:
        missing = [p for p in (PLATFORM_SPEC, JSM_SPEC) if not p.exists()]
        if missing:
            raise FileNotFoundError(
                f"{', '.join(map(str, missing))} missing: run plugins/jira/scripts/cut_spec.py "
                "(see its docstring) to cut it from Atlassian's OpenAPI files"
            )
        _CACHE["v"] = SpecValidator([json.loads(p.read_text()) for p in (PLATFORM_SPEC, JSM_SPEC)])
    return _CACHE["v"]

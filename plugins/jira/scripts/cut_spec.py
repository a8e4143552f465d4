"""Cut the operations this plugin calls out of Atlassian's OpenAPI specs, for the request check.

The full Jira Cloud platform spec is 2.4 MB; the tests need only the operations the plugin
calls (and the deprecated search they must never call), with every schema those reference.
The result is written to ``tests/spec/`` together with where it came from: the source file's
SHA-256, its ``info.version`` and the date it was cut.

Run it again when the plugin calls a new operation (add its path to :data:`PATHS`) or to move
to a newer spec::

    python plugins/jira/scripts/cut_spec.py --platform PATH/swagger-v3.v3.json \\
        --jsm PATH/jsm-openapi.json

The platform spec is Atlassian's official file
(https://developer.atlassian.com/cloud/jira/platform/swagger-v3.v3.json). Atlassian publishes
the JSM spec at https://developer.atlassian.com/cloud/jira/service-desk/swagger.v3.json; the
copy used here is that file as vendored by WSO2's Ballerina connectors (2022).
"""

from __future__ import annotations

import argparse
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUT = HERE.parent / "tests" / "spec"
SPECS = HERE.parents[3] / "shared" / "specs"  # where a checkout keeps the full files, if anywhere

#: The path templates the plugin calls (every method of each is kept), plus the deprecated
#: search the tests check it never calls, and the read-only look-ups its checks may use.
PATHS: dict[str, list[str]] = {
    "platform": [
        "/rest/api/3/changelog/bulkfetch",
        "/rest/api/3/comment/list",
        "/rest/api/3/comment/{commentId}/properties/{propertyKey}",
        "/rest/api/3/field",
        "/rest/api/3/group/member",
        "/rest/api/3/groups/picker",
        "/rest/api/3/issue/bulk",
        "/rest/api/3/issue/bulkfetch",
        "/rest/api/3/issue/createmeta/{projectIdOrKey}/issuetypes",
        "/rest/api/3/issue/{issueIdOrKey}",
        "/rest/api/3/issue/{issueIdOrKey}/changelog",
        "/rest/api/3/issue/{issueIdOrKey}/comment",
        "/rest/api/3/issue/{issueIdOrKey}/comment/{id}",
        "/rest/api/3/issue/{issueIdOrKey}/properties/{propertyKey}",
        "/rest/api/3/issue/{issueIdOrKey}/transitions",
        "/rest/api/3/issuetype/project",
        "/rest/api/3/jql/parse",
        "/rest/api/3/mypermissions",
        "/rest/api/3/myself",
        "/rest/api/3/project/{projectIdOrKey}",
        "/rest/api/3/project/{projectIdOrKey}/statuses",
        "/rest/api/3/search",
        "/rest/api/3/search/approximate-count",
        "/rest/api/3/search/jql",
        "/rest/api/3/serverInfo",
        "/rest/api/3/user/bulk",
    ],
    "jsm": [
        "/rest/servicedeskapi/request/{issueIdOrKey}",
        "/rest/servicedeskapi/request/{issueIdOrKey}/comment",
        "/rest/servicedeskapi/request/{issueIdOrKey}/comment/{commentId}",
        "/rest/servicedeskapi/request/{issueIdOrKey}/feedback",
        "/rest/servicedeskapi/servicedesk",
    ],
}


def cut(spec: dict[str, Any], templates: list[str]) -> tuple[dict[str, Any], list[str]]:
    """The spec with only ``templates`` and the components they reach through ``$ref``, and
    the templates the spec does not have."""
    paths = {t: spec["paths"][t] for t in templates if t in spec["paths"]}
    missing = [t for t in templates if t not in spec["paths"]]
    components: dict[str, dict[str, Any]] = {}
    pending = list(_refs(paths))
    while pending:
        ref = pending.pop()
        _, _, section, name = ref.split("/", 3)
        if name in components.get(section, {}):
            continue
        target = spec["components"][section][name]
        components.setdefault(section, {})[name] = target
        pending.extend(_refs(target))
    subset = {"openapi": spec["openapi"], "info": spec["info"], "paths": paths,
              "components": {s: dict(sorted(c.items())) for s, c in sorted(components.items())}}
    return subset, missing


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def write(name: str, source: Path, origin: str) -> Path:
    raw = source.read_bytes()
    spec = json.loads(raw)
    subset, missing = cut(spec, PATHS[name])
    for template in missing:
        print(f"note: {source.name} has no {template}; requests to it are reported by the check")
    subset["x-cut-from"] = {
        "file": source.name,
        "origin": origin,
        "sha256": hashlib.sha256(raw).hexdigest(),
        "info.version": spec["info"].get("version"),
        "cut-on": datetime.now(UTC).date().isoformat(),
        "paths": PATHS[name],
    }
    OUT.mkdir(parents=True, exist_ok=True)
    target = OUT / f"jira-{name}.subset.openapi.json"
    target.write_text(json.dumps(subset, indent=1, sort_keys=False) + "\n")
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--platform", type=Path, default=SPECS / "jira-platform-v3.openapi.json",
                        help="Atlassian's Jira Cloud platform v3 OpenAPI file (JSON)")
    parser.add_argument("--jsm", type=Path,
                        default=SPECS / "jira-service-management.ballerina-derived.openapi.json",
                        help="the Jira Service Management OpenAPI file (JSON)")
    args = parser.parse_args()
    print(write("platform", args.platform,
                "https://developer.atlassian.com/cloud/jira/platform/swagger-v3.v3.json"))
    print(write("jsm", args.jsm,
                "https://developer.atlassian.com/cloud/jira/service-desk/swagger.v3.json "
                "(as vendored by ballerina-platform/openapi-connectors, 2022)"))


if __name__ == "__main__":
    main()

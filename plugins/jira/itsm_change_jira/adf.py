"""Atlassian Document Format built as structure, never as concatenated markup.

Plain text from an effect becomes paragraphs (blank lines), hard breaks (single newlines) and
text nodes; URLs become link marks. Nothing in the text is interpreted as markup.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["doc", "from_plain_text", "link", "paragraph", "text", "to_plain_text"]

Node = dict[str, Any]

_URL_RE = re.compile(r"https?://[^\s<>\"']+[^\s<>\"'.,;:!?)\]]")


def text(value: str, href: str | None = None) -> Node:
    node: Node = {"type": "text", "text": value}
    if href:
        node["marks"] = [{"type": "link", "attrs": {"href": href}}]
    return node


def link(label: str, href: str) -> Node:
    return text(label, href)


def hard_break() -> Node:
    return {"type": "hardBreak"}


def paragraph(*content: Node) -> Node:
    node: Node = {"type": "paragraph", "content": list(content)}
    return node


def doc(*blocks: Node) -> Node:
    return {"type": "doc", "version": 1, "content": list(blocks)}


def _inline(line: str) -> list[Node]:
    nodes: list[Node] = []
    pos = 0
    for match in _URL_RE.finditer(line):
        if match.start() > pos:
            nodes.append(text(line[pos:match.start()]))
        nodes.append(link(match.group(0), match.group(0)))
        pos = match.end()
    if pos < len(line):
        nodes.append(text(line[pos:]))
    return nodes


def from_plain_text(value: str) -> Node:
    """A document for plain text: blank lines split paragraphs, newlines become breaks."""
    blocks: list[Node] = []
    for chunk in re.split(r"\n\s*\n", value.replace("\r\n", "\n").strip("\n")):
        content: list[Node] = []
        for index, line in enumerate(chunk.split("\n")):
            if index:
                content.append(hard_break())
            content.extend(_inline(line))
        blocks.append(paragraph(*content))
    return doc(*blocks) if blocks else doc(paragraph())


_BLOCK_TYPES = frozenset(
    {"paragraph", "heading", "blockquote", "codeBlock", "listItem", "panel", "rule",
     "tableRow", "mediaSingle"}
)


def to_plain_text(value: Any) -> str:
    """The text of an ADF document (or a plain string, as webhooks and JSM send)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    parts: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for child in node:
                walk(child)
            return
        if not isinstance(node, dict):
            return
        kind = node.get("type")
        if kind == "text":
            parts.append(str(node.get("text", "")))
        elif kind == "hardBreak":
            parts.append("\n")
        elif kind in {"mention", "emoji"}:
            attrs = node.get("attrs") or {}
            parts.append(str(attrs.get("text") or attrs.get("shortName") or ""))
        elif kind == "inlineCard":
            parts.append(str((node.get("attrs") or {}).get("url", "")))
        walk(node.get("content"))
        if kind in _BLOCK_TYPES:
            parts.append("\n\n")

    walk(value)
    return re.sub(r"\n{3,}", "\n\n", "".join(parts)).strip()

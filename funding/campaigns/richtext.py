"""Safe formatted text for campaign descriptions: a small Markdown-like subset.

Everything is escaped first; only then are these turned into HTML:

- a blank line separates paragraphs, a single line break stays a line break;
- lines starting with ``- `` make a bulleted list; a line starting with ``## `` a heading;
- ``**bold**``, ``*italic*``;
- ``[text](https://…)`` links (http, https and mailto only), with ``rel="nofollow ugc noopener"``.

No HTML written by a person ever reaches the page as HTML.
"""

from __future__ import annotations

import re
from itertools import groupby

from markupsafe import Markup, escape

_LINK = re.compile(r"\[([^\]\n]{1,200})\]\(((?:https?://|mailto:)[^\s()<>\"']{1,500})\)")
_BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*")
_ITALIC = re.compile(r"(?<![*\w])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![*\w])")
MAX_LENGTH = 20_000


def _inline(text: str) -> str:
    """Inline marks on an already escaped line."""
    links: list[str] = []

    def keep_link(match: re.Match) -> str:
        label, url = match.group(1), match.group(2)
        # The URL was escaped with the rest of the text (& → &amp;): that is what an attribute needs.
        links.append(f'<a href="{url}" rel="nofollow ugc noopener">{label}</a>')
        return f"\x00{len(links) - 1}\x00"

    text = _LINK.sub(keep_link, text)
    text = _BOLD.sub(r"<strong>\1</strong>", text)
    text = _ITALIC.sub(r"<em>\1</em>", text)
    return re.sub(r"\x00(\d+)\x00", lambda m: links[int(m.group(1))], text)


def _kind(line: str) -> str:
    stripped = line.lstrip()
    if stripped.startswith("## "):
        return "heading"
    return "item" if stripped.startswith("- ") else "text"


def render(source: str | None) -> Markup:
    """The HTML of a description; safe whatever the source contains."""
    text = (source or "").replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")[:MAX_LENGTH]
    html: list[str] = []
    for block in re.split(r"\n\s*\n", text):
        lines = [str(escape(line.rstrip())) for line in block.split("\n") if line.strip()]
        for kind, group in groupby(lines, key=_kind):
            run = [line.lstrip() for line in group]
            if kind == "heading":
                html.extend(f"<h3>{_inline(line[3:].strip())}</h3>" for line in run)
            elif kind == "item":
                html.append("<ul>" + "".join(f"<li>{_inline(line[2:].strip())}</li>" for line in run) + "</ul>")
            else:
                html.append("<p>" + "<br>".join(_inline(line) for line in run) + "</p>")
    return Markup("\n".join(html))  # noqa: S704  (every piece was escaped above: only our own tags are added)


def plain(source: str | None, limit: int = 300) -> str:
    """The text without marks (for summaries, emails and the API)."""
    text = _LINK.sub(r"\1", source or "")
    text = re.sub(r"\*\*|(?<!\w)\*|\*(?!\w)|^## |^- ", "", text, flags=re.MULTILINE)
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"

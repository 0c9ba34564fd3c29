"""Keeps the English catalog in step with the French message ids in code and templates.

    python -m funding.i18n_catalog update   # extract, merge into messages.po, count what is left to translate
    python -m funding.i18n_catalog check    # exit 1 listing untranslated or placeholder-mismatched messages

Extraction follows ``babel.cfg`` (Python under funding/, Jinja2 under templates/) with the
``N_`` keyword on top of Babel's defaults. The merge keeps existing translations, adds new
message ids with an empty translation (no fuzzy guessing), keeps removed ones as obsolete
``#~`` entries, and writes the file sorted by message id, without line numbers, so that
diffs only show real changes.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
PO_FILE = ROOT / "funding" / "locale" / "en" / "LC_MESSAGES" / "messages.po"
KEYWORDS = {**DEFAULT_KEYWORDS, "N_": None}
EXTRACTORS = {"jinja2": "jinja2.ext:babel_extract"}
PLACEHOLDER = re.compile(r"%(?:\((\w+)\))?[#0 +-]*\d*(?:\.\d+)?([sdifrx%])")


def extract() -> Catalog:
    """Every message id in the code and templates, as a template catalog."""
    with (ROOT / "babel.cfg").open() as fh:
        method_map, options_map = parse_mapping_cfg(fh, "babel.cfg")
    method_map = [(pattern, EXTRACTORS.get(method, method)) for pattern, method in method_map]
    for pattern, method in method_map:
        if method.startswith("jinja2"):
            # newstyle: as the templates are rendered (funding/web.py, funding/mail/compose.py), a "%" of a block
            # without variables stays "%%" in its message id, the id gettext is then asked for
            options_map[pattern] = {"extensions": "jinja2.ext.i18n", "newstyle_gettext": "true", **options_map.get(pattern, {})}
    template = Catalog(project="Entre-Lab Funding", fuzzy=False)
    found = extract_from_dir(
        ROOT, method_map, options_map, keywords=KEYWORDS, comment_tags=("Translators:",), strip_comment_tags=True
    )
    for filename, lineno, message, comments, context in found:
        template.add(message, None, [(filename, lineno)], auto_comments=comments, context=context)
    return template


def load() -> Catalog:
    if not PO_FILE.exists():
        return Catalog(locale="en", project="Entre-Lab Funding", copyright_holder="Entre-Lab", fuzzy=False)
    with PO_FILE.open("rb") as fh:
        return read_po(fh, locale="en")


def save(catalog: Catalog) -> None:
    PO_FILE.parent.mkdir(parents=True, exist_ok=True)
    with PO_FILE.open("wb") as fh:
        write_po(fh, catalog, sort_output=True, include_lineno=False)


def placeholders(text: str) -> set[str]:
    return {name or conv for name, conv in PLACEHOLDER.findall(text) if conv != "%"}


def forms(value: str | tuple[str, ...] | list[str] | None) -> tuple[str, ...]:
    """A message id or translation as a tuple: one item, or one per plural form."""
    return tuple(value) if isinstance(value, tuple | list) else (value or "",)


def problems(catalog: Catalog, template: Catalog | None = None) -> list[str]:
    """Messages that are missing, untranslated, fuzzy or whose placeholders differ from the French."""
    found = []
    for message in catalog if template is None else template:
        if not message.id:
            continue
        entry = catalog.get(message.id, message.context)
        ids, strings = forms(message.id), forms(entry.string if entry else None)
        expected = set().union(*map(placeholders, ids))
        got = set().union(*map(placeholders, strings))
        if entry is None or not all(strings):
            found.append(f"untranslated: {ids[0]!r}")
        elif entry.fuzzy:
            found.append(f"fuzzy: {ids[0]!r}")
        elif got != expected:
            found.append(f"placeholders {sorted(got)} instead of {sorted(expected)}: {ids[0]!r}")
    return found


def update() -> int:
    catalog = load()
    catalog.update(extract(), no_fuzzy_matching=True, update_creation_date=False)
    save(catalog)
    untranslated = sum(1 for m in catalog if m.id and not all(forms(m.string)))
    name = PO_FILE.relative_to(ROOT)
    print(f"{name}: {len(catalog)} messages, {untranslated} untranslated, {len(catalog.obsolete)} obsolete")
    return 0


def check() -> int:
    found = problems(load(), extract())
    for line in found:
        print(line)
    print(f"{len(found)} problem(s)" if found else "English catalog complete")
    return 1 if found else 0


if __name__ == "__main__":
    commands = {"update": update, "check": check}
    if len(sys.argv) != 2 or sys.argv[1] not in commands:
        sys.exit("usage: python -m funding.i18n_catalog update|check")
    sys.exit(commands[sys.argv[1]]())

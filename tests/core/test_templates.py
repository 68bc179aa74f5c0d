"""Template mistakes that only show on the page that takes the branch.

A ``{% url %}`` naming a route that does not exist renders as a 500, and only on the branch
that reaches it (an admin's form, say), which page tests may never take. A ``{# #}``
comment cannot span lines: Django prints it, and what follows, as text.
"""

from __future__ import annotations

import re
from pathlib import Path

from django.conf import settings
from django.urls import URLResolver, get_resolver

URL_TAG = re.compile(r"""{%\s*url\s+['"]([^'"]+)['"]""")


def route_names(resolver: URLResolver, namespace: str = "") -> set[str]:
    names: set[str] = set()
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            names |= route_names(pattern, inner)
        elif pattern.name:
            names.add(namespace + pattern.name)
    return names


def templates() -> list[Path]:
    return sorted(Path(settings.BASE_DIR, "templates").rglob("*.html"))


def test_every_url_tag_in_the_templates_names_a_route():
    known = route_names(get_resolver())
    unknown = [
        f"{path.relative_to(settings.BASE_DIR)}: {name}"
        for path in templates()
        for name in URL_TAG.findall(path.read_text())
        if name not in known
    ]
    assert unknown == []


def test_no_one_line_comment_spans_lines():
    unclosed = [
        f"{path.relative_to(settings.BASE_DIR)}:{number}"
        for path in templates()
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if "{#" in line and "#}" not in line.split("{#", 1)[1]
    ]
    assert unclosed == []

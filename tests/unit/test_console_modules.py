"""The console's ES modules as files, without a browser: the page's escaping and its module graph are properties
of the source, so a new module or a new import is checked the moment it is written, not only by the browser
tests."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from chalicelib.console.assets import CONTENT_TYPES, JAVASCRIPT, STATIC

MODULES = sorted(STATIC.rglob("*.js"))
# Every way a script can turn a string into markup or code. Data must reach the page as text only.
SINKS = (
    "innerHTML",
    "outerHTML",
    "insertAdjacentHTML",
    "document.write",
    "createContextualFragment",
    "setHTMLUnsafe",
    "parseHTMLUnsafe",
    "DOMParser",
    "srcdoc",
    "eval(",
    "new Function",
    "javascript:",
)
STATIC_IMPORT = re.compile(r"""\b(?:from|import)\s*['"]([^'"]+)['"]""")


def module_ids() -> list[str]:
    return [path.name for path in MODULES]


def test_the_modules_are_found() -> None:
    assert {"console.js", "api.js", "dom.js"} <= set(module_ids())


@pytest.mark.parametrize("path", MODULES, ids=module_ids())
def test_no_module_can_write_html_or_run_strings(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    used = [sink for sink in SINKS if sink in source]
    assert not used, f"{path.name} uses {used}: build elements and set textContent instead"


def test_every_module_is_served_as_javascript() -> None:
    """A module left off the allow-list is a 404 in the browser, and one sent with another type is refused."""
    served = {name for name, content_type in CONTENT_TYPES.items() if content_type == JAVASCRIPT}
    assert {path.relative_to(STATIC).as_posix() for path in MODULES} == served


@pytest.mark.parametrize("path", MODULES, ids=module_ids())
def test_imports_are_relative_static_and_allow_listed(path: Path) -> None:
    """Relative specifiers keep an API Gateway stage prefix; a bare or absolute one would miss it, and a dynamic
    import() would put the graph out of reach of this check."""
    source = path.read_text(encoding="utf-8")
    assert "import(" not in source
    for specifier in STATIC_IMPORT.findall(source):
        assert specifier.startswith("./"), specifier
        assert specifier.removeprefix("./") in CONTENT_TYPES, specifier


def test_the_page_loads_one_module_and_nothing_inline() -> None:
    page = (STATIC / "index.html").read_text(encoding="utf-8")
    scripts = re.findall(r"<script\b[^>]*>", page)
    assert scripts == ['<script type="module" src="console/console.js">']
    assert "</script>" in page and "<script>" not in page

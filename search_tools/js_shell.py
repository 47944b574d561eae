"""Is this HTML a JavaScript shell, a page whose article only a browser can draw? One lxml pass, no extraction.

``auto`` renders the pages this test flags; ``direct`` reports them (``likely_js_shell``)
so the caller knows the text it got is not the page. The rules, all for pages with
scripts:

* **little main text**: the body's text outside scripts, styles and page furniture
  (``nav``, ``header``, ``footer``, ``aside``, ``form``, ``noscript``, their ARIA roles,
  and plain divs whose id or class names them: menu, navbar, sidebar, cookie,
  consent, banner...) is shorter than ``min_chars``. A furniture element that holds
  most of the page's text is *not* discounted: an ASP.NET page wraps the whole
  article in a ``<form>``, some sites in a page-wide ``<header>`` or ``<aside>``, a
  few in ``<noscript>``;
* on a page with less than ``_SHORT`` characters of main text (a teaser, a cookie
  banner, chrome built from plain divs): an **empty application root** (``#app``,
  ``#root``, ``#__next``... holding nothing or a spinner) or a ``<noscript>`` that
  **asks for JavaScript**; with less than twice ``min_chars``: **inline scripts**
  ``_SCRIPT_RATIO`` times the size of the text (ordinary pages carry 16 KB of
  analytics next to a short article, so the ratio alone says little).
"""

from __future__ import annotations

import functools
import re
from typing import Any, NamedTuple

_IGNORED = frozenset({"script", "style", "template", "svg", "head", "title"})
_FURNITURE_TAGS = frozenset({"nav", "header", "footer", "aside", "form", "noscript"})
_FURNITURE_ROLES = frozenset({"banner", "navigation", "contentinfo", "complementary", "dialog", "alertdialog"})
_FURNITURE_NAMES = re.compile(
    r"(?:^|[\s_-])(?:header|nav|navbar|navigation|menu|footer|sidebar|cookies?|consent|banner|masthead)(?:[\s_-]|$)",
    re.IGNORECASE,
)
_APP_ROOTS = frozenset({"app", "root", "__next", "__nuxt", "react-root", "main-app", "application", "svelte", "ember"})
_NEEDS_JS = re.compile(
    r"(?:enable|turn on|activate|allow|requires?|needs?)\W+(?:\w+\W+){0,4}?javascript"
    r"|javascript\W+(?:is\W+)?(?:required|disabled|needed|must be enabled)",
    re.IGNORECASE,
)
_SHORT = 1500  # main text below this: the shell signals apply
SHELL_TEXT = _SHORT  # an extracted text at least this long is no shell (extraction skips the test)
_SPINNER = 40  # an application root with less text than this is empty (or "Loading…")
_SCRIPT_RATIO = 20
_MAX_ATTR = 200  # id and class values longer than this are not read (linear work on hostile markup)


def shell_signal(html: bytes | str, min_chars: int) -> str | None:
    """Why ``html`` looks like a JavaScript shell, or None when its text is in the HTML (or it has no scripts)."""
    import lxml.html
    from lxml import etree

    try:
        root = lxml.html.document_fromstring(html)
    except (etree.ParserError, ValueError):
        return None
    return shell_signal_of_tree(root, min_chars)


def looks_like_shell(html: bytes | str, min_chars: int) -> bool:
    """True when :func:`shell_signal` finds a reason."""
    return shell_signal(html, min_chars) is not None


def shell_signal_of_tree(root: Any, min_chars: int) -> str | None:
    """:func:`shell_signal` on a parsed lxml document (not modified, so extraction can reuse it).

    The walks are XPath queries (C): a Python walk builds a proxy object per element, which cost as much
    CPU as the rest of the extraction on ordinary pages; only candidates the queries pick are looked at here.
    """
    scripts = root.findall(".//script")
    if not scripts:
        return None
    body = root.find(".//body")
    if body is None:
        return "the page has scripts and no body"
    total = _text_len(body)
    main = total - _furniture_len(body, total)
    if main < min_chars:
        return f"{main} characters of text outside page furniture (scripts draw the rest)"
    if main >= _SHORT:
        return None
    for element in _queries().roots_or_noscript(body):  # document order, the body included
        if (element.get("id") or "")[:_MAX_ATTR].lower() in _APP_ROOTS and _text_len(element) < _SPINNER:
            return f"its application root #{element.get('id')} is empty"
        if element.tag == "noscript" and _NEEDS_JS.search((element.text_content() or "")[:2000]):
            return "it says JavaScript is needed"
    inline = sum(len(script.text or "") for script in scripts if not script.get("src"))
    if main < 2 * min_chars and inline >= _SCRIPT_RATIO * main:
        return f"{inline} bytes of inline script for {main} characters of text"
    return None


def _is_furniture(element: Any) -> bool:
    if element.tag in _FURNITURE_TAGS or (element.get("role") or "").lower() in _FURNITURE_ROLES:
        return True
    names = f"{(element.get('id') or '')[:_MAX_ATTR]} {(element.get('class') or '')[:_MAX_ATTR]}"
    return bool(names.strip()) and _FURNITURE_NAMES.search(names) is not None


def _furniture_len(body: Any, total: int) -> int:
    """Text in furniture that holds less than half of the page's text (outermost such elements only; nothing
    inside scripts, styles, templates... counts)."""
    queries = _queries()
    # Sets of elements (lxml gives one proxy per element while one is alive: these sets keep them alive).
    hidden = set(queries.hidden(body))
    discounted: set[Any] = set()
    length = 0
    for element in queries.furniture(body):  # document order: an element's ancestors come before it
        if element in hidden or not _is_furniture(element):
            continue
        if discounted and any(parent in discounted for parent in element.iterancestors()):
            continue
        size = _text_len(element)
        if size * 2 <= total:
            discounted.add(element)
            length += size
    return length


def _text_len(root: Any) -> int:
    """Characters of visible text under ``root`` (stripped runs; scripts, styles and templates below ``root``
    left out, their tails kept)."""
    if not isinstance(root.tag, str) or root.tag in _IGNORED:
        return 0
    queries = _queries()
    every = sum(len(text.strip()) for text in queries.texts(root))
    return every - sum(len(text.strip()) for text in queries.hidden_texts(root))


class _Queries(NamedTuple):
    texts: Any  # text nodes other than XML white space (their stripped length is 0 anyway)
    hidden_texts: Any  # ...of those, the ones inside scripts, styles, templates...
    furniture: Any  # elements _is_furniture may accept (a superset: it decides)
    hidden: Any  # elements inside scripts, styles, templates...
    roots_or_noscript: Any  # possible application roots (lower() never shortens an id) and noscripts


@functools.cache
def _queries() -> _Queries:
    """The compiled queries (lxml imported on first use: it stays off the server's start path)."""
    from lxml import etree

    def xpath(expression: str) -> Any:
        return etree.XPath(expression, smart_strings=False)  # plain strings: no proxy of each text's parent

    def under_ignored(step: str) -> str:
        return " | ".join(f".//{tag}//{step}" for tag in sorted(_IGNORED))

    # Unions of plain steps: libxml2 runs a name test far faster than a predicate on every element.
    root_id = f"[@id][string-length(@id) <= {max(map(len, _APP_ROOTS))}]"
    return _Queries(
        texts=xpath(".//text()[normalize-space()]"),
        hidden_texts=xpath(under_ignored("text()[normalize-space()]")),
        furniture=xpath(
            " | ".join([*(f".//{tag}" for tag in sorted(_FURNITURE_TAGS)), ".//*[@id or @class or @role]"])
        ),
        hidden=xpath(under_ignored("*")),
        roots_or_noscript=xpath(f"self::*{root_id} | .//*{root_id} | .//noscript"),
    )

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

import re
from typing import Any

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
    """:func:`shell_signal` on a parsed lxml document (not modified, so extraction can reuse it)."""
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
    for element in body.iter():
        if not isinstance(element.tag, str):
            continue
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
    """Text in furniture that holds less than half of the page's text (outermost such elements only)."""
    discounted = 0
    stack = list(body)
    while stack:
        element = stack.pop()
        if not isinstance(element.tag, str) or element.tag in _IGNORED:
            continue
        if _is_furniture(element):
            length = _text_len(element)
            if length * 2 <= total:
                discounted += length
                continue
        stack.extend(element)
    return discounted


def _text_len(root: Any) -> int:
    """Characters of visible text under ``root`` (stripped runs; scripts, styles and templates left out)."""
    total = 0
    stack = [root]
    while stack:
        element = stack.pop()
        if element is not root:
            total += len((element.tail or "").strip())
        if not isinstance(element.tag, str) or element.tag in _IGNORED:
            continue
        total += len((element.text or "").strip())
        stack.extend(element)
    return total

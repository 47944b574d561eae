"""Which requests a rendered page may make besides its own document (``fetch.browser_subresources``).

* ``all``: every request the address guard allows, except known trackers;
* ``same-site`` (default): requests to the document's own site (same registrable domain, or the same host for
  addresses and names without a public suffix), except known trackers;
* ``none``: nothing but the document (its inline scripts still run).

Images, media and fonts are not needed to read text and are skipped whatever the mode
(``fetch.browser_block``). The browser routes every request through :meth:`SubresourceRule.refusal` before it
leaves, and the guard proxy checks WebSocket and other tunnels against the same rule.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

SubresourceMode = Literal["all", "same-site", "none"]

# Registrable domains that only track, measure or serve ads: never needed to read a page.
TRACKERS = frozenset(
    {
        "google-analytics.com",
        "googletagmanager.com",
        "googletagservices.com",
        "doubleclick.net",
        "googlesyndication.com",
        "googleadservices.com",
        "facebook.net",
        "scorecardresearch.com",
        "hotjar.com",
        "segment.com",
        "segment.io",
        "mixpanel.com",
        "amplitude.com",
        "quantserve.com",
        "taboola.com",
        "outbrain.com",
        "criteo.com",
        "criteo.net",
        "adnxs.com",
        "chartbeat.com",
        "chartbeat.net",
        "nr-data.net",
        "clarity.ms",
        "adsrvr.org",
        "pubmatic.com",
        "rubiconproject.com",
        "moatads.com",
        "krxd.net",
        "bluekai.com",
        "demdex.net",
        "omtrdc.net",
        "branch.io",
        "onetrust.com",
        "cookielaw.org",
    }
)


def site_of(host: str) -> str:
    """The registrable domain of ``host`` (``news.bbc.co.uk`` -> ``bbc.co.uk``); an address or a name without a
    known public suffix is its own site."""
    from tld import get_fld

    host = host.strip("[]").rstrip(".").lower()
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return host
    found = get_fld(host, fix_protocol=True, fail_silently=True)
    return found if isinstance(found, str) else host


@dataclass(frozen=True)
class SubresourceRule:
    """The rule for one page: ``mode`` and the document's site."""

    mode: SubresourceMode
    site: str

    @classmethod
    def for_document(cls, mode: SubresourceMode, url: str) -> SubresourceRule:
        return cls(mode, site_of(urlsplit(url).hostname or ""))

    def refusal(self, url: str) -> str | None:
        """Why a request for ``url`` is not made, or None when it may be (non-network URLs always may)."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https", "ws", "wss"):
            return None
        return self.host_refusal(parts.hostname or "")

    def host_refusal(self, host: str) -> str | None:
        if self.mode == "none":
            return "the page may load nothing but its document"
        site = site_of(host)
        if site in TRACKERS:
            return f"{site} is a known tracker"
        if self.mode == "same-site" and site != self.site:
            return f"{site} is a third party to {self.site}"
        return None

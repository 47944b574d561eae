"""The safe fetcher: the only way Gen-Searcher reads a URL.

Guards, in order: http/https only; the URL host is checked for internal names
and every literal spelling of an internal address; robots.txt (per origin,
cached); a per-host concurrency limit. The connection itself goes through a
network backend that resolves the host, refuses if any resolved address is
internal, connects to the vetted address (TLS still verifies the host name)
and checks the peer address of the socket it got. Redirects are followed by
hand so every hop passes the same checks. Bodies are streamed with a byte cap
and the whole fetch runs under one deadline.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Awaitable, Callable, Collection
from typing import Any

import anyio
import httpcore
import httpx

from gen_searcher_core.errors import UserFacingError
from safe_io.bounded_decode import BoundedDecoder, DecodedTooLarge, DecodeError
from safe_io.fetch_protocol import FetchedPage as FetchedPage  # re-exported: importers read it from here
from safe_io.netguard import AddressPolicy, AddressRefused, check_host, check_ip, classify
from safe_io.robots import RobotsCache
from safe_io.settings import FetchSettings

Resolver = Callable[[str, int], Awaitable[list[str]]]
_REDIRECTS = {301, 302, 303, 307, 308}
_ROBOTS_MAX_BYTES = 512 * 1024


class FetchError(UserFacingError):
    """A fetch failed; ``str(error)`` is a clear message for a tool result."""


class InvalidUrl(FetchError):
    pass


class BlockedAddress(FetchError):
    pass


class RobotsDisallowed(FetchError):
    pass


class FetchTimeout(FetchError):
    pass


class TooLarge(FetchError):
    pass


class TooManyRedirects(FetchError):
    pass


class UnsupportedContentType(FetchError):
    pass


class HttpStatusError(FetchError):
    def __init__(self, url: str, status: int, reason: str = "") -> None:
        self.url = url
        self.status = status
        super().__init__(f"HTTP {status}{' ' + reason if reason else ''} from {url}")


class ConnectionFailed(FetchError):
    pass


class HostNotFound(ConnectionFailed):
    pass


async def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to, via the system resolver (off the event loop)."""
    try:
        infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise HostNotFound(f"cannot resolve host {host!r}: {exc.strerror or exc}") from None
    seen: list[str] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        addr = str(sockaddr[0])
        if addr not in seen:
            seen.append(addr)
    return seen


def check_peer(peer: Any, policy: AddressPolicy, host: str) -> None:
    """Refuse a connection whose socket ended up on an internal address.

    ``peer`` is the socket's remote ``(address, port, ...)``. The address was
    vetted before connecting, so this only fires when something between us and
    the network (a NAT rule, a transparent proxy, a rebinding trick) landed the
    connection elsewhere; the port is the peer's own, so an exception bound to
    one port cannot be borrowed by a connection that arrived at another.
    """
    if not peer:
        raise AddressRefused(f"refused: cannot verify the address connected to for {host}")
    try:
        ip = ipaddress.ip_address(str(peer[0]).split("%")[0])
        peer_port = int(peer[1]) if len(peer) > 1 else None
    except (ValueError, TypeError):
        raise AddressRefused(f"refused: unreadable peer address {peer!r} for {host}") from None
    if policy.allow_private or policy.is_excepted(ip, peer_port):
        return
    reason = classify(ip)
    if reason is not None:
        raise AddressRefused(f"refused: the connection for {host} reached {ip}, which is {reason}")


class GuardedNetworkBackend(httpcore.AsyncNetworkBackend):
    """Resolves, vets and pins the address of every TCP connection httpcore opens."""

    def __init__(
        self, policy: AddressPolicy, resolver: Resolver, inner: httpcore.AsyncNetworkBackend | None = None
    ) -> None:
        self._policy = policy
        self._resolver = resolver
        self._inner = inner if inner is not None else httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's AsyncNetworkBackend signature
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            check_host(host, self._policy, port)
            addresses = await self._resolver(host, port)
            if not addresses:
                raise ConnectionFailed(f"host {host!r} resolves to no address")
            ips = [ipaddress.ip_address(a) for a in addresses]
            for ip in ips:  # any internal answer refuses the host (defeats mixed or rebinding answers)
                check_ip(ip, self._policy, port, host)
        except AddressRefused as exc:
            raise BlockedAddress(str(exc)) from None
        last_error: Exception | None = None
        for ip in ips:
            try:
                stream = await self._inner.connect_tcp(
                    str(ip), port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last_error = exc
                continue
            try:
                check_peer(stream.get_extra_info("server_addr"), self._policy, host)
            except AddressRefused as exc:
                await stream.aclose()
                raise BlockedAddress(str(exc)) from None
            return stream
        assert last_error is not None
        raise last_error

    async def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        raise BlockedAddress("refused: unix sockets are not reachable through the fetcher")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx transport whose connection pool uses :class:`GuardedNetworkBackend`."""

    def __init__(self, backend: GuardedNetworkBackend, *, max_connections: int = 100) -> None:
        super().__init__(trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=max_connections,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=backend,
        )


def _origin(url: httpx.URL) -> str:
    default = {"http": 80, "https": 443}[url.scheme]
    port = f":{url.port}" if url.port not in (None, default) else ""
    host = f"[{url.host}]" if ":" in url.host else url.host
    return f"{url.scheme}://{host}{port}"


def _media_type(header: str | None) -> tuple[str, str | None]:
    if not header:
        return "", None
    parts = [p.strip() for p in header.split(";")]
    charset = None
    for param in parts[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            charset = value.strip().strip('"') or None
    return parts[0].lower(), charset


def _translate(exc: httpx.HTTPError, url: httpx.URL) -> FetchError:
    """The caller's error for an httpx failure while fetching ``url``."""
    if isinstance(exc, httpx.TimeoutException):
        return FetchTimeout(f"timed out fetching {url}")
    if isinstance(exc, httpx.RemoteProtocolError) and "location header" in str(exc).lower():
        return InvalidUrl(f"redirect from {url}: refused an invalid redirect target ({exc})")  # httpx parses it
    if isinstance(exc, httpx.DecodingError):
        return ConnectionFailed(f"could not decode the response from {url}: {exc}")
    return ConnectionFailed(f"could not fetch {url}: {exc or type(exc).__name__}")


class GuardedFetcher:
    """Safe HTTP(S) GETs under the fetch settings; one instance per server, closed with ``aclose``."""

    def __init__(
        self,
        *,
        user_agent: str,
        policy: AddressPolicy,
        max_bytes: int = 5 * 1024 * 1024,
        timeout_s: float = 20.0,
        max_redirects: int = 5,
        respect_robots: bool = True,
        per_host_concurrency: int = 4,
        resolver: Resolver = system_resolver,
        robots_ttl_s: float = 3600.0,
        robots_timeout_s: float = 5.0,
    ) -> None:
        self.user_agent = user_agent
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s
        self.max_redirects = max_redirects
        self.respect_robots = respect_robots
        # Below the fetch deadline, so a robots.txt that never answers is a (cached) failure, not a timeout.
        self.robots_timeout_s = min(robots_timeout_s, timeout_s / 2)
        self._per_host = per_host_concurrency
        self._policy = policy
        self._host_limits: dict[str, anyio.Semaphore] = {}
        transport = GuardedTransport(GuardedNetworkBackend(policy, resolver))
        self._client = httpx.AsyncClient(
            transport=transport,
            follow_redirects=False,
            trust_env=False,
            timeout=httpx.Timeout(timeout_s, connect=min(10.0, timeout_s)),
            headers={"User-Agent": user_agent, "Accept-Encoding": "gzip, deflate"},
        )
        self._robots = RobotsCache(
            self._load_robots, user_agent, ttl_s=robots_ttl_s, passthrough=(BlockedAddress, InvalidUrl, HostNotFound)
        )

    @classmethod
    def from_settings(cls, fetch_settings: FetchSettings, resolver: Resolver = system_resolver) -> GuardedFetcher:
        """Build from the ``[fetch]`` section."""
        return cls(
            user_agent=fetch_settings.user_agent,
            policy=AddressPolicy.from_strings(fetch_settings.allow_private_networks, fetch_settings.allowed_addresses),
            max_bytes=fetch_settings.max_bytes,
            timeout_s=fetch_settings.timeout_s,
            max_redirects=fetch_settings.max_redirects,
            respect_robots=fetch_settings.respect_robots,
            per_host_concurrency=fetch_settings.per_host_concurrency,
            resolver=resolver,
            robots_ttl_s=fetch_settings.robots_ttl_s,
            robots_timeout_s=fetch_settings.robots_timeout_s,
        )

    @property
    def guard_key(self) -> str:
        """The settings that decide what this fetcher may read, for cache keys: a page cached under a
        looser guard (private networks allowed, robots off) is never served under a stricter one."""
        allowed = ",".join(sorted(f"{net}:{port or '*'}" for net, port in self._policy.allowed))
        return f"private={int(self._policy.allow_private)};allowed={allowed};robots={int(self.respect_robots)}"

    async def aclose(self) -> None:
        await self._client.aclose()

    async def fetch(
        self,
        url: str,
        *,
        accept: Collection[str] | None = None,
        max_bytes: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> FetchedPage:
        """GET ``url`` under every guard.

        ``accept``: media types the caller can use; any other declared type is
        refused before the body is read (a missing Content-Type is let through).
        """
        headers = dict(headers or {})
        if accept is not None and "accept" not in {k.lower() for k in headers}:
            headers["Accept"] = ", ".join(sorted(t for t in accept if "octet-stream" not in t)) + ", */*;q=0.1"
        try:
            with anyio.fail_after(self.timeout_s):
                return await self._fetch(url, accept, max_bytes or self.max_bytes, headers, robots=True)
        except TimeoutError:
            raise FetchTimeout(f"timed out after {self.timeout_s:g} s fetching {url}") from None

    # -- internals ---------------------------------------------------------
    def _validate(self, raw: str | httpx.URL) -> httpx.URL:
        try:
            url = httpx.URL(raw)
        except (httpx.InvalidURL, TypeError, ValueError) as exc:
            shown = str(raw) if len(str(raw)) <= 300 else str(raw)[:300] + "…"
            raise InvalidUrl(f"invalid URL {shown!r}: {exc}") from None
        if url.scheme not in ("http", "https"):
            shown = url.scheme or "none"
            raise InvalidUrl(f"only http and https URLs can be fetched (scheme: {shown}) in {str(raw)!r}")
        if not url.host:
            raise InvalidUrl(f"the URL {str(raw)!r} has no host")
        if url.userinfo:
            raise InvalidUrl("URLs with credentials (user:password@) are not fetched")
        try:
            check_host(url.host, self._policy, url.port or (443 if url.scheme == "https" else 80))
        except AddressRefused as exc:
            raise BlockedAddress(f"{exc} (URL {raw!s})") from None
        return url

    def _host_limit(self, host: str) -> anyio.Semaphore:
        limit = self._host_limits.get(host)
        if limit is None:
            if len(self._host_limits) > 4096:  # forget idle hosts
                for key in [k for k, s in self._host_limits.items() if s.value == self._per_host]:
                    del self._host_limits[key]
            limit = self._host_limits[host] = anyio.Semaphore(self._per_host)
        return limit

    async def _fetch(
        self, raw_url: str, accept: Collection[str] | None, max_bytes: int, headers: dict[str, str], *, robots: bool
    ) -> FetchedPage:
        """One GET, following redirects by hand: every hop is validated, robots-checked and host-limited."""
        url = self._validate(raw_url)
        hops: list[str] = []
        while True:
            if robots and self.respect_robots:
                allowed, why = await self._robots.check(_origin(url), str(url))
                if not allowed:
                    raise RobotsDisallowed(f"{why}: {url}")
            async with self._host_limit(url.host):
                try:
                    async with self._client.stream("GET", url, headers=headers) as response:
                        location = response.headers.get("location")
                        if response.status_code not in _REDIRECTS or not location:
                            return await self._page(response, url, accept, max_bytes, tuple(hops))
                except httpx.HTTPError as exc:
                    raise _translate(exc, url) from None
                except httpx.InvalidURL as exc:  # httpx parses a redirect's Location itself (javascript:, data:)
                    raise InvalidUrl(
                        f"redirect from {url}: refused a redirect target that is not a valid http(s) URL ({exc})"
                    ) from None
            if len(hops) >= self.max_redirects:
                raise TooManyRedirects(f"more than {self.max_redirects} redirects starting from {raw_url}")
            hops.append(str(url))
            try:
                target = url.join(location)
            except (httpx.InvalidURL, ValueError) as exc:  # e.g. an over-long data: URL, control characters
                raise InvalidUrl(f"redirect from {hops[-1]}: refused an invalid redirect target ({exc})") from None
            try:
                url = self._validate(target)
            except FetchError as exc:
                raise type(exc)(f"redirect from {hops[-1]}: {exc}") from None

    async def _page(
        self,
        response: httpx.Response,
        url: httpx.URL,
        accept: Collection[str] | None,
        max_bytes: int,
        hops: tuple[str, ...],
    ) -> FetchedPage:
        """The final response: status, declared type and size checked before the capped body is read."""
        if response.status_code >= 300:
            raise HttpStatusError(str(url), response.status_code, response.reason_phrase)
        media_type, charset = _media_type(response.headers.get("content-type"))
        if accept is not None and media_type and media_type not in accept:
            raise UnsupportedContentType(
                f"unsupported content type {media_type} at {url} (supported: {', '.join(sorted(accept))})"
            )
        declared = response.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > max_bytes:
            raise TooLarge(f"{url} is {int(declared)} bytes, over the limit of {max_bytes} bytes")
        body = await self._read_capped(response, max_bytes, url)
        return FetchedPage(
            url=str(url),
            status=response.status_code,
            media_type=media_type,
            charset=charset,
            body=body,
            redirects=hops,
            headers={k.lower(): v for k, v in response.headers.items()},
        )

    @staticmethod
    async def _read_capped(response: httpx.Response, max_bytes: int, url: httpx.URL) -> bytes:
        """The body, decoded here rather than by httpx so every Content-Encoding layer is capped as it streams."""
        try:
            decoder = BoundedDecoder(response.headers.get("content-encoding"), max_bytes)
        except DecodeError as exc:
            raise ConnectionFailed(f"could not decode the response from {url}: {exc}") from None
        chunks: list[bytes] = []
        raw_size = size = 0
        try:
            async for raw in response.aiter_raw():
                raw_size += len(raw)
                if raw_size > max_bytes:
                    raise TooLarge(f"{url} is larger than the limit of {max_bytes} bytes")
                for piece in decoder.feed(raw):
                    size += len(piece)
                    if size > max_bytes:
                        raise TooLarge(f"{url} is larger than the limit of {max_bytes} bytes")
                    chunks.append(piece)
        except DecodedTooLarge as exc:
            raise TooLarge(
                f"{url} is larger than the limit of {max_bytes} bytes once decompressed"
                f" (stopped in its {exc.layer} layer; a compression bomb?)"
            ) from None
        except DecodeError as exc:
            raise ConnectionFailed(f"could not decode the response from {url}: {exc}") from None
        return b"".join(chunks)

    async def _load_robots(self, origin: str) -> tuple[int, str]:
        try:
            with anyio.fail_after(self.robots_timeout_s):
                page = await self._fetch(origin + "/robots.txt", None, _ROBOTS_MAX_BYTES, {}, robots=False)
        except TimeoutError:
            raise FetchTimeout(f"no answer within {self.robots_timeout_s:g} s") from None
        except HttpStatusError as exc:
            return exc.status, ""
        except TooLarge:
            raise ConnectionFailed(f"robots.txt is over {_ROBOTS_MAX_BYTES} bytes") from None
        return page.status, page.body.decode(page.charset or "utf-8", errors="replace")

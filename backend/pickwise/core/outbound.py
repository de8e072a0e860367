"""Requests the server makes to URLs that admins typed (webhooks, chat endpoints): no SSRF.

Such a URL could name the cloud metadata service (169.254.169.254), an admin port on
localhost or the database. Unless `PICKWISE_OUTBOUND_ALLOW_PRIVATE` allows it (the default
outside production, where Ollama or vLLM on localhost is normal and the tests use loopback
servers), addresses that are not globally routable are refused twice:

- when the URL is saved (`check_url`): an IP literal, `localhost`, or a name that resolves
  to such an address is a 422 naming the field;
- when the request is sent: the connection resolves the name itself, checks every address it
  gets and connects to a checked address, never to a name, so a DNS answer that changes after
  the save (DNS rebinding) cannot reach inside either. httpx clients (`outbound_client`) do it
  in `GuardedBackend`; the aiohttp sessions that stream chat replies (`outbound_session`) in
  `GuardedConnector`.
"""

import asyncio
import ipaddress
import socket
import urllib.request
from typing import Any

import aiohttp
import httpcore
import httpx
from aiohttp.abc import AbstractResolver, ResolveResult

from pickwise.core.config import Settings, get_settings
from pickwise.core.errors import InvalidInput

SAVE_TIME_DNS_TIMEOUT = 3.0
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class OutboundAddressRefused(httpcore.ConnectError):
    """The host resolves to an address outbound requests may not reach (httpx)."""


class RefusedAddress(OSError):
    """The same for aiohttp, whose connector wraps an OSError from resolving in its own error."""


def private_allowed(settings: Settings | None = None) -> bool:
    settings = settings or get_settings()
    if settings.outbound_allow_private is not None:
        return settings.outbound_allow_private
    return settings.environment != "production"


def refused_reason(address: str) -> str | None:
    """Why requests to this IP address are refused, or None when it is public."""
    ip: IPAddress = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address (cloud metadata lives there)"
    if ip.is_unspecified or ip.is_multicast or ip.is_reserved:
        return "not a unicast address"
    if ip.is_private or not ip.is_global:
        return "a private address"
    return None


def _ip_literal(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return None


async def _resolve(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _refusal(field: str, host: str, address: str, reason: str) -> InvalidInput:
    where = host if host == address else f"{host} ({address})"
    return InvalidInput(
        f"{where} is {reason}; the server does not send requests there "
        "(PICKWISE_OUTBOUND_ALLOW_PRIVATE=true allows it)",
        field=field,
    )


async def check_url(url: str, field: str, settings: Settings | None = None) -> None:
    """Refuses (422, naming `field`) a URL whose host is or resolves to a non-public address.

    A name that does not resolve now is accepted: the send-time check covers it."""
    if private_allowed(settings):
        return
    parsed = httpx.URL(url)
    host = parsed.host
    literal = _ip_literal(host)
    if literal is not None:
        addresses = [literal]
    elif host == "localhost" or host.endswith(".localhost"):
        raise _refusal(field, host, host, "a loopback address")
    else:
        try:
            async with asyncio.timeout(SAVE_TIME_DNS_TIMEOUT):
                addresses = await _resolve(host, parsed.port or 443)
        except (OSError, TimeoutError):
            return
    for address in addresses:
        reason = refused_reason(address)
        if reason is not None:
            raise _refusal(field, host, address, reason)


def _refused(host: str, addresses: list[str]) -> str | None:
    """Why a connection to `host` at these addresses is refused, or None."""
    for address in addresses:
        reason = refused_reason(address)
        if reason is not None:
            return (
                f"{host} resolves to {address}, {reason}; refused "
                "(PICKWISE_OUTBOUND_ALLOW_PRIVATE=true allows it)"
            )
    return None


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves each host once, refuses it if any address is not public, connects by IP."""

    def __init__(self, inner: httpcore.AsyncNetworkBackend) -> None:
        self.inner = inner

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await _resolve(host, port)
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        refusal = _refused(host, addresses)
        if refusal is not None:
            raise OutboundAddressRefused(refusal)
        problem: Exception | None = None
        for address in addresses:
            try:
                return await self.inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                problem = exc
        assert problem is not None, "getaddrinfo gives at least one address or fails"
        raise problem

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        raise OutboundAddressRefused("unix sockets are refused")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport whose connections go through `GuardedBackend`.

    Giving a client a transport also stops httpx from using HTTP(S)_PROXY from the
    environment, which would otherwise connect to the proxy and let it resolve the name."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        pool = self._pool
        pool._network_backend = GuardedBackend(pool._network_backend)


def outbound_client(settings: Settings | None = None, **kwargs: Any) -> httpx.AsyncClient:
    """An httpx client for requests to admin-typed URLs: guarded unless private is allowed.

    `limits` and the other transport options go to the guarded transport when there is one."""
    if private_allowed(settings):
        return httpx.AsyncClient(**kwargs)
    limits = kwargs.pop("limits", None)
    transport = GuardedTransport(**({"limits": limits} if limits is not None else {}))
    return httpx.AsyncClient(transport=transport, **kwargs)


class GuardedConnector(aiohttp.TCPConnector):
    """aiohttp's connector that refuses a host if any address it resolves to is not public.

    Every connection asks `_resolve_host` for the addresses to connect to (an IP literal is
    answered without a lookup, a name through the resolver or its cache) and connects to one
    of them, never to the name: checking its answer covers literals, names and rebinding."""

    async def _resolve_host(
        self,
        host: str,
        port: int,
        traces: Any = None,
    ) -> list[ResolveResult]:
        results = await super()._resolve_host(host, port, traces)
        problem = _refused(host, [str(result["host"]) for result in results])
        if problem is not None:
            raise RefusedAddress(problem)
        return results


def outbound_session(
    settings: Settings | None = None,
    *,
    connections: int = 100,
    resolver: AbstractResolver | None = None,
) -> aiohttp.ClientSession:
    """An aiohttp session for requests to admin-typed URLs: guarded unless private is allowed.

    Without the guard it reads HTTP(S)_PROXY from the environment as httpx does; with it the
    proxy is never used (the proxy would resolve the name). `resolver` replaces aiohttp's
    name lookup (tests answer with the addresses they need)."""
    guarded = not private_allowed(settings)
    connector_type = GuardedConnector if guarded else aiohttp.TCPConnector
    connector = connector_type(limit=connections, limit_per_host=0, resolver=resolver)
    return aiohttp.ClientSession(connector=connector, trust_env=not guarded and _proxy_in_env())


def _proxy_in_env() -> bool:
    # A session that trusts the environment looks the proxy up again for every request, in
    # a thread (reading ~/.netrc too): with hundreds of replies a minute that thread hop was
    # a few per cent of a worker's time, and a thread competing for the GIL. Without a proxy
    # set there is nothing to find.
    return any(scheme in ("http", "https") for scheme in urllib.request.getproxies())


def is_refused_address(exc: BaseException) -> bool:
    """True when an httpx or aiohttp error comes from the guard refusing the address."""
    refused = (OutboundAddressRefused, RefusedAddress)
    return isinstance(exc.__cause__, refused) or isinstance(exc.__context__, refused)

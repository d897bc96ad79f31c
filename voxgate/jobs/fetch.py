"""Outbound HTTP for jobs — fetching an ``audioUri``, posting a callback — where the client picks the URL.

A URL chosen by a client is an attack on the server's own network unless checked (SSRF): ``http://169.254.169.254/``
(cloud metadata), ``http://localhost:6379/``, an intranet name. So, unless the operator allows it:

* **https only** (``job_url_allow_http``);
* **public addresses only** (``job_url_allow_private``): the host name is resolved first and every address it
  resolves to must be public (not private, loopback, link-local, multicast, reserved, shared or unspecified; IPv4
  mapped into IPv6 is judged as the IPv4 it is);
* **the checked address is the one connected to**: the request goes to that IP, with the name in ``Host`` and in TLS
  (SNI and certificate check), so a DNS answer that changes between the check and the connection (rebinding) changes
  nothing;
* **no redirects** (a 3xx is an error: its target would escape the checks), no proxies from the environment, no
  cookies or credentials; a **size cap** (Content-Length first, then while reading) and a **total timeout**.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import anyio
import anyio.to_thread
import httpx

from voxgate.errors import InvalidRequest, PayloadTooLarge

__all__ = ["UrlPolicy", "UrlRefused", "fetch", "post", "resolve"]

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UrlRefused(InvalidRequest):
    """A URL the policy does not allow, or one that could not be fetched."""


@dataclass(frozen=True, slots=True)
class UrlPolicy:
    allow_http: bool = False
    allow_private: bool = False
    max_bytes: int = 512 * 1024 * 1024
    timeout: float = 60.0


@dataclass(frozen=True, slots=True)
class Target:
    """A URL checked against the policy, and the address it will be reached at."""

    url: httpx.URL
    host: str
    address: IpAddress

    def pinned(self) -> httpx.URL:
        return self.url.copy_with(host=str(self.address))


def public(address: IpAddress) -> bool:
    """Whether an address is on the public internet (what a client may make the server reach)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not (address.is_multicast or address.is_reserved or address.is_unspecified)


async def resolve(url: str, policy: UrlPolicy) -> Target:
    """Check ``url`` against ``policy`` and resolve its host; :class:`UrlRefused` says why not."""
    shown = url[:200]
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UrlRefused(f"{shown!r} is not a valid URL: {exc}") from None
    schemes = ("https", "http") if policy.allow_http else ("https",)
    if parts.scheme not in schemes:
        raise UrlRefused(f"{shown!r}: only {' and '.join(schemes)} URLs are fetched (VOXGATE_JOB_URL_ALLOW_HTTP)")
    if parts.username is not None or parts.password is not None:
        raise UrlRefused(f"{shown!r}: credentials in URLs are not sent")
    host = parts.hostname
    if not host:
        raise UrlRefused(f"{shown!r} names no host")
    default = 443 if parts.scheme == "https" else 80
    try:
        literal: IpAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    else:
        try:
            infos = await anyio.to_thread.run_sync(
                lambda: socket.getaddrinfo(host, port or default, type=socket.SOCK_STREAM)
            )
        except (OSError, UnicodeError) as exc:
            raise UrlRefused(f"{shown!r}: cannot resolve {host!r} ({exc})") from None
        addresses = list(dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos))
        if not addresses:
            raise UrlRefused(f"{shown!r}: {host!r} resolves to no address")
    if not policy.allow_private:
        refused = [a for a in addresses if not public(a)]
        if refused:
            raise UrlRefused(
                f"{shown!r}: {host!r} resolves to {refused[0]}, which is not a public address "
                "(the operator can allow private addresses with VOXGATE_JOB_URL_ALLOW_PRIVATE)"
            )
    return Target(httpx.URL(url), host, addresses[0])


def _client(policy: UrlPolicy) -> httpx.AsyncClient:
    return httpx.AsyncClient(follow_redirects=False, trust_env=False, timeout=httpx.Timeout(policy.timeout))


def _request(
    client: httpx.AsyncClient, method: str, target: Target, body: bytes = b"", headers: Mapping[str, str] | None = None
) -> httpx.Request:
    """A request to the pinned address, the name in ``Host`` and in TLS (SNI, and the certificate's check)."""
    extensions = {"sni_hostname": target.host} if target.url.scheme == "https" else {}
    sent = {**(headers or {}), "Host": target.url.netloc.decode("ascii"), "User-Agent": "voxgate"}
    return client.build_request(method, target.pinned(), content=body or None, headers=sent, extensions=extensions)


async def fetch(url: str, policy: UrlPolicy) -> bytes:
    """The body at ``url`` (GET), within the policy's checks, size cap and total timeout."""
    target = await resolve(url, policy)
    shown = url[:200]
    with anyio.move_on_after(policy.timeout) as scope:
        try:
            async with _client(policy) as client:
                response = await client.send(_request(client, "GET", target), stream=True)
                try:
                    if response.is_redirect:
                        raise UrlRefused(f"{shown!r} answered with a redirect ({response.status_code}): not followed")
                    if response.status_code != 200:
                        raise UrlRefused(f"{shown!r} answered HTTP {response.status_code}")
                    length = response.headers.get("content-length", "")
                    if length.isdigit() and int(length) > policy.max_bytes:
                        raise PayloadTooLarge(f"{shown!r} holds {length} bytes, over the limit of {policy.max_bytes}")
                    body = bytearray()
                    async for chunk in response.aiter_bytes():
                        body += chunk
                        if len(body) > policy.max_bytes:
                            raise PayloadTooLarge(f"{shown!r} holds more than the limit of {policy.max_bytes} bytes")
                    return bytes(body)
                finally:
                    await response.aclose()
        except httpx.HTTPError as exc:
            raise UrlRefused(f"{shown!r} could not be fetched: {type(exc).__name__}: {exc}") from None
    assert scope.cancelled_caught
    raise UrlRefused(f"{shown!r} took longer than {policy.timeout:g} s to fetch (VOXGATE_JOB_FETCH_TIMEOUT_SECONDS)")


async def post(url: str, body: bytes, headers: Mapping[str, str], policy: UrlPolicy) -> int:
    """POST ``body`` to ``url`` within the policy's checks and timeout; the status code (a redirect is not followed,
    and counts as a failure for the caller to judge)."""
    target = await resolve(url, policy)
    with anyio.fail_after(policy.timeout):
        try:
            async with _client(policy) as client:
                response = await client.send(_request(client, "POST", target, body, headers))
                return response.status_code
        except httpx.HTTPError as exc:
            raise UrlRefused(f"{url[:200]!r}: {type(exc).__name__}: {exc}") from None

"""``web_fetch``: read a web page (http/https) as Markdown.

- Only ``http`` and ``https``; at most ``max_redirects`` redirects, each one checked again.
- No requests to private, loopback, link-local, multicast or reserved addresses (the cloud
  metadata service at 169.254.169.254, localhost, your LAN): each host name is resolved here and
  every address it resolves to is checked; the connection then goes to the checked address (the
  name stays in the Host header and TLS SNI), so a second DNS answer cannot slip past the check.
  ``allow_hosts`` opens named hosts or networks (``"localhost"``, ``"10.0.0.0/8"``) on purpose.
- HTML becomes Markdown (``markdownify`` over BeautifulSoup; scripts and styles dropped); other
  text (plain, JSON, XML, ...) is returned as it is; anything else (images, PDFs, archives) is a
  clear error. Bodies are read up to ``max_bytes`` and the whole fetch ends at ``timeout``.
- Proxies from the environment are not used (they would bypass the address check); a CA bundle
  from the environment (``SSL_CERT_FILE`` / ``SSL_CERT_DIR``, as behind a company's
  TLS-inspecting proxy) is trusted, else the public CAs (certifi).

It is not read-only (a URL can carry data out), so ``ask`` mode asks before each fetch. It is not
among ``coding_tools()``: the TUI and ``gemma-agent run`` add it; evals leave it off unless asked.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
import ssl
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import httpx
from pydantic import BaseModel, Field

from ...errors import ConfigError
from ..base import Tool, ToolContext
from ..errors import ToolError

TEXT_TYPES = (
    "application/json",
    "application/xml",
    "application/xhtml+xml",
    "application/javascript",
    "application/ld+json",
    "application/rss+xml",
    "application/atom+xml",
    "application/x-yaml",
    "application/yaml",
    "application/toml",
)
_IP = ipaddress.IPv4Address | ipaddress.IPv6Address
_NET = ipaddress.IPv4Network | ipaddress.IPv6Network
_USER_AGENT = "gemma-agent web_fetch (+https://github.com/google/gemma)"


class WebFetchArgs(BaseModel):
    url: str = Field(description="The http(s) URL to read.")
    max_chars: Annotated[int, Field(ge=100, le=200_000)] = Field(
        default=20_000, description="Cut the returned text at this many characters."
    )


class WebFetch(Tool):
    """Fetch a web page (http or https) and return it as Markdown: the page's title and its
    readable text with headings, links and lists. Text formats (JSON, XML, plain text) come back
    as they are; binary content (images, PDF, archives) is refused. Local and private network
    addresses are not reachable."""

    name = "web_fetch"
    Args = WebFetchArgs
    timeout = 60.0

    def __init__(
        self,
        *,
        allow_hosts: Sequence[str] = (),
        max_redirects: int = 5,
        max_bytes: int = 5 * 1024 * 1024,
        fetch_timeout: float = 30.0,
    ) -> None:
        """``allow_hosts``: host names or IP networks that may be private (e.g. ``"localhost"``,
        ``"127.0.0.1"``, ``"10.0.0.0/8"``). ``fetch_timeout``: seconds for the whole fetch."""
        super().__init__()
        self.allow_names = {h.lower().rstrip(".") for h in allow_hosts if not _is_network(h)}
        self.allow_nets: list[_NET] = [
            ipaddress.ip_network(h, strict=False) for h in allow_hosts if _is_network(h)
        ]
        self.max_redirects = max_redirects
        self.max_bytes = max_bytes
        self.fetch_timeout = fetch_timeout

    async def execute(self, args: WebFetchArgs, ctx: ToolContext[Any]) -> str:
        try:
            async with asyncio.timeout(self.fetch_timeout):
                url, content_type, body, cut = await self._fetch(args.url)
        except TimeoutError:
            raise ToolError(
                f"{args.url}: no complete answer within {self.fetch_timeout:g} s"
            ) from None
        text = _to_text(url, content_type, body)
        if cut:
            text += f"\n\n[the page is larger than {self.max_bytes:,} bytes: cut there]"
        if len(text) > args.max_chars:
            text = text[: args.max_chars] + f"\n\n[cut at {args.max_chars:,} characters]"
        return text

    async def _fetch(self, url: str) -> tuple[httpx.URL, str, bytes, bool]:
        current = _parse(url)
        async with httpx.AsyncClient(
            follow_redirects=False,
            trust_env=False,  # a proxy would connect for us, past the address check
            verify=_tls_context(),
            timeout=httpx.Timeout(self.fetch_timeout),
            headers={"User-Agent": _USER_AGENT, "Accept": "text/html, text/*;q=0.9, */*;q=0.5"},
        ) as client:
            for _hop in range(self.max_redirects + 1):
                address = await self._checked_address(current)
                request = client.build_request(
                    "GET",
                    current.copy_with(host=address),
                    headers={"Host": _host_header(current)},
                    extensions={"sni_hostname": current.host},
                )
                try:
                    response = await client.send(request, stream=True)
                except httpx.HTTPError as e:
                    raise ToolError(
                        f"{current}: {type(e).__name__}: {e or 'request failed'}"
                    ) from e
                try:
                    if response.is_redirect:
                        location = response.headers.get("location", "")
                        if not location:
                            raise ToolError(f"{current}: redirect without a Location")
                        current = _parse(str(current.join(location)))
                        continue
                    if response.status_code >= 400:
                        raise ToolError(
                            f"{current}: HTTP {response.status_code} {response.reason_phrase}"
                        )
                    content_type = response.headers.get("content-type", "")
                    _check_type(current, content_type)
                    body, cut = await _read(response, self.max_bytes)
                    return current, content_type, body, cut
                finally:
                    await response.aclose()
        raise ToolError(f"{url}: more than {self.max_redirects} redirects")

    async def _checked_address(self, url: httpx.URL) -> str:
        """The address to connect to: every address of the host must be allowed."""
        host = url.host.lower().rstrip(".")
        try:
            literal: _IP | None = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None:
            addresses = [literal]
        else:
            port = url.port or (443 if url.scheme == "https" else 80)
            try:
                infos = await asyncio.get_running_loop().getaddrinfo(
                    host, port, type=socket.SOCK_STREAM
                )
            except OSError as e:
                raise ToolError(f"{url}: cannot resolve {host} ({e})") from e
            found = dict.fromkeys(ipaddress.ip_address(i[4][0]) for i in infos)
            addresses = sorted(found, key=lambda a: a.version)  # IPv4 first
            if not addresses:
                raise ToolError(f"{url}: {host} has no address")
        for address in addresses:
            why = _private(address)
            if why and host not in self.allow_names and not self._allowed(address):
                shown = "" if literal is not None else f" resolves to {address}, which"
                raise ToolError(
                    f"{url}: refused: {host}{shown} is a {why} address; web_fetch reads only "
                    "public addresses (allow_hosts opens others)"
                )
        return str(addresses[0])

    def _allowed(self, address: _IP) -> bool:
        return any(address in net for net in self.allow_nets if net.version == address.version)


def _tls_context() -> ssl.SSLContext:
    """The CA bundle in ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` when set (as httpx would read it,
    had the environment not been turned off for proxies), else the public CAs (certifi)."""
    cafile, capath = os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR")
    if cafile or capath:
        return ssl.create_default_context(cafile=cafile or None, capath=capath or None)
    import certifi

    return ssl.create_default_context(cafile=certifi.where())


def _is_network(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return True


def _private(address: _IP) -> str:
    """Why an address is not public ("" when it is)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return _private(address.ipv4_mapped)
    for attr, why in (
        ("is_unspecified", "unspecified"),
        ("is_loopback", "loopback"),
        ("is_link_local", "link-local"),
        ("is_private", "private"),
        ("is_multicast", "multicast"),
        ("is_reserved", "reserved"),
    ):
        if getattr(address, attr):
            return why
    if not address.is_global:
        return "non-public"
    return ""


def _parse(url: str) -> httpx.URL:
    try:
        parsed = httpx.URL(url.strip())
    except (httpx.InvalidURL, TypeError) as e:
        raise ToolError(f"{url!r} is not a valid URL ({e})") from e
    if parsed.scheme not in ("http", "https"):
        raise ToolError(f"{url!r}: web_fetch reads only http and https URLs")
    if not parsed.host:
        raise ToolError(f"{url!r}: the URL has no host")
    return parsed


def _host_header(url: httpx.URL) -> str:
    host = url.host if ":" not in url.host else f"[{url.host}]"
    return host if url.port is None else f"{host}:{url.port}"


def _check_type(url: httpx.URL, content_type: str) -> None:
    mime = content_type.split(";")[0].strip().lower()
    if not mime or mime.startswith("text/") or mime in TEXT_TYPES or mime.endswith("+json"):
        return
    if mime.endswith("+xml"):
        return
    raise ToolError(
        f"{url}: the content is {mime}, not text; web_fetch reads web pages and text formats "
        "only (download binary files with run_shell when the network is on)"
    )


async def _read(response: httpx.Response, limit: int) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            return b"".join(chunks)[:limit], True
    return b"".join(chunks), False


def _to_text(url: httpx.URL, content_type: str, body: bytes) -> str:
    mime = content_type.split(";")[0].strip().lower()
    charset = "utf-8"
    for part in content_type.split(";")[1:]:
        key, _, value = part.strip().partition("=")
        if key.lower() == "charset" and value:
            charset = value.strip("\"'")
    looks_html = mime in ("text/html", "application/xhtml+xml") or (
        not mime and body.lstrip()[:15].lower().startswith((b"<!doctype html", b"<html"))
    )
    if not looks_html:
        try:
            return body.decode(charset, errors="replace")
        except LookupError:
            return body.decode("utf-8", errors="replace")
    return html_to_markdown(body, url=str(url))


def html_to_markdown(html: bytes | str, *, url: str = "") -> str:
    """A page as Markdown: title, then the body without scripts, styles and navigation chrome."""
    from bs4 import BeautifulSoup
    from markdownify import MarkdownConverter

    soup = BeautifulSoup(html, "html.parser")
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    for tag in soup(["script", "style", "noscript", "template", "iframe", "svg", "head"]):
        tag.decompose()
    root = soup.body or soup
    text = MarkdownConverter(heading_style="ATX", bullets="-").convert_soup(root)
    lines = [line.rstrip() for line in text.splitlines()]
    out: list[str] = []
    for line in lines:  # at most one blank line in a row
        if line or (out and out[-1]):
            out.append(line)
    body = "\n".join(out).strip()
    header = f"# {title}\n\n" if title else ""
    source = f"Source: {url}\n\n" if url else ""
    return f"{source}{header}{body}"


def web_fetch_settings(path: Path | None = None) -> dict[str, Any]:
    """``[web_fetch]`` of the user's ``~/.config/gemma-agent/config.toml`` (never the project's:
    a file in the workspace could be written by the agent itself): ``allow_hosts``,
    ``max_redirects``, ``max_bytes``, ``timeout``, ``enabled``."""
    if path is None:
        base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
        path = Path(base) / "gemma-agent" / "config.toml"
    if not path.is_file():
        return {}
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8")).get("web_fetch", {})
    except (OSError, ValueError) as e:
        raise ConfigError(f"{path}: not valid TOML ({e}); fix or delete the file") from e
    known = {"allow_hosts", "max_redirects", "max_bytes", "timeout", "enabled"}
    if not isinstance(table, dict) or set(table) - known:
        raise ConfigError(f"{path}: [web_fetch] takes {', '.join(sorted(known))}")
    return table


def web_tools(path: Path | None = None) -> list[Tool]:
    """``[WebFetch(...)]`` configured by the user's ``[web_fetch]`` table; empty when it says
    ``enabled = false``."""
    settings = web_fetch_settings(path)
    if not settings.get("enabled", True):
        return []
    return [
        WebFetch(
            allow_hosts=list(settings.get("allow_hosts", [])),
            max_redirects=int(settings.get("max_redirects", 5)),
            max_bytes=int(settings.get("max_bytes", 5 * 1024 * 1024)),
            fetch_timeout=float(settings.get("timeout", 30.0)),
        )
    ]


__all__ = ["WebFetch", "html_to_markdown", "web_tools"]

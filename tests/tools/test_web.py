"""web_fetch against a real HTTP server on loopback that the test starts (allowed there by
configuration), and the refusals: other schemes, private/loopback/link-local addresses given
literally, by a name that resolves to them, or reached through a redirect. HTTPS against a real
TLS server with a certificate from a test CA (``trustme``): the connection goes to the checked
address while the certificate is checked against the URL's name (SNI)."""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
import trustme
from gemma_agent.tools import ApprovalPolicy, ToolContext, ToolRegistry
from gemma_agent.tools.builtin import WebFetch, coding_tools, web_tools

PAGE = b"""<!doctype html><html><head><title>Release notes</title>
<style>body { color: red }</style><script>var secret = "do-not-show";</script></head>
<body><h1>Version 2</h1><p>Read the <a href="/docs">docs</a> first.</p>
<ul><li>faster</li><li>smaller</li></ul></body></html>"""


class Handler(BaseHTTPRequestHandler):
    hits: ClassVar[list[str]] = []

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        type(self).hits.append(self.path)
        port = self.server.server_address[1]
        routes = {
            "/page": (200, "text/html; charset=utf-8", PAGE),
            "/data.json": (200, "application/json", b'{"ok": true}'),
            "/logo.png": (200, "image/png", b"\x89PNG\r\n\x1a\n" + b"\0" * 100),
            "/big": (200, "text/plain", b"x" * 50_000),
            "/missing": (404, "text/plain", b"no"),
        }
        if self.path in routes:
            status, ctype, body = routes[self.path]
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        redirects = {
            "/hop": "/page",
            "/to-metadata": "http://169.254.169.254/latest/meta-data/",
            "/to-localhost": f"http://localhost:{port}/page",
            "/to-other-loopback": f"http://127.0.0.2:{port}/page",
            "/loop": "/loop",
        }
        if self.path in redirects:
            self.send_response(302)
            self.send_header("Location", redirects[self.path])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path == "/slow":
            time.sleep(3)
        try:
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"late")
        except OSError:  # the client gave up (its timeout)
            pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="module")
def tls_server() -> Iterator[tuple[int, trustme.CA, list[str | None], list[str]]]:
    """An HTTPS server on 127.0.0.1 whose certificate names only ``localhost``; it records the
    SNI name and Host header of each connection."""
    ca = trustme.CA()
    names: list[str | None] = []
    hosts: list[str] = []

    class TLSHandler(Handler):
        def do_GET(self) -> None:
            hosts.append(self.headers.get("Host", ""))
            super().do_GET()

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(context)

    def remember(sock: ssl.SSLObject, name: str | None, ctx: ssl.SSLContext) -> None:
        names.append(name)

    context.sni_callback = remember
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), TLSHandler)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd.server_address[1], ca, names, hosts
    finally:
        httpd.shutdown()
        httpd.server_close()


async def fetch(tool: WebFetch, url: str, tmp_path: Path, **extra: object) -> tuple[bool, str]:
    out = await ToolRegistry([tool]).call("web_fetch", {"url": url, **extra}, ToolContext(tmp_path))
    return out.is_error, str(out.content)


async def test_page_as_markdown_when_loopback_is_allowed(server: str, tmp_path: Path) -> None:
    tool = WebFetch(allow_hosts=["127.0.0.1"])
    error, text = await fetch(tool, f"{server}/hop", tmp_path)  # one redirect, then the page
    assert not error, text
    assert "# Release notes" in text and "# Version 2" in text
    assert "[docs](/docs)" in text and "- faster" in text
    assert "do-not-show" not in text and "color: red" not in text
    error, text = await fetch(tool, f"{server}/data.json", tmp_path)
    assert not error and text == '{"ok": true}'
    error, text = await fetch(tool, f"{server}/big", tmp_path, max_chars=1000)
    assert not error and text.startswith("x" * 1000) and "[cut at 1,000 characters]" in text
    small = WebFetch(allow_hosts=["127.0.0.0/8"], max_bytes=10_000)
    error, text = await fetch(small, f"{server}/big", tmp_path)
    assert not error and "larger than 10,000 bytes" in text


async def test_errors_are_clear(server: str, tmp_path: Path) -> None:
    tool = WebFetch(allow_hosts=["127.0.0.1"], max_redirects=3, fetch_timeout=1.0)
    error, text = await fetch(tool, f"{server}/logo.png", tmp_path)
    assert error and "image/png, not text" in text
    error, text = await fetch(tool, f"{server}/missing", tmp_path)
    assert error and "HTTP 404" in text
    error, text = await fetch(tool, f"{server}/loop", tmp_path)
    assert error and "more than 3 redirects" in text
    start = time.monotonic()
    error, text = await fetch(tool, f"{server}/slow", tmp_path)
    assert error and "within 1 s" in text and time.monotonic() - start < 2.5
    for url in ("file:///etc/passwd", "ftp://example.com/x", "gopher://x", "not a url"):
        error, text = await fetch(tool, url, tmp_path)
        assert error and ("only http and https" in text or "not a valid URL" in text), url


async def test_private_addresses_are_refused(server: str, tmp_path: Path) -> None:
    Handler.hits.clear()
    default = WebFetch()
    port = server.rsplit(":", 1)[1]
    for url, why in (
        (f"{server}/page", "127.0.0.1 is a loopback address"),
        (f"http://localhost:{port}/page", "resolves to 127.0.0.1, which is a loopback"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://[::1]/", "loopback"),
        ("http://[::ffff:127.0.0.1]/", "loopback"),
        ("http://10.1.2.3/", "private"),
        ("http://192.168.0.1/", "private"),
        ("http://0.0.0.0/", "unspecified"),
    ):
        error, text = await fetch(default, url, tmp_path)
        assert error and "refused" in text and why in text, (url, text)
    assert Handler.hits == [], "nothing reached the server"

    # Allowed to reach 127.0.0.1 only: redirects elsewhere are checked again and refused.
    only = WebFetch(allow_hosts=["127.0.0.1"])
    for path, why in (
        ("/to-metadata", "169.254.169.254 is a link-local address"),
        ("/to-other-loopback", "127.0.0.2 is a loopback address"),
    ):
        error, text = await fetch(only, f"{server}{path}", tmp_path)
        assert error and why in text, (path, text)
    assert Handler.hits == ["/to-metadata", "/to-other-loopback"]
    # A name opened on purpose: the first hop (an address) is still refused, the name is not.
    by_name = WebFetch(allow_hosts=["localhost"])
    error, text = await fetch(by_name, f"{server}/to-localhost", tmp_path)
    assert error and "127.0.0.1 is a loopback" in text
    error, text = await fetch(by_name, f"http://localhost:{port}/page", tmp_path)
    assert not error and "Version 2" in text


async def test_https_checks_the_certificate_against_the_name(
    tls_server: tuple[int, trustme.CA, list[str | None], list[str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    port, ca, names, hosts = tls_server
    tool = WebFetch(allow_hosts=["localhost", "127.0.0.1"])
    url = f"https://localhost:{port}/page"
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    error, text = await fetch(tool, url, tmp_path)  # the public CAs do not know the test CA
    assert error and "CERTIFICATE_VERIFY_FAILED" in text, text

    # A CA bundle from the environment (a company's TLS-inspecting proxy) is trusted, although
    # proxies from the environment are not used.
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    names.clear()
    hosts.clear()
    error, text = await fetch(tool, url, tmp_path)
    assert not error and "# Version 2" in text, text
    assert names == ["localhost"] and hosts == [f"localhost:{port}"]  # the name, not the address

    # The certificate names localhost only: the address itself does not pass as that name.
    error, text = await fetch(tool, f"https://127.0.0.1:{port}/page", tmp_path)
    assert error and "CERTIFICATE_VERIFY_FAILED" in text and "127.0.0.1" in text, text


def test_approval_config_and_evals(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tool = WebFetch()
    assert not tool.read_only  # a URL can carry data out
    assert ApprovalPolicy("ask").decide(tool, {"url": "https://example.com"}).action == "ask"
    assert ApprovalPolicy("read-only").decide(tool, {"url": "https://x"}).action == "deny"
    assert ApprovalPolicy("auto").decide(tool, {"url": "https://x"}).action == "allow"
    assert "web_fetch" not in {t.name for t in coding_tools()}  # evals use coding_tools: off
    config = tmp_path / "config.toml"
    config.write_text('[web_fetch]\nallow_hosts = ["127.0.0.1", "10.0.0.0/8"]\ntimeout = 5\n')
    (configured,) = web_tools(config)
    assert isinstance(configured, WebFetch) and configured.fetch_timeout == 5.0
    assert len(configured.allow_nets) == 2
    config.write_text("[web_fetch]\nenabled = false\n")
    assert web_tools(config) == []

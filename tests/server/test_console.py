"""The console's files as the server serves them (the page itself runs in tests/server/test_console_browser.py)."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient
from hatchling.builders.wheel import WheelBuilder

from voxgate.config import Settings
from voxgate.server.app import create_app
from voxgate.server.console import STATIC, content_security_policy
from voxgate.service import Service

# What a page can load from: attributes, CSS url(), ES module imports and worklet/URL constructors.
_REFERENCES = re.compile(
    r"""(?:src|href)\s*=\s*["']([^"']+)["']"""
    r"""|url\(\s*["']?([^"')]+)"""
    r"""|(?:import|from)\s*\(?\s*["']([^"']+)["']"""
    r"""|new URL\(\s*["']([^"']+)["']"""
)
SVG_NAMESPACE = "http://www.w3.org/2000/svg"  # an identifier in the markup, never fetched


def references(text: str) -> list[str]:
    return [next(g for g in m.groups() if g) for m in _REFERENCES.finditer(text)]


def test_the_page_is_served_at_the_root_with_a_same_origin_policy(client: TestClient) -> None:
    r = client.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "<title>voxgate console</title>" in r.text
    policy = r.headers["content-security-policy"]
    assert "default-src 'self'" in policy
    assert "script-src 'self'" in policy
    assert "ws://127.0.0.1" in policy  # the stream route on this host, and no other
    assert "*" not in policy
    assert "http" not in policy
    assert r.headers["cache-control"] == "no-cache"


def test_every_file_the_page_loads_is_served_from_this_server(client: TestClient) -> None:
    seen: set[str] = set()
    queue = ["/"]
    while queue:
        path = queue.pop()
        if path in seen:
            continue
        seen.add(path)
        r = client.get(path)
        assert r.status_code == 200, path
        if path.endswith(".js"):
            assert r.headers["content-type"].startswith("text/javascript"), path  # module scripts need a JS type
        if not path.endswith((".html", ".js", ".css", ".svg")) and path != "/":
            continue
        base = "/console/" if path.startswith("/console/") else "/"
        for ref in references(r.text):
            if ref == SVG_NAMESPACE or ref.startswith(("data:", "blob:")):
                continue
            assert not re.match(r"^[a-z]+:|^//", ref), f"{path} loads {ref} from outside the server"
            if ref.startswith("/") and not ref.startswith("/console/"):
                continue  # API routes (/openapi.json, the stream path): not files of the page
            queue.append(ref if ref.startswith("/") else base + ref.removeprefix("./"))
    files = {"/console/" + p.name for p in STATIC.iterdir() if p.name != "index.html"}
    assert files <= seen, f"files shipped but never loaded: {sorted(files - seen)}"


def test_static_files_cannot_escape_their_folder(client: TestClient) -> None:
    for path in ("/console/../config.py", "/console/%2e%2e/config.py", "/console/..%2fapp.py"):
        assert client.get(path).status_code == 404, path


def test_content_security_policy_names_only_a_well_formed_host() -> None:
    assert "ws://127.0.0.1:8000 wss://127.0.0.1:8000" in content_security_policy("127.0.0.1:8000")
    assert "ws://[::1]:8000" in content_security_policy("[::1]:8000")
    for hostile in ("evil.example; script-src *", "a b", None, ""):
        policy = content_security_policy(hostile)
        assert "connect-src 'self';" in policy
        assert "*" not in policy


def test_the_console_can_be_turned_off(tmp_path: Path, service: Service) -> None:
    app = create_app(Settings(home=tmp_path, preload=[], console=False), service=service)
    with TestClient(app, base_url="http://127.0.0.1") as c:
        assert c.get("/").status_code == 404
        assert c.get("/console/console.js").status_code == 404
        assert c.get("/healthz").status_code == 200


def test_the_package_ships_the_console() -> None:
    """The wheel carries the static files (nothing is built at run time)."""
    root = Path(__file__).resolve().parents[2]
    builder = WheelBuilder(str(root))
    shipped = {Path(f.distribution_path).as_posix() for f in builder.recurse_included_files()}
    for p in STATIC.iterdir():
        assert f"voxgate/server/static/{p.name}" in shipped

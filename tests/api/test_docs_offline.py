"""/docs (Swagger UI) and /redoc (ReDoc) work without internet: their scripts and styles come
from pmolens itself (the fastapi-offline package), so a browser whose every non-loopback request
is blocked still shows the operations."""

from __future__ import annotations

import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi.testclient import TestClient

from pmolens.api.app import create_app
from pmolens.api.runtime import make_runtime
from tests.api.conftest import chain_settings

ARTIFACTS = Path(__file__).parents[1] / "artifacts"


def test_docs_pages_name_only_local_assets(tmp_path) -> None:
    runtime = make_runtime(chain_settings(tmp_path))
    with TestClient(create_app(runtime)) as client:
        for path in ("/docs", "/redoc"):
            page = client.get(path)
            assert page.status_code == 200, path
            sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
            assert sources, path
            assert all(s.startswith("/") for s in sources), (path, sources)
            assert "cdn" not in page.text.lower()
            for asset in sources:
                if asset.startswith("/docs-assets/"):
                    assert client.get(asset).status_code == 200, asset
        assert client.get("/openapi.json").status_code == 200
    runtime.warehouse.close()


@pytest.fixture(scope="module")
def docs_server(tmp_path_factory) -> Iterator[str]:
    runtime = make_runtime(chain_settings(tmp_path_factory.mktemp("docs")))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    server = uvicorn.Server(
        uvicorn.Config(create_app(runtime), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
    runtime.warehouse.close()


@pytest.mark.browser
@pytest.mark.skipif(
    shutil.which("chromium") is None, reason="needs Debian chromium (make chromium)"
)
def test_docs_and_redoc_show_the_operations_with_the_network_blocked(docs_server: str) -> None:
    from playwright.sync_api import Route, sync_playwright

    blocked: list[tuple[str, str]] = []

    def loopback_only(route: Route) -> None:
        if route.request.url.startswith("http://127.0.0.1:"):
            route.continue_()
        else:
            blocked.append((route.request.resource_type, route.request.url))
            route.abort()

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.route("**/*", loopback_only)

        page.goto(docs_server + "/docs")
        page.locator(".opblock-summary-path", has_text="/decisions").first.wait_for(timeout=15_000)
        text = page.inner_text("body")
        assert "/work-items" in text and "/decisions" in text
        page.screenshot(path=str(ARTIFACTS / "docs-offline.png"))

        page.goto(docs_server + "/redoc")
        page.get_by_text("/work-items").first.wait_for(state="attached", timeout=15_000)
        text = page.content()
        assert "/decisions" in text and "/work-items" in text
        page.screenshot(path=str(ARTIFACTS / "redoc-offline.png"))
        browser.close()
    assert errors == [], errors
    # nothing the pages need left the machine; ReDoc's "powered by" logo is the one image it
    # names on its own CDN, and without it the page reads the same
    assert [url for kind, url in blocked if kind != "image"] == [], blocked

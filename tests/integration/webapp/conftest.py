"""The web app as a user runs it (``python -m webapp`` in its own process) and a headless Chromium.

Chromium is Debian's (``/usr/bin/chromium``, installed by scripts/setup.sh), driven by
Playwright's Python package: Playwright's own browser download is never used. Every test
writes screenshots under ``test-artifacts/webapp/``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, sync_playwright

from serving.paths import REPO_ROOT
from serving.triton import TritonServer, free_ports, stop_process_group
from webapp.settings import DEFAULT_IMAGE_MODELS

ARTIFACTS = REPO_ROOT / "test-artifacts" / "webapp"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class WebApp:
    """A ``python -m webapp`` process on a free port; stopped (with its group) at teardown."""

    def __init__(self, triton_url: str, name: str, *extra: str, image_models: tuple[str, ...] = ()) -> None:
        self.port = free_ports(1)[0]
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = ARTIFACTS / f"{name}.log"
        self.command = [
            sys.executable,
            "-m",
            "webapp",
            "--triton-url",
            triton_url,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            *extra,
        ]
        self.image_models = image_models
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> WebApp:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("WEBAPP_")}
        env["WEBAPP_RETRY_S"] = "1"  # no test restarts Triton: a down server should show at once
        if self.image_models:
            env["WEBAPP_IMAGE_MODELS"] = json.dumps(list(self.image_models))
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                self.command,
                cwd=REPO_ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log_text = self.log_path.read_text()
                raise RuntimeError(f"web app exited with {self.process.returncode}:\n{log_text}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/config", timeout=2) as response:
                    if response.status == 200:
                        return self
            except (urllib.error.URLError, OSError):
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"web app not up after {timeout}s:\n{self.log_path.read_text()}")

    def stop(self) -> None:
        if self.process is not None:
            stop_process_group(self.process.pid, self.process, timeout=10)
            self.process = None


def served_image_models() -> tuple[str, ...]:
    """The page's image ensembles that this catalog builds (``SKIP_TF=1`` leaves out the Keras one)."""
    from imaging.specs import enabled_networks

    enabled = {network.name for network in enabled_networks()}
    return tuple(name for name in DEFAULT_IMAGE_MODELS if name in enabled)


@pytest.fixture(scope="session")
def webapp_class() -> type[WebApp]:
    """For tests that start another web app (other protocol, other settings)."""
    return WebApp


@pytest.fixture(scope="session")
def image_models() -> tuple[str, ...]:
    return served_image_models()


@pytest.fixture(scope="session")
def webapp(triton_server: TritonServer, image_models: tuple[str, ...]) -> Iterator[WebApp]:
    """The web app in front of the session's real Triton server (every model of the catalog)."""
    app = WebApp(triton_server.http_url, "webapp", image_models=image_models).start()
    yield app
    app.stop()


@pytest.fixture(scope="session")
def webapp_without_server() -> Iterator[WebApp]:
    """The web app pointed at a port where no Triton listens: what a user sees if it is down."""
    app = WebApp(f"localhost:{free_ports(1)[0]}", "webapp-server-down").start()
    yield app
    app.stop()


@pytest.fixture(scope="session")
def browser_context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserContext]:
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        pytest.fail(f"Chromium not found at {CHROMIUM}: install Debian's chromium (make setup)")
    profile = tmp_path_factory.mktemp("chromium-profile")  # fresh user-data-dir
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1280, "height": 900},
            offline=False,
        )
        yield context
        context.close()


@pytest.fixture
def page(browser_context: BrowserContext) -> Iterator[Page]:
    """A new tab; anything the page logs as an error or a failed request from another host fails it."""
    page = browser_context.new_page()
    page.set_default_timeout(60_000)
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on(
        "request",
        lambda request: (
            problems.append(f"request left localhost: {request.url}")
            if not request.url.startswith(("http://127.0.0.1", "data:", "blob:"))
            else None
        ),
    )
    page.problems = problems  # type: ignore[attr-defined]
    yield page
    page.close()
    assert not problems, problems


@pytest.fixture
def screenshot() -> Callable[[Page, str], Path]:
    """Save a full-page screenshot as an artifact of the run; returns its path."""

    def take(page: Page, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take

"""A small headless-Chromium driver over the DevTools protocol, for bench/screenshots.py.

Only `websockets` (already in the venv) and Debian's `chromium` are needed: no Selenium, no
Playwright download. Chromium runs in its own process group so that it can be stopped with all
its helpers; pictures are palette-quantized PNGs so UI captures stay sharp and small.
"""

from __future__ import annotations

import base64
import contextlib
import io
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from PIL import Image
from websockets.sync.client import ClientConnection, connect

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


def stop_group(process: subprocess.Popen, grace: float = 20.0) -> None:
    """SIGTERM the process group `process` leads, SIGKILL it after `grace` s, and reap it."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            os.killpg(process.pid, 0)  # raises once no process of the group is left
        except ProcessLookupError:
            break
        process.poll()
        time.sleep(0.3)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Browser:
    """One headless Chromium process with one page, driven over a DevTools websocket."""

    def __init__(self, width: int = 1600, height: int = 1000, binary: str = "chromium") -> None:
        if shutil.which(binary) is None:
            raise SystemExit(f"{binary} not found; on Debian: apt-get install -y chromium")
        self.width, self.height = width, height
        self.profile = tempfile.mkdtemp(prefix="cdp-profile-")
        self.port = free_port()
        # Own process group, so the renderer and GPU helpers are stopped with it.
        self.process = subprocess.Popen(
            [
                binary,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={self.profile}",
                f"--remote-debugging-port={self.port}",
                f"--window-size={width},{height}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.ids = itertools.count(1)
        self.stack = contextlib.ExitStack()
        try:
            url = self._page_ws_url()
            self.ws: ClientConnection = self.stack.enter_context(connect(url, max_size=64 * 1024 * 1024))
            self.send("Page.enable")
            self.send("Runtime.enable")
            self.set_viewport(width, height)
        except BaseException:
            stop_group(self.process)
            raise

    def _page_ws_url(self, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/json/list", timeout=2) as response:
                    pages = [t for t in json.load(response) if t.get("type") == "page"]
                if pages:
                    return str(pages[0]["webSocketDebuggerUrl"])
            except OSError:
                pass
            time.sleep(0.3)
        raise RuntimeError("chromium did not open its DevTools port")

    def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send one command and wait for its answer; events that arrive meanwhile are dropped."""
        call_id = next(self.ids)
        self.ws.send(json.dumps({"id": call_id, "method": method, "params": params or {}}))
        while True:
            message = json.loads(self.ws.recv(timeout=120))
            if message.get("id") == call_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return dict(message.get("result", {}))

    def set_viewport(self, width: int, height: int) -> None:
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )

    def evaluate(self, expression: str) -> Any:
        result = self.send(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True}
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"JS error in {expression[:80]!r}: {result['exceptionDetails'].get('text')}")
        return result.get("result", {}).get("value")

    def goto(self, url: str) -> None:
        self.send("Page.navigate", {"url": url})

    def wait_for(self, condition: str, timeout: float = 60.0, settle: float = 1.5) -> None:
        """Poll a JS boolean expression until true, then wait `settle` s for late renders."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.evaluate(f"Boolean({condition})"):
                    time.sleep(settle)
                    return
            except RuntimeError:
                pass
            time.sleep(0.5)
        raise TimeoutError(f"page never satisfied: {condition}")

    def wait_for_text(self, *texts: str, timeout: float = 60.0, settle: float = 1.5) -> None:
        checks = " && ".join(f"document.body.innerText.includes({json.dumps(t)})" for t in texts)
        self.wait_for(f"document.body && {checks}", timeout=timeout, settle=settle)

    def click_text(self, text: str, selector: str = "button, a, [role=tab], [role=button]") -> bool:
        """Click the first element matching `selector` whose visible text is exactly `text`."""
        return bool(
            self.evaluate(
                f"""(() => {{
                  const el = [...document.querySelectorAll({json.dumps(selector)})]
                    .find(e => e.innerText && e.innerText.trim() === {json.dumps(text)});
                  if (!el) return false; el.scrollIntoView({{block: 'center'}}); el.click(); return true;
                }})()"""
            )
        )

    def press(self, code: str, key: str, modifiers: int = 0) -> None:
        """A key press; modifiers: 1 Alt, 2 Ctrl, 4 Meta, 8 Shift."""
        vk = ord(key.upper()) if len(key) == 1 else 0
        for kind in ("keyDown", "keyUp"):
            self.send(
                "Input.dispatchKeyEvent",
                {"type": kind, "modifiers": modifiers, "code": code, "key": key, "windowsVirtualKeyCode": vk},
            )

    def close(self) -> None:
        try:
            self.stack.close()
        finally:
            stop_group(self.process)
            shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------- page helpers


def set_editor(browser: Browser, text: str, line: int | None = None) -> None:
    """Replace the launchpad's YAML (a CodeMirror 5 editor) and put the cursor on `line`."""
    browser.evaluate(
        f"""(() => {{ const cm = document.querySelector('.CodeMirror').CodeMirror;
             cm.setValue({json.dumps(text)}); cm.focus();
             {f"cm.setCursor({{line: {line}, ch: 12}});" if line is not None else ""} }})()"""
    )


def open_metadata_entry(browser: Browser, label: str) -> None:
    """Click "[Show Markdown]" / "[Show JSON]" beside a metadata entry; waits for the dialog."""
    found = browser.evaluate(
        f"""(() => {{ const row = [...document.querySelectorAll('tr')]
               .find(r => r.cells[0] && r.cells[0].innerText.trim() === {json.dumps(label)});
             const link = row && row.querySelector('a, button'); if (!link) return false;
             link.click(); return true; }})()"""
    )
    if not found:
        raise RuntimeError(f"no metadata entry {label!r} on this page")
    browser.wait_for("document.querySelector('.bp5-dialog')", settle=2.0)


def close_dialog(browser: Browser) -> None:
    browser.click_text("Close")
    browser.wait_for("!document.querySelector('.bp5-dialog')", settle=0.5)


def rect_of(browser: Browser, selector: str, pad: int = 0) -> tuple[int, int, int, int]:
    rect = browser.evaluate(
        f"(() => {{ const r = document.querySelector({json.dumps(selector)}).getBoundingClientRect();"
        " return [r.x, r.y, r.width, r.height]; })()"
    )
    x, y, w, h = (int(round(v)) for v in rect)
    return max(x - pad, 0), max(y - pad, 0), w + 2 * pad, h + 2 * pad


def content_height(browser: Browser, margin: int = 40) -> int:
    """Bottom of the lowest table on the page: event pages are cropped just below their metadata."""
    bottom = browser.evaluate(
        "Math.max(0, ...[...document.querySelectorAll('table')].map(t => t.getBoundingClientRect().bottom))"
    )
    return int(bottom) + margin


def save_png(raw: bytes, path: Path, max_width: int = 1400) -> int:
    """Downscale to `max_width` and quantize to a 256-colour palette: UI captures stay sharp and small."""
    image = Image.open(io.BytesIO(raw)).convert("RGB")
    if image.width > max_width:
        height = round(image.height * max_width / image.width)
        image = image.resize((max_width, height), Image.Resampling.LANCZOS)
    palette = image.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    palette.save(path, optimize=True)
    return path.stat().st_size


def capture(browser: Browser, clip: tuple[int, int, int, int] | None = None) -> bytes:
    params: dict[str, Any] = {"format": "png"}
    if clip:
        x, y, w, h = clip
        params["clip"] = {"x": x, "y": y, "width": w, "height": h, "scale": 1}
    return base64.b64decode(browser.send("Page.captureScreenshot", params)["data"])

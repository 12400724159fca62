"""Every report kind in a real browser: Debian's chromium opens it headless over the DevTools protocol.

The page must load with no console error, no uncaught exception and no network request (everything is inline), carry
no script, and a screenshot of its first figure must show the plots: an image of the expected size that is neither
blank nor only grey. The DevTools websocket is spoken with a minimal client from the standard library, so the test
needs no package beyond the project's own.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
import tomli_w
from click.testing import CliRunner

from sim.cli import main
from tests.test_calibration import write_case

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "tests" / "data" / "tiny.toml"
WIDTH, HEIGHT = 1200, 1600
TIMEOUT = 30.0
INSTALL = ("chromium (Debian's package) is needed for the browser test and was not found on PATH, nor could the test "
           "install it; install it with `apt-get install -y chromium` (as root; .ci/run installs it when missing)")


def find_chromium() -> str | None:
    """Debian's chromium, installed here with apt-get when missing and this user may (root, or sudo without a
    password), so the README's test command works on a fresh machine."""
    found = shutil.which("chromium")
    if found is not None or shutil.which("apt-get") is None:
        return found
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
        try:
            subprocess.run(sudo + command, env=env, capture_output=True, timeout=900, check=True)
        except (OSError, subprocess.SubprocessError):
            return None
    return shutil.which("chromium")


# --- a minimal websocket client (RFC 6455: text frames, client masking, ping/pong) ---------------------------------


class WebSocket:
    def __init__(self, url: str, timeout: float = TIMEOUT):
        u = urlparse(url)
        self.sock = socket.create_connection((u.hostname, u.port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {u.path} HTTP/1.1\r\nHost: {u.hostname}:{u.port}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("websocket: connection closed during the handshake")
            head += chunk
        head, self.buffer = head.split(b"\r\n\r\n", 1)
        self.parts: list[bytes] = []
        accept = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest())
        if b" 101 " not in head.split(b"\r\n", 1)[0] or accept not in head:
            raise ConnectionError(f"websocket: handshake refused: {head[:200]!r}")

    def _fill(self, n: int) -> None:
        """Have at least n bytes buffered (a timeout leaves what was read in the buffer)."""
        while len(self.buffer) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("websocket: connection closed")
            self.buffer += chunk

    def _send_frame(self, opcode: int, payload: bytes) -> None:
        n = len(payload)
        header = bytes([0x80 | opcode])
        if n < 126:
            header += bytes([0x80 | n])
        elif n < 65536:
            header += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            header += bytes([0x80 | 127]) + struct.pack(">Q", n)
        mask = os.urandom(4)
        masked = (np.frombuffer(payload, dtype=np.uint8) ^ np.resize(np.frombuffer(mask, dtype=np.uint8), n)).tobytes()
        self.sock.sendall(header + mask + masked)

    def send(self, text: str) -> None:
        self._send_frame(0x1, text.encode())

    def recv(self) -> str:
        """The next whole text message (joining fragments; answering pings). A frame is taken from the buffer only
        once it has fully arrived, so a socket timeout never loses part of one."""
        while True:
            self._fill(2)
            b0, b1 = self.buffer[0], self.buffer[1]
            opcode, n, at = b0 & 0x0F, b1 & 0x7F, 2
            if n == 126:
                self._fill(4)
                n, at = struct.unpack(">H", self.buffer[2:4])[0], 4
            elif n == 127:
                self._fill(10)
                n, at = struct.unpack(">Q", self.buffer[2:10])[0], 10
            if b1 & 0x80:
                raise ConnectionError("websocket: the server masked a frame")
            self._fill(at + n)
            payload, self.buffer = self.buffer[at:at + n], self.buffer[at + n:]
            if opcode == 0x9:
                self._send_frame(0xA, payload)
            elif opcode == 0x8:
                raise ConnectionError("websocket: closed by the browser")
            elif opcode in (0x0, 0x1, 0x2):
                self.parts.append(payload)
                if b0 & 0x80:
                    message, self.parts = b"".join(self.parts).decode(), []
                    return message

    def close(self) -> None:
        try:
            self._send_frame(0x8, b"")
        finally:
            self.sock.close()


# --- the DevTools protocol -------------------------------------------------------------------------------------------


class DevTools:
    """Commands and events over the browser's websocket, with flattened page sessions."""

    def __init__(self, url: str):
        self.ws = WebSocket(url)
        self.next_id = 0
        self.events: list[dict] = []

    def call(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self.ws.send(json.dumps(message))
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            reply = json.loads(self.ws.recv())
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"DevTools {method}: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply:
                self.events.append(reply)
        raise TimeoutError(f"DevTools {method}: no reply in {TIMEOUT:g} s")

    def wait(self, method: str, session: str) -> dict:
        def found() -> dict | None:
            return next((e for e in self.events if e["method"] == method and e.get("sessionId") == session), None)

        deadline = time.monotonic() + TIMEOUT
        while (event := found()) is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"DevTools: no {method} in {TIMEOUT:g} s")
            message = json.loads(self.ws.recv())
            if "method" in message:
                self.events.append(message)
        return event

    def drain(self, seconds: float) -> None:
        """Collect the events that arrive in the next `seconds` (late console messages)."""
        self.ws.sock.settimeout(seconds)
        try:
            while True:
                message = json.loads(self.ws.recv())
                if "method" in message:
                    self.events.append(message)
        except TimeoutError:
            pass
        finally:
            self.ws.sock.settimeout(TIMEOUT)


def open_page(devtools: DevTools, path: Path) -> dict:
    """Load a report in a new tab; what went wrong on the way, the page's facts, and a screenshot of its first figure."""
    url = path.resolve().as_uri()
    target = devtools.call("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = devtools.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    try:
        for domain in ("Runtime", "Log", "Network", "Page"):
            devtools.call(f"{domain}.enable", session=session)
        devtools.call("Emulation.setDeviceMetricsOverride",
                      {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False}, session=session)
        devtools.events = [e for e in devtools.events if e.get("sessionId") != session]
        devtools.call("Page.navigate", {"url": url}, session=session)
        devtools.wait("Page.loadEventFired", session)
        devtools.drain(0.3)
        facts = json.loads(devtools.call("Runtime.evaluate", {"returnByValue": True, "expression": """JSON.stringify({
            scripts: document.scripts.length,
            svgs: Array.from(document.querySelectorAll('svg')).map(s => {
                const r = s.getBoundingClientRect(); return [r.width, r.height]; }),
            title: document.title})"""}, session=session)["result"]["value"])
        devtools.call("Runtime.evaluate", {"expression": "document.querySelector('svg')?.scrollIntoView({block: 'start'})"},
                      session=session)
        devtools.drain(0.2)
        png = base64.b64decode(devtools.call("Page.captureScreenshot", {"format": "png"}, session=session)["data"])
        events = [e for e in devtools.events if e.get("sessionId") == session]
    finally:
        devtools.call("Target.closeTarget", {"targetId": target})
    problems = []
    for e in events:
        p = e["params"]
        if e["method"] == "Runtime.consoleAPICalled" and p["type"] == "error":
            problems.append(f"console error: {[a.get('value', a.get('description')) for a in p['args']]}")
        elif e["method"] == "Runtime.exceptionThrown":
            problems.append(f"uncaught exception: {p['exceptionDetails'].get('text')}")
        elif e["method"] == "Log.entryAdded" and p["entry"]["level"] == "error":
            problems.append(f"log error: {p['entry'].get('text')} ({p['entry'].get('url', '')})")
        elif e["method"] == "Network.requestWillBeSent":
            request = p["request"]["url"]
            if request != url and not request.startswith("data:"):
                problems.append(f"network request: {request}")
    return {"problems": problems, "facts": facts, "png": png}


# --- fixtures --------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """A headless chromium with its DevTools connection, or None when chromium is missing (the test then fails)."""
    executable = find_chromium()
    if executable is None:
        yield None
        return
    profile = tmp_path_factory.mktemp("chromium-profile")
    log_path = profile.parent / f"{profile.name}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [executable, "--headless=new", "--no-sandbox", "--disable-gpu", "--remote-debugging-port=0",
             f"--user-data-dir={profile}", "--no-first-run", "--no-default-browser-check", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=log)
    devtools = None
    try:
        deadline = time.monotonic() + TIMEOUT
        while (m := re.search(r"DevTools listening on (ws://\S+)", log_path.read_text(errors="replace"))) is None:
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"chromium did not start its DevTools server:\n{log_path.read_text(errors='replace')[-2000:]}")
            time.sleep(0.05)
        devtools = DevTools(m[1])
        yield devtools
    finally:
        if devtools is not None:
            try:
                devtools.call("Browser.close")
            except (OSError, RuntimeError, TimeoutError):
                pass
            devtools.ws.sock.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _cli(args: list[str]) -> None:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, f"escsim {' '.join(args)}:\n{result.output}\n{result.exception!r}"


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> dict[str, Path]:
    """A small folder of each report kind; the calibration fit (the slow one) runs in a subprocess meanwhile."""
    base = tmp_path_factory.mktemp("reports")
    case = write_case(base / "case")
    fit = subprocess.Popen([sys.executable, "-m", "sim", "calibrate", str(case), "--budget", "small", "--seed", "3",
                            "--workers", "1", "--out", str(base / "fit")],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        _cli(["run", str(TINY), "--trials", "60", "--workers", "1", "--out", str(base / "run")])
        spec = base / "spec.toml"
        spec.write_text(tomli_w.dumps({
            "sweep": {"name": "browser", "base": str(TINY), "design": "oat", "samples": 2, "trials_per_point": 20,
                      "seed": 3, "outputs": ["p_retaliation", "mean_hits_on_s"]},
            "parameters": {"rate": {"path": "actors.m.attacks.s.rate_per_day", "low": 0.05, "high": 0.5, "scale": "log"},
                           "p_hit": {"path": "weapons.drone.p_hit", "low": 0.05, "high": 0.5}}}))
        _cli(["sweep", str(spec), "--workers", "1", "--out", str(base / "sweep")])
        _cli(["compare", str(TINY), str(TINY), "--trials", "60", "--workers", "1", "--out", str(base / "compare")])
        _cli(["run", str(ROOT / "scenarios" / "forecast_2024_06.toml"), "--trials", "20", "--workers", "1",
              "--out", str(base / "forecast")])
        output, _ = fit.communicate(timeout=300)
    finally:
        if fit.poll() is None:
            fit.kill()
            fit.wait()
    assert fit.returncode == 0, f"escsim calibrate:\n{output.decode(errors='replace')}"
    return {kind: base / kind for kind in ("run", "sweep", "compare", "fit", "forecast")}


# --- the test --------------------------------------------------------------------------------------------------------


def _pixels(png: bytes) -> np.ndarray:
    import matplotlib.image

    image = matplotlib.image.imread(io.BytesIO(png), format="png")
    return image.astype(float) / (255.0 if image.dtype == np.uint8 else 1.0)


def assert_drawn(png: bytes, what: str) -> None:
    """The screenshot is of the window's size, not nearly blank, and shows a coloured plot."""
    rgb = _pixels(png)[..., :3]
    assert rgb.shape == (HEIGHT, WIDTH, 3), f"{what}: screenshot of {rgb.shape[1]}×{rgb.shape[0]}"
    inked = (rgb < 0.97).any(axis=2).mean()
    coloured = ((rgb.max(axis=2) - rgb.min(axis=2)) > 0.2).mean()
    assert inked > 0.02, f"{what}: the screenshot is nearly blank ({inked:.1%} of pixels not white)"
    assert coloured > 0.002, f"{what}: the screenshot shows no coloured plot ({coloured:.2%} coloured pixels)"


@pytest.mark.parametrize("kind", ["run", "sweep", "compare", "fit", "forecast"])
def test_report_opens_in_a_browser_offline_without_errors_and_shows_its_plots(kind, browser, reports):
    if browser is None:
        pytest.fail(INSTALL)
    page = reports[kind] / "report.html"
    assert page.is_file(), f"{kind}: no report.html in {reports[kind]}"
    seen = open_page(browser, page)
    assert seen["problems"] == [], f"{kind} report: " + "; ".join(seen["problems"])
    facts = seen["facts"]
    assert facts["scripts"] == 0, f"{kind} report: expected no <script>, found {facts['scripts']}"
    assert facts["title"].startswith("escalation-sim"), facts["title"]
    assert facts["svgs"], f"{kind} report: expected inline SVG figures, found none"
    assert all(w > 100 and h > 50 for w, h in facts["svgs"]), f"{kind} report: a figure is drawn empty: {facts['svgs']}"

    assert_drawn(seen["png"], f"{kind} report")

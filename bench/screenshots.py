"""Screenshots of the Dagster UI for docs/analyst-guide.md, taken from a real `dagster dev`.

What it does, end to end (nothing is mocked; every picture is a page of the running UI):

1. `--prepare` (first time): in a separate home (`--home`, default /tmp/risk_app_screens, so
   var/ is not touched) it runs `risk-app run` twice: LoRA (version 1, champion) and freeze
   tuning (version 2, rejected: lower AUC).
2. Starts `dagster dev -p PORT` in its own process group against that home and waits for it.
3. With `--prepare`: launches a training run *from the launchpad* (DoRA, protected fields left
   out of the text) by clicking "Launch Run" and waits for it; then writes two demo files (a
   training file with six broken values, a shifted, unlabelled "April" batch) and runs
   `risk-app run` on them: quarantined rows, a further challenger, drift on the April batch.
4. Drives headless Chromium over the DevTools protocol (only `websockets`, already in the venv)
   through the pages, opens metadata dialogs (plots, model card, samples), and saves PNGs
   (palette-quantized, mostly well under 400 KB) into `--out` (default docs/images).
5. Stops dagster dev and Chromium by process group and checks nothing is left.

Run it from the repo root (needs Debian's `chromium`: `apt-get install -y chromium`):

    . .venv/bin/activate
    python bench/screenshots.py --prepare            # about 10 minutes on 2 busy cores
    python bench/screenshots.py                      # again, reusing the prepared home
    python bench/screenshots.py --only lineage,launchpad

The numbers in the pictures come from real training runs of the tiny default model, so they
change a little from machine to machine.
"""

from __future__ import annotations

import argparse
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
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from PIL import Image
from websockets.sync.client import ClientConnection, connect

REPO = Path(__file__).resolve().parents[1]
DATASET = REPO / "risk_app" / "datasets" / "german_credit" / "german_credit.csv"

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


# --------------------------------------------------------------------------- demo state


def write_demo_files(folder: Path) -> tuple[Path, Path]:
    """A training file with six broken values and a shifted, later batch to score."""
    folder.mkdir(parents=True, exist_ok=True)
    data = pd.read_csv(DATASET, dtype=str)
    broken = data.copy()
    # One failure per kind the contract checks: range, type, category, missing, label.
    broken.loc[4, "duration_in_month"] = "-6"
    broken.loc[17, "purpose"] = "holiday"
    broken.loc[17, "credit_amount"] = "abc"
    broken.loc[230, "age_in_years"] = "7"
    broken.loc[512, "creditability"] = "unknown"
    broken.loc[777, "housing"] = ""
    training = folder / "applications_march.csv"
    broken.to_csv(training, index=False)
    # Larger and longer loans than in training, so the drift check has something to show.
    batch = data.sample(300, random_state=7).reset_index(drop=True)
    batch["credit_amount"] = (batch["credit_amount"].astype(int) * 1.8).round().astype(int).astype(str)
    batch["duration_in_month"] = (batch["duration_in_month"].astype(int) + 12).clip(upper=72).astype(str)
    batch.loc[3, "duration_in_month"] = "0"
    batch.loc[9, "foreign_worker"] = "maybe"
    # New applications carry no outcome yet, as in production: scoring it after the labelled
    # batches of the first runs exercises the IO manager's per-materialization table replace.
    batch = batch.drop(columns=["creditability"])
    april = folder / "new_applications_april.csv"
    batch.to_csv(april, index=False)
    return training, april


def run_cli(args: list[str], env: dict[str, str], log: Path) -> None:
    print(f"$ risk-app {' '.join(args)}", flush=True)
    with log.open("a") as out:
        code = subprocess.call(
            [str(REPO / ".venv" / "bin" / "risk-app"), *args],
            env=env,
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    if code != 0:
        raise SystemExit(f"risk-app {' '.join(args)} failed (exit {code}); see {log}")


def prepare_first_versions(env: dict[str, str], log: Path) -> None:
    """Versions 1 and 2 through `risk-app run` (the same jobs the UI runs, in process)."""
    run_cli(["run", "--epochs", "2"], env, log)
    run_cli(["run", "--epochs", "1", "--method", "freeze"], env, log)


def prepare_file_with_errors(home: Path, env: dict[str, str], log: Path) -> None:
    """The last version: trained on the file with broken rows, then the April batch is scored."""
    training, april = write_demo_files(home / "demo_data")
    run_cli(["run", "--data", str(training), "--epochs", "2", "--param", "r=16", "--param", "alpha=32",
             "--score-input", str(april), "--output", str(home / "outputs" / "april.scores.parquet")],
            env, log)  # fmt: skip


# --------------------------------------------------------------------------- dagster dev


class DagsterDev:
    """`dagster dev` in its own process group (so it can be stopped with all its children)."""

    def __init__(self, port: int, env: dict[str, str], log: Path) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.log = log.open("w")
        self.process = subprocess.Popen(
            [str(REPO / ".venv" / "bin" / "dagster"), "dev", "-p", str(port)],
            cwd=REPO,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    def graphql(self, query: str) -> dict[str, Any]:
        request = urllib.request.Request(
            f"{self.base}/graphql",
            data=json.dumps({"query": query}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return dict(json.load(response)["data"])

    def wait_ready(self, timeout: float = 300.0) -> None:
        """Until the webserver answers and the risk_app code location has loaded."""
        query = (
            "{ workspaceOrError { ... on Workspace { locationEntries { name "
            "locationOrLoadError { __typename } } } } }"
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"dagster dev exited with {self.process.returncode}; see {self.log.name}")
            try:
                entries = self.graphql(query)["workspaceOrError"]["locationEntries"]
                kinds = {e["name"]: (e["locationOrLoadError"] or {}).get("__typename") for e in entries}
                if kinds.get("risk_app") == "RepositoryLocation":
                    return
                if kinds.get("risk_app") == "PythonError":
                    raise SystemExit(f"the risk_app code location failed to load; see {self.log.name}")
            except OSError:
                pass
            time.sleep(2)
        raise SystemExit("dagster dev did not come up in time")

    def wait_run(self, run_id: str, timeout: float = 900.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.graphql(f'{{ runOrError(runId: "{run_id}") {{ ... on Run {{ status }} }} }}')
            state = status["runOrError"].get("status")
            if state in {"SUCCESS", "FAILURE", "CANCELED"}:
                return str(state)
            time.sleep(5)
        raise SystemExit(f"run {run_id} did not finish in time")

    def latest_run_id(self, job: str) -> str:
        data = self.graphql(
            f'{{ runsOrError(filter: {{pipelineName: "{job}"}}, limit: 1) '
            "{ ... on Runs { results { runId } } } }"
        )
        return str(data["runsOrError"]["results"][0]["runId"])

    def stop(self) -> None:
        stop_group(self.process)
        self.log.close()


# --------------------------------------------------------------------------- page helpers


STAGES = ("ingest", "validation", "preparation", "training", "evaluation", "registry", "scoring")

LAUNCHPAD_YAML = """\
ops:
  raw_applications:
    config:
      path: {dataset}
  training_examples:
    config:
      seed: 42
      exclude_fields: [personal_status_and_sex, foreign_worker]
  augmented_training_examples:
    config:
      enabled: false
  fine_tuned_model:
    config:
      method: lora
      method_params:
        r: 16
        alpha: 32
        variant: dora
      base_model: tiny-qwen2
      epochs: 3
      learning_rate: 0.001
      batch_size: 16
      max_length: 256
      calibration: platt
      seed: 42
"""


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


# --------------------------------------------------------------------------- the shots


@dataclass
class Context:
    browser: Browser
    dagster: DagsterDev
    out: Path
    launched_run: str | None = None

    def go(self, path: str, *texts: str, width: int = 1600, height: int = 1000) -> None:
        self.browser.set_viewport(width, height)
        self.browser.goto(self.dagster.base + path)
        self.browser.wait_for_text(*texts, timeout=90, settle=2.5)

    def save(self, name: str, clip: tuple[int, int, int, int] | None = None, max_width: int = 1400) -> None:
        path = self.out / f"{name}.png"
        size = save_png(capture(self.browser, clip), path, max_width=max_width)
        shown = path.relative_to(REPO) if path.is_relative_to(REPO) else path
        print(f"  {shown}  {size / 1024:.0f} KB", flush=True)


def shot_lineage(c: Context) -> None:
    # Vertical layout with every group expanded: the nodes are then drawn large enough to show
    # their status, checks and kinds. The crop is the graph pane, without the asset tree.
    c.browser.evaluate("localStorage.setItem('asset-graph-direction', '\"vertical\"')")
    groups = ",".join(f"global@global:{group}" for group in STAGES)
    c.go(f"/asset-groups?expanded={groups}", "raw_applications", "champion_model", width=1400, height=1900)
    time.sleep(2)
    search = rect_of(c.browser, ".CodeMirror")  # the asset search box heads the graph pane
    left, top = search[0] - 12, search[1] + search[3] + 8
    c.save("01-asset-lineage", clip=(left, top, 1400 - left, 1900 - top))
    c.browser.evaluate("localStorage.setItem('asset-graph-direction', '\"horizontal\"')")


def shot_launchpad(c: Context) -> None:
    c.go("/locations/risk_app/jobs/training_job/playground", "Launch Run", height=1000)
    set_editor(c.browser, LAUNCHPAD_YAML.format(dataset=DATASET), line=13)
    c.browser.wait_for_text("Fine-tuning method", settle=2.0)
    c.save("02-launchpad-training")


def launch_from_launchpad(c: Context) -> None:
    """Start a training run the way an analyst does: edit the YAML, click Launch Run."""
    c.go("/locations/risk_app/jobs/training_job/playground", "Launch Run")
    set_editor(c.browser, LAUNCHPAD_YAML.format(dataset=DATASET))
    c.browser.wait_for_text("No errors", settle=1.0)
    if not c.browser.click_text("Launch Run"):
        raise RuntimeError("no Launch Run button")
    c.browser.wait_for("location.pathname.startsWith('/runs/')", settle=0.5)
    run_id = str(c.browser.evaluate("location.pathname.split('/').pop()"))
    print(f"  launched training run {run_id} from the launchpad; waiting", flush=True)
    print(f"  run {run_id}: {c.dagster.wait_run(run_id)}", flush=True)
    c.launched_run = run_id


def shot_run(c: Context) -> None:
    run_id = c.launched_run or c.dagster.latest_run_id("training_job")
    c.go(f"/runs/{run_id}", "champion_model", height=900)
    c.save("03-training-run")


def shot_rejected_run(c: Context) -> None:
    """A training run whose challenger lost: the promotion check fails, champion_model is skipped."""
    data = c.dagster.graphql(
        '{ runsOrError(filter: {pipelineName: "training_job", statuses: [FAILURE]}, limit: 1) '
        "{ ... on Runs { results { runId } } } }"
    )
    results = data["runsOrError"]["results"]
    if not results:
        print("  no rejected training run to show", flush=True)
        return
    c.go(f"/runs/{results[0]['runId']}", "champion_model", height=900)
    time.sleep(2.5)
    c.save("24-training-run-rejected")


def shot_fine_tuned_model(c: Context) -> None:
    c.go("/assets/fine_tuned_model?view=events", "Metadata", "history", height=1300)
    c.save("04-fine-tuned-model", clip=(0, 0, 1600, content_height(c.browser)))


PLOTS = [
    ("roc", "06-plot-roc"),
    ("ks", "07-plot-ks"),
    ("reliability", "08-plot-reliability"),
    ("score_distribution", "09-plot-score-distribution"),
    ("confusion_matrix", "10-plot-confusion"),
]


def shot_evaluation(c: Context) -> None:
    c.go("/assets/model_evaluation?view=events", "Metadata", "comparison", height=1800)
    c.save("05-model-evaluation", clip=(0, 0, 1600, content_height(c.browser)))
    for key, name in PLOTS:
        open_metadata_entry(c.browser, key)
        c.save(name, clip=rect_of(c.browser, ".bp5-dialog"), max_width=900)
        close_dialog(c.browser)
    c.browser.set_viewport(1600, 2600)
    time.sleep(1.5)
    open_metadata_entry(c.browser, "model_card")
    c.save("11-model-card", clip=rect_of(c.browser, ".bp5-dialog"), max_width=1100)
    close_dialog(c.browser)


def shot_checks(c: Context) -> None:
    c.go("/assets/valid_applications?view=checks", "contract_passes", height=900)
    c.browser.click_text("quarantine_rate_below_threshold", selector="a, button, div")
    c.browser.wait_for_text("settings.max_quarantine_rate", settle=2.0)
    c.save("12-check-quarantine-rate")
    c.go("/assets/registered_model?view=checks", "promotion_rule", height=620)
    c.browser.click_text("Execution history")
    c.browser.wait_for_text("Evaluation result", "champion", settle=2.0)
    c.save("13-check-promotion-rule")
    c.go("/assets/model_evaluation?view=checks", "fairness_four_fifths", height=900)
    c.save("14-check-fairness", clip=(0, 0, 1600, 560))
    open_metadata_entry(c.browser, "flags")
    c.save("15-check-fairness-flags", clip=rect_of(c.browser, ".bp5-dialog"), max_width=1000)
    close_dialog(c.browser)
    c.go("/assets/scored_applications?view=checks", "scoring_drift", height=900)
    c.save("16-check-scoring-drift")
    open_metadata_entry(c.browser, "psi")
    c.save("17-check-scoring-drift-psi", clip=rect_of(c.browser, ".bp5-dialog"), max_width=900)
    close_dialog(c.browser)


def shot_quarantine(c: Context) -> None:
    c.go("/assets/quarantined_applications?view=events", "Metadata", "rows_quarantined", height=1400)
    c.save("18-quarantined-applications", clip=(0, 0, 1600, content_height(c.browser)))
    # The sample table is wide: reload the page in a wider window before opening it.
    c.go(
        "/assets/quarantined_applications?view=events",
        "Metadata",
        "rows_quarantined",
        width=1900,
        height=1400,
    )
    open_metadata_entry(c.browser, "sample")
    c.save("19-quarantine-sample", clip=rect_of(c.browser, ".bp5-dialog"), max_width=1400)
    close_dialog(c.browser)


def shot_scores(c: Context) -> None:
    c.go("/assets/scored_applications?view=events", "Metadata", "rows_scored", height=1000)
    c.save("20-scored-applications", clip=(0, 0, 1600, content_height(c.browser)))
    c.go("/assets/scored_applications?view=events", "Metadata", "rows_scored", width=2400, height=1200)
    open_metadata_entry(c.browser, "sample")
    c.save("21-scores-sample", clip=rect_of(c.browser, ".bp5-dialog"), max_width=1400)
    close_dialog(c.browser)


def shot_automation(c: Context) -> None:
    c.go("/automation", "landing_folder_sensor", "weekly_retraining", height=330)
    c.save("22-automation")


def shot_runs(c: Context) -> None:
    c.go("/runs", "training_job", "scoring_job", height=560)
    c.save("23-runs")


SHOTS: dict[str, Callable[[Context], None]] = {
    "lineage": shot_lineage,
    "launchpad": shot_launchpad,
    "run": shot_run,
    "rejected_run": shot_rejected_run,
    "fine_tuned_model": shot_fine_tuned_model,
    "evaluation": shot_evaluation,
    "checks": shot_checks,
    "quarantine": shot_quarantine,
    "scores": shot_scores,
    "automation": shot_automation,
    "runs": shot_runs,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--home",
        type=Path,
        default=Path("/tmp/risk_app_screens"),
        help="RISK_APP_HOME for the demo (DAGSTER_HOME is its dagster_home/).",
    )
    parser.add_argument("--prepare", action="store_true", help="Run the pipeline first (a fresh home).")
    parser.add_argument("--port", type=int, default=3333, help="Port of dagster dev.")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "images", help="Where the PNGs go.")
    parser.add_argument("--only", default="", help=f"Comma-separated subset of: {','.join(SHOTS)}.")
    args = parser.parse_args()

    home = args.home.resolve()
    if args.prepare and home.exists():
        shutil.rmtree(home)
    dagster_home = home / "dagster_home"
    dagster_home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(REPO / "dagster.yaml", dagster_home / "dagster.yaml")
    env = {**os.environ, "RISK_APP_HOME": str(home), "DAGSTER_HOME": str(dagster_home)}
    log = home / "prepare.log"
    if args.prepare:
        prepare_first_versions(env, log)
    elif not (dagster_home / "storage").exists():
        raise SystemExit(f"{home} has no Dagster runs yet; run with --prepare first")

    selected = [s for s in args.only.split(",") if s] or list(SHOTS)
    unknown = set(selected) - set(SHOTS)
    if unknown:
        raise SystemExit(f"unknown shots {sorted(unknown)}; choose from {list(SHOTS)}")
    args.out.mkdir(parents=True, exist_ok=True)

    dagster = DagsterDev(args.port, env, home / "dagster_dev.log")
    try:
        dagster.wait_ready()
        print(f"dagster dev is up at {dagster.base}", flush=True)
        with Browser(1600, 1000) as browser:
            # Dismiss the "join the community" modal and collapse the left navigation.
            browser.goto(dagster.base + "/runs")
            browser.wait_for("document.body", settle=0.5)
            browser.evaluate(
                "localStorage.setItem('communityNux', '\"1\"'); "
                "localStorage.setItem('dagster-nav-collapsed', 'true')"
            )
            context = Context(browser, dagster, args.out)
            if args.prepare:
                launch_from_launchpad(context)
                prepare_file_with_errors(home, env, log)
            for name in selected:
                print(f"{name}:", flush=True)
                SHOTS[name](context)
    finally:
        dagster.stop()
        print("dagster dev stopped", flush=True)


if __name__ == "__main__":
    sys.exit(main())

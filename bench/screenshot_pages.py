"""The pages bench/screenshots.py photographs: one function per picture group, Dagster then MLflow.

Each function navigates like an analyst would (a URL, a tab, a "[Show …]" link), waits for the
text it expects, and saves a crop. The picture names are the ones docs/analyst-guide.md links.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.cdp import (
    Browser,
    capture,
    close_dialog,
    content_height,
    open_metadata_entry,
    rect_of,
    save_png,
    set_editor,
)

REPO = Path(__file__).resolve().parents[1]
STAGES = ("ingest", "validation", "preparation", "training", "evaluation", "registry", "scoring", "outcomes")
MODEL_NAME = "german_credit"


@dataclass
class Context:
    browser: Browser
    base: str
    out: Path
    dagster: Any = None  # screenshots.DagsterDev, for GraphQL look-ups
    home: Path | None = None
    launched_run: str | None = None
    quick: bool = False
    training_path: str = ""  # the file the launchpad's training run reads ("" = bundled data)

    def launchpad_yaml(self) -> str:
        return training_yaml(path=self.training_path, quick=self.quick)

    def go(self, path: str, *texts: str, width: int = 1600, height: int = 1000, timeout: float = 90) -> None:
        self.browser.set_viewport(width, height)
        self.browser.goto(self.base + path)
        self.browser.wait_for_text(*texts, timeout=timeout, settle=2.5)

    def save(self, name: str, clip: tuple[int, int, int, int] | None = None, max_width: int = 1400) -> None:
        path = self.out / f"{name}.png"
        size = save_png(capture(self.browser, clip), path, max_width=max_width)
        shown = path.relative_to(REPO) if path.is_relative_to(REPO) else path
        print(f"  {shown}  {size / 1024:.0f} KB", flush=True)

    def dialog(self, label: str, name: str, max_width: int = 1000) -> None:
        open_metadata_entry(self.browser, label)
        self.save(name, clip=rect_of(self.browser, ".bp5-dialog"), max_width=max_width)
        close_dialog(self.browser)


def events(c: Context, asset: str, *texts: str, height: int = 2200) -> None:
    """An asset's Events tab, on its latest materialization, in a window tall enough for its metadata."""
    c.go(f"/assets/{asset}?view=events", "Metadata", *texts, height=height)


# --------------------------------------------------------------------------- launchpads

def training_yaml(
    method: str = "lora",
    params: str = "{r: 16, alpha: 32, variant: dora}",
    path: str = "",
    quick: bool = False,
) -> str:
    """The training_job launchpad: DoRA on the bundled data by default; `quick`: one epoch on
    texts cut to 64 tokens (screenshots on a busy machine)."""
    length = "      epochs: 1\n      max_length: 64\n" if quick else "      epochs: 2\n"
    return f"""\
ops:
  dataset_spec:
    config:
      dataset: german_credit
  raw_applications:
    config:
      path: "{path}"
  training_examples:
    config:
      seed: 42
      exclude_fields: [personal_status_and_sex, foreign_worker]
  fine_tuned_model:
    config:
      method: {method}
      method_params: {params}
      base_model: tiny-qwen2
{length}      learning_rate: 0.001
  credit_policy:
    config:
      calibration: platt
      objective: min_cost
      cost_missed_default: 5
      cost_declined_good: 1
      max_decline_rate: 0.4
      grade_bands: {{A: 0.05, B: 0.1, C: 0.2, D: 0.35, E: 1.0}}
"""


LAUNCHPAD_YAML = training_yaml()

PROMOTE_YAML = """\
ops:
  promote_version:
    config:
      model_name: german_credit
      version: {version}
      reason: "validated by model risk, ticket MR-123 (screenshot demo)"
"""

ROLLBACK_YAML = """\
ops:
  rollback_to_previous_champion:
    config:
      model_name: german_credit
      reason: "drift on credit_amount in the April batch (screenshot demo)"
"""


def launch(c: Context, job: str, yaml: str) -> str:
    """Open a job's launchpad, replace its YAML, click Launch Run and wait for the run to end."""
    c.go(f"/locations/risk_app/jobs/{job}/playground", "Launch Run")
    set_editor(c.browser, yaml)
    c.browser.wait_for_text("No errors", settle=1.0)
    if not c.browser.click_text("Launch Run"):
        raise RuntimeError("no Launch Run button")
    c.browser.wait_for("location.pathname.startsWith('/runs/')", settle=0.5)
    run_id = str(c.browser.evaluate("location.pathname.split('/').pop()"))
    print(f"  launched {job} run {run_id} from the launchpad; waiting", flush=True)
    print(f"  run {run_id}: {c.dagster.wait_run(run_id)}", flush=True)
    return run_id


def launch_from_launchpad(c: Context, dataset: Path) -> None:
    c.launched_run = launch(c, "training_job", c.launchpad_yaml())


def launch_registry_jobs(c: Context) -> None:
    """Roll the champion back, then promote version 3 (the launchpad run) again, from the UI."""
    launch(c, "rollback_champion_job", ROLLBACK_YAML)
    launch(c, "promote_version_job", PROMOTE_YAML.format(version=3))


# --------------------------------------------------------------------------- Dagster pages


def shot_lineage(c: Context) -> None:
    # Vertical layout with every group expanded: the nodes are then drawn large enough to show
    # their status, checks and kinds. The crop is the graph pane, without the asset tree.
    c.browser.evaluate("localStorage.setItem('asset-graph-direction', '\"vertical\"')")
    groups = ",".join(f"global@global:{group}" for group in STAGES)
    c.go(f"/asset-groups?expanded={groups}", "dataset_spec", "champion_model", width=1500, height=2300)
    time.sleep(2)
    search = rect_of(c.browser, ".CodeMirror")  # the asset search box heads the graph pane
    left, top = search[0] - 12, search[1] + search[3] + 8
    c.save("01-asset-lineage", clip=(left, top, 1500 - left, 2300 - top))
    c.browser.evaluate("localStorage.setItem('asset-graph-direction', '\"horizontal\"')")


def shot_launchpad(c: Context) -> None:
    c.go("/locations/risk_app/jobs/training_job/playground", "Launch Run", height=1050)
    set_editor(c.browser, c.launchpad_yaml(), line=21)
    c.browser.wait_for_text("No errors", settle=2.0)
    c.save("02-launchpad-training")


def shot_run(c: Context) -> None:
    run_id = c.launched_run or c.dagster.run_ids("training_job", limit=3)[-1]
    c.go(f"/runs/{run_id}", "champion_model", height=900)
    c.save("03-training-run")


def shot_fine_tuned_model(c: Context) -> None:
    events(c, "fine_tuned_model", "history")
    c.save("04-fine-tuned-model", clip=(0, 0, 1600, content_height(c.browser)))


def shot_credit_policy(c: Context) -> None:
    events(c, "credit_policy", "strategy")
    c.save("05-credit-policy", clip=(0, 0, 1600, content_height(c.browser)))
    c.dialog("strategy", "06-strategy-table", max_width=1200)


PLOTS = [("comparison", "08-comparison"), ("roc", "09-plot-roc"), ("reliability", "10-plot-reliability")]


def shot_evaluation(c: Context) -> None:
    events(c, "model_evaluation", "comparison")
    c.save("07-model-evaluation", clip=(0, 0, 1600, content_height(c.browser)))
    for key, name in PLOTS:
        try:
            c.dialog(key, name, max_width=900)
        except RuntimeError as error:
            print(f"  {error}", flush=True)


def shot_model_card(c: Context) -> None:
    events(c, "packaged_model", "model_card", height=2600)
    c.dialog("model_card", "11-model-card", max_width=1100)


def shot_promotion(c: Context) -> None:
    c.go("/assets/registered_model?view=checks", "promotion_rule", height=700)
    c.browser.click_text("Execution history")
    c.browser.wait_for_text("Evaluation result", settle=2.0)
    c.save("12-check-promotion-rule")
    c.go("/assets/registered_model?view=events", "Metadata", "reason", height=1000)
    c.save("13-registered-model", clip=(0, 0, 1600, content_height(c.browser)))


def shot_checks(c: Context) -> None:
    c.go("/assets/valid_applications?view=checks", "contract_passes", height=900)
    c.browser.click_text("quarantine_rate_below_threshold", selector="a, button, div")
    c.browser.wait_for_text("settings.max_quarantine_rate", settle=2.0)
    c.save("14-check-quarantine-rate")
    c.go("/assets/model_evaluation?view=checks", "fairness_four_fifths", height=900)
    c.save("15-check-fairness", clip=(0, 0, 1600, 620))


def shot_quarantine(c: Context) -> None:
    c.go("/assets/quarantined_applications?view=events", "Metadata", "rows_quarantined", height=1400)
    c.save("16-quarantined-applications", clip=(0, 0, 1600, content_height(c.browser)))


def _partition(c: Context, prefix: str) -> str | None:
    data = c.dagster.graphql(
        '{ assetNodeOrError(assetKey: {path: ["scored_applications"]}) '
        "{ ... on AssetNode { partitionKeys } } }"
    )
    names = data["assetNodeOrError"]["partitionKeys"]
    return next((n for n in names if n.startswith(prefix)), None)


def shot_scoring(c: Context) -> None:
    for prefix, name in (
        ("sample_60", "17-scoring-small-batch"),
        ("new_applications_april", "19-scoring-drift"),
    ):
        key = _partition(c, prefix)
        if key is None:
            print(f"  no scoring partition {prefix}*", flush=True)
            continue
        c.go(f"/assets/scored_applications?view=events&partition={key}", "Metadata", height=1300)
        c.save(name, clip=(0, 0, 1600, content_height(c.browser)))
    c.go("/assets/scored_applications?view=checks", "scoring_drift", height=700)
    c.browser.click_text("Execution history")
    c.browser.wait_for_text("Evaluation result", "Too few rows", settle=2.0)
    c.save("18-check-scoring-drift")
    run = c.dagster.run_ids("scoring_job", limit=1, status="FAILURE")
    if run:
        c.go(f"/runs/{run[0]}", "scored_applications", height=900)
        c.save("20-scoring-run-drift")


def shot_scores_sample(c: Context) -> None:
    key = _partition(c, "sample_60")
    c.go(
        f"/assets/scored_applications?view=events&partition={key}",
        "Metadata",
        "sample",
        width=2000,
        height=1800,
    )
    c.dialog("sample", "21-scores-sample", max_width=1400)


def shot_registry_jobs(c: Context) -> None:
    c.go("/locations/risk_app/jobs/promote_version_job/playground", "Launch Run", height=800)
    set_editor(c.browser, PROMOTE_YAML.format(version=3), line=5)
    c.browser.wait_for_text("No errors", settle=2.0)
    c.save("22-launchpad-promote")
    for job, name in (
        ("promote_version_job", "23-promote-run"),
        ("rollback_champion_job", "24-rollback-run"),
    ):
        run = c.dagster.run_ids(job, limit=1)
        if run:
            c.go(f"/runs/{run[0]}", "champion", height=800)
            c.save(name)


def shot_automation(c: Context) -> None:
    c.go("/automation", "landing_folder_sensor", "weekly_retraining", height=480)
    c.save("25-automation")


def shot_runs(c: Context) -> None:
    c.go("/runs", "training_job", "scoring_job", height=900)
    c.save("26-runs")


SHOTS: dict[str, Callable[[Context], None]] = {
    "lineage": shot_lineage,
    "launchpad": shot_launchpad,
    "run": shot_run,
    "fine_tuned_model": shot_fine_tuned_model,
    "credit_policy": shot_credit_policy,
    "evaluation": shot_evaluation,
    "model_card": shot_model_card,
    "promotion": shot_promotion,
    "checks": shot_checks,
    "quarantine": shot_quarantine,
    "scoring": shot_scoring,
    "scores_sample": shot_scores_sample,
    "registry_jobs": shot_registry_jobs,
    "automation": shot_automation,
    "runs": shot_runs,
}


# --------------------------------------------------------------------------- MLflow pages


def _mlflow_api(c: Context, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """MLflow's REST API (to find the experiment and the launchpad's training run by name)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        f"{c.base}/api/2.0/mlflow/{path}", data=data, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return dict(json.load(response))


def _experiment_id(c: Context) -> str:
    experiments = _mlflow_api(c, "experiments/search?max_results=50").get("experiments", [])
    return str(next(e for e in experiments if e["name"] != "Default")["experiment_id"])


def _dismiss_mlflow_popups(c: Context) -> None:
    """Close MLflow 3's "Detect Issues" tip and its Assistant side panel, which cover the page."""
    c.browser.click_text("Got it")
    c.browser.evaluate(
        """(() => { const x = [...document.querySelectorAll('button')].filter(b =>
             (b.getAttribute('aria-label') || '').toLowerCase().includes('close'));
           x.forEach(b => b.click()); })()"""
    )
    time.sleep(1.0)


def shot_mlflow_experiment(c: Context) -> None:
    # What an analyst sees first in a fresh browser (kept in the guide, because it surprises):
    # MLflow 3.17 opens the experiment in its GenAI view whatever the experiment's kind tag says.
    experiment = _experiment_id(c)
    c.go(f"/#/experiments/{experiment}", "Model training", timeout=120)
    try:  # the GenAI overview's charts load after the sidebar
        c.browser.wait_for_text("Latency", timeout=90, settle=3.0)
    except TimeoutError as error:
        print(f"  {error}", flush=True)
    c.save("27-mlflow-genai-overview")
    _dismiss_mlflow_popups(c)
    # The README's link, in the same fresh browser: the runs, in the Model training view.
    c.go(f"/#/experiments/{experiment}/runs?workflowType=machine_learning", "Run Name", timeout=120)
    _dismiss_mlflow_popups(c)
    c.save("28-mlflow-experiment-runs")


def shot_mlflow_run(c: Context) -> None:
    experiment = _experiment_id(c)
    found = _mlflow_api(
        c,
        "runs/search",
        {"experiment_ids": [experiment], "max_results": 50, "order_by": ["attributes.start_time ASC"]},
    )
    # One run per trained model (epochs logged as they happen, then the model, metrics and
    # report); show the longest one.
    runs = [r["info"] for r in found.get("runs", [])]
    run = max(runs, key=lambda info: int(info.get("end_time") or 0) - int(info["start_time"]))
    base = f"/#/experiments/{experiment}/runs/{run['run_id']}"
    c.go(base + "?workflowType=machine_learning", "Duration", "Source", timeout=120, height=1200)
    _dismiss_mlflow_popups(c)
    c.save("29-mlflow-run")
    c.go(base + "/model-metrics?workflowType=machine_learning", "Model metrics", timeout=120, height=1200)
    try:  # the charts (one per metric, grouped by prefix) render after the tab
        c.browser.wait_for_text("epoch_val_auc", timeout=120, settle=3.0)
    except TimeoutError as error:
        print(f"  {error}", flush=True)
    _dismiss_mlflow_popups(c)
    c.save("30-mlflow-run-charts")


def shot_mlflow_model(c: Context) -> None:
    c.go(f"/#/models/{MODEL_NAME}", "champion", timeout=120, height=3400)
    _dismiss_mlflow_popups(c)
    c.save("31-mlflow-registered-model", max_width=1000)
    c.go(f"/#/models/{MODEL_NAME}/versions/3", "champion", timeout=120, height=1000)
    _dismiss_mlflow_popups(c)
    c.save("32-mlflow-champion-version")


MLFLOW_SHOTS: dict[str, Callable[[Context], None]] = {
    "mlflow_experiment": shot_mlflow_experiment,
    "mlflow_run": shot_mlflow_run,
    "mlflow_model": shot_mlflow_model,
}

"""Sensors: score every new file that lands in the landing folder."""

import json
from pathlib import Path

import dagster as dg

from pipelines.jobs import scoring_job
from risk_app import paths

SCORABLE_SUFFIXES = {".csv", ".parquet", ".pq"}


def new_landing_files(folder: Path, seen: dict[str, float]) -> list[Path]:
    """Files not seen before, or changed since; hidden and partial files are skipped."""
    found = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.suffix.lower() not in SCORABLE_SUFFIXES:
            continue
        mtime = path.stat().st_mtime
        if seen.get(path.name) != mtime:
            found.append(path)
    return found


@dg.sensor(job=scoring_job, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.STOPPED)
def landing_folder_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    """Starts one scoring run per new file in `var/landing/` (or `$RISK_APP_HOME/landing`)."""
    folder = paths.landing_dir()
    seen: dict[str, float] = json.loads(context.cursor) if context.cursor else {}
    requests = []
    for path in new_landing_files(folder, seen):
        mtime = path.stat().st_mtime
        seen[path.name] = mtime
        output = paths.outputs_dir() / f"{path.stem}.scores.parquet"
        requests.append(
            dg.RunRequest(
                run_key=f"{path.name}:{mtime}",
                run_config={
                    "ops": {
                        "scoring_batch": {"config": {"input_path": str(path)}},
                        "scored_applications": {"config": {"output_path": str(output)}},
                    }
                },
                tags={"landing_file": path.name},
            )
        )
    return dg.SensorResult(run_requests=requests, cursor=json.dumps(seen, sort_keys=True))

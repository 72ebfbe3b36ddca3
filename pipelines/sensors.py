"""Sensors: score every complete file that lands in the landing folder, once per content.

Which files are taken follows `risk_app.landing`: regular files inside the folder only
(symlinks are never followed); complete with a `<name>.done` marker newer than the file's last
change (consumed when taken), or once size, mtime, inode and ctime have not changed for
`$RISK_APP_LANDING_STABLE_SECONDS` (default 30) across two sensor ticks; new when its content
(sha256) differs from what was taken under that name, so a rewrite keeping size and mtime
(`cp -p`, `rsync -t`) is still seen. Then the sensor adds a dynamic partition
`<name>-<8 hex of the name's sha256>-<12 hex of the content's sha256>` (unique per name and
content) and requests one run for it, passing the hash it saw so the run fails rather than
score different bytes.

`outcome_landing_sensor` does the same for outcome files in `landing_outcomes/` (one
`outcomes` partition and run per file content) and, on the next tick, rebuilds the labeled
book and backtests each vintage whose outcomes changed (see docs/monitoring.md).

`override_landing_sensor` does the same for analyst override files in `landing_overrides/`
(one `overrides` partition and run per file content; see docs/monitoring.md).

`champion_alias_watch` compares each registered model's `champion` alias with the audit log
and, for a move made outside risk-app (MLflow's "Promote model" or alias pencil), requests one
run of `unaudited_alias_move_job`, which records the move and fails so the UI shows it red.

Every sensor that requests nothing says why in its own words (`dg.SkipReason`), e.g. "no new
complete files in var/landing (2 still being copied: a.csv, b.csv)".
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import dagster as dg

from data_contracts.spec import default_dataset, load_spec
from pipelines.assets.outcomes import outcome_files, vintages
from pipelines.assets.overrides import override_files
from pipelines.assets.scoring import landing_files
from pipelines.jobs import (
    backtest_job,
    labeled_book_job,
    outcomes_job,
    overrides_job,
    scoring_job,
    unaudited_alias_move_job,
)
from risk_app import paths
from risk_app.landing import (
    DONE_SUFFIX,
    SCORABLE_SUFFIXES,
    landing_candidates,
    landing_key,
    new_complete_files,
    settling_names,
    skipped_links,
    take,
    taken_names,
)
from risk_app.outcomes.book import vintage_outcome_counts
from risk_app.outcomes.routing import (
    dataset_folders,
    dataset_spec_named,
    known_dataset_names,
    outcomes_landing_dir,
    vintage_key,
)
from risk_app.overrides.ingest import overrides_landing_dir
from risk_app.registry.alias_audit import champion_alias_states

DEFAULT_STABLE_SECONDS = 30.0


def stable_seconds() -> float:
    """How long a file's signature must stay unchanged before it counts as complete."""
    return float(os.environ.get("RISK_APP_LANDING_STABLE_SECONDS", DEFAULT_STABLE_SECONDS))


def _shown(folder: Path) -> str:
    """The folder as an analyst knows it: relative to the working directory when inside it."""
    try:
        return str(folder.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(folder)


def _names(names: list[str], limit: int = 5) -> str:
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def landing_skip_reason(folder: Path, state: dict[str, Any], what: str = "files") -> str:
    """Why a landing sensor requested nothing this tick, in one sentence."""
    names = [p.name for p in landing_candidates(folder)] if folder.exists() else []
    links = skipped_links(folder) if folder.exists() else []
    where = _shown(folder)
    ignored = (
        f"; {len(links)} symlink(s) ignored ({_names(links)}): only regular files inside the folder are taken"
        if links else ""
    )  # fmt: skip
    if not names:
        kinds = "/".join(sorted(SCORABLE_SUFFIXES))
        hidden = "hidden files are uploads in progress"
        return f"no {what} in {where} yet (it takes {kinds} files; {hidden}{ignored})"
    settling = [n for n in names if n in settling_names(state)]
    done = [n for n in names if n in taken_names(state) and n not in settling]
    parts = []
    if settling:
        parts.append(
            f"{len(settling)} still being copied: {_names(settling)}; a file counts as complete with a "
            f"'{DONE_SUFFIX}' marker or after {stable_seconds():g} s unchanged"
        )
    if done:
        parts.append(f"{len(done)} already taken")
    if links:
        parts.append(ignored[2:])
    return f"no new complete {what} in {where}" + (f" ({'; '.join(parts)})" if parts else "")


@dg.sensor(job=scoring_job, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.STOPPED)
def landing_folder_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    """One partition and one scoring run per complete file in `var/landing/`."""
    state: dict[str, Any] = json.loads(context.cursor) if context.cursor else {}
    requests, keys = [], []
    for file in new_complete_files(paths.landing_dir(), state, time.time(), stable_seconds()):
        path, batch_id = file.path, file.sha256
        key = landing_key(path.name, batch_id)
        keys.append(key)
        take(state, file)
        requests.append(
            dg.RunRequest(
                run_key=key,
                partition_key=key,
                run_config={
                    "ops": {
                        "scoring_batch": {"config": {"input_path": str(path), "expected_batch_id": batch_id}}
                    }
                },
                tags={"landing_file": path.name, "risk_app/batch_id": batch_id},
            )
        )
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[landing_files.build_add_request(keys)] if keys else [],
        cursor=json.dumps(state, sort_keys=True),
        skip_reason=None if requests else landing_skip_reason(paths.landing_dir(), state),
    )


def _outcome_file_requests(
    state: dict[str, Any], folder: Path, dataset: str, prefix: str = ""
) -> tuple[list[dg.RunRequest], list[str]]:
    """One `outcomes_job` run (and partition) per complete, new outcome file of `folder`, whose
    files belong to `dataset` (keys made from `prefix + name`, so two data sets' files differ)."""
    requests, keys = [], []
    for file in new_complete_files(folder, state, time.time(), stable_seconds()):
        path, file_id = file.path, file.sha256
        key = landing_key(prefix + path.name, file_id)
        keys.append(key)
        take(state, file)
        config = {"dataset": dataset, "input_path": str(path), "expected_file_id": file_id}
        requests.append(
            dg.RunRequest(
                run_key=key,
                job_name="outcomes_job",
                partition_key=key,
                run_config={"ops": {"outcomes": {"config": config}}},
                tags={"outcome_file": path.name, "risk_app/file_id": file_id, "dataset": dataset},
            )
        )
    return requests, keys


def _book_requests(state: dict[str, Any], dataset: str) -> tuple[list[dg.RunRequest], list[str]]:
    """When `dataset`'s outcomes changed since the last tick: rebuild its book, backtest each
    changed vintage (partition `<data set>/<vintage>`)."""
    spec = dataset_spec_named(dataset)
    counts = vintage_outcome_counts(spec)
    seen: dict[str, int] = state.setdefault("books", {}).setdefault(dataset, {})
    changed = sorted(v for v, n in counts.items() if seen.get(v) != n)
    if not changed:
        return [], []
    stamp = "-".join(f"{v}:{counts[v]}" for v in changed)
    config = {"ops": {"labeled_book": {"config": {"dataset": dataset}}}}
    requests = [
        dg.RunRequest(
            run_key=f"book-{dataset}-{stamp}", job_name="labeled_book_job", run_config=config,
            tags={"dataset": dataset},
        )
    ]  # fmt: skip
    for vintage in changed:
        requests.append(
            dg.RunRequest(
                run_key=f"backtest-{dataset}-{vintage}-{counts[vintage]}",
                job_name="backtest_job",
                partition_key=vintage_key(dataset, vintage),
                run_config={"ops": {"backtest": {"config": {"dataset": dataset}}}},
                tags={"dataset": dataset, "vintage": vintage, "loans_with_outcome": str(counts[vintage])},
            )
        )
    new_keys = [vintage_key(dataset, v) for v in changed if v not in seen]
    seen.update({v: counts[v] for v in changed})
    return requests, new_keys


@dg.sensor(
    jobs=[outcomes_job, labeled_book_job, backtest_job],
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.STOPPED,
)
def outcome_landing_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    """Outcome files in `landing_outcomes/<data set>/` (or directly in `landing_outcomes/`: the
    data set of $RISK_APP_DATASET) are taken in once each, each into its folder's data set; then
    the book and the backtest of every vintage whose outcomes changed are brought up to date,
    per data set (`risk_app.outcomes.routing`)."""
    default = load_spec(default_dataset()).name
    state: dict[str, Any] = json.loads(context.cursor) if context.cursor else {}
    file_requests, file_keys = _outcome_file_requests(state, outcomes_landing_dir(), default)
    folders = dataset_folders()
    known = set(known_dataset_names())
    unknown = sorted(name for name in folders if name not in known)
    for name in sorted(known & set(folders)):
        sub = state.setdefault("folders", {}).setdefault(name, {})
        more_requests, more_keys = _outcome_file_requests(sub, folders[name], name, prefix=f"{name}/")
        file_requests += more_requests
        file_keys += more_keys
    book_requests, vintage_keys = [], []
    checked = sorted(known & {*folders, default})
    for name in checked:
        more_requests, more_keys = _book_requests(state, name)
        book_requests += more_requests
        vintage_keys += more_keys
    partitions = [outcome_files.build_add_request(file_keys)] if file_keys else []
    if vintage_keys:
        partitions.append(vintages.build_add_request(vintage_keys))
    skip = None
    if not file_requests and not book_requests:
        files = landing_skip_reason(outcomes_landing_dir(), state, what="outcome files")
        taken = sum(len(taken_names(sub)) for sub in state.get("folders", {}).values())
        folders_named = "|".join(sorted(known))
        per_set = f"; one folder per data set: landing_outcomes/<{folders_named}>/ ({taken} taken there)"
        odd = f"; folder(s) of no known data set, not read: {', '.join(unknown)}" if unknown else ""
        books = ", ".join(checked)
        skip = f"{files}{per_set}{odd}, and no vintage of {books} has new outcomes since its last backtest"
    return dg.SensorResult(
        run_requests=[*file_requests, *book_requests],
        dynamic_partitions_requests=partitions,
        cursor=json.dumps(state, sort_keys=True),
        skip_reason=skip,
    )


@dg.sensor(job=overrides_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.STOPPED)
def override_landing_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    """Analyst override files in `landing_overrides/` are taken in once each, one `overrides`
    partition and run per file content (data set: $RISK_APP_DATASET)."""
    dataset = default_dataset()
    state: dict[str, Any] = json.loads(context.cursor) if context.cursor else {}
    requests, keys = [], []
    for file in new_complete_files(overrides_landing_dir(), state, time.time(), stable_seconds()):
        key = landing_key(file.path.name, file.sha256)
        keys.append(key)
        take(state, file)
        config = {"dataset": dataset, "input_path": str(file.path), "expected_file_id": file.sha256}
        requests.append(
            dg.RunRequest(
                run_key=key,
                partition_key=key,
                run_config={"ops": {"overrides": {"config": config}}},
                tags={"override_file": file.path.name, "risk_app/file_id": file.sha256},
            )
        )
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[override_files.build_add_request(keys)] if keys else [],
        cursor=json.dumps(state, sort_keys=True),
        skip_reason=None
        if requests
        else landing_skip_reason(overrides_landing_dir(), state, what="override files"),
    )


@dg.sensor(
    # By name, not the job object: a @dg.job object makes Definitions rebind the sensor to the
    # resource-bound job, which Dagster announces with a BetaWarning on every load.
    job_name=unaudited_alias_move_job.name,
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.STOPPED,
)
def champion_alias_watch(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    """A `champion` alias moved outside risk-app (e.g. in MLflow's UI) gets one red run, once."""
    # Cursor: per model, the move already handed to a run (so a slow run is not asked for twice).
    flagged: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    states = champion_alias_states()
    requests, waiting = [], []
    for state in states:
        if not state.unaudited:
            flagged.pop(state.model_name, None)
            continue
        move = f"{state.audited or 'none'}-to-{state.champion or 'none'}-after-{state.audited_at or 'start'}"
        if flagged.get(state.model_name) == move:
            waiting.append(state.model_name)
            continue
        flagged[state.model_name] = move
        config = {"model_name": state.model_name}
        requests.append(
            dg.RunRequest(
                run_key=f"unaudited-{state.model_name}-{move}",
                run_config={"ops": {"record_unaudited_alias_move": {"config": config}}},
                tags={"model_name": state.model_name, "champion": state.champion or "none"},
            )
        )
    skip = None
    if not requests:
        said = [s.sentence() for s in states if s.model_name not in waiting]
        said += [f"the move of {name}'s champion is already flagged, its run records it" for name in waiting]
        skip = "; ".join(said) if said else "no registered models in the MLflow registry yet"
    return dg.SensorResult(
        run_requests=requests, cursor=json.dumps(flagged, sort_keys=True), skip_reason=skip
    )

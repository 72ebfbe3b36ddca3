"""`risk-app federated`: lenders fine-tune one model together on Flower (docs/federated.md).

    risk-app federated simulate --dataset german_credit --lenders 5 --partition-by dirichlet:0.5
    risk-app federated simulate -d german_credit --lenders 3 --partition-by purpose \\
        --set rounds=3 --set strategy=fedprox --set secure_aggregation.enabled=true --register

`simulate` cuts the data set into N virtual lenders (a spec column, or a Dirichlet label skew),
runs the consortium in Flower's Simulation Engine, prints one line per round (lenders, refusals,
skips, AUC per lender, bytes, ε), then packages the consortium's model like any other run
(policy, evaluation on the lenders' pooled test beside the baselines) and, with `--register`,
registers it. `--set key=value` sets any `FederatedConfig` field (dotted for nested ones,
values parsed as JSON). Self-contained (no import of `risk_app.cli.main`), mounted with one line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from risk_app import paths
from risk_app.cli.common import clear_errors, console, parse_params, print_table

federated_app = typer.Typer(no_args_is_help=True, help="Federated fine-tuning: a consortium of lenders.")


def _nested(flat: dict[str, Any]) -> dict[str, Any]:
    """{"privacy.enabled": true} -> {"privacy": {"enabled": true}}."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        node = out
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


@federated_app.command("simulate")
@clear_errors
def simulate_command(
    dataset: Annotated[
        str, typer.Option("--dataset", "-d", help="Data set: a built-in name or a spec file.")
    ],
    lenders: Annotated[int, typer.Option(help="How many virtual lenders.")] = 5,
    partition_by: Annotated[
        str, typer.Option("--partition-by", help="A spec column, or dirichlet:ALPHA (label skew).")
    ] = "dirichlet:0.5",
    data: Annotated[Path | None, typer.Option(help="Applications file (default: the bundled one).")] = None,
    sets: Annotated[
        list[str] | None, typer.Option("--set", help="FederatedConfig field key=value (dotted for nested).")
    ] = None,
    workdir: Annotated[Path | None, typer.Option(help="Folder for lenders and server state.")] = None,
    register: Annotated[bool, typer.Option(help="Register the packaged model in MLflow.")] = False,
    model_name: Annotated[str, typer.Option(help="Registered model name (with --register).")] = "consortium",
) -> None:
    """Run a consortium of virtual lenders in Flower's Simulation Engine and package its model."""
    # CLI start-up: the consortium imports Flower, torch and mlflow; only `federated simulate` needs them.
    from risk_app.federated.config import FederatedConfig, Partition
    from risk_app.federated.product import package_federated, pooled_examples
    from risk_app.federated.server import RoundReport
    from risk_app.federated.simulation import simulate
    from risk_app.run.register import register_run

    config = FederatedConfig.from_dict(_nested(parse_params(sets or [], None)))
    partition = Partition.parse(partition_by)
    folder = workdir or paths.home() / "federated" / f"{Path(str(dataset)).stem}-{lenders}"

    def show(report: RoundReport) -> None:
        auc = ", ".join(f"{k} {v:.3f}" for k, v in report.val_auc_global.items())
        line = f"round {report.server_round}: {report.status}"
        line += f" ({len(report.returned)}/{len(report.asked)} lenders)" if report.asked else ""
        line += f"; {report.reason}" if report.reason else ""
        line += f"; validation AUC {auc}" if auc else ""
        if report.bytes_up:
            line += f"; {max(report.bytes_up.values()) / 1e6:.2f} MB up per lender"
        if report.epsilon is not None:
            line += f"; ε so far {report.epsilon:.2f}"
        if report.record_epsilon:
            line += f"; record-level ε so far up to {max(report.record_epsilon.values()):.2f}"
        console.print(line, highlight=False, soft_wrap=True)
        for lender, why in report.rejected.items():
            console.print(f"  refused update from {lender}: {why}", highlight=False, soft_wrap=True)

    result = simulate(dataset, lenders=lenders, partition=partition, config=config, workdir=folder,
                      data_file=data, on_round=show)  # fmt: skip
    outcome = result.outcome
    for reason in outcome.refused.values():
        console.print(f"[yellow]refused at join:[/yellow] {reason}", highlight=False, soft_wrap=True)
    print_table(
        "lenders",
        [
            {
                "lender": f"lender-{row['lender']}",
                "rows": row["rows"],
                "default rate": row["default_rate"],
                "test AUC (federated)": outcome.test_auc.get(f"lender-{row['lender']}", float("nan")),
            }  # fmt: skip
            for row in result.partition
        ],
    )
    valid, examples = pooled_examples(result.sites)
    record = package_federated(outcome, valid, examples, spec=dataset, source=str(folder))
    test = record.need("evaluation").test
    console.print(f"pooled test ROC AUC {test.roc_auc:.4f}; artifact {record.need('artifact').path}")
    if outcome.record_epsilon:
        each = ", ".join(f"{name} {eps:.3f}" for name, eps in outcome.record_epsilon.items())
        console.print(
            f"record-level differential privacy (DP-SGD in each lender) at δ = {outcome.delta:g}: ε {each}"
        )
    elif outcome.epsilon is not None:
        console.print(f"differential privacy: ε = {outcome.epsilon:.3f} at δ = {outcome.delta:g}")
    if register:
        record = register_run(record, model_name=model_name)
        reg = record.need("registration")
        console.print(f"registered {reg.model_name} version {reg.version}")

"""The loop that closes: outcomes come back, join what was scored, and backtest the PDs.

- `ingest`: take in an outcome file exactly once (contract + book checks, quarantine).
- `book`: the labeled book (scored applications with their outcome once known) and the
  training rows it gives (declined applicants excluded and counted).
- `backtest`: per vintage and model version, predicted PD vs realized default rate per grade,
  Jeffreys test, traffic lights, AUC and calibration.
- `store`: the warehouse tables these write (`risk.outcome_files`, `risk.outcomes`,
  `risk.outcome_quarantine`, `risk.backtests`).
- `simulation`: a made-up lender's year, for tests and the demo only.

See docs/monitoring.md for the loop as a whole and its view in the Dagster UI.
"""

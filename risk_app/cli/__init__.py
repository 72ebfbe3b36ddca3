"""The `risk-app` command line: one module per command group, mounted by `main.py`.

    main.py       the app: validate, train, score, compare-methods, methods, augmenters
    common.py     what every command shares: one red line on an error, tables, --param / --set parsing
    bases.py      risk-app bases (catalogue base models: list, fetch)
    datasets.py   risk-app datasets (built-in data sets, show a spec, draft one)
    models.py     risk-app models (registered versions, promote, roll back)
    outcomes.py   risk-app outcomes (outcome files, the labeled book, backtests)
    overrides.py  risk-app overrides (the analysts' override ledger)
    scoring.py    risk-app scoring (held batches)
    federated.py  risk-app federated (a consortium in Flower's simulation)

`pipelines/cli.py` adds the Dagster commands and is the installed entry point. The package
imports none of its modules; each command defers what only it needs (CLI start-up time).
"""

"""The hybrid as a deployable model: an LLM's calibrated PD stacked with a tabular LightGBM.

A training run with `HybridConfig(stacker="logistic" | "convex")` (CLI `--hybrid`, launchpad
`hybrid`) fine-tunes the LLM as usual, then `stack_hybrid` (the stage between fine-tuning and
the credit policy) fits LightGBM on the train split's spec features, fits the stacker on
validation with cross-fitting (`risk_app/evaluate/hybrid.py`) and hands the stacked scores to
the policy, evaluation and packaging stages, which treat it like any model. The artifact
carries the tabular model and the stacker (`hybrid/`), and `load_risk_model` returns a
`HybridRiskModel` whose `predict_proba(df)` stacks both PDs and whose `reason_codes(df)`
occludes each field in the text and in the tabular features at once.
`HybridConfig(stacker="tabular_only")` deploys LightGBM alone (`tabular:lightgbm`) through the
same stage and artifact; its `HybridRiskModel` loads no LLM and explains by the tabular features.

    config.py   HybridConfig (the option), HybridFacts (the run record's section)
    tabular.py  TabularModel: the LightGBM baseline as plain JSON + LightGBM text, no pickle
    stage.py    stack_hybrid (the run stage), llm_alone_on_test, artifact_parts
    model.py    HybridRiskModel: predict_proba, components, reason_codes
"""

"""The credit policy: how a model's scores become PDs, grades and approve/decline decisions.

    credit.py   PolicyConfig, choose_policy (calibration, cut-off, cap), policy_id
    grades.py   the grade bands (A safest) and assign_grades

Chosen on validation by the run's `credit_policy` stage, stored in the artifact, applied by
scoring to every row."""

"""Training objectives: *how* a method's parameters train, whichever method chose them.

* `supervised` — class-weighted cross-entropy on the labelled applications (`supervised.py`);
* `frozen_features` — the head alone on cached pooled features (`freeze` with no decoder layer);
* `rlhf` — supervised fit, a reward model from analyst feedback (`reward_model.py`), then
  clipped PPO with a KL penalty to the supervised policy (`ppo.py`), put together in `rlhf.py`,
  which also registers `rlhf` as a method name over a parameter method (`registry.resolve_method`).

Each objective is an `Objective` (`base.py`): a function of one `ObjectiveInputs` returning a
`TrainResult`; `base.run_objective` picks it by the method choice's objective name.
"""

"""Training objectives: *how* a method's parameters train, whichever method chose them.

* `supervised` — class-weighted cross-entropy on the labelled applications (`supervised.py`);
* `rlhf` — supervised fit, a reward model from analyst feedback (`reward_model.py`), then
  clipped PPO with a KL penalty to the supervised policy (`ppo.py`), put together in `rlhf.py`.

Each objective is a function `(method, model, tokenizer, data, train_cfg, cfg, checkpoint_dir,
*, progress) -> TrainResult` over a model the method has prepared; `risk_app.finetune.trainer`
picks it by the method's `objective` name. Add one: a module here, its name in
`risk_app.finetune.types.ObjectiveName`, and an entry in `trainer.OBJECTIVES` (its module and
function by name; the trainer imports an objective's module only when a run uses it, so
fine-tuning with `supervised` never loads `rlhf`'s feedback sources and the warehouse).
"""

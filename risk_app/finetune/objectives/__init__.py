"""Training objectives that run over a parameter method: reward modeling and PPO (for `rlhf`).

`reward_model` builds preference pairs from analyst feedback and trains a scalar reward model
with trl's `RewardTrainer`; `ppo` optimizes the classifier's approve/decline policy against it.
"""

"""The training defaults the command line shows, kept apart from `TrainConfig` (which imports
torch) so that `risk-app --help` names them without loading torch. `TrainConfig` reads them."""

from __future__ import annotations

DEFAULT_METHOD = "lora"
DEFAULT_BASE_MODEL = "tiny-qwen2"
DEFAULT_EPOCHS = 3

__all__ = ["DEFAULT_BASE_MODEL", "DEFAULT_EPOCHS", "DEFAULT_METHOD"]

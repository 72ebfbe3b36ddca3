"""Explanations: reason codes by occlusion (`reasons.py`), their exact prefix-cache shortcut
(`occlusion_cache.py`, `last_token_layer.py`). They load and score models, so they sit above
the registry's artifact loader; the hybrid's `reason_codes` and scoring's `explain_declines` use
them."""

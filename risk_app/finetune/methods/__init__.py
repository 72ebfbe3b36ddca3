"""Fine-tuning methods, one module each; importing this package registers them all.

Add a method: write `methods/<name>.py` with a `@register`-ed `FineTuneMethod` subclass and
add one import line below.
"""

from risk_app.finetune.methods import (
    adapter,  # noqa: F401
    freeze,  # noqa: F401
    full,  # noqa: F401
    lora,  # noqa: F401
    prompt,  # noqa: F401
    qlora,  # noqa: F401
    quantum,  # noqa: F401
    rlhf,  # noqa: F401
)

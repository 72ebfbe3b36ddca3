"""Fine-tuning methods, one module each; importing this package registers them all.

Add a method: write `methods/<name>.py` with a `@register`-ed `FineTuneMethod` subclass and
add one import line below.
"""

from risk_app.finetune.methods import lora  # noqa: F401
from risk_app.finetune.methods import qlora  # noqa: F401
from risk_app.finetune.methods import adapter  # noqa: F401
from risk_app.finetune.methods import freeze  # noqa: F401
from risk_app.finetune.methods import full  # noqa: F401
from risk_app.finetune.methods import prompt  # noqa: F401
from risk_app.finetune.methods import quantum  # noqa: F401
from risk_app.finetune.methods import rlhf  # noqa: F401

"""Fine-tuning methods: *which parameters train*, one module each.

Each module holds a typed `Config` and a `@register`-ed `FineTuneMethod` subclass (see
`base.py` for the hooks). The registry imports the modules named in
`risk_app.finetune.registry.BUILTIN_METHOD_MODULES` on its first lookup; this package itself
imports nothing, so importing `methods.base` (as the trainer does) never pulls in every method.
Add a method: write `methods/<name>.py` and add `"<name>"` to that tuple.
"""

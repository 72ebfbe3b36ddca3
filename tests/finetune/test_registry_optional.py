"""A method whose own library is missing is reported by name; the other methods still load."""

from __future__ import annotations

import builtins

import pytest

from risk_app.finetune import registry


def test_a_missing_method_library_leaves_the_others_usable(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_pennylane(name, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        if name.split(".")[0] == "pennylane":
            raise ModuleNotFoundError("No module named 'pennylane'", name="pennylane")
        return real_import(name, *args, **kwargs)

    import sys

    monkeypatch.delitem(sys.modules, "risk_app.finetune.methods.quantum", raising=False)
    monkeypatch.setattr(builtins, "__import__", no_pennylane)
    saved = registry._METHODS.pop("quantum", None)
    try:
        assert registry.get_method("lora").name == "lora"
        with pytest.raises(registry.UnknownMethodError, match="needs the package 'pennylane'"):
            registry.get_method("quantum")
    finally:
        monkeypatch.setattr(builtins, "__import__", real_import)
        registry._UNAVAILABLE.pop("quantum", None)
        # monkeypatch puts the original module object back into sys.modules; its class goes
        # back into the registry (re-importing would register a second, different class).
        if saved is not None:
            registry._METHODS["quantum"] = saved

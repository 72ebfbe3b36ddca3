"""Base models: one loader for hub ids, local folders and GGUF files, and the tiny local Qwen2."""

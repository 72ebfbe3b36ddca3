"""Write a saved Qwen2 folder (the tiny model) as a GGUF file, to test GGUF loading offline.

Uses the `gguf` package's writer with llama.cpp's tensor names and tokenizer keys, the same
layout llama.cpp's converter produces for Qwen2 (weights stored as F32, unquantized).
"""

from __future__ import annotations

import json
from pathlib import Path

import gguf
from safetensors.numpy import load_file


def write_qwen2_gguf(model_dir: Path, out_path: Path) -> Path:
    cfg = json.loads((model_dir / "config.json").read_text())
    tok = json.loads((model_dir / "tokenizer.json").read_text())
    n_layers = cfg["num_hidden_layers"]
    writer = gguf.GGUFWriter(str(out_path), "qwen2")
    writer.add_context_length(cfg["max_position_embeddings"])
    writer.add_embedding_length(cfg["hidden_size"])
    writer.add_block_count(n_layers)
    writer.add_feed_forward_length(cfg["intermediate_size"])
    writer.add_head_count(cfg["num_attention_heads"])
    writer.add_head_count_kv(cfg["num_key_value_heads"])
    writer.add_rope_freq_base(float(cfg.get("rope_theta") or cfg["rope_parameters"]["rope_theta"]))
    writer.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)

    vocab = tok["model"]["vocab"]
    added = {t["content"]: t["id"] for t in tok["added_tokens"]}
    size = cfg["vocab_size"]
    by_id = {i: t for t, i in {**vocab, **added}.items()}
    tokens = [by_id.get(i, f"[PAD{i}]") for i in range(size)]
    types = [
        gguf.TokenType.CONTROL
        if t in added
        else gguf.TokenType.NORMAL
        if i in by_id
        else gguf.TokenType.UNUSED
        for i, t in enumerate(tokens)
    ]
    merges = [m if isinstance(m, str) else " ".join(m) for m in tok["model"]["merges"]]
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("qwen2")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    writer.add_eos_token_id(cfg["eos_token_id"])
    writer.add_pad_token_id(cfg["pad_token_id"])

    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.QWEN2, n_layers)
    for hf_name, array in load_file(model_dir / "model.safetensors").items():
        name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if name is None:
            raise KeyError(f"no GGUF name for {hf_name}")
        writer.add_tensor(name, array.astype("float32"))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out_path

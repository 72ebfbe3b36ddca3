"""`qlora`: LoRA adapters on a 4-bit quantized base (Dettmers et al. 2023).

QLoRA is not a new way of choosing parameters: it is `lora` on a base whose linear layers
were quantized to 4 bits (NF4 by default, with double quantization of the scales). So this
module only adds the quantization:

* `load_base` loads the classifier through `load_classifier(..., quantization=BitsAndBytesConfig)`
  with the `score` head left in full precision (`llm_int8_skip_modules`), because a freshly
  initialised head quantized to 4 bits would lose most of its signal;
* `prepare` runs `peft.prepare_model_for_kbit_training` (norms upcast to fp32, input grads for
  gradient checkpointing) and then LoRA's own `prepare`;
* `make_optimizer` uses bitsandbytes' paged 8-bit AdamW on CUDA, whose paged optimizer state
  survives memory spikes on long sequences; on CPU it falls back to torch AdamW. The choice is
  read from the run's config each time, never kept on the method object.

bitsandbytes >= 0.48 runs 4-bit layers on CPU too, so the method trains (slowly) on a laptop
and fast on a GPU. A saved model holds only the adapters and the head; reloading quantizes the
same base again, which is deterministic, so predictions match.

    TrainConfig(method="qlora", method_params={"r": 16, "quant_type": "nf4"})
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
from bitsandbytes.nn import Linear4bit
from bitsandbytes.optim import PagedAdamW8bit
from peft import prepare_model_for_kbit_training
from pydantic import BaseModel, Field
from transformers import BitsAndBytesConfig

from risk_app.errors import ConfigError
from risk_app.finetune.config import TrainConfig
from risk_app.finetune.methods.base import HEAD_MODULE
from risk_app.finetune.methods.lora import LoraMethod, LoraParams
from risk_app.finetune.registry import register
from risk_app.finetune.run_setup import resolve_device
from risk_app.finetune.types import RunPlan
from risk_app.models.loader import load_classifier

ComputeDtype = Literal["auto", "float32", "bfloat16", "float16"]
_DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}


class QLoraParams(LoraParams):
    """LoRA's parameters plus how the frozen base is quantized."""

    quant_type: Literal["nf4", "fp4"] = Field(
        default="nf4", description="4-bit data type: 'nf4' (normal float, QLoRA's choice) or 'fp4'."
    )
    double_quant: bool = Field(
        default=True, description="Quantize the quantization scales too (saves ~0.4 bit per weight)."
    )
    compute_dtype: ComputeDtype = Field(
        default="auto",
        description="Dtype of the 4-bit matmuls: 'auto' = bfloat16 on CUDA (else float16), float32 on CPU.",
    )
    optimizer: Literal["auto", "paged_adamw_8bit", "adamw"] = Field(
        default="auto",
        description="'auto' = paged 8-bit AdamW on CUDA, torch AdamW on CPU; 'paged_adamw_8bit' needs CUDA.",
    )
    gradient_checkpointing: bool = Field(
        default=True, description="Recompute activations in the backward pass to save memory (slower)."
    )
    embedding_offload: bool = Field(
        default=False,
        description=(
            "Keep the frozen input embedding table in host memory and look tokens up there; only "
            "the looked-up rows go to the GPU (a 7B vocabulary: about 1.1 GB of GPU memory saved)."
        ),
    )
    embedding_dtype: Literal["compute", "float32"] = Field(
        default="compute",
        description=(
            "Dtype of the frozen input embeddings: 'compute' = the 4-bit matmuls' dtype (bf16 on "
            "CUDA: half the memory of peft's fp32 upcast; 1.1 GB saved on a 7B vocabulary)."
        ),
    )


def resolve_compute_dtype(choice: str, device: torch.device) -> torch.dtype:
    """The matmul dtype for `choice` on `device`."""
    if choice != "auto":
        return _DTYPES[choice]
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def build_quantization_config(cfg: QLoraParams, device: torch.device) -> BitsAndBytesConfig:
    """The bitsandbytes 4-bit config for `cfg`; the classification head stays unquantized."""
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type=cfg.quant_type,
        bnb_4bit_use_double_quant=cfg.double_quant,
        bnb_4bit_compute_dtype=resolve_compute_dtype(cfg.compute_dtype, device),
        llm_int8_skip_modules=[HEAD_MODULE],
    )


def disable_cpu_inference_repacking(model: torch.nn.Module) -> int:
    """Stop bitsandbytes from repacking 4-bit weights in place for CPU inference.

    On CPUs with AVX512-BF16, `Linear4bit.forward` in eval mode converts its weight to a CPU
    inference layout and never converts it back. Training after the first validation pass
    then takes an inference-only kernel (no gradient to earlier layers; layers with a bias
    crash with "a view of a leaf Variable ... in-place"), and the frozen weights change bytes.
    We train and validate in turns, so keep the training layout throughout. Returns the number
    of layers changed.
    """
    layers = [m for m in model.modules() if isinstance(m, Linear4bit)]
    for layer in layers:
        layer.support_avx512bf16_for_cpu = False
    return len(layers)


def shrink_frozen_embeddings(model: Any, cfg: QLoraParams) -> bool:
    """Put the frozen input embeddings back in the compute dtype after peft's fp32 upcast.

    `prepare_model_for_kbit_training` upcasts every unquantized weight to fp32 for stable
    norms; the embedding table is the one large such weight (vocabulary x hidden), it never
    trains, and a lookup does no arithmetic, so fp32 only doubles its memory. On the CPU the
    compute dtype is fp32 and nothing changes. Returns whether the table was cast."""
    embeddings = model.get_input_embeddings()
    weight = getattr(embeddings, "weight", None)
    if cfg.embedding_dtype != "compute" or weight is None or weight.requires_grad:
        return False
    dtype = resolve_compute_dtype(cfg.compute_dtype, weight.device)
    if weight.dtype == dtype:
        return False
    weight.data = weight.data.to(dtype)
    return True


class HostEmbedding(torch.nn.Module):
    """A frozen embedding table held in host memory: the lookup runs on the CPU and only the
    rows it returns are copied to `device`.

    The table is a plain attribute, not a parameter or buffer, so moving the model leaves it
    where it is, and nothing trains or saves it (QLoRA saves only adapters and the head; a
    reload builds the table again from the base). The ids come back from the device once per
    forward (one small copy and a sync), the rows go out from pinned memory."""

    def __init__(self, table: torch.Tensor, device: torch.device) -> None:
        super().__init__()
        host = table.detach().to("cpu")
        self.table = host.pin_memory() if device.type == "cuda" else host
        self.out_device = device
        self.num_embeddings, self.embedding_dim = self.table.shape

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        rows = torch.nn.functional.embedding(input_ids.to("cpu"), self.table)
        if self.out_device.type == "cuda":
            rows = rows.pin_memory()
        return rows.to(self.out_device, non_blocking=True)


def offload_embeddings(model: Any, cfg: QLoraParams) -> bool:
    """Swap the input embeddings for a `HostEmbedding` (in the dtype `embedding_dtype` names)
    when `cfg.embedding_offload` asks; returns whether it did. The GPU copy of the table is
    freed with the old module.

    Called before peft's `prepare_model_for_kbit_training`, whose input-gradient hook (what
    reentrant checkpointing needs to reach the adapters) must sit on the module in use."""
    weight = getattr(model.get_input_embeddings(), "weight", None)
    if not cfg.embedding_offload or weight is None:
        return False
    dtype = resolve_compute_dtype(cfg.compute_dtype, weight.device)
    table = weight.detach().to(dtype if cfg.embedding_dtype == "compute" else torch.float32)
    model.set_input_embeddings(HostEmbedding(table, weight.device))
    return True


def _target_device(train_cfg: TrainConfig | None) -> torch.device:
    return resolve_device(train_cfg.device if train_cfg is not None else "auto")


@register
class QLoraMethod(LoraMethod):
    """LoRA on a 4-bit (NF4/FP4) bitsandbytes base; everything else is LoRA's."""

    name = "qlora"
    description = (
        "LoRA adapters on a 4-bit NF4-quantized frozen base (bitsandbytes), paged 8-bit AdamW on CUDA."
    )
    Config = QLoraParams
    # Checkpointing only slows the tiny CPU suite down; it is exercised by the qlora tests.
    suite_params: ClassVar[dict[str, Any]] = {"r": 4, "gradient_checkpointing": False}

    def load_base(
        self, base_model: str, cfg: BaseModel, train_cfg: TrainConfig | None = None
    ) -> tuple[Any, Any]:
        assert isinstance(cfg, QLoraParams)
        device = _target_device(train_cfg)
        return load_classifier(
            base_model,
            num_labels=2,
            quantization=build_quantization_config(cfg, device),
            device=device,
        )

    def prepare(self, model: Any, cfg: BaseModel, plan: RunPlan | None = None) -> Any:
        assert isinstance(cfg, QLoraParams)
        if not getattr(model, "is_loaded_in_4bit", False):
            raise ConfigError(
                "method 'qlora' needs a 4-bit base from QLoraMethod.load_base; got an unquantized model "
                "(use method 'lora' for that)"
            )
        disable_cpu_inference_repacking(model)
        offload_embeddings(model, cfg)
        # peft's default (reentrant) checkpointing: the non-reentrant variant trips an in-place
        # bias add inside bitsandbytes' CPU 4-bit matmul ("view of a leaf Variable ...").
        model = prepare_model_for_kbit_training(
            model,
            use_gradient_checkpointing=cfg.gradient_checkpointing,
            gradient_checkpointing_kwargs={"use_reentrant": True},
        )
        shrink_frozen_embeddings(model, cfg)
        return super().prepare(model, cfg, plan)

    def for_inference(self, model: Any, cfg: BaseModel) -> Any:
        """As trained: folding adapters into 4-bit weights would quantize them again and move
        the scores away from the ones the model was validated with."""
        return model

    def make_optimizer(
        self, param_groups: list[dict[str, Any]], train_cfg: TrainConfig, cfg: BaseModel
    ) -> torch.optim.Optimizer:
        assert isinstance(cfg, QLoraParams)
        on_cuda = any(p.is_cuda for group in param_groups for p in group["params"])
        choice = cfg.optimizer
        if choice == "auto":
            choice = "paged_adamw_8bit" if on_cuda else "adamw"
        if choice == "adamw":
            return super().make_optimizer(param_groups, train_cfg, cfg)
        if not on_cuda:
            raise ConfigError(
                "method 'qlora': optimizer 'paged_adamw_8bit' needs the model on CUDA; "
                "use optimizer 'auto' or 'adamw' on CPU"
            )
        return PagedAdamW8bit(param_groups, lr=train_cfg.learning_rate)

"""`quantum`: a variational quantum circuit as the classification head of a frozen LLM.

This is a *classical simulation* of a small quantum circuit (PennyLane's `default.qubit`
state-vector simulator, differentiated by backpropagation through torch). It exists to compare
a quantum-style head with a classical head of the same size on the same features; no quantum
advantage is claimed, and on real hardware the result would only get noisier.

The model is the frozen base plus a new head over its pooled hidden state (the last non-pad
token, exactly the token `Qwen2ForSequenceClassification` pools):

    hidden (d) --Linear(d, n)--> tanh * pi/2 (angles) --AngleEmbedding--> n qubits
      --StronglyEntanglingLayers(L)--> <Z_i> for each qubit --Linear(n, 2)--> logits

`head="classical"` swaps the circuit for an MLP `Linear(n, h) -> tanh` whose width `h` is
chosen so its parameter count is as close as possible to the circuit's (3·L·n rotation angles);
the projection and the output layer are the same in both. Parameter counts on the tiny model
(d = 64, defaults n = 4, L = 2): quantum head 260 + 34 = 294; classical 260 + 37 = 297 (h = 5).
`head_parameter_counts` computes them for any shape.

The whole base, including its original `score` head, stays frozen and runs without gradients,
so training touches only the head. `risk-app compare-methods` trains both heads on one split
(the "quantum (classical head)" row) and reports their metrics side by side.

    TrainConfig(method="quantum", method_params={"n_qubits": 4, "n_layers": 2, "head": "quantum"})
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

import pennylane as qml
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn
from transformers.modeling_outputs import SequenceClassifierOutput

from risk_app.errors import ConfigError
from risk_app.finetune.methods.base import FineTuneMethod
from risk_app.finetune.registry import register
from risk_app.finetune.types import RunPlan

NUM_CLASSES = 2


class QuantumParams(BaseModel):
    """Parameters of the `quantum` method."""

    model_config = ConfigDict(extra="forbid")

    n_qubits: int = Field(
        default=4, ge=2, le=10, description="Qubits = width of the angle-encoded projection."
    )
    n_layers: int = Field(default=2, ge=1, le=6, description="StronglyEntanglingLayers in the circuit.")
    head: Literal["quantum", "classical"] = Field(
        default="quantum",
        description="'quantum' (simulated circuit) or 'classical' (MLP with about the same parameter count).",
    )


# ---- parameter budget --------------------------------------------------------------------
def circuit_parameter_count(n_qubits: int, n_layers: int) -> int:
    """Rotation angles of StronglyEntanglingLayers: three per qubit per layer."""
    return 3 * n_layers * n_qubits


def classical_hidden_width(n_qubits: int, n_layers: int) -> int:
    """Width h of the classical stand-in so Linear(n, h) + Linear(h, 2) matches circuit + Linear(n, 2).

    Quantum after the projection: 3·L·n + (2n + 2). Classical: (n·h + h) + (2h + 2) = (n + 3)·h + 2.
    """
    target = circuit_parameter_count(n_qubits, n_layers) + 2 * n_qubits
    return max(1, round(target / (n_qubits + 3)))


def head_parameter_counts(hidden_size: int, n_qubits: int, n_layers: int) -> dict[str, int]:
    """Trainable parameters of each head (projection included) for a base of `hidden_size`."""
    projection = hidden_size * n_qubits + n_qubits
    quantum = circuit_parameter_count(n_qubits, n_layers) + n_qubits * NUM_CLASSES + NUM_CLASSES
    width = classical_hidden_width(n_qubits, n_layers)
    classical = n_qubits * width + width + width * NUM_CLASSES + NUM_CLASSES
    return {
        "projection": projection,
        "quantum": projection + quantum,
        "classical": projection + classical,
        "classical_hidden_width": width,
    }


# ---- heads -------------------------------------------------------------------------------
def build_circuit_layer(n_qubits: int, n_layers: int) -> nn.Module:
    """A torch layer: angles (batch, n) -> PauliZ expectations (batch, n), simulated exactly."""
    device = qml.device("default.qubit", wires=n_qubits)

    @qml.qnode(device, interface="torch", diff_method="backprop")
    def circuit(inputs: torch.Tensor, weights: torch.Tensor) -> list[Any]:
        qml.AngleEmbedding(inputs, wires=range(n_qubits), rotation="Y")
        qml.StronglyEntanglingLayers(weights, wires=range(n_qubits))
        return [qml.expval(qml.PauliZ(w)) for w in range(n_qubits)]

    shape = qml.StronglyEntanglingLayers.shape(n_layers=n_layers, n_wires=n_qubits)
    # TorchLayer draws the initial angles uniformly in [0, 2pi) from torch's (seeded) RNG.
    return CpuSimulated(qml.qnn.TorchLayer(circuit, {"weights": shape}))


class CpuSimulated(nn.Module):
    """Keeps a PennyLane layer on the CPU whatever device the model moves to.

    `default.qubit` builds its state vector on the CPU, so on a GPU run the circuit's weights
    must stay there; the n angles per row go over and n expectations come back, which is
    cheap next to the base model. Autograd carries gradients across the device boundary.
    """

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer

    def _apply(self, fn: Any, recurse: bool = True) -> CpuSimulated:  # noqa: ARG002
        return self  # never moved or cast: the simulator works in float64 on the CPU

    def forward(self, angles: torch.Tensor) -> torch.Tensor:
        return self.layer(angles.cpu()).to(angles.device)


class AngleProjection(nn.Module):
    """Linear(d, n) then tanh scaled to (-pi/2, pi/2): bounded angles keep the encoding injective."""

    def __init__(self, hidden_size: int, n_qubits: int) -> None:
        super().__init__()
        self.linear = nn.Linear(hidden_size, n_qubits)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.linear(pooled)) * (math.pi / 2)


class QuantumHead(nn.Module):
    """projection -> variational circuit -> Linear(n, 2)."""

    def __init__(self, hidden_size: int, n_qubits: int, n_layers: int) -> None:
        super().__init__()
        self.projection = AngleProjection(hidden_size, n_qubits)
        self.circuit = build_circuit_layer(n_qubits, n_layers)
        self.output = nn.Linear(n_qubits, NUM_CLASSES)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        angles = self.projection(pooled)
        # The simulator returns float64; go back to the head's dtype.
        expectations = self.circuit(angles).to(angles.dtype)
        return self.output(expectations)


class ClassicalHead(nn.Module):
    """projection -> Linear(n, h) -> tanh -> Linear(h, 2), h matched to the circuit's size."""

    def __init__(self, hidden_size: int, n_qubits: int, n_layers: int) -> None:
        super().__init__()
        width = classical_hidden_width(n_qubits, n_layers)
        self.projection = AngleProjection(hidden_size, n_qubits)
        self.hidden = nn.Linear(n_qubits, width)
        self.output = nn.Linear(width, NUM_CLASSES)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.output(torch.tanh(self.hidden(self.projection(pooled))))


def last_token_index(attention_mask: torch.Tensor) -> torch.Tensor:
    """Position of the last attended token per row (right or left padding alike)."""
    positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)
    return (attention_mask.long() * positions).argmax(dim=1)


class PooledHeadClassifier(nn.Module):
    """A frozen sequence classifier's backbone + a new head over the last-token hidden state.

    Quacks like a transformers classifier for the shared trainer and `predict`: call it with
    `input_ids`, `attention_mask` (and optionally `labels`) and read `.logits` (and `.loss`).
    """

    def __init__(self, base: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.base = base
        self.head = head
        self.config = base.config  # num_labels, pad_token_id ... for code that reads them
        for param in self.base.parameters():
            param.requires_grad_(False)
        self.base.eval()

    def train(self, mode: bool = True) -> PooledHeadClassifier:
        super().train(mode)
        # The frozen backbone always runs as at inference (no dropout), so features are stable.
        self.base.eval()
        return self

    def pooled_hidden(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        if attention_mask is None:
            pad_id = getattr(self.config, "pad_token_id", None)
            attention_mask = (
                (input_ids != pad_id).long() if pad_id is not None else torch.ones_like(input_ids)
            )
        backbone = self.base.base_model  # the decoder without its `score` head
        with torch.no_grad():
            hidden = backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        rows = torch.arange(hidden.shape[0], device=hidden.device)
        return hidden[rows, last_token_index(attention_mask)].float()

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **_: Any,
    ) -> SequenceClassifierOutput:
        logits = self.head(self.pooled_hidden(input_ids, attention_mask))
        loss = nn.functional.cross_entropy(logits, labels) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits)


def build_head(kind: str, hidden_size: int, n_qubits: int, n_layers: int) -> nn.Module:
    if kind == "quantum":
        return QuantumHead(hidden_size, n_qubits, n_layers)
    if kind == "classical":
        return ClassicalHead(hidden_size, n_qubits, n_layers)
    raise ConfigError(f"method 'quantum': unknown head {kind!r}; choose 'quantum' or 'classical'")


@register
class QuantumMethod(FineTuneMethod):
    """Frozen base + simulated variational-circuit head (or its size-matched classical twin)."""

    name = "quantum"
    supports_packing = False  # its head pools the hidden states itself
    description = (
        "Frozen base; head = simulated variational quantum circuit (PennyLane) over the pooled "
        "hidden state, or a classical MLP of equal size. Classical simulation, no quantum advantage claimed."
    )
    Config = QuantumParams
    suite_params: ClassVar[dict[str, Any]] = {"n_qubits": 3, "n_layers": 1}

    def prepare(self, model: Any, cfg: BaseModel, plan: RunPlan | None = None) -> Any:
        assert isinstance(cfg, QuantumParams)
        hidden_size = int(model.config.hidden_size)
        head = build_head(cfg.head, hidden_size, cfg.n_qubits, cfg.n_layers)
        return PooledHeadClassifier(model, head)

    def state_to_save(self, model: Any, cfg: BaseModel | None = None) -> dict[str, torch.Tensor]:
        # Only the new head: the base (and its unused `score`) is reloaded from the base model.
        state = {n: p.detach() for n, p in model.named_parameters() if n.startswith("head.")}
        if not state:
            raise ConfigError("method 'quantum': model has no head to save; was it prepared by this method?")
        return state

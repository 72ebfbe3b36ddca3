"""Self-describing model artifacts: a folder that says what it is and how to rebuild it.

    <artifact>/
      risk_model.json       method + its config, train config, base model, threshold, metrics,
                            data hash, contract version, code + library versions, weights sha256,
                            sha256 of every base-model file (+ hub revision): `base_model_pins`
      weights.safetensors   only what the method trained (`method.state_to_save`): for LoRA the
                            adapters and the head, a few hundred KB, not the base model
      tokenizer/            the tokenizer as trained (pad token included)
      fit_rows.parquet      the application ids it was fitted on (`application_id`, `split`:
                            train or validation), described under "fit_rows" in risk_model.json,
                            so a later run re-scoring it as champion leaves those rows out

`load_risk_model(folder)` verifies the base model's files against their pins (a changed base
is refused, naming the file; see `base_model.py`), rebuilds the base model with the method's
own `load_base` and `prepare`, checks the weights' sha256, loads them, and returns a
`RiskModel` that scores DataFrames of applications or ready-made texts:

    rm = load_risk_model("var/models/artifacts/lora-2024")
    p_default = rm.predict_proba(applications_df)
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib
import json
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import torch
from pydantic import BaseModel, ValidationError
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

import risk_app
from data_contracts.spec import load_spec
from data_contracts.spec_text import ESTIMATED_TOKENS
from risk_app import paths
from risk_app.atomic import atomic_dir, atomic_write_json
from risk_app.data.serialize import serialize_frame
from risk_app.data.text import tokenizer_counter
from risk_app.errors import ModelNotFoundError, RiskAppError
from risk_app.evaluate.calibration import Calibrator
from risk_app.finetune.config import TrainConfig
from risk_app.finetune.predict import cast_for_gpu_inference
from risk_app.finetune.predict import predict_proba as predict_texts_proba
from risk_app.finetune.registry import MethodChoice, resolve_method
from risk_app.policy.credit import policy_id
from risk_app.policy.grades import bands_from_bounds
from risk_app.registry.base_model import PINS_KEY, BaseModelError, pin_base_model, verify_base_model

SCHEMA_VERSION = 1
METADATA_FILE = "risk_model.json"
WEIGHTS_FILE = "weights.safetensors"
TOKENIZER_DIR = "tokenizer"
SPEC_FILE = "dataset_spec.yaml"
REFERENCE_FILE = "reference_features.parquet"
FIT_ROWS_FILE = "fit_rows.parquet"
FIT_ROWS_KEY = "fit_rows"
FIT_SPLITS = ("train", "validation")
LABELS = {"0": "good", "1": "bad"}


class CorruptArtifactError(RiskAppError):
    """An artifact folder whose files are missing, unreadable or altered."""


# ---- provenance --------------------------------------------------------------------------
def git_commit() -> str | None:
    """HEAD of the repo risk_app runs from, or None outside a git checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=paths.REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    sha = out.stdout.strip()
    return sha or None


def code_version() -> str:
    """Package version plus short commit, e.g. '0.1.0+g62fc9d7a1b2c'."""
    sha = git_commit()
    return f"{risk_app.__version__}+g{sha[:12]}" if sha else risk_app.__version__


def library_versions() -> dict[str, str]:
    # Heavy libraries (seconds to import) that only packaging needs; scoring never calls this.
    import peft
    import transformers

    return {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__}


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _to_plain(value: Any) -> Any:
    """Config objects and numpy scalars as JSON-friendly values."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, Mapping):
        return {str(k): _to_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


# ---- save --------------------------------------------------------------------------------
def _write_extra_files(folder: Path, extra_files: Mapping[str, str | bytes] | None) -> None:
    """Write `extra_files` (relative name -> text or bytes) into `folder`, never outside it."""
    for name, content in (extra_files or {}).items():
        target = (folder / name).resolve()
        # A name like "../x" would write outside the artifact and escape its atomic rename.
        if folder.resolve() not in target.parents:
            raise RiskAppError(f"extra file {name!r} would land outside the artifact folder")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)


def _weights_metadata(weights_path: Path, state: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """What `load_risk_model` checks the weights file against: name, sha256, size and counts."""
    return {
        "file": WEIGHTS_FILE,
        "sha256": sha256_file(weights_path),
        "bytes": weights_path.stat().st_size,
        "tensors": len(state),
        "parameters": int(sum(t.numel() for t in state.values())),
    }


def fit_rows_frame(examples: pd.DataFrame) -> pd.DataFrame:
    """The applications a model was fitted on, from a run's examples: one row per original
    application of the train and validation splits (`application_id`, `split`); an augmented
    copy counts as its source application."""
    part = examples.loc[examples["split"].isin(FIT_SPLITS), ["source_application_id", "split"]]
    rows = part.rename(columns={"source_application_id": "application_id"}).astype(str)
    return (
        rows.drop_duplicates("application_id").sort_values(["split", "application_id"]).reset_index(drop=True)
    )


def write_fit_rows(folder: Path, fit_rows: pd.DataFrame) -> dict[str, Any]:
    """Write `fit_rows.parquet` into `folder` (an artifact being saved); return its description
    for risk_model.json."""
    missing = {"application_id", "split"} - set(fit_rows.columns)
    if missing:
        raise RiskAppError(f"fit_rows lacks the column(s) {sorted(missing)}")
    rows = fit_rows[["application_id", "split"]].astype(str)
    unknown = sorted(set(rows["split"]) - set(FIT_SPLITS))
    if unknown:
        raise RiskAppError(f"fit_rows names the split(s) {unknown}; a model is fitted on {list(FIT_SPLITS)}")
    rows.to_parquet(folder / FIT_ROWS_FILE, index=False)
    return {
        "file": FIT_ROWS_FILE,
        "sha256": sha256_file(folder / FIT_ROWS_FILE),
        "rows": {split: int((rows["split"] == split).sum()) for split in FIT_SPLITS},
        "description": "application ids the model was trained (split train) or validated "
        "(split validation) on; a champion re-scored on another run's test rows leaves these out",
    }


def read_fit_rows(folder: str | Path) -> pd.DataFrame | None:
    """The application ids an artifact was fitted on (`application_id`, `split`), or None for an
    artifact saved before models recorded them (the overlap with any rows is then unknown)."""
    folder = Path(folder)
    path = folder / FIT_ROWS_FILE
    meta_path = folder / METADATA_FILE
    try:
        metadata = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.is_file() else {}
    except (OSError, ValueError) as exc:
        raise CorruptArtifactError(f"{meta_path}: unreadable ({exc})") from exc
    described = metadata.get(FIT_ROWS_KEY) if isinstance(metadata, dict) else None
    if not described and not path.is_file():
        return None
    if not path.is_file():
        raise CorruptArtifactError(f"{path}: described in {METADATA_FILE} but missing")
    expected = (described or {}).get("sha256")
    if expected and sha256_file(path) != expected:
        raise CorruptArtifactError(f"{path}: checksum mismatch; the file was modified after saving")
    rows = pd.read_parquet(path, columns=["application_id", "split"])
    return rows.astype(str)


def _artifact_metadata(
    *,
    method_name: str,
    cfg: BaseModel,
    train_cfg: TrainConfig,
    base_pins: dict[str, Any],
    threshold: float,
    metrics: Mapping[str, Any],
    data_hash: str,
    contract_version: str,
    weights: dict[str, Any],
    extra_plain: dict[str, Any],
    fit_rows: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The content of risk_model.json: what the model is, what made it, and how to rebuild it."""
    return {
        "schema_version": SCHEMA_VERSION,
        "version": str(extra_plain.get("version") or f"{method_name}-{weights['sha256'][:12]}"),
        "method": method_name,
        "method_config": cfg.model_dump(mode="json"),
        "train_config": train_cfg.model_dump(mode="json"),
        "base_model": train_cfg.base_model,
        PINS_KEY: base_pins,
        "threshold": float(threshold),
        "metrics": _to_plain(dict(metrics)),
        "data_hash": data_hash,
        "contract_version": contract_version,
        "code_version": code_version(),
        "git_commit": git_commit(),
        "library_versions": library_versions(),
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "labels": LABELS,
        "weights": weights,
        FIT_ROWS_KEY: fit_rows,
        "extra": extra_plain,
    }


def save_risk_model(
    out_dir: str | Path,
    *,
    method_name: str,
    method_config: Mapping[str, Any] | BaseModel,
    train_config: TrainConfig | Mapping[str, Any],
    model: Any = None,
    tokenizer: Any,
    threshold: float,
    metrics: Mapping[str, Any],
    data_hash: str,
    contract_version: str,
    extra: Mapping[str, Any] | None = None,
    extra_files: Mapping[str, str | bytes] | None = None,
    state: Mapping[str, torch.Tensor] | None = None,
    fit_rows: pd.DataFrame | None = None,
) -> Path:
    """Write the artifact folder atomically and return its path.

    `extra_files` (relative name -> text or bytes) travel inside the folder, e.g. the model
    card, so the artifact carries its own documentation.

    `extra` is stored as-is under "extra"; its keys `exclude_fields` and `field_order` are
    how applications were serialized for training and are reused at prediction, and
    `version` (if given) becomes the model's version string.

    `fit_rows` (`application_id`, `split`: train or validation; `fit_rows_frame`) are the
    applications the model was fitted on, written as `fit_rows.parquet` and described under
    "fit_rows" (None there when not given: the overlap with any later rows is unknown).
    """
    # Setup: validate everything before the folder is touched, so a bad call leaves nothing behind.
    if not 0.0 <= float(threshold) <= 1.0:
        raise RiskAppError(f"threshold {threshold} is not a probability in [0, 1]")
    choice = resolve_method(method_name, method_config)
    cfg = choice.params
    train_cfg = (
        train_config if isinstance(train_config, TrainConfig) else TrainConfig.from_dict(dict(train_config))
    )
    # A packaging step that reads already-saved weights passes `state`; a live model passes `model`.
    source = state if state is not None else choice.method.state_to_save(model)
    state = {k: v.detach().cpu().contiguous().clone() for k, v in source.items()}
    extra_plain = _to_plain(dict(extra or {}))
    base_pins = pin_base_model(train_cfg.base_model, model)

    # Steps: weights, tokenizer and extra files into a temporary folder, renamed into place at the end.
    out = Path(out_dir)
    with atomic_dir(out) as tmp:
        save_file(state, str(tmp / WEIGHTS_FILE), metadata={"method": method_name})
        tokenizer.save_pretrained(tmp / TOKENIZER_DIR)
        _write_extra_files(tmp, extra_files)
        fit_rows_meta = write_fit_rows(tmp, fit_rows) if fit_rows is not None else None
        # Result: risk_model.json, which describes (and checksums) everything written above.
        metadata = _artifact_metadata(
            method_name=method_name,
            cfg=cfg,
            train_cfg=train_cfg,
            base_pins=base_pins,
            threshold=threshold,
            metrics=metrics,
            data_hash=data_hash,
            contract_version=contract_version,
            weights=_weights_metadata(tmp / WEIGHTS_FILE, state),
            extra_plain=extra_plain,
            fit_rows=fit_rows_meta,
        )
        atomic_write_json(tmp / METADATA_FILE, metadata)
    return out


# ---- load --------------------------------------------------------------------------------
class RiskModel:
    """A loaded artifact: P(default) for applications, plus the metadata it was saved with."""

    def __init__(
        self, method: MethodChoice, model: Any, tokenizer: Any, metadata: dict[str, Any], path: Path
    ) -> None:
        self.method = method  # the method name it was trained with, resolved (rlhf: its policy method)
        self.model = model
        self.tokenizer = tokenizer
        self.metadata = metadata
        self.path = path
        self.threshold = float(metadata["threshold"])
        self.version: str = str(metadata.get("version", path.name))
        self.max_length = int(metadata["train_config"].get("max_length", 256))
        extra = metadata.get("extra", {})
        self.calibrator = Calibrator.from_dict(extra.get("calibration") or {"kind": "none"})
        self.dataset_spec = _artifact_spec(path, tokenizer, extra.get("text_tokens"))
        # The credit policy it decides by, recorded beside every scored batch and row; artifacts
        # packaged before the policy had an id get it from their stored config, map and cut-off.
        policy = extra.get("policy") or {}
        self.policy_objective: str = str(policy.get("objective", ""))
        self.policy_id: str = str(
            extra.get("policy_id")
            or (policy_id(policy, extra.get("calibration") or {}, self.threshold) if policy else "")
        )

    @classmethod
    def loads_llm(cls, metadata: Mapping[str, Any]) -> bool:
        """Whether `load_risk_model` must rebuild the fine-tuned LLM for this manifest (a kind
        that deploys a classical model alone says no, and gets `model` and `tokenizer` None)."""
        return True

    def reference_features(self) -> pd.DataFrame | None:
        """The training rows the model carries for drift checks; None for older artifacts."""
        path = self.path / REFERENCE_FILE
        return pd.read_parquet(path) if path.is_file() else None

    @property
    def grade_bands(self) -> tuple[tuple[str, float], ...] | None:
        """The PD bands the run's credit policy named; None for artifacts made before policies did."""
        policy = self.metadata.get("extra", {}).get("policy") or {}
        bands = policy.get("grade_bands")
        return bands_from_bounds(bands) if bands else None

    @property
    def exclude_fields(self) -> list[str]:
        return list(self.metadata.get("extra", {}).get("exclude_fields") or [])

    @property
    def field_order(self) -> list[str] | None:
        order = self.metadata.get("extra", {}).get("field_order")
        return list(order) if order else None

    def predict_texts(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Calibrated P(default) for already-serialized applications."""
        raw = predict_texts_proba(self.model, self.tokenizer, list(texts), batch_size, self.max_length)
        return self.calibrator.transform(raw) if len(raw) else raw

    def serialize(self, df: pd.DataFrame) -> list[str]:
        """Applications as text, exactly as at training time."""
        return serialize_frame(
            df, field_order=self.field_order, exclude=self.exclude_fields, spec=self.dataset_spec
        ).tolist()

    def predict_proba(self, df_or_texts: pd.DataFrame | Sequence[str], batch_size: int = 64) -> np.ndarray:
        """P(default) for a DataFrame of applications (or a list of texts), in input order."""
        if isinstance(df_or_texts, pd.DataFrame):
            return self.predict_texts(self.serialize(df_or_texts), batch_size)
        if isinstance(df_or_texts, str):
            raise RiskAppError("predict_proba takes a DataFrame or a list of texts, not a single string")
        return self.predict_texts(list(df_or_texts), batch_size)

    def __repr__(self) -> str:
        return f"RiskModel(version={self.version!r}, method={self.method.name!r}, path={str(self.path)!r})"


# ---- model kinds -------------------------------------------------------------------------
# A manifest whose `extra` holds one of these keys is a model of that kind: a `RiskModel`
# subclass, defined in the named module, which registers itself with `@register_model_kind`
# (as fine-tuning methods register in `finetune.registry`). This module never imports a kind:
# a kind subclasses `RiskModel`, so its module sits above this one; `model_class` imports it by
# name on first use. Anything else loads as a plain `RiskModel`.
BUILTIN_MODEL_KINDS: dict[str, str] = {"hybrid": "risk_app.hybrid.model"}
_MODEL_KINDS: dict[str, type[RiskModel]] = {}
K = TypeVar("K", bound=type[RiskModel])


def register_model_kind(kind: str) -> Callable[[K], K]:
    """Class decorator: load manifests with an `extra[kind]` entry as this RiskModel subclass."""

    def add(model_cls: K) -> K:
        if not (isinstance(model_cls, type) and issubclass(model_cls, RiskModel)):
            raise TypeError(f"{model_cls!r} is not a RiskModel subclass")
        existing = _MODEL_KINDS.get(kind)
        if existing is not None and existing is not model_cls:
            raise ValueError(f"model kind {kind!r} is already registered by {existing.__qualname__}")
        _MODEL_KINDS[kind] = model_cls
        return model_cls

    return add


def model_class(metadata: Mapping[str, Any]) -> type[RiskModel]:
    """The class that loads this manifest: its kind's (by its `extra` entry), else `RiskModel`."""
    extra = metadata.get("extra") or {}
    for kind, module in BUILTIN_MODEL_KINDS.items():
        if extra.get(kind):
            if kind not in _MODEL_KINDS:
                importlib.import_module(module)  # the kind's module registers it on import
            return _MODEL_KINDS[kind]
    return RiskModel


def _artifact_spec(folder: Path, tokenizer: Any = None, text_tokens: str | None = None) -> Any:
    """The data set spec the model was trained on (`dataset_spec.yaml`), or None for artifacts
    made before models carried their spec (they were all German credit). Free-text token budgets
    count as the training run counted them: with the artifact's tokenizer (the base model's) when
    the run recorded `text_tokens` other than the estimate."""
    path = folder / SPEC_FILE
    if not path.is_file():
        return None
    spec = load_spec(path)
    if text_tokens and text_tokens != ESTIMATED_TOKENS and tokenizer is not None:
        spec = spec.counting_tokens_with(tokenizer_counter(tokenizer), text_tokens)
    return spec


def read_metadata(folder: str | Path) -> dict[str, Any]:
    """risk_model.json of an artifact folder, with clear errors for the usual problems."""
    folder = Path(folder)
    meta_path = folder / METADATA_FILE
    if not folder.is_dir():
        raise ModelNotFoundError(f"{folder}: no such model folder")
    if not meta_path.is_file():
        raise ModelNotFoundError(f"{folder}: not a risk model folder (no {METADATA_FILE})")
    try:
        metadata = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CorruptArtifactError(f"{meta_path}: unreadable ({exc})") from exc
    if not isinstance(metadata, dict):
        raise CorruptArtifactError(f"{meta_path}: expected a JSON object")
    if metadata.get("schema_version") != SCHEMA_VERSION:
        raise CorruptArtifactError(
            f"{meta_path}: schema_version {metadata.get('schema_version')!r} is not supported "
            f"(this code reads {SCHEMA_VERSION})"
        )
    for key in ("method", "method_config", "train_config", "threshold", "weights"):
        if key not in metadata:
            raise CorruptArtifactError(f"{meta_path}: field {key!r} is missing")
    return metadata


def verify_weights(folder: Path, metadata: Mapping[str, Any]) -> Path:
    """Path of the weights file after checking it against the recorded sha256."""
    weights = folder / metadata["weights"].get("file", WEIGHTS_FILE)
    if not weights.is_file():
        raise CorruptArtifactError(f"{weights}: weights file is missing")
    expected = metadata["weights"].get("sha256")
    actual = sha256_file(weights)
    if actual != expected:
        raise CorruptArtifactError(
            f"{weights}: checksum mismatch (sha256 {actual[:16]}..., expected {str(expected)[:16]}...); "
            "the file is corrupted or was modified after saving"
        )
    return weights


def load_risk_model(folder: str | Path, device: str | torch.device | None = None) -> RiskModel:
    """Rebuild the saved model (base + method + trained weights) ready for prediction, as the
    class of its kind (`model_class`: a hybrid is a `HybridRiskModel`)."""
    # transformers takes seconds to import; reading and saving artifacts never needs it.
    from transformers import AutoTokenizer

    folder = Path(folder)
    metadata = read_metadata(folder)
    model_cls = model_class(metadata)
    if not model_cls.loads_llm(metadata):  # a classical model alone (LightGBM): no LLM to load
        choice = resolve_method(metadata["method"], metadata.get("method_config"))
        return model_cls(choice, None, None, metadata, folder)
    weights = verify_weights(folder, metadata)
    choice = resolve_method(metadata["method"], metadata["method_config"])
    method, cfg = choice.method, choice.method_cfg
    try:
        train_cfg = TrainConfig.from_artifact(metadata["train_config"])
    except ValidationError as exc:
        raise CorruptArtifactError(f"{folder / METADATA_FILE}: train_config is invalid ({exc})") from exc
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError) as exc:
        raise CorruptArtifactError(f"{weights}: unreadable safetensors file ({exc})") from exc

    verify_base_model(train_cfg.base_model, metadata.get(PINS_KEY))
    try:
        model, _base_tokenizer = method.load_base(train_cfg.base_model, cfg, train_cfg)
    except BaseModelError:
        raise
    except (SafetensorError, OSError, ValueError, RuntimeError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        base = train_cfg.base_model
        raise CorruptArtifactError(f"base model {base!r} could not be loaded: {first}") from None
    tokenizer = AutoTokenizer.from_pretrained(folder / TOKENIZER_DIR)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.config.pad_token_id = tokenizer.pad_token_id
    model = method.prepare(model, cfg)
    method.load_state(model, state)
    # A loaded artifact only predicts: the method may fold its trained parts into the base.
    model = method.for_inference(model, cfg)
    if device is not None:
        model.to(device)
        model = cast_for_gpu_inference(model)
    model.eval()
    return model_cls(choice, model, tokenizer, metadata, folder)

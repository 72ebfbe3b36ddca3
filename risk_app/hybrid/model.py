"""A packaged hybrid, loaded: the LLM's calibrated PD stacked with the tabular model's PD.

`load_risk_model` returns a `HybridRiskModel` when the artifact's manifest has a `hybrid`
entry. It is a `RiskModel` (threshold, grade bands, reference data, serialization are the
same) whose scoring needs the application's fields, not only its text:

    p = stacker(llm_calibration(LLM(text)), LightGBM(fields))  ->  the policy's calibration

`reason_codes(df, top_k=...)` explains the stacked PD by occlusion, one field at a time in
both inputs: the field's clause leaves the text and the field becomes missing in the tabular
features (category "<missing>", numbers the training median), and the stacked PD is scored
again. It reuses `risk_app.explain.reasons.reason_codes` for the occluded texts, the ranking
and the tables (protected attributes never a reason), giving it a scorer that pairs each text
with its row's tabular features with the same field missing. `score_with_reasons` calls it
(`risk_app/scoring/service.py: explain_declines`).

A run with the `tabular_only` stacker deploys LightGBM alone (`tabular:lightgbm`): its PD is
the policy's calibration of LightGBM's PD, `load_risk_model` does not load the LLM at all
(`model` and `tokenizer` are None), and reason codes occlude each field in the tabular
features only, with no LLM forward pass.

    model = load_risk_model(folder)      # -> HybridRiskModel
    model.predict_proba(df); model.components(df); model.reason_codes(df, top_k=4).wide
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from data_contracts.spec import load_spec
from risk_app.data.serialize import serialize_frame
from risk_app.errors import RiskAppError
from risk_app.evaluate.calibration import Calibrator
from risk_app.evaluate.hybrid import Hybrid, stacker_from_params
from risk_app.explain.reasons import ReasonCodes, reason_codes
from risk_app.finetune.predict import predict_proba as predict_texts_proba
from risk_app.hybrid.config import STACKER_FILE
from risk_app.hybrid.tabular import BOOSTER_FILE, FEATURES_FILE, TabularModel, with_missing
from risk_app.registry.artifact import CorruptArtifactError, RiskModel, register_model_kind, sha256_file


def _verified(folder: Path, files: dict[str, str]) -> dict[str, str]:
    """{file name: text} of the artifact's hybrid files, each checked against its sha256."""
    texts = {}
    for name, expected in files.items():
        path = folder / name
        if not path.is_file():
            raise CorruptArtifactError(f"{path}: hybrid file is missing")
        if sha256_file(path) != expected:
            raise CorruptArtifactError(
                f"{path}: checksum mismatch; the hybrid's file was modified after saving"
            )
        texts[Path(name).name] = path.read_text(encoding="utf-8")
    return texts


@register_model_kind("hybrid")
class HybridRiskModel(RiskModel):
    """A RiskModel whose PD stacks the LLM's calibrated PD with a tabular LightGBM's PD."""

    @classmethod
    def loads_llm(cls, metadata: Mapping[str, Any]) -> bool:
        """No LLM for `tabular_only`: LightGBM alone is deployed."""
        return metadata["extra"]["hybrid"].get("config", {}).get("stacker") != "tabular_only"

    def __init__(self, method: Any, model: Any, tokenizer: Any, metadata: dict[str, Any], path: Path) -> None:
        super().__init__(method, model, tokenizer, metadata, path)
        entry = metadata["extra"]["hybrid"]
        texts = _verified(path, dict(entry["files"]))
        spec = self.dataset_spec if self.dataset_spec is not None else load_spec(None)
        self.tabular = TabularModel.from_files(texts[FEATURES_FILE], texts[BOOSTER_FILE], spec)
        stored = json.loads(texts[STACKER_FILE])
        self.stacker: Hybrid = stacker_from_params(stored["stacker"])
        self.llm_calibrator = Calibrator.from_dict(stored["llm_calibration"])

    @property
    def tabular_only(self) -> bool:
        """LightGBM alone is deployed: the LLM (not loaded) takes no part in scoring."""
        return self.stacker.kind == "tabular_only"

    # ---- scoring ----------------------------------------------------------------------------
    def predict_texts(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        kind = "LightGBM alone (tabular:lightgbm)" if self.tabular_only else "a hybrid (LLM + LightGBM)"
        raise RiskAppError(
            f"model {self.version} is {kind}: it scores applications, not texts; "
            "call predict_proba(DataFrame) with the application's fields"
        )

    def _llm(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """The LLM's calibrated PD of each text (before stacking)."""
        raw = predict_texts_proba(self.model, self.tokenizer, list(texts), batch_size, self.max_length)
        return self.llm_calibrator.transform(raw) if len(raw) else raw

    def _stack(self, p_llm: np.ndarray, p_tabular: np.ndarray) -> np.ndarray:
        """The deployed PD: stacked, then the run's credit-policy calibration."""
        if not len(p_tabular):
            return np.zeros(0, dtype=float)
        return self.calibrator.transform(self.stacker.predict(p_llm, p_tabular))

    def _deployed(self, texts: Sequence[str], p_tabular: np.ndarray) -> np.ndarray:
        """The deployed PD of rows given as texts and tabular PDs; tabular-only skips the LLM."""
        if self.tabular_only:
            return self._stack(p_tabular, p_tabular)  # the stacker ignores its LLM input
        return self._stack(self._llm(texts), p_tabular)

    def components(self, df: pd.DataFrame, batch_size: int = 64) -> pd.DataFrame:
        """Each row's LLM PD, tabular PD and deployed (stacked) PD, for audits and explanations
        (p_llm is NaN for a tabular-only model: its LLM is not loaded)."""
        p_tab = self.tabular.predict(df)
        if self.tabular_only:
            p_llm, deployed = np.full(len(df), np.nan), self._stack(p_tab, p_tab)
        else:
            p_llm = self._llm(self.serialize(df), batch_size)
            deployed = self._stack(p_llm, p_tab)
        return pd.DataFrame(
            {"p_llm": p_llm, "p_tabular": p_tab, "probability_of_default": deployed}, index=df.index
        )

    def predict_proba(self, df_or_texts: pd.DataFrame | Sequence[str], batch_size: int = 64) -> np.ndarray:
        """P(default) for a DataFrame of applications, in input order (texts alone are refused)."""
        if not isinstance(df_or_texts, pd.DataFrame):
            return self.predict_texts(df_or_texts)  # raises: the tabular half needs the fields
        return self.components(df_or_texts, batch_size)["probability_of_default"].to_numpy(float)

    # ---- explanation ------------------------------------------------------------------------
    def text_fields(self) -> list[str]:
        """The fields the LLM's text holds, in template order (what occlusion can leave out).

        A tabular-only model reads no text: its fields are the template's and then every
        tabular column, each occluded in the tabular features alone."""
        spec = self.dataset_spec if self.dataset_spec is not None else load_spec(None)
        excluded = set() if self.tabular_only else set(self.exclude_fields)
        fields = [name for name in (self.field_order or spec.feature_columns) if name not in excluded]
        if self.tabular_only:
            fields += [name for name in self.tabular.columns if name not in fields]
        return fields

    def reason_codes(self, df: pd.DataFrame, top_k: int = 4, only_declined: bool = False) -> ReasonCodes:
        """Reason codes for the stacked PD: each field occluded in the text and the tabular features."""
        scorer = _StackedOcclusionScorer(self, df)
        return reason_codes(
            df, scorer, top_k=top_k, only_declined=only_declined, field_order=scorer.text_fields,
            spec=scorer.spec,
        )  # fmt: skip

    def __repr__(self) -> str:
        kind = "tabular:lightgbm" if self.tabular_only else f"{self.method.name}+{self.stacker.kind}"
        return f"HybridRiskModel(version={self.version!r}, method={kind!r}, path={str(self.path)!r})"


class _StackedOcclusionScorer:
    """The `TextScorer` reasons.py asks for, for a hybrid: each text is scored by the LLM and
    stacked with the tabular PD of the row it came from, with the same field missing.

    reasons.py builds the full texts, then each reason field's occluded texts (field-major);
    this scorer builds the same sequence with each entry's tabular PD. When it is asked for
    exactly that sequence it pairs them position by position; any other request is paired by
    text (the mean tabular PD of the rows that produce that text). For a tabular-only model the
    texts only key the rows (they hold every tabular column) and the LLM is never called.
    """

    def __init__(self, model: HybridRiskModel, df: pd.DataFrame) -> None:
        self.model = model
        self.threshold = model.threshold
        self.spec = model.dataset_spec if model.dataset_spec is not None else load_spec(None)
        self.text_fields = model.text_fields()
        reason_fields = [n for n in self.text_fields if n not in self.spec.protected_columns]
        texts = serialize_frame(df, field_order=self.text_fields, spec=self.spec).tolist()
        tabular = [model.tabular.predict(df)]
        tabular_columns = set(model.tabular.columns)
        for name in reason_fields:
            texts += serialize_frame(
                df, field_order=self.text_fields, exclude=(name,), spec=self.spec
            ).tolist()
            # A field only the text holds (free text) is occluded in the text alone.
            tabular.append(
                model.tabular.predict(with_missing(df, name)) if name in tabular_columns else tabular[0]
            )
        self._texts = texts
        self._tabular = np.concatenate(tabular)
        by_text: dict[str, list[float]] = {}
        for text, p in zip(texts, self._tabular, strict=True):
            by_text.setdefault(text, []).append(float(p))
        self._by_text = {text: float(np.mean(ps)) for text, ps in by_text.items()}

    def predict_texts(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        if texts == self._texts:
            p_tab = self._tabular
        else:
            unknown = [t for t in texts if t not in self._by_text]
            if unknown:
                raise RiskAppError("hybrid reason codes: asked to score a text that no application produced")
            p_tab = np.asarray([self._by_text[t] for t in texts], dtype=float)
        return self.model._deployed(texts, p_tab)


__all__ = ["HybridRiskModel"]

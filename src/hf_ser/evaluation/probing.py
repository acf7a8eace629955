"""Paper 004's Table I protocol: how much emotion information a network's utterance embeddings hold, measured with a
linear SVM under leave-one-session-out cross-validation (Purohit & Magimai.-Doss, Sec. IV).

For each system (the pretrained wav2vec2 "PT", the SER-fine-tuned one, the ASR-fine-tuned ones, the two-step
ASR(x) -> SER ones) and each transformer layer asked for:

1. utterance embeddings: the mean over time of the layer's hidden states (768 dimensions for wav2vec2-base), one
   clip at a time (base-size wav2vec2 normalises its first convolution over the padded length, so batching would
   change a clip's embedding);
2. for every held-out session k: a linear-kernel SVM (scikit-learn `SVC(kernel="linear")` on standardised
   embeddings) whose C is chosen by grid search with 5-fold cross-validation inside the training sessions, then
   scored on session k;
3. UAR and WAR (percent) per fold, their mean over folds (as the paper reports) and those of the pooled predictions.

Paper 004 says it optimises "C and gamma"; gamma has no effect on a linear kernel, so only C is searched. The grid
(`DEFAULT_C_GRID`), the inner folds' scoring (UAR, i.e. balanced accuracy) and the standardisation are not stated in
the paper: ours, documented in docs/fidelity.md. A fine-tuned system is evaluated on each fold with the model
fine-tuned without that fold's session when such per-fold models are given (see `embeddings_per_fold`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..data.crossval import CrossValidationError, recall_scores, summarize_folds
from ..models.labels import SAMPLING_RATE

DEFAULT_C_GRID = (1e-3, 1e-2, 1e-1, 1.0, 10.0)
INNER_FOLDS = 5


@torch.no_grad()
def layer_embeddings(
    model, waveforms: Sequence[np.ndarray], layers: Sequence[int] | None = None, feature_extractor=None
) -> dict[int, np.ndarray]:
    """`{layer: (clips, dim)}` mean-over-time hidden states of a speech encoder (any transformers model returning
    `hidden_states`; for an hf_ser classifier pass its `.encoder`). Layer 0 is the input of the first transformer
    layer, L the last layer's output; `layers=None` gives the last only. One clip at a time."""
    from transformers import Wav2Vec2FeatureExtractor

    extractor = feature_extractor or Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=True)
    model.eval()
    device = next(model.parameters()).device
    collected: dict[int, list[np.ndarray]] = {}
    for waveform in waveforms:
        inputs = extractor(
            np.asarray(waveform, dtype=np.float32), sampling_rate=SAMPLING_RATE, return_tensors="pt"
        )
        outputs = model(inputs["input_values"].to(device), output_hidden_states=True, return_dict=True)
        states = outputs.hidden_states
        wanted = [len(states) - 1] if layers is None else list(layers)
        for layer in wanted:
            if not -len(states) <= layer < len(states):
                raise ValueError(
                    f"Layer {layer} does not exist: the model has hidden states 0..{len(states) - 1}."
                )
            collected.setdefault(layer, []).append(states[layer][0].float().mean(0).cpu().numpy())
    return {layer: np.stack(rows) for layer, rows in collected.items()}


def fit_linear_svm(
    train_x: np.ndarray, train_y: np.ndarray, c_grid: Sequence[float] = DEFAULT_C_GRID, seed: int = 1337
):
    """A standardised linear-kernel SVM whose C is chosen by `INNER_FOLDS`-fold grid search (scored by UAR) on the
    training data only."""
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    counts = np.bincount(np.asarray(train_y))
    folds = int(min(INNER_FOLDS, counts[counts > 0].min()))
    if folds < 2:
        raise CrossValidationError(
            "Every class needs at least 2 training clips for the inner cross-validation."
        )
    search = GridSearchCV(
        make_pipeline(StandardScaler(), SVC(kernel="linear")),
        {"svc__C": list(c_grid)},
        cv=StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed),
        scoring="balanced_accuracy",
    )
    return search.fit(train_x, train_y)


@dataclass
class ProbeResult:
    """UAR/WAR (percent) of one system and layer: mean over folds, pooled, and per fold (with the chosen C)."""

    system: str
    layer: int
    uar: float
    war: float
    pooled_uar: float
    pooled_war: float
    folds: list[dict]


def svm_probe(
    embeddings: np.ndarray | Mapping[str, np.ndarray],
    labels: Sequence[int],
    sessions: Sequence[str],
    *,
    system: str = "",
    layer: int = -1,
    c_grid: Sequence[float] = DEFAULT_C_GRID,
    num_classes: int | None = None,
) -> ProbeResult:
    """Leave-one-session-out linear-SVM probe (paper 004, Table I) of `embeddings` `(clips, dim)`; or, for systems
    fine-tuned per fold, a mapping `{held-out session: (clips, dim)}` of each fold's model's embeddings of every clip
    (the SVM of fold k trains and tests on the embeddings of the model that never saw session k)."""
    labels, sessions = np.asarray(labels), np.asarray(sessions)
    if labels.shape != sessions.shape:
        raise CrossValidationError(f"{labels.size} labels for {sessions.size} sessions.")
    unique = sorted(set(sessions.tolist()))
    if len(unique) < 2:
        raise CrossValidationError(f"Leave-one-session-out needs at least 2 sessions, found {unique}.")
    folds, all_refs, all_preds = [], [], []
    for session in unique:
        features = embeddings[session] if isinstance(embeddings, Mapping) else embeddings
        features = np.asarray(features)
        if features.shape[0] != labels.size:
            raise CrossValidationError(f"{features.shape[0]} embeddings for {labels.size} labels.")
        test = sessions == session
        search = fit_linear_svm(features[~test], labels[~test], c_grid)
        predicted = search.predict(features[test])
        scores = recall_scores(labels[test], predicted, num_classes)
        folds.append(
            {
                "session": session,
                "n": int(test.sum()),
                "uar": scores["uar"],
                "war": scores["war"],
                "C": float(search.best_params_["svc__C"]),
            }
        )
        all_refs.append(labels[test])
        all_preds.append(predicted)
    return ProbeResult(
        system=system, layer=layer, folds=folds, **summarize_folds(folds, all_refs, all_preds, num_classes)
    )


def embeddings_per_fold(
    load_model: Callable[[str], object],
    sessions: Sequence[str],
    waveforms,
    layers=None,
    feature_extractor=None,
) -> dict[int, dict[str, np.ndarray]]:
    """`{layer: {session: (clips, dim)}}` for a system fine-tuned once per fold: `load_model(session)` returns the
    encoder fine-tuned without `session`."""
    result: dict[int, dict[str, np.ndarray]] = {}
    for session in sorted(set(sessions)):
        per_layer = layer_embeddings(load_model(session), waveforms, layers, feature_extractor)
        for layer, values in per_layer.items():
            result.setdefault(layer, {})[session] = values
    return result


def table_rows(results: Sequence[ProbeResult]) -> list[dict[str, object]]:
    """Table I rows: system, layer, UAR and WAR (mean over folds, percent), and the pooled scores."""
    return [
        {
            "system": r.system,
            "layer": r.layer,
            "uar": round(r.uar, 2),
            "war": round(r.war, 2),
            "pooled_uar": round(r.pooled_uar, 2),
            "pooled_war": round(r.pooled_war, 2),
            "folds": len(r.folds),
        }
        for r in results
    ]


__all__ = [
    "DEFAULT_C_GRID",
    "ProbeResult",
    "embeddings_per_fold",
    "fit_linear_svm",
    "layer_embeddings",
    "svm_probe",
    "table_rows",
]

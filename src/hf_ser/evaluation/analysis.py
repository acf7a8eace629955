"""Tools that compare two speech models (papers 000 and 004).

- Linear CKA between layer representations (Kornblith et al., "Similarity of Neural Network Representations
  Revisited", ICML 2019), layer by layer: paper 000 (Uniyal & Abrol, Fig. 2) compares WavLM before and after
  fine-tuning with it to decide how many layers to freeze.
- Decision mismatch between two classifiers (paper 004, Purohit & Magimai.-Doss, Table II); cosine distance of
  their last-layer embeddings, with a histogram and, under a distance threshold, the share of data and the decision
  agreement on it (paper 004, Fig. 3 and Table III).
- Bhattacharyya distance between the rows of two models' self-attention maps, per layer and head, averaged over the
  rows (paper 004, Eq. 1 and Fig. 4).

Plots are PNG files written with matplotlib's Agg backend; tables are CSV. `hf-ser analyze cka|mismatch|attention`
runs these on saved models and audio files.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from ..errors import HFSERError
from ..models.labels import SAMPLING_RATE

# Keeps -log(BC) finite when two attention rows have (numerically) disjoint support.
_BC_FLOOR = 1e-12


class AnalysisError(HFSERError, ValueError):
    """Inputs that the analysis tools cannot compare (shapes, lengths, missing outputs)."""


# ---------------------------------------------------------------------------------------------------------- CKA
def linear_cka(x: np.ndarray | torch.Tensor, y: np.ndarray | torch.Tensor) -> float:
    """Linear centered kernel alignment of two representations of the same n examples (Kornblith et al., 2019):
    CKA = ||Y'X||_F^2 / (||X'X||_F ||Y'Y||_F) on column-centred X `(n, p)` and Y `(n, q)`.

    It is 1 for identical representations and invariant to orthogonal transforms and isotropic scaling of either.
    Computed through the p x q cross-covariance, so n may be large (e.g. every frame of a dataset).
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2:
        raise AnalysisError(f"CKA needs 2-D (examples, features) inputs, got shapes {x.shape} and {y.shape}.")
    if x.shape[0] != y.shape[0]:
        raise AnalysisError(f"CKA compares the same examples: got {x.shape[0]} and {y.shape[0]} rows.")
    if x.shape[0] < 2:
        raise AnalysisError("CKA needs at least 2 examples.")
    x = x - x.mean(axis=0)
    y = y - y.mean(axis=0)
    cross = np.linalg.norm(y.T @ x) ** 2
    norm = np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)
    if norm == 0:
        raise AnalysisError("CKA is undefined for a constant representation (zero variance).")
    return float(cross / norm)


def cka_matrix(reps_a: Sequence[np.ndarray], reps_b: Sequence[np.ndarray]) -> np.ndarray:
    """Linear CKA between every layer of model A and every layer of model B: `(len(reps_a), len(reps_b))`. Its
    diagonal is the per-layer similarity of paper 000's Fig. 2 when both models share an architecture."""
    return np.array([[linear_cka(a, b) for b in reps_b] for a in reps_a])


def _inputs(feature_extractor, waveform: np.ndarray, device: torch.device) -> dict[str, torch.Tensor]:
    sampling_rate = getattr(feature_extractor, "sampling_rate", SAMPLING_RATE)
    inputs = feature_extractor(
        np.asarray(waveform, np.float32), sampling_rate=sampling_rate, return_tensors="pt"
    )
    inputs.pop("attention_mask", None)  # one clip at a time: no padding, nothing to mask
    return {k: v.to(device) for k, v in inputs.items()}


def _default_extractor(feature_extractor):
    if feature_extractor is not None:
        return feature_extractor
    from ..processing.feature_extraction import build_feature_extractor

    return build_feature_extractor()


@torch.no_grad()
def layer_representations(
    model: torch.nn.Module, waveforms: Sequence[np.ndarray], feature_extractor=None, pooling: str = "frames"
) -> list[np.ndarray]:
    """Hidden states of every layer (`output_hidden_states`: the embedding output, then each transformer layer) for
    a set of clips, one clip per forward pass so padding never enters.

    Args:
        model: any transformers speech model that returns `hidden_states` (e.g. `WavLMModel`,
            `WavLMForMASPClassification`).
        waveforms: 16 kHz mono clips.
        feature_extractor: defaults to hf_ser's per-utterance-normalising extractor.
        pooling (`str`, defaults to `"frames"`): `"frames"` stacks every frame of every clip (the layer output
            matrices of paper 000); `"mean"` keeps one mean vector per clip.

    Returns:
        One `(examples, hidden_size)` array per layer.
    """
    if pooling not in ("frames", "mean"):
        raise AnalysisError(f"pooling must be 'frames' or 'mean', got {pooling!r}.")
    if len(waveforms) == 0:
        raise AnalysisError("No audio to analyse.")
    extractor = _default_extractor(feature_extractor)
    model.eval()
    device = next(model.parameters()).device
    per_layer: list[list[np.ndarray]] | None = None
    for waveform in waveforms:
        outputs = model(**_inputs(extractor, waveform, device), output_hidden_states=True, return_dict=True)
        hidden_states = outputs.hidden_states
        if hidden_states is None:
            raise AnalysisError(f"{type(model).__name__} returned no hidden_states.")
        if per_layer is None:
            per_layer = [[] for _ in hidden_states]
        for store, hidden in zip(per_layer, hidden_states, strict=True):
            hidden = hidden[0].float().cpu().numpy()
            store.append(hidden if pooling == "frames" else hidden.mean(axis=0, keepdims=True))
    return [np.concatenate(store, axis=0) for store in per_layer]


# ---------------------------------------------------------------------------------------- decisions, embeddings
def decision_mismatch(predictions_a: Sequence[int], predictions_b: Sequence[int]) -> float:
    """Percentage of examples on which two classifiers decide differently (paper 004, Table II)."""
    a, b = np.asarray(predictions_a), np.asarray(predictions_b)
    if a.shape != b.shape or a.ndim != 1:
        raise AnalysisError(f"Predictions must be two 1-D arrays of one length, got {a.shape} and {b.shape}.")
    if a.size == 0:
        raise AnalysisError("No predictions to compare.")
    return float(100.0 * np.mean(a != b))


def cosine_distances(embeddings_a: np.ndarray, embeddings_b: np.ndarray) -> np.ndarray:
    """Per-example cosine distance 1 - cos(a_i, b_i) between two models' embeddings `(n, dim)`; lies in [0, 2]
    (paper 004 notes distances above 1, i.e. opposed vectors)."""
    a = np.asarray(embeddings_a, dtype=np.float64)
    b = np.asarray(embeddings_b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise AnalysisError(
            f"Embeddings must be two (n, dim) arrays of one shape, got {a.shape} and {b.shape}."
        )
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    if np.any(norms == 0):
        raise AnalysisError("Cosine distance is undefined for a zero embedding.")
    return 1.0 - np.sum(a * b, axis=1) / norms


def threshold_agreement(
    distances: np.ndarray, predictions_a: Sequence[int], predictions_b: Sequence[int], threshold: float
) -> dict[str, float]:
    """Paper 004, Table III: the share of examples whose cosine distance is at most `threshold` (`data_pct`) and
    the decision agreement of the two models on those examples (`match_pct`; NaN when none falls under it)."""
    distances = np.asarray(distances, dtype=np.float64)
    a, b = np.asarray(predictions_a), np.asarray(predictions_b)
    if not (distances.shape == a.shape == b.shape):
        raise AnalysisError(
            f"distances {distances.shape} and predictions {a.shape}, {b.shape} differ in length."
        )
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not np.isfinite(threshold):
        raise AnalysisError(f"The threshold must be a finite number, got {threshold!r}.")
    within = distances <= threshold
    match = float(100.0 * np.mean(a[within] == b[within])) if within.any() else float("nan")
    return {"threshold": float(threshold), "data_pct": float(100.0 * within.mean()), "match_pct": match}


# ------------------------------------------------------------------------------------------- attention maps
def bhattacharyya_distance(p: np.ndarray | torch.Tensor, q: np.ndarray | torch.Tensor) -> np.ndarray:
    """Bhattacharyya distance -ln sum_j sqrt(p_j q_j) (Bhattacharyya, 1943) between distributions along the last
    axis; symmetric, 0 for identical distributions."""
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    if p.shape != q.shape:
        raise AnalysisError(f"Distributions differ in shape: {p.shape} and {q.shape}.")
    if np.any(p < 0) or np.any(q < 0):
        raise AnalysisError("Bhattacharyya distance needs non-negative distributions.")
    # Renormalise: float32 softmax rows sum to 1 only within ~1e-7, which would leave identical maps a distance of
    # ~1e-8 instead of 0.
    p = p / np.clip(p.sum(axis=-1, keepdims=True), _BC_FLOOR, None)
    q = q / np.clip(q.sum(axis=-1, keepdims=True), _BC_FLOOR, None)
    coefficient = np.sqrt(p * q).sum(axis=-1)
    return -np.log(np.clip(coefficient, _BC_FLOOR, 1.0))


def attention_map_distances(
    attentions_a: Sequence[np.ndarray | torch.Tensor], attentions_b: Sequence[np.ndarray | torch.Tensor]
) -> np.ndarray:
    """Paper 004, Eq. 1: Dis_{l,h} = (1/N) sum_i BD(A^a_{l,h,i}, A^b_{l,h,i}), the Bhattacharyya distance between
    the i-th rows of the two models' self-attention maps, averaged over the N rows.

    Args:
        attentions_a, attentions_b: one array per layer of shape `(heads, N, N)` or `(1, heads, N, N)` (the
            `attentions` output of a transformers model for one clip).

    Returns:
        `(layers, heads)` distances.
    """
    if len(attentions_a) != len(attentions_b):
        raise AnalysisError(f"The models have {len(attentions_a)} and {len(attentions_b)} attention layers.")
    rows = []
    for layer_a, layer_b in zip(attentions_a, attentions_b, strict=True):
        a = np.asarray(
            layer_a.float().cpu() if isinstance(layer_a, torch.Tensor) else layer_a, dtype=np.float64
        )
        b = np.asarray(
            layer_b.float().cpu() if isinstance(layer_b, torch.Tensor) else layer_b, dtype=np.float64
        )
        if a.ndim == 4:
            a, b = a[0], b[0]
        if a.ndim != 3 or a.shape[-1] != a.shape[-2]:
            raise AnalysisError(f"Attention maps must be (heads, N, N), got {a.shape}.")
        rows.append(bhattacharyya_distance(a, b).mean(axis=-1))
    return np.stack(rows)


@torch.no_grad()
def collect_attentions(
    model: torch.nn.Module, waveform: np.ndarray, feature_extractor=None
) -> list[np.ndarray]:
    """Self-attention maps of every layer for one clip: a list of `(heads, N, N)` arrays.

    SDPA and flash attention return no weights; a model running one of them is switched to the eager implementation
    for this call (same attention, computed explicitly) and switched back afterwards.
    """
    extractor = _default_extractor(feature_extractor)
    model.eval()
    device = next(model.parameters()).device
    inputs = _inputs(extractor, waveform, device)
    outputs = model(**inputs, output_attentions=True, return_dict=True)
    attentions = outputs.attentions
    if (not attentions or any(a is None for a in attentions)) and hasattr(model, "set_attn_implementation"):
        previous = getattr(model.config, "_attn_implementation", None)
        model.set_attn_implementation("eager")
        try:
            attentions = model(**inputs, output_attentions=True, return_dict=True).attentions
        finally:
            if previous is not None:
                model.set_attn_implementation(previous)
    if not attentions or any(a is None for a in attentions):
        raise AnalysisError(
            f"{type(model).__name__} returned no attention maps; load it with attn_implementation='eager'."
        )
    return [a[0].float().cpu().numpy() for a in attentions]


def mean_attention_distances(
    model_a, model_b, waveforms: Sequence[np.ndarray], feature_extractor=None
) -> np.ndarray:
    """Eq. 1 of paper 004 for each clip, averaged over the clips: `(layers, heads)`."""
    if len(waveforms) == 0:
        raise AnalysisError("No audio to analyse.")
    total = None
    for waveform in waveforms:
        d = attention_map_distances(
            collect_attentions(model_a, waveform, feature_extractor),
            collect_attentions(model_b, waveform, feature_extractor),
        )
        total = d if total is None else total + d
    return total / len(waveforms)


@torch.no_grad()
def predictions_and_embeddings(
    model, waveforms: Sequence[np.ndarray], feature_extractor=None
) -> tuple[np.ndarray, np.ndarray]:
    """Class decisions (argmax of `logits`) and last-layer embeddings, one clip at a time. The embedding is the
    model's `embeddings` output (hf_ser models: the pooled vector fed to the head) or else the mean of its last
    hidden state."""
    extractor = _default_extractor(feature_extractor)
    model.eval()
    device = next(model.parameters()).device
    predictions, embeddings = [], []
    for waveform in waveforms:
        outputs = model(**_inputs(extractor, waveform, device), output_hidden_states=True, return_dict=True)
        logits = getattr(outputs, "logits", None)
        if logits is None:
            raise AnalysisError(f"{type(model).__name__} returned no logits: decisions need a classifier.")
        embedding = getattr(outputs, "embeddings", None)
        if embedding is None:
            embedding = outputs.hidden_states[-1].mean(dim=1)
        predictions.append(int(logits[0].argmax()))
        embeddings.append(embedding[0].float().cpu().numpy())
    return np.array(predictions), np.stack(embeddings)


# ------------------------------------------------------------------------------------------------ outputs
def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    return plt


def plot_heatmap(
    matrix: np.ndarray,
    path: str | Path,
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    colorbar_label: str,
    vmin: float | None = None,
    vmax: float | None = None,
    annotate: bool | None = None,
) -> Path:
    """Write a labelled heat-map (row 0 at the bottom, like a layer axis) as PNG. Cells are annotated with their
    values when the matrix is small enough to read them."""
    plt = _pyplot()
    matrix = np.asarray(matrix, dtype=np.float64)
    rows, cols = matrix.shape
    fig, ax = plt.subplots(figsize=(max(4.0, 0.45 * cols + 2.5), max(3.5, 0.4 * rows + 1.8)), dpi=120)
    image = ax.imshow(matrix, origin="lower", aspect="auto", cmap="viridis", vmin=vmin, vmax=vmax)
    fig.colorbar(image, ax=ax, label=colorbar_label)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_xticks(range(cols))
    ax.set_yticks(range(rows))
    if annotate if annotate is not None else rows * cols <= 200:
        middle = np.nanmean(matrix) if vmin is None or vmax is None else (vmin + vmax) / 2
        for i in range(rows):
            for j in range(cols):
                colour = "black" if matrix[i, j] > middle else "white"
                ax.text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center", fontsize=7, color=colour)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_cka(matrix: np.ndarray, path: str | Path, name_a: str = "model A", name_b: str = "model B") -> Path:
    """Heat-map of [`cka_matrix`] (layer 0 is the encoder's embedding output)."""
    return plot_heatmap(
        matrix,
        path,
        title=f"Linear CKA: {name_a} vs {name_b}",
        xlabel=f"{name_b} layer",
        ylabel=f"{name_a} layer",
        colorbar_label="CKA",
        vmin=0.0,
        vmax=1.0,
    )


def plot_attention_distances(
    matrix: np.ndarray, path: str | Path, name_a: str = "model A", name_b: str = "model B"
) -> Path:
    """Heat-map of paper 004's Eq. 1 distances (layers x heads), as its Fig. 4."""
    return plot_heatmap(
        matrix,
        path,
        title=f"Attention-map Bhattacharyya distance\n{name_a} vs {name_b}",
        xlabel="head",
        ylabel="layer",
        colorbar_label="mean Bhattacharyya distance",
    )


def plot_distance_histogram(
    distances: Mapping[str, np.ndarray], path: str | Path, threshold: float | None = None, bins: int = 10
) -> Path:
    """Line-joined histogram of cosine distances, one curve per comparison, markers at the bin centres and a
    dashed threshold line (paper 004, Fig. 3)."""
    plt = _pyplot()
    values = [np.asarray(d, dtype=np.float64) for d in distances.values()]
    upper = max(2.0 if any(v.max() > 1 for v in values) else 1.0, threshold or 0.0)
    edges = np.linspace(0.0, upper, bins + 1)
    centres = (edges[:-1] + edges[1:]) / 2
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for marker, (name, value) in zip(("o", "x", "D", "s", "^", "v"), distances.items(), strict=False):
        counts, _ = np.histogram(np.clip(value, 0.0, upper), bins=edges)
        ax.plot(centres, 100.0 * counts / len(value), marker=marker, label=name)
    if threshold is not None:
        ax.axvline(threshold, color="magenta", linestyle="--", label=f"threshold {threshold:g}")
    ax.set_xlabel("cosine distance")
    ax.set_ylabel("% of examples")
    ax.set_title("Cosine distance between last-layer embeddings")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path


def write_csv(rows: Sequence[Mapping[str, object]], path: str | Path) -> Path:
    """Write dict rows as CSV (columns in the first row's order)."""
    if not rows:
        raise AnalysisError("No rows to write.")
    path = Path(path)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def matrix_rows(matrix: np.ndarray, row_name: str, col_name: str, value_name: str) -> list[dict[str, object]]:
    """Long-format rows `{row_name: i, col_name: j, value_name: m[i, j]}` of a matrix, for [`write_csv`]."""
    return [
        {row_name: i, col_name: j, value_name: float(matrix[i, j])}
        for i in range(matrix.shape[0])
        for j in range(matrix.shape[1])
    ]


# ------------------------------------------------------------------------------------------ whole analyses
def analyze_cka(
    model_a,
    model_b,
    waveforms,
    output_dir: str | Path,
    *,
    feature_extractor=None,
    pooling: str = "frames",
    names: tuple[str, str] = ("model A", "model B"),
) -> np.ndarray:
    """Layer-by-layer linear CKA of two models over `waveforms`; writes `cka.png` and `cka.csv` to `output_dir`."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    reps_a = layer_representations(model_a, waveforms, feature_extractor, pooling)
    reps_b = layer_representations(model_b, waveforms, feature_extractor, pooling)
    if reps_a[0].shape[0] != reps_b[0].shape[0]:
        raise AnalysisError(
            f"The models give {reps_a[0].shape[0]} and {reps_b[0].shape[0]} frames for the same audio; "
            "use pooling='mean' to compare models with different frame rates."
        )
    matrix = cka_matrix(reps_a, reps_b)
    plot_cka(matrix, output_dir / "cka.png", *names)
    write_csv(matrix_rows(matrix, "layer_a", "layer_b", "cka"), output_dir / "cka.csv")
    return matrix


def analyze_mismatch(
    model_a,
    model_b,
    waveforms,
    output_dir: str | Path,
    *,
    feature_extractor=None,
    threshold: float = 0.6,
    names: tuple[str, str] = ("model A", "model B"),
) -> dict[str, float]:
    """Decision mismatch (Table II), cosine distances (Fig. 3) and the threshold table (Table III) of paper 004;
    writes `mismatch.csv`, `cosine_distances.csv` and `cosine_distances.png`."""
    pred_a, emb_a = predictions_and_embeddings(model_a, waveforms, feature_extractor)
    pred_b, emb_b = predictions_and_embeddings(model_b, waveforms, feature_extractor)
    return summarize_mismatch(pred_a, emb_a, pred_b, emb_b, output_dir, threshold=threshold, names=names)


def summarize_mismatch(
    pred_a: np.ndarray,
    emb_a: np.ndarray,
    pred_b: np.ndarray,
    emb_b: np.ndarray,
    output_dir: str | Path,
    *,
    threshold: float = 0.6,
    names: tuple[str, str] = ("model A", "model B"),
) -> dict[str, float]:
    """`analyze_mismatch` from decisions and embeddings already computed, e.g. pooled over every cross-validation
    fold (each clip scored by the models of the fold that held it out, as paper 004 analyses "all the data points
    in the corpus")."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    if emb_a.shape != emb_b.shape:
        raise AnalysisError(
            f"Embedding sizes differ ({emb_a.shape[1]} vs {emb_b.shape[1]}): cosine needs one space."
        )
    distances = cosine_distances(emb_a, emb_b)
    summary = {
        "model_a": names[0],
        "model_b": names[1],
        "examples": len(distances),
        "mismatch_pct": decision_mismatch(pred_a, pred_b),
        **threshold_agreement(distances, pred_a, pred_b, threshold),
        "mean_cosine_distance": float(distances.mean()),
    }
    write_csv([summary], output_dir / "mismatch.csv")
    write_csv(
        [
            {"index": i, "prediction_a": int(a), "prediction_b": int(b), "cosine_distance": float(d)}
            for i, (a, b, d) in enumerate(zip(pred_a, pred_b, distances, strict=True))
        ],
        output_dir / "cosine_distances.csv",
    )
    plot_distance_histogram(
        {f"{names[0]} vs {names[1]}": distances}, output_dir / "cosine_distances.png", threshold
    )
    return summary


def analyze_attention(
    model_a,
    model_b,
    waveforms,
    output_dir: str | Path,
    *,
    feature_extractor=None,
    names: tuple[str, str] = ("model A", "model B"),
) -> np.ndarray:
    """Paper 004's Eq. 1 per layer and head, averaged over clips; writes `attention.png` and `attention.csv`."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    matrix = mean_attention_distances(model_a, model_b, waveforms, feature_extractor)
    plot_attention_distances(matrix, output_dir / "attention.png", *names)
    write_csv(matrix_rows(matrix, "layer", "head", "bhattacharyya_distance"), output_dir / "attention.csv")
    return matrix


# ------------------------------------------------------------------------------------------------ command line
def audio_files(paths: Sequence[str | Path]) -> list[Path]:
    """Audio files named directly, found (sorted, recursively) in the given folders, or matched by glob patterns:
    the same expansion as `hf-ser predict` (`hf_ser.inference.files.collect_audio_files`, `hf_ser.audio.AUDIO_SUFFIXES`)."""
    import glob

    from ..audio import AUDIO_SUFFIXES
    from ..inference.files import InputError, collect_audio_files

    for item in map(str, paths):
        if not glob.has_magic(item) and not Path(item).is_dir() and not Path(item).is_file():
            raise AnalysisError(f"{item} is neither an audio file nor a folder.")
    try:
        return collect_audio_files(list(map(str, paths)))
    except InputError as error:
        raise AnalysisError(
            f"No audio files ({', '.join(AUDIO_SUFFIXES)}) in {list(map(str, paths))}: {error}"
        ) from None


def load_model_for_analysis(path: str | Path, kind: str):
    """Load a saved model (hf_ser's registered classes or any transformers speech model) for `kind`: a classifier
    for `"mismatch"`, the eager attention implementation for `"attention"` (SDPA returns no weights)."""
    from transformers import AutoModel, AutoModelForAudioClassification

    from ..registration import register_auto_classes

    register_auto_classes()  # hf_ser's classes answer to the Auto API

    kwargs = {"attn_implementation": "eager"} if kind == "attention" else {}
    auto = AutoModelForAudioClassification if kind == "mismatch" else AutoModel
    if not Path(path).is_dir():
        raise AnalysisError(f"The model folder {path} does not exist.")
    try:
        # No remote code: a folder's code files are never run, and no prompt can offer to.
        return auto.from_pretrained(path, trust_remote_code=False, **kwargs)
    except (OSError, ValueError, RuntimeError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise AnalysisError(f"Cannot load the model {path}: {first}") from None


def run_analysis(
    kind: str,
    model_a: str | Path,
    model_b: str | Path,
    audio: Sequence[str | Path],
    output_dir: str | Path,
    *,
    names: Sequence[str] | None = None,
    pooling: str = "frames",
    threshold: float = 0.6,
    max_seconds: float | None = 10.0,
):
    """`hf-ser analyze KIND`: load two saved models and audio files, run the analysis, write PNG + CSV files."""
    from transformers import AutoFeatureExtractor

    from ..audio import load_audio

    if kind not in ("cka", "mismatch", "attention"):
        raise AnalysisError(f"Unknown analysis {kind!r}; choose cka, mismatch or attention.")
    waveforms = [load_audio(path, max_seconds=max_seconds) for path in audio_files(audio)]
    first = load_model_for_analysis(model_a, kind)
    second = load_model_for_analysis(model_b, kind)
    try:
        extractor = AutoFeatureExtractor.from_pretrained(model_a, trust_remote_code=False)
    except (OSError, ValueError):
        extractor = None  # hf_ser's default per-utterance normalisation
    names = tuple(names) if names else (Path(model_a).name, Path(model_b).name)
    if kind == "cka":
        return analyze_cka(
            first, second, waveforms, output_dir, feature_extractor=extractor, pooling=pooling, names=names
        )
    if kind == "mismatch":
        return analyze_mismatch(
            first,
            second,
            waveforms,
            output_dir,
            feature_extractor=extractor,
            threshold=threshold,
            names=names,
        )
    return analyze_attention(first, second, waveforms, output_dir, feature_extractor=extractor, names=names)


__all__ = [
    "AnalysisError",
    "analyze_attention",
    "analyze_cka",
    "analyze_mismatch",
    "summarize_mismatch",
    "audio_files",
    "attention_map_distances",
    "bhattacharyya_distance",
    "cka_matrix",
    "collect_attentions",
    "cosine_distances",
    "decision_mismatch",
    "layer_representations",
    "linear_cka",
    "mean_attention_distances",
    "plot_attention_distances",
    "plot_cka",
    "plot_distance_histogram",
    "plot_heatmap",
    "predictions_and_embeddings",
    "run_analysis",
    "threshold_agreement",
    "write_csv",
]

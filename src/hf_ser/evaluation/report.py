"""Evaluation of a saved speech model on a dataset split, with the challenge metrics (paper 002) and a report:
a JSON/Markdown summary plus a confusion-matrix plot (categorical) or predicted-vs-true scatter plots (attributes).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..data.msp_podcast import ATTRIBUTE_COLUMNS
from ..inference.predict import predict_logits
from ..models.labels import ATTRIBUTE_LABELS
from .metrics import load_metric


def is_regression(model) -> bool:
    return getattr(model.config, "problem_type", None) == "regression"


def dataset_waveforms(dataset, audio_column: str = "audio") -> list[np.ndarray]:
    """16 kHz mono float32 arrays of a dataset's audio column (decoded one clip at a time)."""
    from ..audio import load_input

    # The package's one decoder: dicts and torchcodec decoders (datasets 4+) alike.
    return [load_input(example[audio_column]) for example in dataset]


def evaluate_model(
    model, feature_extractor, dataset, *, batch_size: int = 8, progress: bool = False
) -> tuple[dict, dict]:
    """Predict a labelled split (length-bucketed batches) and score it.

    Returns (metrics, predictions): macro/micro-F1, UAR, WAR, per-class F1 and the confusion matrix for a
    classifier; CCC per attribute and their mean for an attribute model. `predictions` holds the file names, true
    and predicted values, for the report and submissions."""
    waveforms = dataset_waveforms(dataset)
    logits = predict_logits(model, feature_extractor, waveforms, batch_size=batch_size, progress=progress)
    files = list(dataset["file"]) if "file" in dataset.column_names else [str(i) for i in range(len(dataset))]
    if is_regression(model):
        missing = [name for name in ATTRIBUTE_COLUMNS if name not in dataset.column_names]
        if missing:
            raise ValueError(f"The split has no {missing} columns: load the corpus with config 'attributes'.")
        truth = np.stack([np.asarray(dataset[name], dtype=np.float64) for name in ATTRIBUTE_COLUMNS], axis=1)
        metrics = load_metric("ccc").compute(predictions=logits, references=truth)
        return metrics, {"file": files, "true": truth.tolist(), "predicted": logits.tolist()}
    if "label" not in dataset.column_names:
        raise ValueError("The split has no 'label' column: load the corpus with config 'categorical'.")
    truth = np.asarray(dataset["label"])
    keep = truth >= 0
    predicted = logits.argmax(axis=-1)
    metrics = load_metric("f1").compute(
        predictions=predicted[keep],
        references=truth[keep],
        num_labels=model.config.num_labels,
        return_per_class=True,
        return_confusion_matrix=True,
    )
    return metrics, {"file": files, "true": truth.tolist(), "predicted": predicted.tolist()}


def plot_confusion_matrix(
    matrix: Sequence[Sequence[int]], labels: Sequence[str], path: Path, title: str
) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = np.asarray(matrix, dtype=float)
    normalised = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(7, 6))
    image = ax.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            colour = "white" if normalised[i, j] > 0.5 else "black"
            ax.text(j, i, f"{int(matrix[i, j])}", ha="center", va="center", color=colour, fontsize=8)
    fig.colorbar(image, ax=ax, label="share of the true class")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_attribute_scatter(
    truth: np.ndarray, predicted: np.ndarray, metrics: dict, path: Path, title: str
) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(12, 4))
    for k, (ax, name) in enumerate(zip(axes, ATTRIBUTE_LABELS, strict=True)):
        ax.scatter(truth[:, k], predicted[:, k], s=10, alpha=0.6)
        low = float(min(truth[:, k].min(), predicted[:, k].min()))
        high = float(max(truth[:, k].max(), predicted[:, k].max()))
        ax.plot([low, high], [low, high], color="grey", linestyle="--", linewidth=1)
        ax.set_title(f"{name}: CCC {metrics.get(f'ccc_{name}', float('nan')):.3f}")
        ax.set_xlabel("true")
        ax.set_ylabel("predicted")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_report(output_dir: str | Path, metrics: dict, predictions: dict, model, split: str) -> list[Path]:
    """Write `metrics.json`, `predictions.csv`, `report.md` and the plot into `output_dir`."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    written = [output_dir / "metrics.json", output_dir / "predictions.csv", output_dir / "report.md"]
    written[0].write_text(json.dumps(metrics, indent=1, default=float))
    rows = ["file,true,predicted"]
    for file, true, pred in zip(
        predictions["file"], predictions["true"], predictions["predicted"], strict=True
    ):
        fmt = (lambda v: " ".join(f"{x:.4f}" for x in v)) if isinstance(true, list) else str
        rows.append(f"{file},{fmt(true)},{fmt(pred)}")
    written[1].write_text("\n".join(rows) + "\n")
    title = f"{getattr(model.config, 'name_or_path', '') or type(model).__name__} on {split}"
    if is_regression(model):
        plot = plot_attribute_scatter(
            np.asarray(predictions["true"]),
            np.asarray(predictions["predicted"]),
            metrics,
            output_dir / "scatter.png",
            title,
        )
        summary = [f"| {k} | {metrics[k]:.4f} |" for k in metrics if k.startswith("ccc")]
    else:
        labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
        plot = plot_confusion_matrix(
            metrics["confusion_matrix"], labels, output_dir / "confusion_matrix.png", title
        )
        summary = [f"| {k} | {metrics[k]:.4f} |" for k in ("f1_macro", "f1_micro", "uar", "war")]
    written.append(plot)
    written[2].write_text(
        f"# Evaluation: {title}\n\n| metric | value |\n|---|---|\n"
        + "\n".join(summary)
        + f"\n\n![plot]({plot.name})\n"
    )
    return written


__all__ = [
    "evaluate_model",
    "write_report",
    "plot_confusion_matrix",
    "plot_attribute_scatter",
    "dataset_waveforms",
]

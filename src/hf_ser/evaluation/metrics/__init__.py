"""The challenge metrics as `evaluate` modules, loaded from files shipped in the package, never from the Hub.

- `"f1"`: macro- and micro-F1 (Task 1 of the Interspeech 2025 SER challenge, paper 002), UAR and WAR (paper
  004), per-class F1 and the confusion matrix on request.
- `"ccc"`: concordance correlation coefficient per attribute and their mean (Task 2, paper 002).

Each module is one flat file, `metrics/<name>/<name>.py`, so it also loads with plain
`evaluate.load(hf_ser.evaluation.metrics.metric_path("f1"))` and works in `evaluate.combine`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

METRICS_DIR = Path(__file__).resolve().parent


def available_metrics() -> list[str]:
    """Names of the metric modules shipped with hf_ser (e.g. `["ccc", "f1"]`)."""
    return sorted(path.parent.name for path in METRICS_DIR.glob("*/*.py") if path.stem == path.parent.name)


def metric_path(name: str) -> Path:
    """The file of the metric module `name`, for `evaluate.load(str(path))`.

    Raises:
        ValueError: `name` is not one of `available_metrics()`.
    """
    path = METRICS_DIR / name / f"{name}.py"
    if not isinstance(name, str) or "/" in name or "\\" in name or not path.is_file():
        raise ValueError(f"Unknown metric {name!r}; hf_ser ships {available_metrics()}.")
    return path


def load_metric(name: str, **kwargs: Any):
    """Load one of hf_ser's metrics as an `evaluate.EvaluationModule`, from the package's files (offline).

    Args:
        name (`str`): `"f1"` or `"ccc"` (see `available_metrics()`).
        **kwargs: forwarded to `evaluate.load` (e.g. `experiment_id`, `keep_in_memory`, `num_process`).

    Example:
        >>> from hf_ser import load_metric
        >>> load_metric("f1").compute(predictions=[0, 1, 2], references=[0, 1, 1])["f1_macro"]
        0.5555555555555555
        >>> sorted(load_metric("ccc").compute(predictions=[[4.0, 3.0, 5.0], [2.0, 5.0, 3.0]],
        ...                                   references=[[4.5, 3.0, 4.0], [2.5, 4.0, 3.5]]))
        ['ccc_arousal', 'ccc_dominance', 'ccc_mean', 'ccc_valence']
    """
    import evaluate

    return evaluate.load(str(metric_path(name)), **kwargs)


__all__ = ["available_metrics", "load_metric", "metric_path"]

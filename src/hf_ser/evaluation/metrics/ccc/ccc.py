"""Concordance correlation coefficient per emotional attribute and their mean: hf_ser's attribute metrics.

An `evaluate` metric module that loads from this file, offline (`evaluate.load("path/to/ccc.py")` or
`hf_ser.load_metric("ccc")`); nothing is fetched from the Hub.

CCC (Lin, "A concordance correlation coefficient to evaluate reproducibility", Biometrics 1989) is
2 cov(x, y) / (var(x) + var(y) + (mean(x) - mean(y))^2) with population (1/N) statistics. It is the Task 2
metric of the Interspeech 2025 SER challenge (paper 002: Naini et al.; arousal, valence, dominance and their
mean) and the quantity the 1-CCC losses of papers 001 and 002 optimise. Two identical constant series agree
perfectly (CCC = 1), as in `hf_ser.concordance_correlation_coefficient`.

This file is loaded by `evaluate`, whose import scanner reads one import per line: keep it that way.
"""

from __future__ import annotations

import datasets
import evaluate
import numpy as np

# A copy of hf_ser.models.labels.ATTRIBUTE_LABELS (a test checks they agree): `evaluate` loads this file on its own, outside
# the package, so it cannot import it.
ATTRIBUTES = ("arousal", "valence", "dominance")

_DESCRIPTION = """
Lin's concordance correlation coefficient (CCC), the Interspeech 2025 SER challenge's Task 2 metric: per
attribute (arousal, valence, dominance) and their mean for N x 3 inputs, or a single CCC for 1-D inputs.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list[float]` or `list[list[float]]`): N predictions, or N x K (K attributes, e.g. arousal,
        valence, dominance in that order).
    references (same shape as `predictions`): the true values.
    attribute_names (`list[str]`, *optional*): names of the K columns. Defaults to arousal, valence, dominance
        for K = 3; required for other K > 1.
Returns:
    For 1-D inputs: `ccc`. For N x K inputs: `ccc_<name>` per column and `ccc_mean`, their unweighted mean.
Examples:
    >>> ccc = hf_ser.load_metric("ccc")
    >>> ccc.compute(predictions=[1.0, 2.0, 3.0], references=[1.0, 2.0, 3.0])
    {'ccc': 1.0}
"""

_CITATION = """
@article{lin1989concordance,
  title={A concordance correlation coefficient to evaluate reproducibility},
  author={Lin, Lawrence I-Kuei},
  journal={Biometrics},
  volume={45},
  number={1},
  pages={255--268},
  year={1989}
}
"""


def concordance(predictions: np.ndarray, references: np.ndarray) -> np.ndarray:
    """CCC per column of two (N,) or (N, K) float arrays, with population statistics."""
    mean_x, mean_y = predictions.mean(axis=0), references.mean(axis=0)
    var_x, var_y = predictions.var(axis=0), references.var(axis=0)
    covariance = ((predictions - mean_x) * (references - mean_y)).mean(axis=0)
    denominator = var_x + var_y + (mean_x - mean_y) ** 2
    # The denominator is 0 only for two identical constant series: perfect agreement.
    safe = np.where(denominator > 0, denominator, 1.0)
    return np.where(denominator > 0, 2.0 * covariance / safe, 1.0)


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class CCC(evaluate.Metric):
    """Concordance correlation coefficient per attribute and mean (paper 002, Task 2)."""

    def _info(self) -> evaluate.MetricInfo:
        # The scalar format is tried first: a row of K values fails to encode as a float and falls through.
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=[
                datasets.Features(
                    {"predictions": datasets.Value("float64"), "references": datasets.Value("float64")}
                ),
                datasets.Features(
                    {
                        "predictions": datasets.List(datasets.Value("float64")),
                        "references": datasets.List(datasets.Value("float64")),
                    }
                ),
            ],
            reference_urls=["https://doi.org/10.2307/2532051"],
        )

    def _compute(self, predictions, references, attribute_names=None) -> dict:
        predictions = np.asarray(predictions, dtype=np.float64)
        references = np.asarray(references, dtype=np.float64)
        if predictions.shape != references.shape:
            raise ValueError(
                f"predictions {predictions.shape} and references {references.shape} differ in shape."
            )
        if predictions.ndim not in (1, 2):
            raise ValueError(f"CCC takes N or N x K inputs, got shape {predictions.shape}.")
        if predictions.shape[0] < 2:
            raise ValueError(f"CCC needs at least 2 samples, got {predictions.shape[0]}.")
        bad = ~(np.isfinite(predictions) & np.isfinite(references))
        if bad.any():
            raise ValueError(f"CCC inputs hold {int(bad.sum())} NaN or infinite values.")

        if predictions.ndim == 1:
            if attribute_names is not None:
                raise ValueError("attribute_names applies to N x K inputs only; these are 1-D.")
            return {"ccc": float(concordance(predictions, references))}

        num_columns = predictions.shape[1]
        if attribute_names is None:
            if num_columns != len(ATTRIBUTES):
                raise ValueError(
                    f"Inputs have {num_columns} columns: pass attribute_names (defaults cover 3)."
                )
            attribute_names = ATTRIBUTES
        attribute_names = list(attribute_names)
        if len(attribute_names) != num_columns:
            raise ValueError(f"{len(attribute_names)} attribute_names for {num_columns} columns.")
        values = concordance(predictions, references)
        result = {f"ccc_{name}": float(value) for name, value in zip(attribute_names, values, strict=True)}
        result["ccc_mean"] = float(values.mean())
        return result

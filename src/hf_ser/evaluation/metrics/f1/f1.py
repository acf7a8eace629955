"""Macro- and micro-F1, per-class F1, UAR/WAR and the confusion matrix: the categorical metrics of hf_ser.

An `evaluate` metric module that loads from this file, offline (`evaluate.load("path/to/f1.py")` or
`hf_ser.load_metric("f1")`); nothing is fetched from the Hub. Computed with numpy and matching scikit-learn's
definitions, without needing scikit-learn.

- Macro-F1 is the Task 1 metric of the Interspeech 2025 SER challenge, micro-F1 its secondary metric (paper
  002: Naini et al., "The Interspeech 2025 Challenge on Speech Emotion Recognition in Naturalistic
  Conditions").
- UAR (unweighted average recall) and WAR (weighted average recall, i.e. accuracy) are the metrics of paper
  004 (Purohit & Magimai.-Doss, "Emotion information recovery potential of wav2vec2 network fine-tuned for
  speech recognition task").

This file is loaded by `evaluate`, whose import scanner reads one import per line: keep it that way.
"""

from __future__ import annotations

import datasets
import evaluate
import numpy as np

_DESCRIPTION = """
Macro-F1 (the Interspeech 2025 SER challenge's Task 1 metric), micro-F1, unweighted and weighted average
recall (UAR, WAR), accuracy, support-weighted precision/recall/F1 (paper 000's tables) and, on request, per-class F1 and the confusion matrix, for single-label multi-class
predictions.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list[int]`): predicted class ids.
    references (`list[int]`): true class ids.
    labels (`list[int]`, *optional*): the classes to score. Defaults to `range(num_labels)` when `num_labels`
        is given, else to the classes that occur in the references or the predictions (as scikit-learn does).
        Classes listed but never predicted nor true get F1 = `zero_division`; samples whose reference and
        prediction are both outside `labels` are left out of the micro averages.
    num_labels (`int`, *optional*): score the classes `0 .. num_labels - 1` (e.g. 8 for the challenge).
    zero_division (`float`, *optional*, defaults to 0.0): the value of a precision, recall or F1 that divides
        by 0.
    return_per_class (`bool`, *optional*, defaults to `False`): also return `f1_per_class` and
        `recall_per_class` (lists aligned with the returned `labels`).
    return_confusion_matrix (`bool`, *optional*, defaults to `False`): also return `confusion_matrix`, a list
        of rows (true class) of counts per predicted class, in the order of the returned `labels`.
Returns:
    f1_macro (`float`): unweighted mean of the per-class F1 scores.
    f1_micro (`float`): F1 of the pooled true/false positives (equals accuracy when every class is scored).
    uar (`float`): unweighted average recall over the scored classes that occur in the references
        (scikit-learn's `balanced_accuracy_score`).
    war (`float`): weighted average recall, i.e. recall weighted by class support (accuracy when every class
        is scored).
    accuracy (`float`): the fraction of samples whose prediction equals the reference.
    precision_weighted, recall_weighted, f1_weighted (`float`): per-class precision, recall and F1 averaged
        with the classes' support as weights (scikit-learn's `average="weighted"`; `recall_weighted` equals
        `war`). Paper 000 reports these (its recall equals its accuracy).
Examples:
    >>> f1 = hf_ser.load_metric("f1")
    >>> f1.compute(predictions=[0, 1, 1, 2], references=[0, 1, 2, 2])
    {'f1_macro': 0.777..., 'f1_micro': 0.75, 'uar': 0.833..., 'war': 0.75, 'accuracy': 0.75, 'precision_weighted': 0.875, 'recall_weighted': 0.75, 'f1_weighted': 0.75}
"""

_CITATION = """
@inproceedings{naini2025challenge,
  title={The Interspeech 2025 Challenge on Speech Emotion Recognition in Naturalistic Conditions},
  author={Naini, Abinay Reddy and Goncalves, Lucas and Salman, Ali N. and Mote, Pravin and
          {\\\"U}lgen, Ismail R. and Thebaud, Thomas and Moro-Velazquez, Laureano and Garcia, Leibny Paola
          and Dehak, Najim and Sisman, Berrak and Busso, Carlos},
  booktitle={Proc. Interspeech},
  year={2025}
}
"""


def _safe_divide(numerator: np.ndarray, denominator: np.ndarray, zero_division: float) -> np.ndarray:
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    out = np.full(numerator.shape, float(zero_division))
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    return out


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class F1(evaluate.Metric):
    """Macro/micro-F1, UAR, WAR, accuracy, weighted precision/recall/F1, per-class F1 and confusion matrix (papers
    000, 002 and 004)."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}
            ),
            reference_urls=[
                "https://scikit-learn.org/stable/modules/generated/sklearn.metrics.f1_score.html"
            ],
        )

    def _compute(
        self,
        predictions,
        references,
        labels=None,
        num_labels=None,
        zero_division=0.0,
        return_per_class=False,
        return_confusion_matrix=False,
    ) -> dict:
        predictions = np.asarray(predictions, dtype=np.int64).reshape(-1)
        references = np.asarray(references, dtype=np.int64).reshape(-1)
        if references.size == 0:
            raise ValueError("F1 needs at least one prediction/reference pair; got none.")
        if predictions.shape != references.shape:
            raise ValueError(f"{predictions.size} predictions but {references.size} references.")
        if labels is not None and num_labels is not None:
            raise ValueError("Pass either `labels` or `num_labels`, not both.")
        if num_labels is not None:
            if int(num_labels) < 1:
                raise ValueError(f"num_labels must be >= 1, got {num_labels}.")
            labels = np.arange(int(num_labels))
        elif labels is None:
            labels = np.union1d(references, predictions)
        labels = np.asarray(labels, dtype=np.int64).reshape(-1)
        if labels.size == 0 or np.unique(labels).size != labels.size:
            raise ValueError(
                f"`labels` must be a non-empty list of distinct class ids, got {labels.tolist()}."
            )

        # Rows: true class, columns: predicted class, over `labels` only (scikit-learn's confusion_matrix).
        order = np.argsort(labels)
        sorted_labels = labels[order]

        def positions(ids: np.ndarray) -> np.ndarray:  # index of each id in `labels`, -1 when not scored
            found = np.clip(np.searchsorted(sorted_labels, ids), 0, labels.size - 1)
            return np.where(sorted_labels[found] == ids, order[found], -1)

        true_pos, predicted_pos = positions(references), positions(predictions)
        both = (true_pos >= 0) & (predicted_pos >= 0)
        matrix = np.zeros((labels.size, labels.size), dtype=np.int64)
        np.add.at(matrix, (true_pos[both], predicted_pos[both]), 1)

        # Support and prediction counts include pairs whose other side lies outside `labels`: those are still
        # misses
        # or false alarms of the scored class.
        true_positives = np.diag(matrix)
        support = np.array([(references == label).sum() for label in labels], dtype=np.int64)
        predicted_count = np.array([(predictions == label).sum() for label in labels], dtype=np.int64)

        precision = _safe_divide(true_positives, predicted_count, zero_division)
        recall = _safe_divide(true_positives, support, zero_division)
        f1 = _safe_divide(2 * true_positives, support + predicted_count, zero_division)

        # Micro-F1 = 2 TP / (2 TP + FP + FN) on the pooled counts of the scored classes.
        micro_f1 = _safe_divide(
            2 * true_positives.sum(), support.sum() + predicted_count.sum(), zero_division
        )

        present = support > 0
        uar = float(recall[present].mean()) if present.any() else float(zero_division)
        war = (
            float((recall * support)[present].sum() / support.sum())
            if present.any()
            else float(zero_division)
        )

        # Support-weighted averages (scikit-learn's average="weighted"): paper 000's Tables 3-4 report these, as
        # their recall equals the accuracy. Accuracy counts every sample (also those outside `labels`).
        total = support.sum()

        def weighted(values: np.ndarray) -> float:
            return float((values * support).sum() / total) if total else float(zero_division)

        result = {
            "f1_macro": float(f1.mean()),
            "f1_micro": float(micro_f1),
            "uar": uar,
            "war": war,
            "accuracy": float((predictions == references).mean()),
            "precision_weighted": weighted(precision),
            "recall_weighted": weighted(recall),
            "f1_weighted": weighted(f1),
        }
        if return_per_class or return_confusion_matrix:
            result["labels"] = labels.tolist()
        if return_per_class:
            result["f1_per_class"] = f1.tolist()
            result["recall_per_class"] = recall.tolist()
            result["precision_per_class"] = precision.tolist()
        if return_confusion_matrix:
            result["confusion_matrix"] = matrix.tolist()
        return result

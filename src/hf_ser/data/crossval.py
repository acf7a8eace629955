"""Leave-one-session-out cross-validation for session-structured corpora (IEMOCAP: 5 sessions, MSP-IMPROV: 6;
`corpus_session` reads the session from either corpus's file names).

Paper 004 (Purohit & Magimai.-Doss, Sec. III) follows the usual protocol: to test session k, train on the other
sessions; performance is unweighted average recall (UAR, the mean of per-class recalls) and weighted average recall
(WAR, the recall weighted by class frequency, i.e. accuracy). Per-fold scores are reported with their mean over
folds (the common way to report these corpora) and the scores of the pooled predictions of all folds.

The training itself is yours: pass `fit_predict(train_dataset, test_dataset) -> predicted class ids`, e.g. a
`transformers.Trainer` run that starts from `facebook/wav2vec2-base-100h` (the two-step recipe, see
`examples/two_step_asr_then_ser_paper004.py`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import HFSERError

# IEMOCAP utterance ids look like "Ses01F_impro01_F000": the session is the first five characters.
_IEMOCAP_SESSION = re.compile(r"(Ses\d\d)")
# MSP-IMPROV file names look like "MSP-IMPROV-S01A-F01-P-FM01": the speaker (F01 / M01) is one of the two actors of
# session 1; sessions 1-6 each pair one female and one male actor of the same number.
_MSP_IMPROV_SESSION = re.compile(r"MSP-IMPROV-S\d\d[A-Z]-[FM](\d\d)-", re.IGNORECASE)
_SESSION_FOLDER = re.compile(r"(?:^|/)session(\d+)(?:/|$)", re.IGNORECASE)


class CrossValidationError(HFSERError, ValueError):
    """Invalid corpus layout or predictions for cross-validation."""


def iemocap_session(name: str) -> str:
    """The session ("Ses01".."Ses05") of an IEMOCAP utterance id or file path, e.g. `Ses03M_script01_2_F012.wav`."""
    match = _IEMOCAP_SESSION.search(str(name).rsplit("/", 1)[-1])
    if match is None:
        raise CrossValidationError(f"{name!r} is not an IEMOCAP utterance id (expected 'SesNN...').")
    return match.group(1)


def msp_improv_session(name: str) -> str:
    """The session ("Session1".."Session6") of an MSP-IMPROV file name or path, e.g.
    `session3/S05H/P/MSP-IMPROV-S05H-F03-P-FM14.wav` -> "Session3" (from the speaker, F03: the actors of session k
    are F0k and M0k), or from a `sessionN/` folder in the path."""
    text = str(name).replace("\\", "/")
    match = _MSP_IMPROV_SESSION.search(text.rsplit("/", 1)[-1])
    if match is not None:
        return f"Session{int(match.group(1))}"
    folder = _SESSION_FOLDER.search(text)
    if folder is not None:
        return f"Session{int(folder.group(1))}"
    raise CrossValidationError(
        f"{name!r} is not an MSP-IMPROV file name (expected 'MSP-IMPROV-SxxX-F0k-...' or a 'sessionN/' folder)."
    )


def corpus_session(name: str) -> str:
    """The session of an IEMOCAP ("Ses01".."Ses05") or MSP-IMPROV ("Session1".."Session6") utterance, whichever
    naming `name` follows (paper 004 evaluates on both)."""
    for parse in (iemocap_session, msp_improv_session):
        try:
            return parse(name)
        except CrossValidationError:
            continue
    raise CrossValidationError(f"{name!r} names neither an IEMOCAP ('SesNN...') nor an MSP-IMPROV utterance.")


def recall_scores(
    references: Sequence[int], predictions: Sequence[int], num_classes: int | None = None
) -> dict:
    """UAR and WAR in percent, and the per-class recalls (classes absent from the references are skipped in UAR)."""
    references, predictions = np.asarray(references), np.asarray(predictions)
    if references.shape != predictions.shape or references.ndim != 1 or references.size == 0:
        raise CrossValidationError(
            f"references and predictions must be non-empty 1-D arrays of one length, got {references.shape} and "
            f"{predictions.shape}."
        )
    classes = range(num_classes) if num_classes is not None else np.unique(references)
    recalls = {
        int(c): float(np.mean(predictions[references == c] == c)) for c in classes if np.any(references == c)
    }
    return {
        "uar": 100.0 * float(np.mean(list(recalls.values()))),
        "war": 100.0 * float(np.mean(predictions == references)),
        "recall_per_class": recalls,
    }


def summarize_folds(
    folds: Sequence[dict],
    references: Sequence[np.ndarray],
    predictions: Sequence[np.ndarray],
    num_classes: int | None,
) -> dict[str, float]:
    """The two ways leave-one-session-out scores are reported: `uar`/`war`, the mean of the folds' scores, and
    `pooled_uar`/`pooled_war`, the scores of every fold's predictions pooled."""
    pooled = recall_scores(np.concatenate(references), np.concatenate(predictions), num_classes)
    return {
        "uar": float(np.mean([f["uar"] for f in folds])),
        "war": float(np.mean([f["war"] for f in folds])),
        "pooled_uar": pooled["uar"],
        "pooled_war": pooled["war"],
    }


def session_splits(dataset, session_column: str = "session") -> Iterator[tuple[str, object, object]]:
    """Yield `(held-out session, train dataset, test dataset)` for every session of a `datasets.Dataset`, sessions in
    sorted order."""
    if session_column not in dataset.column_names:
        raise CrossValidationError(
            f"The dataset has no {session_column!r} column (columns: {dataset.column_names}); add one, e.g. with "
            "iemocap_session on the file names."
        )
    sessions = np.asarray(dataset[session_column])
    unique = sorted(set(sessions.tolist()))
    if len(unique) < 2:
        raise CrossValidationError(f"Leave-one-session-out needs at least 2 sessions, found {unique}.")
    for session in unique:
        test = np.flatnonzero(sessions == session)
        train = np.flatnonzero(sessions != session)
        yield session, dataset.select(train), dataset.select(test)


@dataclass
class CrossValidationResult:
    """Scores of [`leave_one_session_out`].

    Args:
        folds (`list[dict]`): per held-out session: `session`, `n`, `uar`, `war`.
        uar, war (`float`): mean over folds (percent).
        pooled_uar, pooled_war (`float`): scores of all folds' predictions pooled (percent).
        predictions (`dict[str, np.ndarray]`): each session's predictions, in the test split's order.
    """

    folds: list[dict]
    uar: float
    war: float
    pooled_uar: float
    pooled_war: float
    predictions: dict[str, np.ndarray] = field(default_factory=dict)


def leave_one_session_out(
    dataset,
    fit_predict: Callable[[object, object], Sequence[int]],
    *,
    label_column: str = "label",
    session_column: str = "session",
    num_classes: int | None = None,
) -> CrossValidationResult:
    """Leave-one-session-out cross-validation (paper 004): for every session, `fit_predict(train, test)` trains on
    the other sessions and returns class ids for `test`; reports UAR and WAR per fold, averaged, and pooled.

    Example:
        >>> def fit_predict(train, test):  # doctest: +SKIP
        ...     trainer = Trainer(model=build_model(), train_dataset=train, ...)
        ...     trainer.train()
        ...     return trainer.predict(test).predictions.argmax(-1)
        >>> result = leave_one_session_out(iemocap, fit_predict)  # doctest: +SKIP
        >>> result.uar, result.war  # doctest: +SKIP
    """
    if label_column not in dataset.column_names:
        raise CrossValidationError(
            f"The dataset has no {label_column!r} column (columns: {dataset.column_names})."
        )
    folds, predictions, all_refs, all_preds = [], {}, [], []
    for session, train, test in session_splits(dataset, session_column):
        predicted = np.asarray(fit_predict(train, test)).reshape(-1)
        references = np.asarray(test[label_column])
        if predicted.shape != references.shape:
            raise CrossValidationError(
                f"fit_predict returned {predicted.shape[0]} predictions for {references.shape[0]} test examples of "
                f"session {session!r}."
            )
        scores = recall_scores(references, predicted, num_classes)
        folds.append(
            {"session": session, "n": int(references.size), "uar": scores["uar"], "war": scores["war"]}
        )
        predictions[session] = predicted
        all_refs.append(references)
        all_preds.append(predicted)
    return CrossValidationResult(
        folds=folds, predictions=predictions, **summarize_folds(folds, all_refs, all_preds, num_classes)
    )


__all__ = [
    "CrossValidationError",
    "CrossValidationResult",
    "corpus_session",
    "iemocap_session",
    "msp_improv_session",
    "leave_one_session_out",
    "recall_scores",
    "session_splits",
]

"""A synthetic, schema-valid evaluation report (format callqa-eval-report/1) for the report and
compare tests: 3 evaluated calls (one more failed, one unlabelled), 3 scorecard items, two
disagreements (one quoting ``<script>`` and ``&`` to test escaping) and some undefined metrics."""

from __future__ import annotations

import copy
from typing import Any

MISSING = object()
"""A change value that deletes the key (``make_report(speakers=MISSING)``)."""

CALLS = ("c001", "c002", "c003")
ITEMS = ("opening.greeting", "opening.verification", "closing.thanks")
EVIL_QUOTE = 'I\'ll read it: <script>alert("x")</script> & that\'s it'


def _te(wer: float | None, cer: float | None, ref: int, sub: int, dele: int, ins: int) -> dict[str, Any]:
    return {"wer": wer, "cer": cer, "ref_words": ref, "hyp_words": ref - dele + ins, "hits": ref - sub - dele,
            "substitutions": sub, "deletions": dele, "insertions": ins, "ref_chars": ref * 5,
            "char_errors": None if cer is None else round(cer * ref * 5)}


def _sp(der: float, der_collar: float, jer: float | None, jer_collar: float | None, role_accuracy: float | None,
        missed: float, fa: float, confusion: float, total: float) -> dict[str, Any]:
    return {"der": der, "der_collar": der_collar, "jer": jer, "jer_collar": jer_collar,
            "role_accuracy": role_accuracy, "missed": missed, "false_alarm": fa, "confusion": confusion,
            "total": total}


def _ia(n: int, accuracy: float, precision: float | None, recall: float | None, f1: float | None,
        kappa: float | None, confusion: dict[str, dict[str, int]]) -> dict[str, Any]:
    return {"n": n, "accuracy": accuracy, "precision": precision, "recall": recall, "f1": f1, "kappa": kappa,
            "labels_present": [g for g in ("yes", "no", "na") if any(confusion[g].values())],
            "confusion": confusion,
            "classes": {"yes": {"precision": precision, "recall": recall, "f1": f1,
                                "support": sum(confusion["yes"].values())}}}


def _grid(**cells: int) -> dict[str, dict[str, int]]:
    """``yes_no=1``: gold yes answered no once."""
    grid = {g: {a: 0 for a in ("yes", "no", "na")} for g in ("yes", "no", "na")}
    for key, n in cells.items():
        gold, auto = key.split("_")
        grid[gold][auto] = n
    return grid


def base_report() -> dict[str, Any]:
    return {
        "format": "callqa-eval-report/1",
        "callqa_version": "0.4.0",
        "data": {"path": "recordings_sample", "sha256": "ab12cd34ef56" + "0" * 52, "calls": 5,
                 "evaluated": list(CALLS), "failed": {"c004": "AudioError: c004.wav: empty file"},
                 "unlabelled": ["x1"]},
        "config_hash": "0123456789abcdef",
        "config": {"asr": {"backend": "faster-whisper", "model": "base"}, "scorecard": {"enabled": True}},
        "scorecard_template": {"name": "Inbound support", "version": "1.0", "path": "configs/scorecards/x.yaml",
                               "sha256": "feed" * 16},
        "models": {"asr": {"name": "whisper-base", "compute_type": "int8"}, "diarization": {"embedder": "ecapa"}},
        "normalisation": "Lower case, punctuation removed, numbers spelled as words.",
        "transcription": {
            "overall": _te(0.1234, 0.0567, 1000, 80, 30, 13),
            "roles": {"agent": _te(0.1, 0.05, 600, 40, 15, 5), "customer": _te(0.159, 0.07, 400, 40, 15, 8)},
            "calls": {
                "c001": {**_te(0.08, 0.04, 400, 20, 8, 4),
                         "roles": {"agent": _te(0.07, 0.03, 250, 10, 5, 3),
                                   "customer": _te(0.0967, 0.05, 150, 10, 3, 1)}},
                "c002": {**_te(0.15, 0.07, 350, 30, 12, 5),
                         "roles": {"agent": _te(0.12, 0.06, 200, 15, 6, 3),
                                   "customer": _te(0.19, 0.08, 150, 15, 6, 2)}},
                "c003": {**_te(0.1603, 0.06, 250, 30, 10, 0),
                         "roles": {"agent": _te(0.1603, 0.06, 250, 30, 10, 0),
                                   "customer": _te(None, None, 0, 0, 0, 0)}},
            },
        },
        "speakers": {
            "collar_s": 0.25,
            "overall": _sp(0.0876, 0.0412, 0.1502, None, 0.9731, 12.5, 8.25, 3.0, 270.0),
            "calls": {
                "c001": {**_sp(0.05, 0.02, 0.09, 0.04, 1.0, 3.0, 1.5, 0.5, 100.0), "reference": "rttm",
                         "method": "channel"},
                "c002": {**_sp(0.11, 0.06, 0.2, 0.1, 0.95, 5.0, 4.0, 2.0, 100.0), "reference": "labels",
                         "method": "diarization"},
                "c003": {**_sp(0.1, 0.04, None, None, None, 4.5, 2.75, 0.5, 70.0), "reference": "labels",
                         "method": "diarization"},
            },
        },
        "scorecard": {
            "overall": {"answers": 9, "accuracy": 0.7778, "kappa": 0.6, "mean_f1": 0.8222, "mean_kappa": 0.55},
            "items": {
                "opening.greeting": _ia(3, 1.0, 1.0, 1.0, 1.0, 1.0, _grid(yes_yes=2, no_no=1)),
                "opening.verification": _ia(3, 0.6667, 1.0, 0.5, 0.6667, 0.4, _grid(yes_yes=1, yes_no=1, na_na=1)),
                "closing.thanks": _ia(3, 0.6667, 1.0, 0.6667, 0.8, None, _grid(yes_yes=2, yes_no=1)),
            },
            "scores": {
                "n": 3, "mae": 0.1111, "bias": -0.1111, "pearson": 0.866, "spearman": 0.5,
                "auto_fail_agreement": 1.0,
                "calls": {
                    "c001": {"auto": 1.0, "gold": 1.0, "auto_fail": False, "gold_auto_fail": False},
                    "c002": {"auto": 0.75, "gold": 1.0, "auto_fail": False, "gold_auto_fail": False},
                    "c003": {"auto": 0.0, "gold": 0.0833, "auto_fail": False, "gold_auto_fail": False},
                },
            },
            "answers": {
                "c001": {"opening.greeting": {"auto": "yes", "gold": "yes"},
                         "opening.verification": {"auto": "yes", "gold": "yes"},
                         "closing.thanks": {"auto": "yes", "gold": "yes"}},
                "c002": {"opening.greeting": {"auto": "yes", "gold": "yes"},
                         "opening.verification": {"auto": "no", "gold": "yes"},
                         "closing.thanks": {"auto": "yes", "gold": "yes"}},
                "c003": {"opening.greeting": {"auto": "no", "gold": "no"},
                         "opening.verification": {"auto": "na", "gold": "na"},
                         "closing.thanks": {"auto": "no", "gold": "yes"}},
            },
            "disagreements": [
                {"call_id": "c002", "item": "opening.verification",
                 "question": "Does the agent verify the caller's identity?", "auto": "no", "gold": "yes",
                 "confidence": 0.62, "looked_for": "an identity check by the agent (account number, postcode...)",
                 "evidence": [{"utterance_id": "u3", "start": 101.2, "end": 104.9, "quote": EVIL_QUOTE,
                               "rule": "phrase < 0.6 & no match"}],
                 "details": {"best_similarity": 0.41}},
                {"call_id": "c003", "item": "closing.thanks", "question": "Does the agent thank the caller?",
                 "auto": "no", "gold": "yes", "confidence": None, "looked_for": None, "evidence": []},
            ],
        },
    }


def set_path(report: dict[str, Any], keys: list[str] | tuple[str, ...], value: Any) -> None:
    """Set (or with :data:`MISSING` delete) ``report[k1][k2]...``, creating missing levels."""
    node = report
    for key in keys[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    if value is MISSING:
        node.pop(keys[-1], None)
    else:
        node[keys[-1]] = copy.deepcopy(value)


def make_report(**changes: Any) -> dict[str, Any]:
    """The synthetic report with ``changes``: each key a path with ``__`` between levels
    (``transcription__overall__wer=0.1``; item ids with dots through ``**{...}``), each value the
    new value, or :data:`MISSING` to delete the key."""
    report = base_report()
    for path, value in changes.items():
        set_path(report, path.split("__"), value)
    return report

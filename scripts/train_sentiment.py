#!/usr/bin/env python3
"""Train the packaged sentiment head (models/sentiment.py, backend ``classifier``).

    .venv/bin/python scripts/train_sentiment.py                  # writes models/data/sentiment_head.json
    .venv/bin/python scripts/train_sentiment.py --data my.tsv --out head.json

Reads a TSV of utterances (columns text, label, role; label negative|neutral|positive), embeds
them with the packaged sentence model (models/text_embedding.py) and trains a multinomial
logistic-regression head on the embeddings (scikit-learn, balanced class weights).

Stratified K-fold cross-validation (texts that differ only in case and punctuation kept in one
fold) gives out-of-fold predictions of the classifier, VADER alone and their blend. Reported:
accuracy and macro-F1 of the classifier (most probable label), of VADER with its usual
thresholds (+-0.05), and of the blended score with the VADER weight and thresholds chosen on
the other folds' out-of-fold predictions (so the blend's figure is not tuned on the fold it
is measured on), and of the classifier's P(pos) - P(neg) against thresholds chosen the same
way (the blend without VADER). The regularisation C is the one of a small grid whose blend
scores best, unless given.
The final head is fitted on all rows; the JSON keeps its coefficients, the label order, the
embedder, the data's sha256, the scikit-learn version, the CV figures and the blend settings
chosen on all out-of-fold predictions (use them as the sentiment options' defaults).
Deterministic: fixed seeds, folds and solver.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import importlib.metadata
import json
import re
import sys
import time
from itertools import product
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from models.sentiment import (  # noqa: E402
    DATA_FILE, HEAD_FILE, LABELS, blend, label_indices, packaged_path, vader_analyzer,
)
from models.text_embedding import MODEL_NAME, PACKAGE, SentenceEmbedder  # noqa: E402

ROLES = ("agent", "customer")
C_GRID = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
WEIGHT_GRID = tuple(round(w, 2) for w in np.arange(0.0, 0.71, 0.05))
NEG_GRID = tuple(round(t, 2) for t in np.arange(-0.6, -0.04, 0.05))
POS_GRID = tuple(round(t, 2) for t in np.arange(0.05, 0.61, 0.05))
VADER_THRESHOLD = 0.05
"""VADER's own convention: compound >= 0.05 positive, <= -0.05 negative."""


def read_data(path: Path) -> tuple[list[str], np.ndarray, list[str]]:
    """Texts, label indices and roles of a TSV, checked row by row."""
    texts, labels, roles = [], [], []
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f, delimiter="\t")
        if reader.fieldnames is None or not {"text", "label", "role"} <= set(reader.fieldnames):
            sys.exit(f"{path}: needs the columns text, label, role")
        for n, row in enumerate(reader, start=2):
            text, label, role = row["text"].strip(), row["label"], row["role"]
            if not text or label not in LABELS or role not in ROLES:
                sys.exit(f"{path}:{n}: need text, a label in {LABELS} and a role in {ROLES}; got {row}")
            texts.append(text)
            labels.append(LABELS.index(label))
            roles.append(role)
    return texts, np.array(labels), roles


def group_of(text: str) -> str:
    """Texts equal up to case and punctuation (the ASR-style variants) share a fold."""
    return re.sub(r"[^a-z0-9 ]+", "", text.lower()).strip()


def macro_f1(y: np.ndarray, pred: np.ndarray) -> float:
    """Mean over the three labels of F1 (0 for a label neither true nor predicted); the grid
    search calls this thousands of times, so it is plain numpy."""
    f1 = []
    for k in range(len(LABELS)):
        tp = np.sum((pred == k) & (y == k))
        denominator = np.sum(pred == k) + np.sum(y == k)
        f1.append(2.0 * tp / denominator if denominator else 0.0)
    return float(np.mean(f1))


def figures(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    return {"accuracy": round(float(np.mean(pred == y)), 4), "macro_f1": round(macro_f1(y, pred), 4)}


def fit(x: np.ndarray, y: np.ndarray, c: float, seed: int):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, class_weight="balanced", max_iter=5000, random_state=seed).fit(x, y)


def out_of_fold(x: np.ndarray, y: np.ndarray, folds: list[np.ndarray], c: float, seed: int) -> np.ndarray:
    """Each row's probabilities from the head trained without its fold."""
    p = np.zeros((len(y), len(LABELS)))
    for test in folds:
        train = np.setdiff1d(np.arange(len(y)), test)
        p[test] = fit(x[train], y[train], c, seed).predict_proba(x[test])
    return p


def best_blend(p: np.ndarray, vader: np.ndarray, y: np.ndarray,
               weights: tuple[float, ...] = WEIGHT_GRID) -> tuple[float, float, float]:
    """(vader_weight, negative_threshold, positive_threshold) of the highest macro-F1 on these
    rows; ties go to the first in grid order (the smallest weight, the lowest thresholds)."""
    best, best_f1 = (0.0, NEG_GRID[0], POS_GRID[0]), -1.0
    for w in weights:
        s = blend(p, vader, w)
        for lo, hi in product(NEG_GRID, POS_GRID):
            f1 = macro_f1(y, label_indices(s, lo, hi))
            if f1 > best_f1 + 1e-9:
                best, best_f1 = (float(w), float(lo), float(hi)), f1
    return best


def cross_validated_blend(p: np.ndarray, vader: np.ndarray, y: np.ndarray, folds: list[np.ndarray],
                          weights: tuple[float, ...] = WEIGHT_GRID) -> np.ndarray:
    """Blend labels of each fold with the settings chosen on the other folds' rows."""
    pred = np.zeros(len(y), dtype=int)
    for test in folds:
        rest = np.setdiff1d(np.arange(len(y)), test)
        w, lo, hi = best_blend(p[rest], vader[rest], y[rest], weights)
        pred[test] = label_indices(blend(p[test], vader[test], w), lo, hi)
    return pred


def main(argv: list[str] | None = None) -> None:
    """Train and write the head; ``argv`` as on the command line (default: sys.argv)."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=packaged_path(DATA_FILE),
                    help="labelled TSV (default: the packaged set)")
    ap.add_argument("--out", type=Path, default=packaged_path(HEAD_FILE),
                    help="head JSON to write (default: the packaged head)")
    ap.add_argument("--folds", type=int, default=5, help="cross-validation folds (default 5)")
    ap.add_argument("--C", type=float, default=None, help=f"regularisation; default: chosen by CV from {C_GRID}")
    ap.add_argument("--seed", type=int, default=0, help="seed of the folds and the solver (default 0)")
    ap.add_argument("--threads", type=int, default=2, help="CPU threads of the embedder (default 2)")
    args = ap.parse_args(argv)

    from sklearn import __version__ as sklearn_version
    from sklearn.model_selection import StratifiedGroupKFold

    started = time.time()
    texts, y, roles = read_data(args.data)
    counts = {lab: int(np.sum(y == k)) for k, lab in enumerate(LABELS)}
    if min(counts.values()) < args.folds:
        sys.exit(f"{args.data}: every label needs at least --folds ({args.folds}) rows; have {counts}")
    x = SentenceEmbedder(args.threads).encode(texts)
    analyzer = vader_analyzer()
    vader = np.array([analyzer.polarity_scores(t)["compound"] for t in texts])
    splitter = StratifiedGroupKFold(n_splits=args.folds, shuffle=True, random_state=args.seed)
    folds = [test for _, test in splitter.split(x, y, groups=[group_of(t) for t in texts])]

    c_scores, oof = {}, {}
    for c in ([args.C] if args.C is not None else C_GRID):
        oof[c] = out_of_fold(x, y, folds, c, args.seed)
        c_scores[c] = macro_f1(y, cross_validated_blend(oof[c], vader, y, folds))
    c = max(c_scores, key=lambda k: (c_scores[k], -k))
    p = oof[c]
    vader_pred = label_indices(vader, -VADER_THRESHOLD, VADER_THRESHOLD)
    w, lo, hi = best_blend(p, vader, y)
    blend_pred = cross_validated_blend(p, vader, y, folds)
    role_of = np.array(roles)
    cv = {
        "folds": args.folds,
        "seed": args.seed,
        "grouping": "texts equal up to case and punctuation share a fold",
        "C_blend_macro_f1": {str(k): round(v, 4) for k, v in c_scores.items()},
        "classifier": {**figures(y, p.argmax(axis=1)), "decision": "most probable label"},
        "classifier_thresholded": {**figures(y, cross_validated_blend(p, vader, y, folds, (0.0,))),
                                   "decision": "P(pos) - P(neg) against thresholds chosen on the other folds"},
        "vader": {**figures(y, vader_pred), "thresholds": [-VADER_THRESHOLD, VADER_THRESHOLD]},
        "blend": {**figures(y, blend_pred),
                  "settings": "vader_weight and thresholds chosen on the other folds"},
        "blend_chosen_on_all_folds": {**figures(y, label_indices(blend(p, vader, w), lo, hi)),
                                      "vader_weight": w, "negative_threshold": lo, "positive_threshold": hi},
        "blend_per_role": {r: figures(y[role_of == r], blend_pred[role_of == r]) for r in ROLES},
    }
    head = fit(x, y, c, args.seed)
    result = {
        "labels": list(LABELS),
        "coef": head.coef_.round(7).tolist(),
        "intercept": head.intercept_.round(7).tolist(),
        "C": c,
        "embedder": {"model": MODEL_NAME, "package": f"{PACKAGE} {importlib.metadata.version(PACKAGE)}",
                     "dim": int(x.shape[1])},
        "data": {"file": args.data.name, "sha256": hashlib.sha256(args.data.read_bytes()).hexdigest(),
                 "rows": len(y), "labels": counts},
        "sklearn_version": sklearn_version,
        "recommended": {"vader_weight": w, "negative_threshold": lo, "positive_threshold": hi},
        "cv": cv,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=1) + "\n")
    tmp.replace(args.out)
    print(f"{len(y)} rows {counts}, {args.folds}-fold CV, C={c}")
    for name in ("classifier", "classifier_thresholded", "vader", "blend", "blend_chosen_on_all_folds"):
        print(f"  {name:26} accuracy {cv[name]['accuracy']:.3f}  macro-F1 {cv[name]['macro_f1']:.3f}")
    print(f"  blend settings: vader_weight {w}, negative <= {lo}, positive >= {hi}")
    print(f"  blend per role: {cv['blend_per_role']}")
    print(f"wrote {args.out} in {time.time() - started:.1f} s")


if __name__ == "__main__":
    main()

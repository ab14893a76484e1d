"""``callqa tune --from-reviews``: the command (registered by pipeline/cli.py)."""

from __future__ import annotations

import argparse
import os

from pipeline.errors import EXIT_OK, ConfigError

DESCRIPTION = (
    "Fit each scorecard item's threshold and the confidence calibration to the reviewers' submitted answers, "
    "measure agreement and Cohen's kappa per item before and after on calls held out from the fit (GroupKFold "
    "by agent, so by call too), and write TUNED.yaml: the config (--config's content, or only the tuned keys) "
    "with tuned copies of the templates beside it and scorecard.calibration, for a lead to review and adopt "
    "with `callqa run --config TUNED.yaml`; and TUNED.report.json / TUNED.report.html (the table, reliability "
    "diagrams, expected calibration error). Items whose detector records no decision score, or whose answers "
    "re-thresholding does not reproduce, are listed as not tunable. Items with fewer than --min-reviews "
    "reviewed answers are left unchanged and listed; when no item has enough, nothing is written (exit code 2).")


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("tune", help="tune item thresholds and confidence calibration on submitted reviews "
                                    "(writes a config for a lead to adopt)", description=DESCRIPTION)
    p.add_argument("--from-reviews", action="store_true", required=True,
                   help="learn from the review database's submitted reviews (the review that counts per call)")
    p.add_argument("--db", default=None, metavar="URL",
                   help="a SQLite file or postgresql://USER@HOST/DB (default: $CALLQA_DB, else callqa.db here)")
    p.add_argument("--config", metavar="FILE", help="the config the calls were run with (default: the defaults); "
                                                    "TUNED.yaml is a copy of it with the tuned keys")
    p.add_argument("--out", required=True, metavar="TUNED.yaml", help="the config to write")
    p.add_argument("--min-reviews", type=int, default=20, metavar="N",
                   help="reviewed answers an item needs to be tuned (default 20)")
    p.add_argument("--folds", type=int, default=5, metavar="K", help="cross-validation folds (default 5)")
    p.add_argument("--calibration", choices=["platt", "isotonic"], default="platt",
                   help="how confidences are calibrated (default platt)")
    return p


def cmd(args: argparse.Namespace) -> int:
    from pipeline.config import load_config
    from pipeline.learning.data import review_pairs
    from pipeline.learning.tune import table, tune, write_overlay
    from pipeline.review.db import make_engine, sessions
    from pipeline.review.migrate import upgrade

    if args.folds < 2:
        raise ConfigError(f"tune: --folds {args.folds} must be 2 or more")
    config = load_config(args.config)
    engine = make_engine(args.db or os.environ.get("CALLQA_DB") or "callqa.db")
    upgrade(engine)
    try:
        with sessions(engine)() as session:
            pairs = review_pairs(session)
    finally:
        engine.dispose()
    report = tune(pairs, config, args.min_reviews, args.folds, args.calibration)  # TooFewReviews: exit code 2
    written = write_overlay(report, config, args.config, args.out)
    print(table(report))
    print("wrote " + ", ".join(str(p) for p in written))
    changes = report["overlay"]["changes"]
    print(f"{len(changes)} change(s) proposed; nothing is adopted until a run uses --config {args.out}")
    return EXIT_OK

"""Reviewers teach the machine: tuning detector thresholds and confidence calibration on the
submitted reviews (tune.py, calibration.py), per-item agreement drift (drift.py), and the
pairs of machine suggestion and human answer they read (data.py)."""

"""Calibration against human labels: the --llmjudge-calibrate run, agreement
statistics and its report."""

"""Judging: validating a call, planning presentations and keys, sampling with
the stopping rule, deciding, prompts, parsing and screening."""

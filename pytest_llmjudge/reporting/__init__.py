"""Reporting: the run's aggregate and xdist merge, the terminal summary, and the
JSON, Markdown and JUnit outputs."""

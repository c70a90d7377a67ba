"""Reporting: the run's aggregate and xdist merge, the terminal summary, JSON/Markdown/JUnit outputs."""

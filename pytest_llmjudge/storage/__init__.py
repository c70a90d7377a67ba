"""Storage: the JSON-only reply cache, committed records, and one atomic file writer."""

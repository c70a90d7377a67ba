"""Names and defaults shared by the plugin, its settings and its tests."""

from __future__ import annotations

#: Bumped whenever the judge prompt changes; part of every cache and record key so
#: that a new template never reuses replies given to the old one.
PROMPT_VERSION = "2"

MARKER = "llmjudge"
INI_PREFIX = "llmjudge_"
ENV_PREFIX = "LLMJUDGE_"
OPTION_PREFIX = "--llmjudge-"

DEFAULT_CACHE_DIR = ".llmjudge_cache"
DEFAULT_RECORD_DIR = "llmjudge_records"
HISTORY_FILE = "history.json"

#: Set (if unset) before litellm is imported: the bundled price map instead of a
#: download at import, and no telemetry. Set by the thread that decides to import.
LITELLM_ENV = (("LITELLM_LOCAL_MODEL_COST_MAP", "True"), ("LITELLM_TELEMETRY", "False"))

#: The model named in verdicts replayed from records when no model is configured.
REPLAYED_MODEL = "(recorded)"

#: Reply formats, best first: an endpoint that refuses one is asked the next.
FORMAT_CHAIN = ("json_schema", "json_object", "text")

#: Characters of the judged output shown in failure messages.
EXCERPT_CHARS = 300
#: Characters of one judge reasoning (or error, note) kept in a verdict's record
#: (the JSON report, ``report.llmjudge``) and shown in a failure message (the
#: terminal, JUnit). The cache and records files keep the reply as received.
REASONING_KEPT = 4000
REASONING_SHOWN = 1000

#: Settings that a marker or a call may override (validated against this list).
PER_TEST_SETTINGS = (
    "model",
    "api_base",
    "threshold",
    "temperature",
    "min_samples",
    "max_samples",
    "min_confidence",
    "inconclusive",
    "debias",
    "timeout",
    "retries",
    "cache",
    "screen",
    "max_output_chars",
    "max_tokens",
    "jury",
    "instructions",
    "examples",
)

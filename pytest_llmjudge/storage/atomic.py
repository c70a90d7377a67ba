"""One way to write a file: a unique temporary name beside it, then an atomic
replace, so that a run killed mid-write, or two runs writing the same path,
never leave a half-written file."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from pytest_llmjudge.text import scrub, scrub_json


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Replace ``path`` with ``text`` atomically (the old file stays until then);
    secrets are scrubbed out first (``text.scrub``)."""
    _write(path, scrub(text))


def _write(path: str | os.PathLike[str], text: str) -> None:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: str | os.PathLike[str], doc: Any, *, sort_keys: bool = True
               ) -> None:
    """``doc`` as indented UTF-8 JSON, written atomically; every string in it
    scrubbed of secrets first (so the JSON stays valid)."""
    _write(path, json.dumps(scrub_json(doc), indent=2, sort_keys=sort_keys,
                            ensure_ascii=False) + "\n")

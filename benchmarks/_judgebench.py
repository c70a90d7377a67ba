"""What the JudgeBench benchmarks share: where the recorded judgments are, the
command-line arguments that find them, and reading a file of them.

The files are JudgeBench's own (``../shared/judgebench/``, see its README):
one pair a line, ``label`` "A>B" or "B>A", and ``judgments[0]`` / ``[1]`` the
judge's decision with the pair shown as (A, B) and swapped, (B, A).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's plugin, whatever is installed

from pytest_llmjudge.verdict import Winner  # noqa: E402

#: Beside the repository, never inside it (the data is not the project's).
DEFAULT_DIR = ROOT.parent / "shared" / "judgebench"
MIN_CONFIDENCE = 0.9  # the project's default min_confidence

#: A JudgeBench decision, in the labels of the order it was shown in.
SIDE: dict[str, Winner] = {"A>B": "A", "B>A": "B", "A=B": "tie"}
#: The same winner named in the other order's labels.
UNSWAP: dict[Winner, Winner] = {"A": "B", "B": "A", "tie": "tie"}


def add_args(ap: argparse.ArgumentParser, *, limit: bool = True) -> None:
    """The folder of *.jsonl files, --min-confidence and (optionally) --limit."""
    ap.add_argument("path", nargs="?", default=str(DEFAULT_DIR),
                    help="folder holding the JudgeBench *.jsonl files")
    ap.add_argument("--min-confidence", type=float, default=MIN_CONFIDENCE)
    if limit:
        ap.add_argument("--limit", type=int, default=None, metavar="N",
                        help="only the first N pairs of each file (a quick run)")


def files(path: str) -> list[Path]:
    """The *.jsonl files in ``path``, sorted; exits with status 2 when none."""
    found = sorted(Path(path).glob("*.jsonl"))
    if not found:
        print(f"no *.jsonl files in {path}", file=sys.stderr)
        raise SystemExit(2)
    return found


@dataclass
class Recorded:
    """One JudgeBench file: its pairs, the judge model that answered (as the
    file records it) and a short name for tables."""

    rows: list[dict[str, Any]]
    judge: str
    name: str


def short_name(path: Path) -> str:
    """The judge model as the file name gives it."""
    return path.name.split("judge_model=")[-1].split(",")[0]


def load(path: Path, limit: int | None = None) -> Recorded:
    """The file's pairs in file order (the first ``limit`` of them)."""
    rows: list[dict[str, Any]] = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            if limit is not None and len(rows) >= limit:
                break
            if line.strip():
                rows.append(json.loads(line))
    judge = rows[0]["judgments"][0]["judgment"].get("judge_model", path.stem)
    return Recorded(rows, judge, short_name(path))

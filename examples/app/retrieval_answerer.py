"""Fernbank Bikes' help-centre answerer: retrieval-augmented answers.

Fernbank Bikes is a (fictional) city bike-share. A customer asks a question in
the app; the answerer retrieves the ``k`` help-centre passages that best match
it (a keyword retriever over a small in-memory document store) and a model
writes the answer from those passages. Here a deterministic stand-in plays the
model, so that the answers, and therefore the recorded judge replies, stay the
same from run to run: it keeps every sentence of the best passage and the
sentences of the other passages that share a word with the question.

Two behaviours of real models are kept on purpose:

- the prompt's house style adds a line of its own: answers about e-bikes end
  with a helmet recommendation that no passage states (``SAFETY_TIP``);
- with the old prompt (``prompt="v1"``: "always give a complete answer") the
  model fills gaps from what it "knows": asked about something no retrieved
  passage covers (cash refunds), it states a plausible fact that is not in the
  help centre at all (``GAP_FILLERS``). That is the hallucination the
  faithfulness tests must catch.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

PROMPTS = {
    "v1": "You are Fernbank's help assistant. Always give the customer a complete "
          "answer to their question.",
    "v2": "You are Fernbank's help assistant. Answer only from the help-centre "
          "passages below; if they do not cover something, leave it out. End "
          "every answer about e-bikes with the helmet recommendation.",
}

#: The house-style line the v2 prompt adds to e-bike answers (not in any passage).
SAFETY_TIP = "Fernbank recommends wearing a helmet on every e-bike ride."

#: What the stand-in "model" believes about bike-shares in general, keyed by a
#: question word. The v1 prompt states it when no retrieved passage mentions
#: the word; none of it is Fernbank's policy.
GAP_FILLERS = {
    "cash": "Cash refunds are paid out at any Fernbank station kiosk.",
    "weekend": "Weekend rides are free for monthly pass holders.",
}


@dataclass(frozen=True)
class Article:
    """A help-centre article: a title and short passages (paragraphs)."""

    slug: str
    title: str
    passages: tuple[str, ...]


#: The help centre: the document store the retriever searches.
HELP_CENTRE: tuple[Article, ...] = (
    Article("unlocking", "Unlocking a bike", (
        "To unlock a bike, scan the QR code on its handlebar with the Fernbank "
        "app. The lock opens within 5 seconds of the scan.",
        "If the lock does not open, tap Report a problem in the app and choose "
        "another bike. You are not charged for a ride that never started.",
    )),
    Article("prices", "Prices and passes", (
        "A single ride on a classic bike costs 1 euro to unlock plus 0.20 euros "
        "per minute. An e-bike ride costs 1 euro to unlock plus 0.30 euros per "
        "minute.",
        "The monthly pass costs 15 euros and includes the first 45 minutes of "
        "every ride on a classic bike. Minutes beyond the first 45 are charged "
        "at 0.20 euros per minute.",
    )),
    Article("ending", "Ending a ride", (
        "End a ride by parking at any Fernbank station and closing the rear "
        "wheel lock by hand. The app confirms the end of the ride within a "
        "minute.",
        "Parking outside a station costs a 5 euro fee. The ride keeps running "
        "until the lock is closed.",
    )),
    Article("refunds", "Refunds", (
        "If a ride was charged wrongly, request a refund under Account > Ride "
        "history within 14 days of the ride. Refunds are paid to the card the "
        "ride was charged to.",
        "Refunds reach the card within 5 business days. Fernbank does not refund "
        "unused days of a monthly pass.",
    )),
    Article("ebikes", "E-bikes", (
        "E-bikes have a battery range of about 60 km. The app shows the charge "
        "of each e-bike before you unlock it.",
        "Riders must be 16 or older to ride an e-bike. E-bikes are limited to "
        "25 km/h by law.",
    )),
    Article("damage", "Lost or damaged bikes", (
        "Report a damaged bike in the app by tapping Report a problem. A bike "
        "that is not returned within 24 hours is reported stolen, and a 300 "
        "euro fee is charged.",
    )),
)

STOPWORDS = frozenset(
    "a an and are as at be by can do does for from how i if in is it its me my "
    "of on or the this to was what when where which who why will with you your "
    "get got much long there any".split())
_TOKEN = re.compile(r"[a-z0-9]+(?:[.,][0-9]+)?")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def terms(text: str) -> set[str]:
    """The content words of ``text``, crudely stemmed ("rides" and "ride" match)."""
    text = text.lower().replace("e-bike", "ebike")
    return {_stem(w) for w in _TOKEN.findall(text) if w not in STOPWORDS}


def _stem(word: str) -> str:
    for suffix in ("ing", "es", "ed", "s", "e"):
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            return word[:-len(suffix)]
    return word


@dataclass(frozen=True)
class Passage:
    """One retrieved passage, with the article it comes from and its score."""

    article: str
    text: str
    score: float


class Retriever:
    """Keyword retrieval: a passage scores the inverse document frequency of
    each question word it (or its article's title) contains."""

    def __init__(self, articles: tuple[Article, ...] = HELP_CENTRE):
        self.passages = [(a, p, terms(a.title) | terms(p))
                         for a in articles for p in a.passages]
        n = len(self.passages)
        df: dict[str, int] = {}
        for _, _, words in self.passages:
            for w in words:
                df[w] = df.get(w, 0) + 1
        self.idf = {w: math.log(1 + n / d) for w, d in df.items()}

    def search(self, question: str, k: int = 2) -> list[Passage]:
        """The ``k`` best passages for ``question``, best first (ties in the
        help centre's order); passages sharing no word with it are left out."""
        asked = terms(question)
        scored = [(sum(self.idf[w] for w in asked & words), i, a, p)
                  for i, (a, p, words) in enumerate(self.passages)]
        best = sorted((s for s in scored if s[0] > 0), key=lambda s: (-s[0], s[1]))
        return [Passage(a.slug, p, round(score, 3)) for score, _, a, p in best[:k]]


@dataclass(frozen=True)
class Answer:
    question: str
    text: str
    #: The passages the model was given, best first: what the answer may rest on.
    passages: list[str]
    #: The articles they come from.
    sources: list[str]


class RetrievalAnswerer:
    """Retrieve ``k`` passages, then have the (stand-in) model answer from them."""

    def __init__(self, prompt: str = "v2", k: int = 2,
                 retriever: Retriever | None = None):
        if prompt not in PROMPTS:
            raise ValueError(f"unknown prompt {prompt!r}")
        self.prompt, self.k = prompt, k
        self.retriever = retriever or Retriever()

    def answer(self, question: str) -> Answer:
        found = self.retriever.search(question, self.k)
        passages = [p.text for p in found]
        return Answer(question, self._model(question, passages), passages,
                      [p.article for p in found])

    def _model(self, question: str, passages: list[str]) -> str:
        """The stand-in for the model call (PROMPTS[self.prompt], the passages
        and the question in; the answer out)."""
        if not passages:
            return ("I could not find this in the Fernbank help centre. Tap Help > "
                    "Contact us in the app to ask the support team.")
        asked = terms(question)
        said = _SENTENCE.split(passages[0])
        for passage in passages[1:]:
            said += [s for s in _SENTENCE.split(passage) if terms(s) & asked]
        if self.prompt == "v1":  # fills gaps from what it "knows"
            covered = set().union(*(terms(p) for p in passages))
            said = [fact for word, fact in GAP_FILLERS.items()
                    if _stem(word) in asked - covered] + said
        elif "ebik" in asked:
            said.append(SAFETY_TIP)
        return " ".join(said)

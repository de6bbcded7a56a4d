"""Text labels: a product's own words (category, name, URL, description) -> a Fashion-MNIST class,
"other", or no label, with the evidence.

Each field is read the same way: its words are matched against the vocabulary (longest phrase
first, so "shirt dress" is one phrase and "boot cut" is a neutral one), modifiers after a
preposition are dropped ("dress with belt"), and of the class words left the head noun names the
product: the last one in English, German and Dutch ("sneaker socks"), the first in French,
Spanish, Italian and Portuguese ("robe chemise"). The fields are trusted in the order category,
name, URL path, description (its first sentence only: later ones mention other items); the first
that answers confidently decides, the others raise the confidence when they agree and lower it
when they do not; evidence that only contradicts itself gives no label.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from garment import label_index
from garment.labels.vocab import LANGUAGES, Lexicon, Sense, build, load_builtin, phrase_key, read_map, words

#: Fields in order of trust, with how much a clear single-word answer from each is worth.
TRUST = {"category": 0.95, "name": 0.9, "url": 0.8, "description": 0.6}
DECIDE = 0.5            # a field answering with at least this decides; else the strongest answer does
MIN_CONFIDENCE = 0.25   # contradicted below this: no label
MIXED = 0.8             # several classes in one field, the head noun chose among them
GUESSED_SENSE = 0.9     # a word whose class depends on a language the text did not reveal
HINT_CHARS = 400        # the description's head is enough to guess the language
VOTE_CACHE = 100_000    # field texts whose reading is kept (a catalogue repeats its categories)
CRUMB_SPLIT = re.compile(r"\s*(?:>|›|»|/|\|)\s*")
SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n")
EXTENSION = re.compile(r"\.(?:s?html?|php\d?|aspx?|jsp|cgi)$", re.I)
COORDINATING_MARKS = re.compile(r"[&/+]")
ALGORITHM = "1"         # bump when the reading changes, so stored labels' version changes too


@dataclass(frozen=True)
class TextLabel:
    """What a product's text says it is, and why."""

    label: str | None           # a name from CLASSES, OTHER, or None (no or contradictory evidence)
    label_index: int | None     # 0-9, -1 for other, None
    confidence: float           # 0..1: source trust x unambiguity, raised/lowered by the other fields
    field: str | None           # which field decided: "category", "name", "url", "description", "map"
    words: tuple[str, ...]      # the words/phrases that matched, as they appear in the text
    source: str | None = None   # the text field the words are in (differs from field only for "map")
    agree: tuple[str, ...] = ()      # other fields naming the same class
    disagree: tuple[str, ...] = ()   # other fields naming another: "description 'sneakers' -> Sneaker"
    note: str = ""                   # why there is no label

    def evidence(self) -> str:
        """One readable line: "name: 'Sommerkleid' -> Dress; url agrees"."""
        if self.label is None:
            return f"no label: {self.note}"
        where = f"map ({self.source})" if self.field == "map" else str(self.field)
        said = ", ".join(repr(w) for w in self.words)
        parts = [f"{where}: {said} -> {self.label}"]
        if self.agree:
            parts.append(f"{', '.join(self.agree)} agree{'s' if len(self.agree) == 1 else ''}")
        parts += [f"{d} disagrees" for d in self.disagree]
        return "; ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["words"], d["agree"], d["disagree"] = list(self.words), list(self.agree), list(self.disagree)
        d["evidence"] = self.evidence()
        return d


@dataclass(frozen=True)
class _Hit:
    start: int
    end: int
    sense: Sense
    guessed: bool
    text: str
    head_first: bool   # every language that has the word puts its head noun first ("robe", "vestido")


@dataclass(frozen=True)
class _Vote:
    field: str
    label: str
    score: float
    words: tuple[str, ...]
    from_map: bool

    def said(self) -> str:
        return f"{self.field} {', '.join(repr(w) for w in self.words)} -> {self.label}"


def _no_label(note: str) -> TextLabel:
    return TextLabel(None, None, 0.0, None, (), note=note)


class TextLabeller:
    """Labels products from their text with the built-in vocabulary and an optional user map.

    ``labels_map`` is a TOML file with ``[categories]`` (a shop's category or breadcrumb crumb,
    compared whole and case-insensitively -> class) and ``[keywords]`` (a word or phrase anywhere
    -> class, replacing the built-in reading of it); classes are written as in ``CLASSES``, any
    case, as snake_case (``ankle_boot``), ``other``, or ``none`` (never evidence). A bad file
    raises ``GarmentError`` naming the file, the entry and the allowed values.
    """

    def __init__(self, labels_map: str | Path | None = None) -> None:
        vocab, raw = load_builtin()
        user = read_map(labels_map) if labels_map is not None else None
        self._lex: Lexicon = build(vocab, raw + ALGORITHM.encode(), user)
        self._cache: dict[str, tuple[Sense, ...]] = {}
        self._votes: dict[tuple[str, str, str | None], _Vote | None] = {}
        self._hint_langs: dict[str, tuple[str, ...]] = {}
        for lang, hint_words in self._lex.hints.items():
            for w in hint_words:
                self._hint_langs[w] = (*self._hint_langs.get(w, ()), lang)

    @property
    def version(self) -> str:
        """Short hash of the vocabulary, the reading and the user map, stored with every text label."""
        return self._lex.digest

    def label_product(self, product: Mapping[str, Any]) -> TextLabel:
        """Label a catalogue row (keys category, name, url, description; missing ones are skipped)."""
        keys = set(product.keys())
        return self.label(**{k: product[k] for k in TRUST if k in keys})

    def label(self, *, category: str | None = None, name: str | None = None, url: str | None = None,
              description: str | None = None) -> TextLabel:
        """Label one product from whichever of its texts are given."""
        path = unquote(urlsplit(url).path) if url else ""
        head = SENTENCE_END.split(description.strip(), maxsplit=1)[0] if description else ""
        texts = {"category": category or "", "name": name or "", "url": path, "description": head}
        hint = self._language(" ".join((category or "", name or "", (description or "")[:HINT_CHARS])))
        votes = [v for v in (self._category(texts["category"], hint), self._read_field("name", texts["name"], hint),
                             self._url(path, hint), self._read_field("description", head, hint)) if v]
        if not votes:
            given = [f for f, t in texts.items() if t.strip()]
            return _no_label(f"no class word in {', '.join(given)}" if given else "no text")
        return self._combine(votes)

    # -- fields ------------------------------------------------------------------------------
    def _category(self, text: str, hint: str | None) -> _Vote | None:
        """The most specific crumb that names a class; the user's category map first."""
        crumbs = [c for c in CRUMB_SPLIT.split(text) if c.strip()]
        for crumb in [text.strip(), *reversed(crumbs)] if self._lex.categories else []:
            label = self._lex.categories.get(" ".join(phrase_key(crumb)))
            if label is not None:
                return None if label == "none" else _Vote("category", label, TRUST["category"], (crumb.strip(),), True)
        for crumb in reversed(crumbs):
            vote = self._read_field("category", crumb, hint)
            if vote:
                return vote
        return None

    def _url(self, path: str, hint: str | None) -> _Vote | None:
        """The URL path's words, the last segment (the product's slug) first; never the host."""
        segments = [EXTENSION.sub("", s) for s in path.split("/") if s]
        for segment in reversed(segments):
            vote = self._read_field("url", segment, hint)
            if vote:
                return vote
        return None

    def _read_field(self, field: str, text: str, hint: str | None) -> _Vote | None:
        """One text -> the class its head noun names, scored by trust, weight and ambiguity."""
        if not text:
            return None
        key = (field, text, hint)   # a catalogue repeats its categories, and often its names
        if key in self._votes:
            return self._votes[key]
        if len(self._votes) >= VOTE_CACHE:
            self._votes.clear()
        vote = self._votes[key] = self._read(field, text, hint)
        return vote

    def _read(self, field: str, text: str, hint: str | None) -> _Vote | None:
        toks = words(text)
        hits, covered = self._match(toks, text, hint)
        if not hits:
            return None
        # "dress with belt": what follows a preposition is a modifier; in a description, whose head
        # sentence may open with one ("Wear it with sneakers"), even before any class word
        cuts = self._lex.cuts.get(hint) or self._lex.cuts[None]
        for k in range(0 if field == "description" else hits[0].end, len(toks)):
            if toks[k][0] in cuts and k not in covered:
                hits = [h for h in hits if h.end <= k]
                break
        if not hits:
            return None
        first = hint in self._lex.head_first if hint else hits[0].head_first
        head = hits[0] if first else hits[-1]
        clarity = 1.0
        if any(h.sense.label != head.sense.label for h in hits):
            if self._coordinated(hits, head, toks, text):
                return None   # "Shoes & Bags" names two classes side by side: no answer from this text
            clarity = MIXED
        score = TRUST[field] * head.sense.weight * clarity * (GUESSED_SENSE if head.guessed else 1.0)
        said = tuple(dict.fromkeys(h.text for h in hits if h.sense.label == head.sense.label))
        assert head.sense.label is not None
        return _Vote(field, head.sense.label, score, said, head.sense.lang == "map")

    def _coordinated(self, hits: list[_Hit], head: _Hit, toks: list[tuple[str, int, int]], text: str) -> bool:
        """Whether another class's word is joined to the head by 'and', '&', '/' ('Shoes & Bags')."""
        for h in hits:
            if h.sense.label == head.sense.label:
                continue
            lo, hi = (h, head) if h.start < head.start else (head, h)
            between = toks[lo.end:hi.start]
            gap = text[toks[lo.end - 1][2]:toks[hi.start][1]]
            if any(w in self._lex.ands for w, _, _ in between) or COORDINATING_MARKS.search(gap):
                return True
        return False

    # -- words -------------------------------------------------------------------------------
    def _match(self, toks: list[tuple[str, int, int]], text: str,
               hint: str | None) -> tuple[list[_Hit], set[int]]:
        """Longest phrases first, left to right; neutral phrases consume their words and are dropped."""
        keys = [t[0] for t in toks]
        phrases, n, i = self._lex.phrases, len(keys), 0
        hits: list[_Hit] = []
        covered: set[int] = set()
        while i < n:
            length, senses = 1, self._word(keys[i])
            if keys[i] in self._lex.starts:
                for size in range(min(self._lex.max_len, n - i), 1, -1):
                    found = phrases.get(tuple(keys[i:i + size]))
                    if found:
                        length, senses = size, found
                        break
            if senses:
                covered.update(range(i, i + length))
                sense, guessed = self._resolve(senses, hint)
                if sense.label is not None:
                    first = all(s.lang in self._lex.head_first for s in senses)
                    hits.append(_Hit(i, i + length, sense, guessed, text[toks[i][1]:toks[i + length - 1][2]], first))
            i += length
        return hits, covered

    def _word(self, word: str) -> tuple[Sense, ...]:
        senses = self._cache.get(word)
        if senses is None:
            senses = self._lex.phrases.get((word,)) or ()
            if not senses and not word.isdigit():
                senses = self._lex.head_of(word)
            self._cache[word] = senses
        return senses

    @staticmethod
    def _resolve(senses: tuple[Sense, ...], hint: str | None) -> tuple[Sense, bool]:
        """The reading of a word: the user's, else the product's language's, else the surest."""
        if len(senses) == 1:
            return senses[0], False
        for s in senses:
            if s.lang == "map" or s.lang == hint:
                return s, False
        best = max(senses, key=lambda s: (s.weight, -LANGUAGES.index(s.lang)))
        return best, len({s.label for s in senses}) > 1

    def _language(self, text: str) -> str | None:
        """The language whose function words the text uses most, if one clearly does."""
        counts: dict[str, int] = {}
        for w, _, _ in words(text):
            for lang in self._hint_langs.get(w, ()):
                counts[lang] = counts.get(lang, 0) + 1
        if not counts:
            return None
        ranked = sorted(counts.items(), key=lambda kv: -kv[1])
        return ranked[0][0] if len(ranked) == 1 or ranked[0][1] > ranked[1][1] else None

    # -- fields together ---------------------------------------------------------------------
    @staticmethod
    def _combine(votes: list[_Vote]) -> TextLabel:
        decider = next((v for v in votes if v.score >= DECIDE), None) or max(votes, key=lambda v: v.score)
        conf = decider.score
        agree: list[str] = []
        disagree: list[str] = []
        for v in votes:
            if v is decider:
                continue
            if v.label == decider.label:
                conf += (1.0 - conf) * 0.5 * v.score
                agree.append(v.field)
            else:
                conf *= 1.0 - 0.5 * v.score
                disagree.append(f"{v.field} ({', '.join(repr(w) for w in v.words)} -> {v.label})")
        if conf < MIN_CONFIDENCE:
            return _no_label("contradictory: " + "; ".join(v.said() for v in votes))
        index = label_index(decider.label)
        return TextLabel(decider.label, index, round(conf, 4), "map" if decider.from_map else decider.field,
                         decider.words, decider.field, tuple(agree), tuple(disagree))

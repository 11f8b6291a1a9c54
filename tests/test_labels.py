import pytest
from hypothesis import given, strategies as st

from mmser.labels import (CORPUS_LABEL_MAPS, EMOTIONS, LabelMap, UnknownLabelError, class_mask, folded_label,
                          label_map_for)


def test_eight_classes_in_fixed_order():
    assert EMOTIONS == ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")


@pytest.mark.parametrize("corpus", sorted(CORPUS_LABEL_MAPS))
def test_every_corpus_maps_into_the_shared_space(corpus):
    lm = label_map_for(corpus)
    assert set(lm.mapping.values()) <= set(EMOTIONS)


def test_published_maps():
    assert label_map_for("ravdess").map("02") == "calm"
    assert label_map_for("tess").map("ps") == "surprised"
    assert label_map_for("cremad").map("FEA") == "fearful"
    ie = label_map_for("indian_english")
    assert ie.map("base") == "neutral" and ie.map("excited") == "happy" and ie.map("apologetic") == "sad"
    iem = label_map_for("iemocap")
    assert iem.map("exc") == "happy" and iem.map("hap") == "happy"
    assert iem.map("fru") is None and iem.map("xxx") is None and iem.map("oth") is None


def test_unknown_label_names_file_and_label():
    with pytest.raises(UnknownLabelError, match=r"clip\.wav.*'joy'"):
        label_map_for("tess").map("joy", source="clip.wav")


def test_labels_match_regardless_of_case_and_spaces():
    """"Happy " is "happy"; an exact match wins over a folded one."""
    assert label_map_for("csv").map("Happy ") == "happy"
    assert label_map_for("iemocap").map(" FRU") is None  # excluded by default
    lm = LabelMap({"Joy": "happy", "joy": "sad"})
    assert lm.map("Joy") == "happy" and lm.map("joy") == "sad" and lm.map("JOY") == "happy"
    with pytest.raises(UnknownLabelError, match="prepare.label_map.<raw label>="):
        lm.map("joyful")


def test_overrides_and_exclusions_from_config():
    lm = label_map_for("iemocap", overrides={"fru": "angry"}, exclude=["oth", "xxx"])
    assert lm.map("fru") == "angry"
    lm = label_map_for("iemocap", exclude=[])
    with pytest.raises(UnknownLabelError):
        lm.map("xxx")


def test_map_into_unknown_class_is_refused():
    with pytest.raises(ValueError, match="outside the 8-class space"):
        LabelMap({"a": "joy"})


def test_class_mask():
    assert class_mask(["neutral", "angry"]) == [True, False, False, False, True, False, False, False]
    with pytest.raises(ValueError):
        class_mask(["joy"])


@given(st.text(min_size=0, max_size=12))
def test_any_string_is_mapped_excluded_or_refused(raw):
    lm = label_map_for("iemocap")
    try:
        out = lm.map(raw)
    except UnknownLabelError as err:
        assert folded_label(raw) not in {folded_label(k) for k in [*lm.mapping, *lm.excluded]}
        assert repr(raw) in str(err)
    else:
        assert out in EMOTIONS or (out is None and folded_label(raw) in {folded_label(k) for k in lm.excluded})

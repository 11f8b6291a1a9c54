"""EmoBox metadata: ``data/<corpus>/fold_<k>/<corpus>_{train,test}_fold_<k>.jsonl``, one JSON object a line
(``key``, ``wav``, ``emo``, ``length``, ``sample_rate``, ``channel``, ...), audio under ``--audio-root``.

Every utterance is read from the test file of its fold (EmoBox's test sets partition a corpus). EmoBox
gives no speaker ids; its folds are speaker-disjoint, so each utterance's speaker group is its test fold
(``<corpus>_fold<k>``): folds stay speaker-independent, validation groups are whole training folds, and
the folds are written beside the manifest for ``split.protocol: file``. Emotion names go through the
``emobox`` label map (EmoBox's names for its corpora), with ``prepare.label_map`` on top.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from data_prep.common import Candidate, Problem, Scan
from mmser.errors import MmserError

TEST_FILE = re.compile(r"(?P<corpus>.+)_test_fold_(?P<fold>\d+)\.jsonl$")


def scan(root: str | Path, audio_root: str | Path | None = None) -> Scan:
    """Candidates of an EmoBox ``data/<corpus>`` folder; ``audio_root``: the folder EmoBox's ``wav`` paths are
    relative to (default: ``root``)."""
    root = Path(root)
    audio_root = Path(audio_root) if audio_root is not None else root
    tests = sorted(p for p in root.glob("fold_*/*_test_fold_*.jsonl") if TEST_FILE.search(p.name))
    if not tests:
        raise MmserError(f"{root}: no fold_<k>/<corpus>_test_fold_<k>.jsonl (an EmoBox data/<corpus> folder)")
    candidates, problems, folds = [], [], {}
    for path in tests:
        match = TEST_FILE.search(path.name)
        corpus, fold = match["corpus"], match["fold"]
        group = f"{corpus}_fold{fold}"
        folds[group] = fold
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                key, wav, emo = str(item["key"]), str(item["wav"]), str(item["emo"])
            except (json.JSONDecodeError, KeyError, TypeError) as err:
                problems.append(Problem(str(path), "", f"line {n}: not an EmoBox metadata line ({err})"))
                continue
            candidates.append(Candidate(utt_id=key, path=str(audio_root / wav), corpus=str(item.get("dataset", corpus)),
                                        speaker=group, raw_label=emo, extras={"emobox_fold": fold}))
    notes = [f"EmoBox metadata has no speaker ids: each utterance's speaker group is its EmoBox test fold "
             f"({len(folds)} folds; validation groups are whole training folds)"]
    return Scan(candidates, problems, notes, folds)

"""Checkpoints: one safetensors file that rebuilds its models; pickles, foreign files, other label spaces
and tampered weights are refused."""

import json
import pickle

import pytest
import torch

from mmser.checkpoint import CheckpointError, load_checkpoint, read_document
from mmser.labels import EMOTIONS


def test_checkpoint_roundtrip_rebuilds_models(checkpoint):
    ckpt = load_checkpoint(checkpoint)
    assert len(ckpt.members) == 2 and ckpt.meta["labels"] == list(EMOTIONS)
    assert ckpt.members[0].model.dims.kind == "audio_only"
    assert read_document(checkpoint) == ckpt.meta  # from the header alone


@pytest.mark.parametrize("reader", [load_checkpoint, read_document])


def test_pickle_and_foreign_checkpoints_are_refused(tmp_path, checkpoint, reader):
    evil = tmp_path / "evil.safetensors"
    evil.write_bytes(pickle.dumps({"x": 1}))
    with pytest.raises(CheckpointError, match="pickle"):
        reader(evil)
    torch.save({"x": torch.zeros(2)}, tmp_path / "torch.pt")
    with pytest.raises(CheckpointError, match="never unpickles"):
        reader(tmp_path / "torch.pt")
    from safetensors.torch import save_file

    save_file({"x": torch.zeros(2)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(CheckpointError, match="without mmser metadata"):
        reader(tmp_path / "plain.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")
    with pytest.raises(CheckpointError, match="refused"):
        reader(tmp_path / "junk.safetensors")
    with pytest.raises(CheckpointError, match="missing.safetensors: checkpoint not found"):
        reader(tmp_path / "missing.safetensors")
    fold = tmp_path / "run" / "fold0"
    fold.mkdir(parents=True)
    with pytest.raises(CheckpointError, match="fold0: a folder, not a checkpoint file"):
        reader(fold)
    (fold / "model.safetensors").write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"fold0: a folder: give a checkpoint file inside it \(model.safetensors\)"):
        reader(fold)


def _rewrite(src, dst, change_meta=None, change_tensor=False):
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    with safe_open(str(src), framework="pt") as h:
        meta = json.loads(h.metadata()["mmser"])
    tensors = load_file(str(src))
    if change_meta:
        change_meta(meta)
    if change_tensor:
        key = sorted(tensors)[0]
        tensors[key] = tensors[key] + 1.0
    save_file(tensors, str(dst), metadata={"mmser": json.dumps(meta)})


def test_other_label_space_and_tampering_are_refused(checkpoint, tmp_path):
    _rewrite(checkpoint, tmp_path / "labels.safetensors", lambda m: m.update(labels=["neu", "ang"]))
    with pytest.raises(CheckpointError, match="label space"):
        load_checkpoint(tmp_path / "labels.safetensors")
    _rewrite(checkpoint, tmp_path / "tampered.safetensors", change_tensor=True)
    with pytest.raises(CheckpointError, match="checksum"):
        load_checkpoint(tmp_path / "tampered.safetensors")


def test_a_member_without_its_keys_or_usable_dims_is_refused_from_the_header_alone(checkpoint, tmp_path):
    from mmser.checkpoint import file_documents

    assert file_documents(checkpoint) == [read_document(checkpoint)]
    _rewrite(checkpoint, tmp_path / "keys.safetensors", lambda m: m["members"][1].pop("text_source"))
    _rewrite(checkpoint, tmp_path / "dims.safetensors", lambda m: m["members"][0]["dims"].update(no_such_dim=1))
    _rewrite(checkpoint, tmp_path / "none.safetensors", lambda m: m.update(members=[]))
    for name, reason in (("keys", "member 1 lacks text_source"), ("dims", "member 0 has unusable dims"),
                         ("none", "its metadata lists no members")):
        for reader in (file_documents, load_checkpoint):
            with pytest.raises(CheckpointError, match=f"{name}.safetensors: refused: {reason}"):
                reader(tmp_path / f"{name}.safetensors")


def test_a_population_prior_round_trips_and_a_missing_one_is_refused(checkpoint, tmp_path):
    """features.speaker_norm.prior_clips: the population moments travel in the file, exactly; a checkpoint that
    claims the prior without them is refused rather than run with a speaker's first clip alone."""
    from dataclasses import replace

    import numpy as np

    from mmser.checkpoint import save_checkpoint
    from mmser.features.speaker_norm import FrameMoments
    from mmser.features.spec import SpeakerNorm

    ckpt = load_checkpoint(checkpoint)
    encoder = ckpt.members[0].audio_encoder
    rng = np.random.default_rng(0)
    prior = FrameMoments(rng.standard_normal((3, 4)), rng.random((3, 4)) + 2, 12.5)
    features = replace(ckpt.features, speaker_norm=SpeakerNorm("running", prior_clips=2.5))
    path = save_checkpoint(tmp_path / "prior.safetensors", ckpt.members, features, None, {}, None, {encoder: prior})
    loaded = load_checkpoint(path)
    assert loaded.features.speaker_norm.prior_clips == 2.5 and set(loaded.speaker_prior) == {encoder}
    np.testing.assert_array_equal(loaded.speaker_prior[encoder].total, prior.total)
    np.testing.assert_array_equal(loaded.speaker_prior[encoder].total_sq, prior.total_sq)
    assert loaded.speaker_prior[encoder].count == 12.5
    _rewrite(path, tmp_path / "no_prior.safetensors", lambda m: m.update(speaker_prior=[]))
    with pytest.raises(CheckpointError, match=f"no population statistics for {encoder}"):
        load_checkpoint(tmp_path / "no_prior.safetensors")
    _rewrite(path, tmp_path / "bad_count.safetensors", lambda m: m["speaker_prior"][0].update(count=-1))
    with pytest.raises(CheckpointError, match="count -1"):
        load_checkpoint(tmp_path / "bad_count.safetensors")


def test_test_time_speeds_round_trip_and_older_checkpoints_read_without_them(checkpoint, tmp_path):
    from dataclasses import replace

    from mmser.checkpoint import save_checkpoint
    from mmser.features.spec import FeatureSpec

    ckpt = load_checkpoint(checkpoint)
    path = save_checkpoint(tmp_path / "tta.safetensors", ckpt.members, replace(ckpt.features, test_time_speeds=(0.9, 1.1)),
                           None, {})
    assert load_checkpoint(path).features.test_time_speeds == (0.9, 1.1)
    older = ckpt.features.to_dict()
    del older["test_time_speeds"]  # written before the key existed
    assert FeatureSpec.from_dict(older).test_time_speeds == ()


def test_test_enrolment_clips_round_trip_and_older_checkpoints_read_without_them(checkpoint, tmp_path):
    from dataclasses import replace

    from mmser.checkpoint import save_checkpoint
    from mmser.features.spec import FeatureSpec, SpeakerNorm

    ckpt = load_checkpoint(checkpoint)
    norm = SpeakerNorm("enrol", 5, test_clips=2)
    assert norm.test_enrolment_clips == 2 and norm.test_differs and not SpeakerNorm("enrol", 5).test_differs
    path = save_checkpoint(tmp_path / "k.safetensors", ckpt.members, replace(ckpt.features, speaker_norm=norm), None, {})
    assert load_checkpoint(path).features.speaker_norm == norm
    older = replace(ckpt.features, speaker_norm=SpeakerNorm("enrol", 5)).to_dict()
    del older["speaker_norm"]["test_clips"]  # written before the key existed
    assert FeatureSpec.from_dict(older).speaker_norm.test_enrolment_clips == 5

"""`mmser train A.yaml B.yaml ...`: each config trained into its own part (kept, resumable), then one checkpoint
that predicts the mean of the parts' probabilities, as `mmser predict --checkpoint` with the parts does."""

import json

import mmser.recipes.train
from mmser.checkpoint import load_checkpoints
from mmser.cli import main
from tests.conftest import save_tiny_whisper
from tests.e2e.test_cv_smoke import _csv_experiment, _prepared_csv


def _predicted(capsys, clips: list[str], *checkpoints) -> list[dict]:
    capsys.readouterr()
    assert main(["predict", *clips, "--checkpoint", *map(str, checkpoints), "--json"]) == 0
    return [row["probabilities"] for row in json.loads(capsys.readouterr().out)]


def test_several_configs_train_into_one_averaged_checkpoint_and_resume_part_by_part(tmp_path, capsys, monkeypatch):
    manifest = _prepared_csv(tmp_path, "a", ["angry", "sad", "happy"], per=3)
    whisper = save_tiny_whisper(tmp_path / "tiny.pt", state=32, layers=1)
    encoder = [f"features.audio_encoders=[whisper:{whisper}]", "features.audio_layers=all"]
    _csv_experiment(tmp_path / "first.yaml", *encoder, "features.frame_stride=2")
    _csv_experiment(tmp_path / "second.yaml", *encoder, "train.seed=7", "model.hidden_dim=8")
    _csv_experiment(tmp_path / "running.yaml", *encoder, "features.speaker_norm.mode=running")
    common = [f"data.manifest={manifest}", f"features.cache_dir={tmp_path / 'cache'}"]
    out = tmp_path / "avg.safetensors"
    parts = tmp_path / "avg.safetensors.parts"

    # refused before any training: no --out, one name twice, parts that standardise per speaker differently
    for args, message in (([str(tmp_path / "second.yaml")], "name it with --out"), (["--out", str(out), str(tmp_path / "first.yaml")], "two configs named"),
                          (["--out", str(out), str(tmp_path / "running.yaml")], "standardise frames per speaker differently")):
        assert main(["train", str(tmp_path / "first.yaml"), *common, *args]) == 2
        assert message in capsys.readouterr().err and not parts.exists()

    assert main(["train", str(tmp_path / "first.yaml"), str(tmp_path / "second.yaml"), *common, "--out", str(out)]) == 0
    assert "the average of 2 trained checkpoints" in capsys.readouterr().out
    made = [parts / "first.safetensors", parts / "second.safetensors"]
    assert sorted(parts.iterdir()) == made
    loaded = load_checkpoints(out)
    assert [c.features.frame_stride for c in loaded] == [2, 1] and loaded[1].members[0].model.dims.hidden_dim == 8
    clips = [str(p) for p in sorted((tmp_path / "a").rglob("*.wav"))[:3]]
    assert _predicted(capsys, clips, out) == _predicted(capsys, clips, *made)  # the file is its parts named together
    assert main(["info", str(out)]) == 0
    said = capsys.readouterr().out
    assert "part 0 first: audio_only" in said and "part 1 second: audio_only" in said

    # run again: both parts kept, not trained; the same file
    before = out.read_bytes()
    calls = []
    real = mmser.recipes.train.train_checkpoint
    monkeypatch.setattr(mmser.recipes.train, "train_checkpoint", lambda cfg, path, *a, **k: calls.append(path) or real(cfg, path, *a, **k))
    assert main(["train", str(tmp_path / "first.yaml"), str(tmp_path / "second.yaml"), *common, "--out", str(out)]) == 0
    assert calls == [] and out.read_bytes() == before and "kept" in capsys.readouterr().out
    # nor where the work runs: another thread count or progress bar trains nothing again
    assert main(["train", str(tmp_path / "first.yaml"), str(tmp_path / "second.yaml"), *common, "features.num_threads=1",
                 "trainer.enable_progress_bar=true", "--out", str(out)]) == 0
    assert calls == []
    # a part trained from another config is trained again, and only that one; a corrupt part too
    made[0].write_bytes(b"stopped while writing")
    assert main(["train", str(tmp_path / "first.yaml"), str(tmp_path / "second.yaml"), *common, "train.max_epochs=1",
                 "--out", str(out)]) == 0
    assert calls == made  # max_epochs changes both configs
    calls.clear()
    assert main(["train", str(tmp_path / "first.yaml"), str(tmp_path / "second.yaml"), *common, "train.max_epochs=1",
                 "--out", str(out)]) == 0
    assert calls == []
    made[1].write_bytes(b"corrupt")
    assert main(["train", str(tmp_path / "first.yaml"), str(tmp_path / "second.yaml"), *common, "train.max_epochs=1",
                 "--out", str(out)]) == 0
    assert calls == [made[1]] and len(load_checkpoints(out)) == 2
    # another order reuses the parts by name: nothing is trained, and the file lists them in the new order
    calls.clear()
    assert main(["train", str(tmp_path / "second.yaml"), str(tmp_path / "first.yaml"), *common, "train.max_epochs=1",
                 "--out", str(out)]) == 0
    assert calls == [] and [c.meta["recipe"] for c in load_checkpoints(out)] == ["second", "first"]
    # parts written before config keys existed (their stored config lacks them; their key was made without them) are
    # kept while this config leaves those keys at their defaults, and trained again when it sets one otherwise or
    # when the recipe differs in a value
    import hashlib

    from safetensors.torch import load_file, save_file

    from mmser.audio import file_sha256
    from mmser.config import load_config
    from mmser.recipes.train import recipe_of

    def written_before(path, yaml, keys, change=lambda recipe: None):
        recipe = recipe_of(load_config([yaml], [*common, "train.max_epochs=1"]))
        document = load_checkpoints(path)[0].meta
        for dotted in keys:
            section, leaf = dotted.rsplit(".", 1)
            for where in (recipe, document["config"]):
                node = where
                for name in section.split("."):
                    node = node[name]
                node.pop(leaf, None)  # a document rewritten before already lacks it
        change(recipe)
        digest = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode())
        digest.update(file_sha256(manifest).encode())
        document["recipe_key"] = digest.hexdigest()
        save_file(load_file(str(path)), str(path), metadata={"mmser": json.dumps(document)})

    added = ["features.speaker_norm.test_clips", "train.length_buckets"]
    written_before(made[0], tmp_path / "first.yaml", added)
    written_before(made[1], tmp_path / "second.yaml", added, lambda recipe: recipe["train"].update(seed=8))
    calls.clear()
    assert main(["train", str(tmp_path / "first.yaml"), str(tmp_path / "second.yaml"), *common, "train.max_epochs=1",
                 "--out", str(out)]) == 0
    assert calls == [made[1]]  # the first kept; the second's stored recipe had another seed
    written_before(made[0], tmp_path / "first.yaml", added)
    calls.clear()
    assert main(["train", str(tmp_path / "first.yaml"), str(tmp_path / "second.yaml"), *common, "train.max_epochs=1",
                 "train.length_buckets=2", "--out", str(out)]) == 0
    assert made[0] in calls  # a key its schema lacked, now set: another recipe

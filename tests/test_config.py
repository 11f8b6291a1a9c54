"""Every YAML in configs/ loads and validates against the schema; bad configs fail clearly."""

from pathlib import Path

import pytest

from mmser.config import CONFIG_DIR, ConfigError, load_config, require

ALL_YAMLS = sorted(p for p in CONFIG_DIR.rglob("*.yaml") if p.name != "local.yaml")


@pytest.mark.parametrize("path", ALL_YAMLS, ids=[str(p.relative_to(CONFIG_DIR)) for p in ALL_YAMLS])
def test_every_yaml_validates(path):
    cfg = load_config([path], use_local=False)
    assert cfg.model.kind in {"audio_only", "text_only", "concat", "cross_attn"}
    assert cfg.split.protocol in {"leave_one_session_out", "leave_speakers_out", "file"}


def test_experiments_start_with_their_command():
    for path in sorted((CONFIG_DIR / "experiment").glob("*.yaml")):
        assert path.read_text().startswith("# mmser "), path


def test_overrides_and_types(tmp_path):
    cfg = load_config([CONFIG_DIR / "model" / "cross_attn.yaml"], ["model.fusion.num_heads=8"], use_local=False)
    assert cfg.model.fusion.num_heads == 8
    with pytest.raises(ConfigError, match="num_heads"):
        load_config([], ["model.fusion.num_heads=many"], use_local=False)
    with pytest.raises(ConfigError, match="no_such_key"):
        load_config([], ["model.no_such_key=1"], use_local=False)
    with pytest.raises(ConfigError, match="key=value"):
        load_config([], ["model.kind"], use_local=False)


def test_missing_required_value_named():
    cfg = load_config([CONFIG_DIR / "data" / "ravdess.yaml"], use_local=False)
    with pytest.raises(ConfigError, match="data.manifest"):
        require(cfg, "data.manifest")
    require(load_config([], ["data.manifest=x.csv"], use_local=False), "data.manifest")


def test_includes_and_bad_files(tmp_path):
    (tmp_path / "a.yaml").write_text("train:\n  lr: 0.5\n")
    (tmp_path / "b.yaml").write_text("includes: [a.yaml]\ntrain:\n  max_epochs: 3\n")
    cfg = load_config([tmp_path / "b.yaml"], use_local=False)
    assert cfg.train.lr == 0.5 and cfg.train.max_epochs == 3
    (tmp_path / "bad.yaml").write_text("train: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml"):
        load_config([tmp_path / "bad.yaml"], use_local=False)
    with pytest.raises(ConfigError, match="not found"):
        load_config([tmp_path / "nope.yaml"], use_local=False)

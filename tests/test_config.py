"""Every YAML in configs/ loads and validates against the schema; bad configs fail clearly."""

from pathlib import Path

import pytest

from mmser.config import CONFIG_DIR, ConfigError, load_config, require

ALL_YAMLS = sorted(p for p in CONFIG_DIR.rglob("*.yaml") if p.name != "local.yaml")


@pytest.mark.parametrize("path", ALL_YAMLS, ids=[str(p.relative_to(CONFIG_DIR)) for p in ALL_YAMLS])
def test_every_yaml_validates(path):
    cfg = load_config([path], use_local=False)
    assert cfg.model.kind in {"audio_only", "text_only", "concat", "cross_attn"}
    assert cfg.split.protocol in {"leave_one_session_out", "leave_speakers_out", "file", "random_utterance"}
    if cfg.split.protocol == "random_utterance":  # speaker-dependent: only where the file's name says so
        assert "random_utterance" in path.name and "SPEAKER-DEPENDENT" in path.read_text()


def test_the_default_protocol_is_speaker_independent():
    assert load_config([], use_local=False).split.protocol == "leave_speakers_out"


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


def test_a_mapping_list_or_value_in_the_wrong_place_is_named_with_its_key_and_file(tmp_path):
    # omegaconf itself raises a bare TypeError ("Cannot merge incompatible container types") for these
    for override, key, want in (("features.augment.noise.snr_db=[5]", "features.augment.noise", "a list"),
                                ("ablation_overrides=[1]", "ablation_overrides", "a mapping"),
                                ("features=[1]", "features", "a mapping")):
        with pytest.raises(ConfigError, match=rf"\(overrides\): key '{key}': {want} expected"):
            load_config([], [override], use_local=False)
    (tmp_path / "a.yaml").write_text("features:\n  augment:\n    speed: {fast: 1.1}\n")
    (tmp_path / "b.yaml").write_text("includes: [a.yaml]\ntrain:\n  max_epochs: 3\n")
    with pytest.raises(ConfigError, match=r"a.yaml\): key 'features.augment.speed': a list expected, got \{'fast'"):
        load_config([tmp_path / "b.yaml"], use_local=False)


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


def test_configs_compose_one_level_deep(tmp_path):
    (tmp_path / "a.yaml").write_text("train:\n  lr: 0.5\n")
    (tmp_path / "b.yaml").write_text("includes: [a.yaml]\n")
    (tmp_path / "c.yaml").write_text("includes: [b.yaml]\n")
    with pytest.raises(ConfigError, match="b.yaml: included from .*c.yaml, so it may not include others"):
        load_config([tmp_path / "c.yaml"], use_local=False)
    for path in sorted((CONFIG_DIR / "experiment").glob("*.yaml")):
        includes = load_includes(path)
        assert includes[0] == "../base.yaml" and [Path(i).parent.name for i in includes[1:]] == ["data", "model"], path


def load_includes(path: Path) -> list[str]:
    import yaml

    return list(yaml.safe_load(path.read_text()).get("includes", []))


def test_each_default_is_stated_once():
    """A key an included file (base, data, model) sets is not set again to the same value by the schema's
    default, and experiments do not restate their includes' values."""
    from omegaconf import OmegaConf

    from mmser.config import Config

    schema = OmegaConf.to_container(OmegaConf.structured(Config), resolve=False)

    def leaves(node, prefix=""):
        for key, value in node.items():
            if isinstance(value, dict) and value:
                yield from leaves(value, f"{prefix}{key}.")
            else:
                yield f"{prefix}{key}", value

    for path in sorted(CONFIG_DIR.rglob("*.yaml")):
        own = yaml_without_includes(path)
        restated = [k for k, v in leaves(own) if OmegaConf.select(OmegaConf.create(schema), k) == v
                    and k not in ("data.manifest", "split.folds_file", "model.kind")]  # a model file names its kind
        assert not restated, f"{path.relative_to(CONFIG_DIR)} restates schema defaults {restated}"
        for inc in load_includes(path):
            inherited = dict(leaves(yaml_without_includes(path.parent / inc)))
            again = [k for k, v in leaves(own) if k in inherited and inherited[k] == v]
            assert not again, f"{path.relative_to(CONFIG_DIR)} restates {again} of {inc}"


def yaml_without_includes(path: Path) -> dict:
    import yaml

    node = yaml.safe_load(path.read_text()) or {}
    node.pop("includes", None)
    return node


def test_every_config_value_problem_is_reported_at_once():
    with pytest.raises(ConfigError) as err:
        load_config([], ["model.kind=crossattn", "model.hidden_dim=30", "model.fusion.num_heads=4",
                         "features.whisper_window=20s", "data.classes=[happy,joyful]"], use_local=False)
    message = str(err.value)
    for key in ("model.kind", "model.fusion.num_heads", "features.whisper_window", "data.classes"):
        assert f"{key}:" in message


def test_a_stored_run_config_without_a_key_added_since_reads_as_the_same_config():
    """A run stored before a schema key existed resumes without a "differs from this run's config" note; a stored
    config with another value, or one that no longer reads, does differ."""
    from mmser.config import stored_yaml_under_schema, to_yaml

    resolved = to_yaml(load_config(None, ["data.manifest=m.csv"], use_local=False))
    older = "\n".join(line for line in resolved.splitlines() if "test_time_speeds" not in line) + "\n"
    assert older != resolved
    assert stored_yaml_under_schema(older) == resolved
    assert stored_yaml_under_schema(resolved.replace("frame_stride: 1", "frame_stride: 4")) != resolved
    assert stored_yaml_under_schema("features:\n  no_such_key: 1\n") is None
    assert stored_yaml_under_schema("features:\n  augment:\n    speed: {fast: 1.1}\n") is None  # a list's place

"""Committed results trace back: every stored config loads under the current schema, every results folder
comes from one experiment YAML, and every results.md is what `mmser table` builds from the stored
per-utterance predictions, byte for byte."""

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from mmser.config import CONFIG_DIR, PROJECT_ROOT, Config, cell_config, config_problems, load_config
from mmser.evaluation.average import AVERAGE_FILE, averaged_table
from mmser.evaluation.crossval import PROB_COLUMNS
from mmser.evaluation.selection import group_run
from mmser.evaluation.tables import build_table, read_predictions, results_markdown

RESULTS = PROJECT_ROOT / "results"
STORED_CONFIGS = sorted(RESULTS.rglob("config.yaml"))
TABLES = sorted(RESULTS.rglob("results.md"))
RUNTIME_KEYS = {"output_dir", "data.classes", "data.manifest", "features.cache_dir", "features.num_threads"}


def stored(path: Path):
    return OmegaConf.merge(OmegaConf.structured(Config), OmegaConf.load(path))


def flat(cfg) -> dict:
    out = {}

    def walk(node, prefix):
        for key, value in node.items():
            if isinstance(value, dict):
                walk(value, f"{prefix}{key}.")
            else:
                out[f"{prefix}{key}"] = value
    walk(OmegaConf.to_container(cfg, resolve=True), "")
    return out


def test_there_are_results_to_check():
    assert len(STORED_CONFIGS) > 100 and len(TABLES) >= 3


@pytest.mark.parametrize("path", STORED_CONFIGS, ids=lambda p: str(p.relative_to(RESULTS)))
def test_every_stored_config_loads_under_the_current_schema(path):
    assert config_problems(stored(path)) == []


@pytest.mark.parametrize("table", TABLES, ids=lambda p: str(p.relative_to(RESULTS)))
def test_mmser_table_rebuilds_every_committed_table_byte_identical(table):
    root = table.parent
    rebuilt = results_markdown(build_table(root), root.relative_to(PROJECT_ROOT).as_posix())
    assert rebuilt.encode() == table.read_bytes()


def experiment_yamls() -> dict[str, tuple[object, str]]:
    """(config, command) of each experiment YAML by its output_dir."""
    out = {}
    for path in sorted((CONFIG_DIR / "experiment").glob("*.yaml")):
        cfg = load_config([path], ["data.manifest=m.csv"], use_local=False)
        command = path.read_text().split()[2]  # first line: "# mmser COMMAND ..."
        out[Path(cfg.output_dir).as_posix()] = (cfg, command)
    return out


def test_every_results_folder_comes_from_one_yaml():
    """A study folder results/<corpus>/studies/<run> is runs/<corpus>/studies/<run> of exactly one YAML; an
    ablation cell results/<corpus>/ablation/<cell> is a cell of the YAML whose output_dir is that ablation."""
    yamls = experiment_yamls()
    runs = sorted({p.parent.parent for p in RESULTS.rglob("*/predictions.csv")})
    assert runs
    for run in runs:
        corpus, part = run.relative_to(RESULTS).parts[:2]
        inside = run.relative_to(RESULTS / corpus / part).parts
        if any((RESULTS / corpus / part / f"{kind}.md").is_file() for kind in ("selection", "enrolment", "enrolment_val")) \
                or any((RESULTS / corpus / part).glob("robustness*.md")):
            # `mmser select` / `mmser robustness` name each run after its YAML; "selected" and "selected_blind" hold
            # the chosen candidates' predictions, noise_* the candidates' checkpoints on noisy clips and enrol_*
            # with other numbers of enrolment clips (no config of their own)
            if inside[0] in ("selected", "selected_blind") or inside[-1].startswith(("noise_", "enrol_")):
                assert (RESULTS / corpus / part / inside[0]).is_dir(), run
                continue
            if (RESULTS / corpus / part / inside[0] / AVERAGE_FILE).is_file():
                continue  # an averaged run: test_every_averaged_run_is_the_mean_of_its_parts
            path = CONFIG_DIR / "experiment" / f"{inside[0]}.yaml"
            assert path.is_file(), f"{run}: no configs/experiment/{inside[0]}.yaml"
            cfg, command = load_config([path], ["data.manifest=m.csv"], use_local=False), "select"
        elif part == "studies":
            found = yamls.get(f"runs/{corpus}/studies/{run.name}")
            assert found is not None, f"{run}: no experiment YAML has output_dir runs/{corpus}/studies/{run.name}"
            cfg, command = found
        else:
            found = yamls.get(f"runs/{corpus}/ablation")
            assert found is not None and part == "ablation", run
            cfg, command = cell_config(found[0], run.name.split("__")[0]), found[1]
        fold_configs = sorted(run.glob("*/config.yaml"))
        want, got = flat(cfg), flat(stored(fold_configs[0] if fold_configs else run / "config.yaml"))
        differ = {k for k in set(want) | set(got) if want.get(k) != got.get(k)} - RUNTIME_KEYS
        if command == "baseline":  # the classical baseline reads the protocol only
            differ = {k for k in differ if k.startswith(("data.", "split."))}
        if part == "ablation":
            # the ablation list and the per-kind overrides are how a cell was scheduled, not how it ran; the
            # audio branch options act on fused models only
            differ -= {k for k in differ if k.startswith(("ablation", "ablation_overrides."))}
            if run.name.split("__")[0] in ("audio_only", "text_only"):
                differ -= {"model.freeze_audio_branch", "train.replace_start_p"}
        assert not differ, f"{run}: {sorted(differ)} differ from its YAML"


AVERAGED_RUNS = sorted(p.parent for p in RESULTS.rglob(AVERAGE_FILE))


@pytest.mark.parametrize("run", AVERAGED_RUNS, ids=lambda p: str(p.relative_to(RESULTS)))
def test_every_averaged_run_is_the_mean_of_its_parts(run):
    """`mmser average`'s stored predictions are the per-utterance mean of the committed parts' predictions."""
    import json

    document = json.loads((run / AVERAGE_FILE).read_text())
    parts = [run / p for p in document["parts"]]
    assert len(parts) >= 2 and all(p.is_dir() for p in parts), document["parts"]
    checked = 0
    for group in range(document["val_groups"]):
        for path in sorted(group_run(run, group).glob("fold*/*predictions.csv")):
            fold, kind = path.parent.name, path.name
            want = averaged_table([read_predictions(group_run(p, group) / fold / kind) for p in parts], path)
            got = read_predictions(path)
            assert list(got["utt_id"]) == list(want["utt_id"]) and list(got["pred"]) == list(want["pred"]), path
            assert abs(got[PROB_COLUMNS].to_numpy(float) - want[PROB_COLUMNS].to_numpy(float)).max() < 1e-6, path
            checked += 1
    folds = len(list(parts[0].glob("*/predictions.csv")))
    assert folds and checked == 2 * folds * document["val_groups"]  # test and validation predictions, every group


def test_every_benchmark_json_is_named_as_its_script_says():
    """results/bench/<script>.json or <script>_<what>.json, as bench/<script>.py documents it."""
    bench = PROJECT_ROOT / "bench"
    scripts = {p.stem: p.read_text() for p in bench.glob("*.py") if p.stem != "report"}
    figures = sorted((RESULTS / "bench").glob("*.json"))
    assert figures
    for path in figures:
        owners = [s for s in scripts if path.name.startswith(f"{s}_") or path.name == f"{s}.json"]
        assert owners, f"{path.name}: no bench script's name starts it"
        documented = f"results/bench/{owners[0]}_" if path.name != f"{owners[0]}.json" else f"results/bench/{path.name}"
        assert documented in scripts[owners[0]], f"bench/{owners[0]}.py does not document {path.name}"


def test_each_published_validation_ua_agrees_with_what_selection_read():
    """The tables' validation UA (recomputed from val_predictions.csv) is the mean of the folds' val_UA that
    `mmser select` chose by."""
    import json

    import numpy as np

    checked = 0
    for table in TABLES:
        for row in build_table(table.parent).to_dict("records"):
            run = table.parent / row["run"]
            stored = [json.loads(p.read_text()).get("val_UA") for p in sorted(run.glob("*/metrics.json"))]
            if "·" in row["run"] or not stored or None in stored or not list(run.glob("*/val_predictions.csv")):
                continue
            assert abs(row["val_UA_mean"] - float(np.mean(stored))) < 1e-6, row["run"]
            checked += 1
    assert checked >= 8


SELECTION_FOLDERS = sorted(p.parent for p in RESULTS.rglob("selection.csv"))


@pytest.mark.parametrize("folder", SELECTION_FOLDERS, ids=lambda p: str(p.relative_to(RESULTS)))
def test_each_published_blind_choice_follows_from_the_stored_validation_predictions(folder, tmp_path):
    """selected_blind/: chosen again from the committed val_predictions.csv, fold by fold, with the same result."""
    import json

    import pandas as pd

    from mmser.evaluation.selection import select_blind

    names = [r for r in pd.read_csv(folder / "selection.csv")["recipe"] if not r.endswith("(nested)")]
    val_groups = 2 if (folder / names[0] / "val_group1").is_dir() else 1
    select_blind({name: folder / name for name in names}, tmp_path, val_groups)
    for record in sorted((folder / "selected_blind").glob("*/selection.json")):
        again = json.loads((tmp_path / "selected_blind" / record.parent.name / "selection.json").read_text())
        assert json.loads(record.read_text()) == again
        assert (record.parent / "predictions.csv").read_bytes() == (folder / again["chosen"] / record.parent.name /
                                                                    "predictions.csv").read_bytes()


def test_the_blind_choice_script_gives_the_selection_tables_blind_row():
    import subprocess
    import sys

    folder = RESULTS / "ravdess" / "select_enrol"
    done = subprocess.run([sys.executable, str(PROJECT_ROOT / "scripts" / "blind_choice.py"), str(folder)],
                          capture_output=True, text=True, check=True)
    row = (folder / "selection.md").read_text().splitlines()[-1].split(" | ")  # the blind row, as printed
    assert "blind to its test speakers" in row[0]
    assert done.stdout.splitlines()[-1] == f"test UA of the choices (mean over folds): {row[4]} %"
    assert len(done.stdout.splitlines()) == 7  # six folds' choices, then the figure


ROBUSTNESS_TABLES = sorted(RESULTS.rglob("robustness*.csv"))


def recorded_val_groups(markdown: Path) -> int:
    """The ``--val-groups`` of the command a robustness or enrolment table records (1 when it names none)."""
    import re

    found = re.search(r"--val-groups (\d+)", markdown.read_text().splitlines()[0])
    return int(found[1]) if found else 1
ENROLMENT_TABLES = sorted(RESULTS.rglob("enrolment*.csv"))


@pytest.mark.parametrize("path", ENROLMENT_TABLES, ids=lambda p: str(p.relative_to(RESULTS)))
def test_every_enrolment_size_table_is_rebuilt_from_its_stored_predictions(path):
    import numpy as np
    import pandas as pd

    from mmser.evaluation.robustness import enrolment_table

    committed = pd.read_csv(path)
    counts = [int(c.removesuffix(" clips")) for c in committed.columns if c.endswith(" clips")]
    split = "val" if path.stem.endswith("_val") else "test"
    rebuilt = enrolment_table([path.parent / run for run in committed["run"]], counts, split,
                              recorded_val_groups(path.with_suffix(".md")))
    assert counts and list(rebuilt.columns) == list(committed.columns) and list(rebuilt["run"]) == list(committed["run"])
    np.testing.assert_allclose(rebuilt.drop(columns="run").to_numpy(float), committed.drop(columns="run").to_numpy(float),
                               atol=0.006)  # the csv keeps 2 decimals


@pytest.mark.parametrize("path", ROBUSTNESS_TABLES, ids=lambda p: str(p.relative_to(RESULTS)))
def test_every_robustness_table_is_rebuilt_from_its_stored_noisy_predictions(path):
    import numpy as np
    import pandas as pd

    from mmser.evaluation.robustness import robustness_markdown, robustness_stem, robustness_table

    committed = pd.read_csv(path)
    snrs = [float(c.removesuffix(" dB")) for c in committed.columns if c.endswith(" dB")]
    split = "val" if path.stem.endswith("_val") else "test"
    kind = path.stem.removesuffix("_val").removeprefix("robustness").removeprefix("_") or "white"
    assert path.stem == robustness_stem(split, kind)  # the file name says the noise (robustness_<kind>[_val])
    markdown = path.with_suffix(".md").read_text()
    command = markdown.splitlines()[0].split("`")[1]
    rebuilt = robustness_table([path.parent / run for run in committed["run"]], kind, snrs, split,
                               recorded_val_groups(path.with_suffix(".md")))
    described = robustness_markdown(rebuilt, kind, command, split, val_groups=recorded_val_groups(path.with_suffix(".md")))
    assert markdown.splitlines()[:2] == described.splitlines()[:2]  # the noise described as the code adds it
    assert list(rebuilt.columns) == list(committed.columns) and list(rebuilt["run"]) == list(committed["run"])
    np.testing.assert_allclose(rebuilt.drop(columns="run").to_numpy(float), committed.drop(columns="run").to_numpy(float),
                               atol=0.006)  # the csv keeps 2 decimals

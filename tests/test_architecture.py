"""The direction of imports is the architecture: ``cli -> recipes -> library``, never back, and prediction
loads no training code."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import save_tiny_whisper, write_tone

PACKAGE = Path(__file__).resolve().parents[1] / "mmser"
UPPER = ("mmser.recipes", "mmser.cli")


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth of the file (deferred imports included)."""
    tree = ast.parse(path.read_text(), str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def library_files() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p.relative_to(PACKAGE).parts[0] not in ("recipes", "cli"))


def test_the_walk_sees_the_imports_it_checks():
    recipe = PACKAGE / "recipes" / "ablate.py"
    assert "mmser.evaluation.crossval" in imported_modules(recipe)  # a recipe imports the library
    assert any(m.startswith("mmser.recipes") for m in imported_modules(PACKAGE / "cli" / "experiment.py"))
    assert len(library_files()) > 30


@pytest.mark.parametrize("path", library_files(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_library_never_imports_a_recipe_or_the_cli(path):
    upward = sorted(m for m in imported_modules(path) if m.startswith(UPPER))
    assert not upward, f"{path.relative_to(PACKAGE)} imports {upward}"


def test_recipes_never_import_the_cli():
    for path in sorted((PACKAGE / "recipes").glob("*.py")):
        assert not [m for m in imported_modules(path) if m.startswith("mmser.cli")], path


def test_prediction_and_serving_load_no_training_code(tmp_path):
    """Load a checkpoint, predict a clip and build the HTTP app in a fresh interpreter: no Lightning, no
    mmser.training, no recipe is ever imported."""
    pytest.importorskip("fastapi")
    whisper = save_tiny_whisper(tmp_path / "w.pt")
    clip = write_tone(tmp_path / "c.wav")
    script = f"""
import sys
import torch
from mmser.checkpoint import Member, save_checkpoint
from mmser.features.spec import FeatureSpec
from mmser.models.builders import ModelDims, build_model
spec = FeatureSpec(audio_encoders=("whisper:{whisper}",), whisper_window="clip")
enc = spec.open_audio_encoder("whisper:{whisper}")
model = build_model(ModelDims("audio_only", audio_dim=32, num_audio_layers=2, hidden_dim=16))
save_checkpoint("{tmp_path / 'm.safetensors'}", [Member(model, "whisper:{whisper}", enc.fingerprint, None)], spec, None, {{}})
from mmser.inference import Predictor
from mmser.serve import create_app
predictor = Predictor.from_checkpoint("{tmp_path / 'm.safetensors'}")
print(predictor.predict("{clip}").label)
print("PANDAS", "pandas" in sys.modules)  # a fast start: predicting a clip needs no table library
create_app(predictor)
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("lightning", "pytorch_lightning")
                or m.startswith(("mmser.training", "mmser.recipes", "mmser.cli")))
print("LOADED", loaded)
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert "LOADED []" in out, out
    assert "PANDAS False" in out, out

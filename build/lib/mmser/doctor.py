"""``mmser doctor``: what this machine can run — encoders that load offline (and the fix for those that do
not), ASR backends, espeak-ng, GPU/CUDA, package versions, and the feature cache's place and size.

Every check is cheap: model folders are located, not loaded (no weights are read), so the report takes
seconds. Each check returns a :class:`Finding`; nothing here raises for a missing component.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from mmser.errors import MmserError

PACKAGES = ("mmser", "torch", "torchaudio", "transformers", "lightning", "faster-whisper", "ctranslate2",
            "openai-whisper", "omegaconf", "safetensors", "scikit-learn", "pandas", "soundfile")
OPTIONAL = {  # import name -> (pip name, what it enables)
    "fastapi": ("fastapi", "mmser serve"), "uvicorn": ("uvicorn", "mmser serve"),
    "onnxruntime": ("onnxruntime", "mmser export onnx"), "opensmile": ("opensmile", "mmser baseline"),
}
ENCODERS = ("whisper-ct2:tiny.en", "whisper-ct2:base", "faster-whisper:tiny.en", "bert:minilm",
            "hf:facebook/wav2vec2-base")


@dataclass(frozen=True)
class Finding:
    """One line of the report: what was checked, whether it is usable here, and the detail or the fix."""

    section: str
    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"  [{'ok' if self.ok else '--'}] {self.name}: {self.detail}"


def version_of(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def package_findings() -> list[Finding]:
    found = [Finding("versions", "python", True, sys.version.split()[0])]
    for package in PACKAGES:
        version = version_of(package)
        found.append(Finding("versions", package, version is not None, version or f"not installed (pip install {package})"))
    for module, (pip_name, enables) in OPTIONAL.items():
        there = importlib.util.find_spec(module) is not None
        found.append(Finding("optional", pip_name, there, f"for {enables}" if there else
                             f"not installed: {enables} needs it (pip install {pip_name}, or the project's extras)"))
    return found


def encoder_finding(spec: str) -> Finding:
    """Whether encoder ``spec`` can be opened here, located without loading its weights."""
    from mmser.features.encoders.model_paths import bert_dir, whisper_ct2_dir

    kind, _, name = spec.partition(":")
    try:
        if kind in ("whisper-ct2", "faster-whisper"):
            where = whisper_ct2_dir(name)
        elif kind == "bert":
            where = Path(bert_dir(name))
        elif kind == "hf":
            where = hub_snapshot(name)
        else:
            raise MmserError(f"unknown encoder kind {kind!r}")
    except MmserError as err:
        return Finding("encoders", spec, False, str(err))
    return Finding("encoders", spec, True, f"offline, from {where}")


def hub_snapshot(name: str) -> Path:
    """A local folder or the model hub cache's copy of ``name`` (no download)."""
    from mmser.features.encoders.base import ModelUnavailableError
    from mmser.features.encoders.hf_audio import OFFLINE_HINT

    if Path(name).expanduser().is_dir():
        return Path(name).expanduser()
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(name, local_files_only=True))
    except (OSError, ValueError) as err:  # the hub's "not in the local cache" errors are both
        raise ModelUnavailableError(f"hf:{name}", f"not in the local model hub cache ({type(err).__name__})",
                                    OFFLINE_HINT) from None


def system_findings() -> list[Finding]:
    import torch

    found = []
    espeak = shutil.which("espeak-ng")
    if espeak:
        first = subprocess.run([espeak, "--version"], capture_output=True, text=True).stdout.strip().splitlines()
        found.append(Finding("system", "espeak-ng", True, first[0] if first else espeak))
    else:
        found.append(Finding("system", "espeak-ng", False, "not found: mmser synth and the demo need it "
                             "(apt-get install espeak-ng)"))
    if torch.cuda.is_available():
        names = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
        found.append(Finding("system", "GPU", True, f"CUDA {torch.version.cuda}: {names} (--device cuda:N)"))
    else:
        found.append(Finding("system", "GPU", False, f"no CUDA device (torch {torch.__version__}, CUDA build "
                             f"{torch.version.cuda or 'none'}): everything runs on CPU (--device cpu)"))
    found.append(Finding("system", "CPU threads", True, str(torch.get_num_threads())))
    return found


def asr_findings() -> list[Finding]:
    found = []
    faster = encoder_finding("faster-whisper:tiny.en")
    found.append(Finding("asr", "faster-whisper:tiny.en", faster.ok, faster.detail))
    whisper = version_of("openai-whisper")
    found.append(Finding("asr", "openai-whisper:<checkpoint.pt>", whisper is not None,
                         "give a local openai-whisper checkpoint (its weights are not downloadable here)"
                         if whisper else "not installed (pip install openai-whisper)"))
    return found


def cache_findings(cache_dir: str | Path) -> list[Finding]:
    from mmser.features.encoders.model_paths import MODEL_DIR

    found = []
    for name, folder in (("feature cache", Path(cache_dir)), ("model folder", MODEL_DIR)):
        if folder.is_dir():
            files = [p for p in folder.rglob("*") if p.is_file()]
            size = sum(p.stat().st_size for p in files) / 1e6
            found.append(Finding("cache", name, True, f"{folder.resolve()}: {size:.1f} MB in {len(files)} files"))
        else:
            found.append(Finding("cache", name, True, f"{folder.resolve()}: not created yet"))
    return found


def diagnose(cache_dir: str | Path = "cache/features") -> list[Finding]:
    """Every finding, in report order."""
    return [*system_findings(), *package_findings(), *[encoder_finding(s) for s in ENCODERS], *asr_findings(),
            *cache_findings(cache_dir)]


def report(findings: list[Finding]) -> str:
    """The findings as one screen, grouped by section."""
    titles = {"system": "machine", "versions": "packages", "optional": "optional packages",
              "encoders": "encoders (located offline, not loaded)", "asr": "ASR backends", "cache": "caches"}
    lines = []
    for section, title in titles.items():
        lines.append(f"{title}:")
        lines += [f.line() for f in findings if f.section == section]
    return "\n".join(lines)

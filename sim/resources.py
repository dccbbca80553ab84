"""Where the project's data lives: ``models/``, ``scenarios/``, ``validation/``.

From a checkout (or an editable install) they are the folders beside ``sim/``; a wheel
carries them inside the package as ``sim/_data/``.
"""

from __future__ import annotations

from pathlib import Path

_PKG = Path(__file__).resolve().parent


def data_root() -> Path:
    bundled = _PKG / "_data"
    if (bundled / "models").is_dir():
        return bundled
    return _PKG.parent


def models_dir() -> Path:
    return data_root() / "models"


def scenarios_dir() -> Path:
    return data_root() / "scenarios"


def validation_dir() -> Path:
    return data_root() / "validation"

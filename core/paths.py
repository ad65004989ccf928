"""Where the repository lives, so bundled files (configs, recordings) resolve from any cwd."""

from __future__ import annotations

from pathlib import Path

__all__ = ["project_root"]


def project_root() -> Path:
    """The repository root: the directory that holds `core/`, `configs/` and `pyproject.toml`."""
    return Path(__file__).resolve().parent.parent

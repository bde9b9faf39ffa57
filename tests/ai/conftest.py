"""Tiny diffusion pipelines with random weights, built once per session from configs (as
diffusers tests itself; wanhe.ai.tiny), saved with save_pretrained: nothing is downloaded."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from wanhe.ai import tiny

    root = tmp_path_factory.mktemp("tiny-models")
    return {kind: tiny.build(kind, root / kind) for kind in tiny.KINDS}


@pytest.fixture(scope="session")
def tiny_sd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from wanhe.ai import tiny

    return tiny.build("sd", tmp_path_factory.mktemp("tiny-sd") / "sd")

"""Shared fixtures of the runner tests: the tiny Hugging Face models, built once per session."""

from __future__ import annotations

import pytest

from tests.hf_models import TinyModels, build_tiny_models


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> TinyModels:
    return build_tiny_models(tmp_path_factory.mktemp("hf-models"))

"""Shared fixtures: paths to the workspace's reference material (tests skip when absent)."""

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture
def shared_datasets() -> Path:
    p = SHARED / "datasets"
    if not p.is_dir():
        pytest.skip("../shared/datasets not present")
    return p


@pytest.fixture
def published_json() -> Path:
    p = SHARED / "reference" / "micro20_exact_models.json"
    if not p.is_file():
        pytest.skip("../shared/reference not present")
    return p

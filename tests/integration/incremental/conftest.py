"""One tiny shop through a real nightly run, built once; every test refreshes its own copy of it."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from serving.api import create_app
from tests.integration.incremental.serving_shop import ServingShop, build_serving_shop, open_shop


@pytest.fixture(scope="session")
def pristine_shop(tmp_path_factory, spark) -> Path:
    root = tmp_path_factory.mktemp("incremental-shop")
    build_serving_shop(root, spark)
    return root


@pytest.fixture
def shop(pristine_shop: Path, tmp_path: Path, spark) -> ServingShop:
    """A private copy (lake, landing, registry, serving store) of the nightly-published shop."""
    root = tmp_path / "shop"
    shutil.copytree(pristine_shop, root)
    return open_shop(root, spark)


@pytest.fixture
def api(shop: ServingShop) -> Iterator[TestClient]:
    """The storefront API over the shop's serving store."""
    with TestClient(create_app(shop.settings), base_url="http://localhost") as client:
        yield client

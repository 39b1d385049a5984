"""App factory for the end-to-end tests: the real app with the test bundle loader."""

from __future__ import annotations

from fake_bundle import FakeBundle

from api.main import create_app


def make_app():  # noqa: ANN201 - a FastAPI app
    return create_app(loader=FakeBundle.load, model_sync_seconds=1.0)

"""FastAPI (current) resolves decorated endpoints' string annotations, and requests are recorded.

FastAPI 0.95's resolution in the wrapper's globals is reproduced in test_signatures.py.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel

import botpulse
from botpulse.testing import capture


class TelegramUpdate(BaseModel):
    update_id: int
    text: str = ""


class Ack(BaseModel):
    ok: bool
    update_id: int


class Settings:
    """A dependency type defined only in this module."""

    def __init__(self) -> None:
        self.prefix = "bot"


@botpulse.measure("settings", kind="op")
def get_settings() -> Settings:
    return Settings()


def make_app() -> FastAPI:
    app = FastAPI()

    @app.post("/webhook", response_model=Ack)
    @botpulse.flow("webhook")
    async def webhook(
        update: TelegramUpdate, settings: Annotated[Settings, Depends(get_settings)]
    ) -> Ack:
        botpulse.tag(prefix=settings.prefix)
        return Ack(ok=True, update_id=update.update_id)

    @app.get("/health/{check}")
    @botpulse.measure("health", kind="http")
    def health(check: str, verbose: bool = False) -> dict[str, str | bool]:
        return {"check": check, "verbose": verbose}

    return app


def test_endpoints_resolve_annotations_and_are_recorded() -> None:
    with capture() as recorded:
        client = TestClient(make_app())
        response = client.post("/webhook", json={"update_id": 42, "text": "hi"})
        assert response.status_code == 200, response.text
        assert response.json() == {"ok": True, "update_id": 42}
        # A body that does not match the user's model is rejected by validation,
        # which only happens if FastAPI resolved "TelegramUpdate" to the model.
        assert client.post("/webhook", json={"text": "no id"}).status_code == 422
        response = client.get("/health/db", params={"verbose": "true"})
        assert response.json() == {"check": "db", "verbose": True}
        assert recorded.count("webhook", kind="flow") == 1
        assert recorded.count("settings") == 2
        assert recorded.count("health", kind="http") == 1


def test_openapi_schema_names_the_users_models() -> None:
    schema = make_app().openapi()
    body = schema["paths"]["/webhook"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"] == {"$ref": "#/components/schemas/TelegramUpdate"}
    params = {p["name"]: p for p in schema["paths"]["/health/{check}"]["get"]["parameters"]}
    assert params["verbose"]["schema"]["type"] == "boolean"

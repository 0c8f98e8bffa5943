from __future__ import annotations

from bot import create_app


def test_healthz_ok_when_redis_and_database_answer(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok", "redis": "ok", "twilio": "ok"}


def test_healthz_503_names_the_store_that_is_down(settings, engine):
    from bot.dev.embedded_redis import free_port

    app = create_app(settings.with_overrides(redis_url=f"redis://127.0.0.1:{free_port()}/0"))
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["database"] == "ok"
    assert body["redis"].startswith("unreachable")

"""The ceiling: a bare FastAPI app that answers what Rostra answers, with nothing around it.

``GET /user`` returns the body Rostra gave for ``GET /api/v1/user`` through a Pydantic
``response_model`` (FastAPI validates and serializes it on every request); ``GET /health``
returns Rostra's /health body as a plain dict. No middleware, no authentication, no database:
the difference to Rostra is what Rostra's own machinery costs.

The bodies come from the environment (``BENCH_USER_JSON``, ``BENCH_HEALTH_JSON``) because
foundation.py captures them from the running Rostra first; uvicorn is configured exactly as
``rostra serve`` configures it.
"""

from __future__ import annotations

import argparse
import json
import os
from datetime import datetime
from typing import Any

import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel


class Profile(BaseModel):
    first_name: str | None = None
    last_name: str | None = None
    timezone: str | None = None
    language: str | None = None


class User(BaseModel):
    """Rostra's ``UserOut``, field for field and in the same order (``livemode`` first)."""

    livemode: bool = True
    id: int
    username: str
    email: str | None
    name: str | None
    role: str
    plan: str
    created_at: datetime
    updated_at: datetime
    last_login: datetime | None
    profile: Profile


def create_app(user_json: str, health_json: str) -> FastAPI:
    user = User.model_validate_json(user_json)
    health: dict[str, Any] = json.loads(health_json)
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/user", response_model=User)
    async def get_user() -> User:
        return user

    @app.get("/health", response_model=None)
    async def get_health() -> dict[str, Any]:
        return health

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args()
    app = create_app(os.environ["BENCH_USER_JSON"], os.environ["BENCH_HEALTH_JSON"])
    # The same configuration as `rostra serve` (src/rostra/cli/main.py): loop and http "auto".
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        access_log=False,
        log_config=None,
        proxy_headers=False,
        server_header=False,
    )
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()

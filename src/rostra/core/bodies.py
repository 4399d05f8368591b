"""Bodies that may come as JSON or as an HTML form (login, OAuth token requests)."""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from rostra.core.errors import Invalid, UnsupportedMediaType

M = TypeVar("M", bound=BaseModel)

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


async def read_json_or_form(request: Request, model: type[M]) -> M:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    data: Any
    if content_type in FORM_TYPES:
        form = await request.form()
        data = {key: value for key, value in form.items() if isinstance(value, str)}
    elif content_type in ("application/json", "") or content_type.endswith("+json"):
        raw = await request.body()
        try:
            data = orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError:
            raise Invalid(
                "The request body is not valid JSON",
                details=[{"field": "body", "message": "Malformed JSON"}],
            ) from None
    else:
        raise UnsupportedMediaType("Send the body as application/json or a form")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**error, "loc": ("body", *error["loc"])} for error in exc.errors()]
        ) from None


def openapi_json_or_form(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` documenting a body read by ``read_json_or_form``."""
    schema = model.model_json_schema()
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": schema},
                "application/x-www-form-urlencoded": {"schema": schema},
            },
        }
    }

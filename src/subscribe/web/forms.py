"""Read what a visitor posted: an HTML form (urlencoded or multipart) or a JSON object.

Sites that post with ``fetch`` send JSON or form data and ask for JSON back
(``Accept: application/json``); browsers post forms and get pages. Bodies are small:
``create_app`` caps their size (``MAX_BODY_BYTES``), chunked or not, before we read them.
"""

from __future__ import annotations

import json

from fastapi import HTTPException, Request

from subscribe.errors import N_

MAX_BODY_BYTES = 16 * 1024
MAX_FIELDS = 20
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def content_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "") or (
        content_type(request) == "application/json"
    )


async def _json_object(request: Request) -> dict[str, object]:
    try:
        data = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError):
        raise HTTPException(400, N_("The request body is not valid JSON.")) from None
    if not isinstance(data, dict):
        raise HTTPException(400, N_('Send a JSON object, e.g. {"email": "you@example.org"}.'))
    return data


async def read_field_lists(request: Request) -> dict[str, list[str]]:
    """Every value of each posted field, for fields a form repeats (``categories``): a
    JSON field may be a string or a list of strings."""
    kind = content_type(request)
    if kind in FORM_TYPES:
        async with request.form(max_files=0, max_fields=MAX_FIELDS * 5) as form:
            lists: dict[str, list[str]] = {}
            for key, value in form.multi_items():
                if isinstance(value, str):
                    lists.setdefault(key, []).append(value)
            return lists
    if kind == "application/json":
        data = await _json_object(request)
        found: dict[str, list[str]] = {}
        for key, value in data.items():
            if isinstance(value, str):
                found[str(key)] = [value]
            elif isinstance(value, list):
                found[str(key)] = [v for v in value if isinstance(v, str)]
        return found
    return {key: [value] for key, value in (await read_fields(request)).items()}


def last_values(lists: dict[str, list[str]]) -> dict[str, str]:
    """One value per field, the last one, as ``read_fields`` gives them."""
    return {key: values[-1] for key, values in lists.items() if values}


async def read_fields(request: Request) -> dict[str, str]:
    """The posted text fields (last value wins); files and non-text JSON values are ignored."""
    kind = content_type(request)
    if kind == "application/json":
        data = await _json_object(request)
        return {str(k): v for k, v in data.items() if isinstance(v, str)}
    if kind in FORM_TYPES:
        async with request.form(max_files=0, max_fields=MAX_FIELDS) as form:
            return {k: v for k, v in form.items() if isinstance(v, str)}
    if not await request.body():
        return {}
    raise HTTPException(415, N_("Send the form as a web form or as JSON."))

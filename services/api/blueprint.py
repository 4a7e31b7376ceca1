"""The /api/v1 blueprint and `endpoint`, the one decorator every API view wears."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar, get_type_hints

from flask import Blueprint, request
from pydantic import BaseModel, ValidationError
from spectree import Response

from services.api.errors import MalformedBody, UnsupportedMediaType, install_handlers, invalid_input
from services.api.schemas.common import ErrorBody
from services.api.security import Policy, attach, authorize, require_roles
from services.api.spec import API_PREFIX, BEARER, after_hook, before_hook, locations_of, spec
from services.auth import ALL_ROLES, Scope
from services.errors import InvalidInput

F = TypeVar("F", bound=Callable[..., Any])

api = Blueprint("api_v1", __name__, url_prefix=API_PREFIX)
install_handlers(api)

# Every endpoint can answer these; each view adds the ones its logic can raise.
COMMON_ERRORS = (401, 403)
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def endpoint(
    *,
    scope: Scope,
    resp: type[BaseModel] | None,
    roles: Iterable[str] = ALL_ROLES,
    status: int = 200,
    errors: Iterable[int] = (),
    tags: Sequence[str] = (),
    raw_body: dict[str, Any] | None = None,
) -> Callable[[F], F]:
    """Declare who may call a view, its models and its documentation; enforce all of it.

    Request models come from the view's annotations: `query: SomeQuery`, `json: SomeBody`
    (validated by spectree) and `path: SomePath` (validated here from the URL variables).
    `resp` is the model of the success body answered with `status`. `raw_body` documents a
    body the view reads itself (CSV, XML): an OpenAPI requestBody object.
    """
    policy = Policy(scope=scope, roles=require_roles(roles))

    def decorate(view: F) -> F:
        hints = _request_models(view)
        path_model = hints.get("path")
        locations = locations_of(query=hints.get("query"), body=hints.get("json"))
        validated = spec.validate(
            resp=_responses(resp, status=status, errors=errors),
            tags=list(tags),
            security={BEARER: []},
            operation_id=view.__name__,
            before=before_hook(locations=locations),
            after=after_hook,
            path_parameter_descriptions=_path_descriptions(path_model),
        )(view)

        @functools.wraps(validated)
        def guarded(**view_args: Any) -> Any:
            # Authorise before anything else, so an unauthorised caller learns nothing from
            # validation messages.
            authorize(policy)
            _refuse_nul(request.args.items(multi=True), view_args.items())
            if "json" in hints:
                _check_body()
            if path_model is not None:
                return validated(path=_parse_path(path_model, view_args))
            return validated(**view_args)

        guarded.__doc__ = f"{(view.__doc__ or '').strip()}\n\n{policy.describe()}"
        attach(guarded, policy)
        if raw_body is not None:
            guarded.beacon_raw_body = raw_body  # type: ignore[attr-defined]
        return guarded  # type: ignore[return-value]

    return decorate


def _request_models(view: Callable[..., Any]) -> dict[str, type[BaseModel]]:
    hints = get_type_hints(view)
    return {
        name: hints[name]
        for name in ("query", "json", "path")
        if isinstance(hints.get(name), type) and issubclass(hints[name], BaseModel)
    }


def _responses(model: type[BaseModel] | None, *, status: int, errors: Iterable[int]) -> Response:
    # spectree adds 422 (with ErrorBody, see spec.py) to every endpoint by itself.
    codes: dict[str, Any] = {f"HTTP_{status}": model}
    for code in sorted({*COMMON_ERRORS, *errors}):
        codes[f"HTTP_{code}"] = ErrorBody
    return Response(**codes)


def _path_descriptions(model: type[BaseModel] | None) -> dict[str, str] | None:
    if model is None:
        return None
    return {name: field.description or "" for name, field in model.model_fields.items()}


def _parse_path(model: type[BaseModel], view_args: dict[str, Any]) -> BaseModel:
    try:
        return model.model_validate(view_args)
    except ValidationError as error:
        raise invalid_input(error, location="path") from None


def _check_body() -> None:
    """A body that is not JSON is refused as such, not reported as missing fields."""
    if request.method not in BODY_METHODS or not request.get_data(cache=True):
        return
    if not request.is_json:
        raise UnsupportedMediaType("send the request body as application/json")
    try:
        document = request.get_json(silent=True)
    except RecursionError:
        # Deeply nested arrays exhaust the decoder's recursion: hostile input, not a crash.
        raise MalformedBody("the request body is nested too deeply") from None
    if document is None:
        raise MalformedBody("the request body is not valid JSON")
    _refuse_nul(_json_strings(document))


def _refuse_nul(*pairs: Iterable[Any]) -> None:
    """InvalidInput for a NUL character in a name or value.

    PostgreSQL cannot store or compare text holding NUL, so it would fail the query; raw
    bodies (alarms, telemetry, VES) keep theirs and are cleaned by their parsers instead.
    """
    for group in pairs:
        for item in group:
            texts = item if isinstance(item, tuple) else (item,)
            if any(isinstance(text, str) and "\x00" in text for text in texts):
                raise InvalidInput("text must not contain NUL characters")


def _json_strings(node: Any) -> Iterator[str]:
    """Every key and string value of a JSON document, depth first."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            yield from (k for k in item if isinstance(k, str))
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)

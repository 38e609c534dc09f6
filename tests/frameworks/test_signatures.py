"""Decorated functions keep their signature, and their string annotations resolve like the original's.

``from __future__ import annotations`` makes every annotation a string that a framework
resolves later, in some function's ``__globals__``. FastAPI before 0.100 used the
*wrapper's* globals; these tests reproduce its exact resolution (FastAPI 0.95.2,
``fastapi/dependencies/utils.py:get_typed_signature``) so they run offline, and the
types live in this module, as a user's would.
"""

from __future__ import annotations

import asyncio
import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ForwardRef

import pytest

import botpulse
from botpulse.testing import capture


@dataclass
class TelegramUpdate:
    """A type only this module defines: botpulse's globals do not have it."""

    update_id: int


@dataclass
class Reply:
    text: str


def get_typed_signature_fastapi_095(call: Callable[..., Any]) -> inspect.Signature:
    """FastAPI 0.95.2's ``get_typed_signature``: annotations evaluated in ``call.__globals__``."""
    signature = inspect.signature(call)
    globalns = getattr(call, "__globals__", {})

    def typed(annotation: Any) -> Any:
        if isinstance(annotation, str):
            # pydantic.typing.evaluate_forwardref == ForwardRef._evaluate(globalns, globalns)
            return typing._eval_type(ForwardRef(annotation), globalns, globalns)  # type: ignore[attr-defined]
        return annotation

    return inspect.Signature(
        [
            inspect.Parameter(p.name, p.kind, default=p.default, annotation=typed(p.annotation))
            for p in signature.parameters.values()
        ]
    )


def get_typed_return_annotation_fastapi_095(call: Callable[..., Any]) -> Any:
    """FastAPI 0.95.2's ``get_typed_return_annotation`` (the response model)."""
    annotation = inspect.signature(call).return_annotation
    if annotation is inspect.Signature.empty:
        return None
    globalns = getattr(call, "__globals__", {})
    if isinstance(annotation, str):
        return typing._eval_type(ForwardRef(annotation), globalns, globalns)  # type: ignore[attr-defined]
    return annotation


def _sync_handler(update: TelegramUpdate, *, verbose: bool = False) -> Reply:
    """Answer an update."""
    return Reply(f"sync {update.update_id} {verbose}")


async def _async_handler(update: TelegramUpdate, *, verbose: bool = False) -> Reply:
    """Answer an update."""
    return Reply(f"async {update.update_id} {verbose}")


DECORATORS: dict[str, Callable[[Callable[..., Any]], Callable[..., Any]]] = {
    "measure": botpulse.measure("handler"),
    "measure_with_attrs": botpulse.measure("handler", kind="http", route="/x"),
    "measure_with_tags": botpulse.measure("handler", tags={"path": "a"}),
    "flow": botpulse.flow("handler"),
    "flow_with_attrs": botpulse.flow("handler", source="webhook"),
}


@pytest.fixture(params=sorted(DECORATORS))
def decorate(request: pytest.FixtureRequest) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return DECORATORS[request.param]


@pytest.fixture(params=["sync", "async"])
def original(request: pytest.FixtureRequest) -> Callable[..., Any]:
    return _sync_handler if request.param == "sync" else _async_handler


def test_signature_and_metadata_are_the_originals(
    decorate: Callable[[Callable[..., Any]], Callable[..., Any]], original: Callable[..., Any]
) -> None:
    wrapped = decorate(original)
    assert wrapped is not original
    assert inspect.signature(wrapped) == inspect.signature(original)
    assert wrapped.__name__ == original.__name__
    assert wrapped.__qualname__ == original.__qualname__
    assert wrapped.__module__ == __name__
    assert wrapped.__doc__ == "Answer an update."
    assert wrapped.__annotations__ == original.__annotations__
    assert wrapped.__wrapped__ is original  # type: ignore[attr-defined]
    assert inspect.iscoroutinefunction(wrapped) == inspect.iscoroutinefunction(original)


def test_string_annotations_resolve_in_the_wrappers_globals(
    decorate: Callable[[Callable[..., Any]], Callable[..., Any]], original: Callable[..., Any]
) -> None:
    wrapped = decorate(original)
    assert wrapped.__globals__ is original.__globals__  # type: ignore[attr-defined]
    # What FastAPI 0.95 does: NameError('TelegramUpdate') with the wrapper in botpulse's globals.
    typed = get_typed_signature_fastapi_095(wrapped)
    assert typed.parameters["update"].annotation is TelegramUpdate
    assert typed.parameters["verbose"].annotation is bool
    assert get_typed_return_annotation_fastapi_095(wrapped) is Reply
    # What typing (and FastAPI >= 0.100, discord.py, pydantic) does: unwrap or read __globals__.
    hints = typing.get_type_hints(wrapped)
    assert hints == {"update": TelegramUpdate, "verbose": bool, "return": Reply}


def test_rehomed_wrappers_still_record(
    decorate: Callable[[Callable[..., Any]], Callable[..., Any]], original: Callable[..., Any]
) -> None:
    wrapped = decorate(original)
    with capture() as recorded:
        result = wrapped(TelegramUpdate(5), verbose=True)
        if inspect.iscoroutine(result):
            result = asyncio.run(result)
        assert result == Reply(f"{'async' if 'async' in original.__name__ else 'sync'} 5 True")
        assert recorded.count("handler") == 1


def test_exceptions_still_propagate_and_are_recorded() -> None:
    @botpulse.measure("boom")
    def boom(update: TelegramUpdate) -> None:
        raise KeyError(update.update_id)

    with capture() as recorded:
        with pytest.raises(KeyError):
            boom(TelegramUpdate(1))
        assert recorded.count("boom", status="error") == 1


def test_callables_without_globals_are_wrapped_too() -> None:
    class Handler:
        def __call__(self, update: TelegramUpdate) -> int:
            return update.update_id

    wrapped = botpulse.measure("callable_object")(Handler())
    with capture() as recorded:
        assert wrapped(TelegramUpdate(3)) == 3
        assert recorded.count("callable_object") == 1


def test_methods_keep_self_and_resolve() -> None:
    class Bot:
        @botpulse.flow("method")
        async def handle(self, update: TelegramUpdate) -> Reply:
            return Reply(str(update.update_id))

    assert list(inspect.signature(Bot.handle).parameters) == ["self", "update"]
    typed = get_typed_signature_fastapi_095(Bot().handle)
    assert typed.parameters["update"].annotation is TelegramUpdate
    with capture() as recorded:
        assert asyncio.run(Bot().handle(TelegramUpdate(9))) == Reply("9")
        assert recorded.count("method", kind="flow") == 1

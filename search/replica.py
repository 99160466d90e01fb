"""Read replicas (``catalens serve --read-only``): refuse the write routes, follow the writer's changes.

A replica serves a store that one indexer (or writer service) writes: it never takes the writer lock and never
writes the store. :class:`WriteRefusal`, a dependency of every router, answers every write route with 405 before
the route's own dependencies (access checks) or code run (and the service's error handlers give the same 405 for
a write whose body does not even parse); write routes are found by their access dependency (write scope), so a
new write route is refused without a list to keep up to date, and :func:`document_refusals` adds the 405 to
their OpenAPI operations. :class:`ChangeFollower` picks up the items a writer commits between the
generations it publishes (the engine's delta), as the service's refresh loop picks up the generations.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from fastapi import HTTPException, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from catalens.search.security import require_by_method, require_write

if TYPE_CHECKING:
    from catalens.search.engine import SearchEngine

#: The answer every write route gives on a read replica.
WRITE_REFUSED = "this replica is read-only; send writes to the writer"
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: (OpenAPI path, method) of a route, e.g. ``("/v1/items/{item_id}", "DELETE")``.
Operation = tuple[str, str]


def write_operations(routes: Iterable[BaseRoute]) -> frozenset[Operation]:
    """The operations among ``routes`` that write: their access check asks for write scope (``require_write``,
    or ``require_by_method`` on a method other than GET/HEAD)."""
    found: set[Operation] = set()
    for route in routes:
        if not isinstance(route, APIRoute):
            continue
        calls = set(_calls(route.dependant))
        for method in (route.methods or set()) - _READ_METHODS:
            if require_write in calls or require_by_method in calls:
                found.add((route.path_format, method))
    return frozenset(found)


def _calls(dependant: Dependant) -> Iterable[Any]:
    for sub in dependant.dependencies:
        yield sub.call
        yield from _calls(sub)


def document_refusals(schema: dict[str, Any], writes: frozenset[Operation]) -> dict[str, Any]:
    """Add the 405 to the OpenAPI operations of the write routes (in place), so a replica's schema is truthful."""
    for path, method in writes:
        operation = schema.get("paths", {}).get(path, {}).get(method.lower())
        if operation is not None:
            operation.setdefault("responses", {})["405"] = {
                "description": f"{WRITE_REFUSED} (the Allow header lists the methods served at this path)"
            }
    return schema


class WriteRefusal:
    """App-wide dependency of a read replica: a request routed to a write route gets 405, ``Allow`` and a message.

    It runs first among a route's dependencies, so the refusal comes before any access check or write. A body
    FastAPI cannot parse or validate fails before dependencies run; the service's error handlers turn those
    failures on a write route into the same 405 (see :meth:`refusal`), so a replica refuses writes uniformly.
    """

    def __init__(self, writes: frozenset[Operation]) -> None:
        self._writes = writes

    async def __call__(self, request: Request) -> None:
        refusal = self.refusal(request)
        if refusal is not None:
            raise refusal

    def refusal(self, request: Request) -> HTTPException | None:
        """The 405 for a request routed to a write route, else ``None``."""
        route = request.scope.get("route")
        if request.method in _READ_METHODS or not isinstance(route, APIRoute):
            return None
        if (route.path_format, request.method) not in self._writes:
            return None
        return HTTPException(status_code=405, detail=WRITE_REFUSED, headers={"Allow": self._allowed(request, route)})

    def _allowed(self, request: Request, route: APIRoute) -> str:
        """The methods this replica serves at the route's path, from the app's schema (possibly none)."""
        documented = request.app.openapi().get("paths", {}).get(route.path_format, {})
        served = (m.upper() for m in documented if (route.path_format, m.upper()) not in self._writes)
        return ", ".join(sorted(served))


class ChangeFollower:
    """Applies the items a writer committed since the engine's snapshot, once per change of the store.

    The store's change stamp (SQLite's ``data_version``) moves when another process commits; reading it is
    cheap, so the delta (every vector since the generation) is read again only when something changed.
    """

    def __init__(self, engine: SearchEngine) -> None:
        self._stamp = engine.store.change_stamp()

    def catch_up(self, engine: SearchEngine, *, refreshed: bool) -> bool:
        """Bring ``engine`` up to the store's committed items; returns whether anything was applied.

        Args:
            engine: the engine being served.
            refreshed: a new generation was just swapped in (its delta is already current).
        """
        stamp = engine.store.change_stamp()
        if stamp == self._stamp:
            return False
        # The stamp is read before the delta: a commit landing during it moves the stamp, so the next call applies it.
        self._stamp = stamp
        if not refreshed:
            engine.apply_changes()
        return not refreshed

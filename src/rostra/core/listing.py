"""The one list machinery: offset, page and cursor pagination, sorting, search and filters.

A domain describes its list once with a ``ListSpec`` (sortable columns, filters, searchable
columns); ``parse_list_params`` reads the query string strictly (an unknown parameter, a value
over the maximum or an unknown sort field is a 400 naming the parameter) and ``paginate`` runs
the query and writes the contract's envelope and ``Link`` header (section 5).

Cursors are keyset positions ``(sort value, id)`` signed with the server key, so a page deep in
a million rows costs what the first page costs, rows inserted meanwhile are neither skipped nor
repeated, and a forged cursor is refused. An empty ``cursor=`` asks for the first page in cursor
mode. Sort columns must be NOT NULL: a keyset cannot step past NULLs.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import cached_property, lru_cache
from typing import Any, Generic, Literal, TypeVar
from urllib.parse import quote_plus, urlencode

import orjson
from fastapi import Request
from pydantic import BaseModel, Field
from sqlalchemy import Select, and_, bindparam, func, or_, select, type_coerce
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import BindParameter, ColumnElement
from sqlalchemy.types import NullType
from starlette.responses import Response

from rostra.core.db import Database
from rostra.core.errors import Invalid
from rostra.core.schemas import MAX_ID

DEFAULT_LIMIT = 50
MAX_LIMIT = 100
DEFAULT_PER_PAGE = 20
Mode = Literal["offset", "page", "cursor"]
COMMON_PARAMS = frozenset(
    {"limit", "offset", "page", "per_page", "cursor", "include_total", "sort", "order"}
)


@dataclass(frozen=True)
class Filter:
    """A query parameter that narrows the list: ``parse`` turns the text into a value (raising
    ValueError with a message), ``apply`` turns the value into a WHERE clause."""

    apply: Callable[[Any], ColumnElement[bool]]
    parse: Callable[[str], Any] = str


def one_of(*choices: str) -> Callable[[str], str]:
    """A ``Filter.parse`` that accepts only ``choices`` (a typo is a 400, not an empty list)."""

    def parse(text: str) -> str:
        if text not in choices:
            raise ValueError(f"Must be one of: {', '.join(choices)}")
        return text

    return parse


def whole_number(text: str) -> int:
    """A ``Filter.parse`` for ids (``owner_id=``, ``project_id=``): one no id column can hold
    is a 400, not a database overflow."""
    try:
        value = int(text)
    except ValueError:
        raise ValueError("Must be a whole number") from None
    if not 1 <= value <= MAX_ID:
        raise ValueError(f"Must be between 1 and {MAX_ID}")
    return value


@dataclass(frozen=True)
class ListSpec:
    id_column: Any
    sort_columns: Mapping[str, Any]
    default_sort: str = "created_at"
    default_order: Literal["asc", "desc"] = "desc"
    filters: Mapping[str, Filter] = field(default_factory=dict)
    search_columns: Sequence[Any] = ()
    created_column: Any = None

    @cached_property
    def allowed_params(self) -> frozenset[str]:
        names = set(COMMON_PARAMS) | set(self.filters)
        if self.search_columns:
            names.add("search")
        if self.created_column is not None:
            names |= {"created_after", "created_before"}
        return frozenset(names)


@dataclass(frozen=True)
class ListParams:
    mode: Mode
    limit: int
    offset: int
    page: int
    sort: str
    order: Literal["asc", "desc"]
    cursor: tuple[Any, int] | None
    include_total: bool
    where: tuple[ColumnElement[bool], ...]


ItemT = TypeVar("ItemT", bound=BaseModel)


class Pagination(BaseModel):
    """Which fields a list answers with depends on its mode: offset (``limit``, ``offset``,
    ``total``), page (``page``, ``per_page``, ``total``, ``pages``) or cursor (``limit``, and
    ``total`` only with ``include_total=true``)."""

    limit: int | None = None
    offset: int | None = None
    page: int | None = None
    per_page: int | None = None
    total: int | None = None
    pages: int | None = None
    has_more: bool
    next_cursor: str | None = Field(
        default=None, description="Pass as ?cursor= to get the rows after this page"
    )


class Page(BaseModel, Generic[ItemT]):
    """What every list answers; the ``response_model`` of list routes (``paginate`` writes it)."""

    data: list[ItemT]
    pagination: Pagination


def _int_param(params: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise Invalid.field(name, "Must be a whole number") from None
    if value < lo or value > hi:
        raise Invalid.field(name, f"Must be between {lo} and {hi}")
    return value


def parse_time(text: str) -> datetime:
    """An ISO 8601 date or time; one without an offset is taken as UTC."""
    try:
        value = datetime.fromisoformat(text.replace(" ", "+"))
    except ValueError:
        try:
            value = datetime.combine(date.fromisoformat(text), datetime.min.time())
        except ValueError:
            raise ValueError("Must be an ISO 8601 time such as 2024-01-15T10:30:00Z") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _bool_param(params: Mapping[str, str], name: str) -> bool:
    raw = params.get(name, "false").lower()
    if raw not in ("true", "false", "1", "0"):
        raise Invalid.field(name, "Must be true or false")
    return raw in ("true", "1")


class CursorCodec:
    """Signed, opaque keyset positions."""

    def __init__(self, key: str) -> None:
        self._key = hashlib.sha256(b"rostra-cursor:" + key.encode()).digest()

    def _sign(self, payload: bytes) -> bytes:
        # The one-shot digest: an ``hmac.new`` object cost more than the digest itself.
        return hmac.digest(self._key, payload, "sha256")[:12]

    def encode(self, sort: str, order: str, value: Any, last_id: int) -> str:
        if isinstance(value, datetime):
            value = {"t": (value if value.tzinfo is UTC else value.astimezone(UTC)).isoformat()}
        payload = orjson.dumps([sort, order, value, last_id])
        return base64.urlsafe_b64encode(self._sign(payload) + payload).rstrip(b"=").decode()

    def decode(self, text: str, sort: str, order: str) -> tuple[Any, int]:
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            signature, payload = raw[:12], raw[12:]
            if not hmac.compare_digest(signature, self._sign(payload)):
                raise ValueError("bad signature")
            cursor_sort, cursor_order, value, last_id = orjson.loads(payload)
        except (ValueError, binascii.Error, orjson.JSONDecodeError, TypeError):
            raise Invalid.field("cursor", "This cursor is not valid") from None
        if (cursor_sort, cursor_order) != (sort, order):
            raise Invalid.field("cursor", "This cursor was made for another sort order")
        if isinstance(value, dict) and "t" in value:
            value = datetime.fromisoformat(value["t"])
        return value, int(last_id)


def parse_list_params(request: Request, spec: ListSpec, codec: CursorCodec) -> ListParams:
    query = request.query_params
    allowed = spec.allowed_params
    for name in query:
        if name not in allowed:
            raise Invalid.field(name, "Unknown query parameter")
    if len(query.multi_items()) > len(query):  # some name given twice: find the first
        for name in query:
            if len(query.getlist(name)) > 1:
                raise Invalid.field(name, "Give this parameter once")
    # Each name once from here: a plain dict, whose lookups of absent names are cheap.
    params = dict(query.items())

    mode: Mode = "offset"
    if "cursor" in params:
        mode = "cursor"
        for name in ("page", "per_page", "offset"):
            if name in params:
                raise Invalid.field(name, "Cannot be combined with cursor")
    elif "page" in params or "per_page" in params:
        mode = "page"
        for name in ("limit", "offset"):
            if name in params:
                raise Invalid.field(name, "Cannot be combined with page or per_page; use per_page")

    sort_param = params.get("sort", spec.default_sort)
    order: Literal["asc", "desc"] = spec.default_order
    if sort_param.startswith("-"):
        sort_param, order = sort_param[1:], "desc"
        if "order" in params:
            raise Invalid.field("order", "Cannot be combined with sort=-field")
    elif "sort" in params:
        order = "asc"
    if "order" in params:
        if params["order"] not in ("asc", "desc"):
            raise Invalid.field("order", "Must be asc or desc")
        order = params["order"]  # type: ignore[assignment]
    if sort_param not in spec.sort_columns:
        known = ", ".join(sorted(spec.sort_columns))
        raise Invalid.field("sort", f"Cannot sort by '{sort_param}'; sort by one of: {known}")

    if mode == "page":
        limit = _int_param(params, "per_page", DEFAULT_PER_PAGE, 1, MAX_LIMIT)
    else:
        limit = _int_param(params, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    page = _int_param(params, "page", 1, 1, 10_000_000)
    offset = _int_param(params, "offset", 0, 0, 100_000_000)
    if mode == "page":
        offset = (page - 1) * limit
    cursor = None
    if params.get("cursor"):
        cursor = codec.decode(params["cursor"], sort_param, order)

    where: list[ColumnElement[bool]] = []
    for name, spec_filter in spec.filters.items():
        if name in params:
            try:
                value = spec_filter.parse(params[name])
            except ValueError as exc:
                raise Invalid.field(name, str(exc)) from None
            where.append(spec_filter.apply(value))
    if "search" in params and params["search"].strip():
        term = params["search"].strip().lower()
        where.append(
            or_(*(func.lower(col).contains(term, autoescape=True) for col in spec.search_columns))
        )
    for name, op in (("created_after", "gt"), ("created_before", "lt")):
        if name in params:
            try:
                moment = parse_time(params[name])
            except ValueError as exc:
                raise Invalid.field(name, str(exc)) from None
            column = spec.created_column
            assert column is not None  # allowed_params admits these only with a column
            where.append(column > moment if op == "gt" else column < moment)

    return ListParams(
        mode=mode,
        limit=limit,
        offset=offset,
        page=page,
        sort=sort_param,
        order=order,
        cursor=cursor,
        include_total=mode != "cursor" or _bool_param(params, "include_total"),
        where=tuple(where),
    )


_AFTER_VALUE = "rostra_after_value"
_AFTER_ID = "rostra_after_id"


@lru_cache(maxsize=256)
def _keyset_after(sort_col: Any, id_col: Any, order: str) -> ColumnElement[bool]:
    """Rows after the cursor's ``(value, id)`` in the list's order, as bound parameters: built
    once per sort, since building the expression costs more than running it. The redundant
    bound on the sort column alone lets the database walk that column's index instead of
    filtering every row."""
    value: BindParameter[Any] = bindparam(_AFTER_VALUE)
    last_id: BindParameter[Any] = bindparam(_AFTER_ID)
    if order == "desc":
        return and_(
            sort_col <= value, or_(sort_col < value, and_(sort_col == value, id_col < last_id))
        )
    return and_(sort_col >= value, or_(sort_col > value, and_(sort_col == value, id_col > last_id)))


CountQuery = Callable[[Sequence[ColumnElement[bool]]], Select[Any]]
"""Given a list's filter clauses, a select of the one number ``total`` is: a domain that knows a
cheaper way to count its rows than counting the list's query passes one to ``paginate``."""


@lru_cache(maxsize=512)
def _count_of(query: Select[Any]) -> Select[Any]:
    return select(func.count()).select_from(query.order_by(None).subquery())


async def _rows(
    source: AsyncSession | Database,
    statement: Select[Any],
    params: Mapping[str, Any],
    *,
    built_once: bool,
) -> Sequence[Any]:
    if isinstance(source, Database):
        return await source.read(statement, params, prepared=built_once)
    rows: Sequence[Any] = (await source.execute(statement, params)).all()
    return rows


async def paginate(
    source: AsyncSession | Database,
    request: Request,
    query: Select[Any],
    spec: ListSpec,
    params: ListParams,
    codec: CursorCodec,
    render: Callable[[Any], BaseModel | bytes] | None = None,
    *,
    render_items: Callable[[Sequence[Any]], bytes] | None = None,
    load_items: Callable[[Sequence[Any]], Awaitable[Sequence[Any]]] | None = None,
    count: CountQuery | None = None,
) -> Response:
    """Run ``query`` (a select of one entity, or of columns) narrowed by ``params`` and answer
    the list; ``render`` turns an entity or row into its model or straight into its JSON, or
    ``render_items`` turns the page's rows into their JSON array at once (one serializer call
    for the page rather than one per row). ``load_items``, if given, makes the page's items of
    its rows first (a list that selects only its rows' keys and finds what they stand for
    elsewhere); unless the page is sorted by its creation time or id, the next cursor is then
    taken from the keys' read, which selects the sort column too, so a row rewritten before its
    item is found still marks where the page ended.
    ``source`` is the request's session, or for a select of columns that needs no session the
    ``Database`` itself (``Database.read``: cheaper by far on SQLite, and cheaper again for a
    list without filters when ``query`` and ``count`` give the same objects each time, as the
    projects' do: its statements are then built once and run prepared).
    ``total`` rides along in the page's query as an uncorrelated scalar subquery
    (computed once), so a counted page costs one round trip; only a page past the end counts
    apart."""
    # Only a Database source promises a query built once; a session's list builds its query
    # for each request, and filters are new clause objects each time: those statements are
    # built afresh rather than filling the caches with ones never asked for again.
    built_once = isinstance(source, Database) and not params.where
    build_page: Callable[..., Select[Any]]
    count_rows: Callable[[Select[Any]], Select[Any]]
    if built_once:
        build_page, count_rows = _page_query, _count_of
    else:
        build_page, count_rows = _page_query.__wrapped__, _count_of.__wrapped__
    if params.where:
        query = query.where(*params.where)
    total_query = None
    if params.include_total:
        total_query = count(params.where) if count is not None else count_rows(query)
    sort_col = spec.sort_columns[params.sort]
    # Items found apart from their keys may have been written to since: the next cursor then
    # comes from the keys' read, unless the page is sorted by what no write changes.
    keys_hold_sort_value = (
        load_items is not None
        and sort_col is not spec.id_column
        and sort_col is not spec.created_column
    )
    page_query = build_page(
        query,
        sort_col,
        spec.id_column,
        params.order,
        keyset=params.cursor is not None,
        skips=params.offset > 0,
        total_query=total_query,
        sort_value=keys_hold_sort_value,
    )
    bound: dict[str, Any] = {_LIMIT: params.limit + 1, _OFFSET: params.offset}
    if params.cursor is not None:
        bound.update({_AFTER_VALUE: params.cursor[0], _AFTER_ID: params.cursor[1]})
    rows = list(await _rows(source, page_query, bound, built_once=built_once))
    total = None
    if total_query is not None and rows:
        total = int(rows[0][-1])
    elif total_query is not None:
        total = int((await _rows(source, total_query, {}, built_once=built_once))[0][0])
    has_more = len(rows) > params.limit
    rows = rows[: params.limit]
    if load_items is not None:
        items: Sequence[Any] = await load_items(rows)
    else:
        # A select of one entity (or column) gives rows of one, plus the total when counted.
        one_entity = bool(rows) and len(rows[0]) == 1 + (total_query is not None)
        items = [row[0] for row in rows] if one_entity else rows
    next_cursor = None
    if has_more and keys_hold_sort_value:
        last_key = rows[-1]
        sort_value = _sort_value(source, sort_col, getattr(last_key, _SORT_VALUE))
        next_cursor = codec.encode(params.sort, params.order, sort_value, last_key.id)
    elif has_more and items:
        last = items[-1]
        next_cursor = codec.encode(params.sort, params.order, getattr(last, sort_col.key), last.id)

    pagination, links = _pagination_and_links(request, params, total, has_more, next_cursor)
    if render_items is not None:
        data = render_items(items)
    elif render is not None:
        data = b"[" + b",".join(_json_of(render(item)) for item in items) + b"]"
    else:
        raise TypeError("paginate needs render or render_items")
    content = b'{"data":' + data + b',"pagination":' + orjson.dumps(pagination) + b"}"
    return Response(content, headers={"Link": ", ".join(links)}, media_type="application/json")


_LIMIT = "rostra_limit"
_OFFSET = "rostra_offset"
_SORT_VALUE = "rostra_sort_value"


def _sort_value(source: AsyncSession | Database, sort_col: Any, raw: Any) -> Any:
    """A sort column's value as the database gave it (``_SORT_VALUE``), turned by the
    column's type as a row of it would be (as ``core.sqlite_reads.Prepared`` turns a row's
    values: by the type's implementation for the dialect): a time read from SQLite's text, say."""
    dialect = source.engine.dialect if isinstance(source, Database) else source.get_bind().dialect
    processor = sort_col.type.dialect_impl(dialect).result_processor(dialect, None)
    return raw if processor is None or raw is None else processor(raw)


@lru_cache(maxsize=512)
def _page_query(
    query: Select[Any],
    sort_col: Any,
    id_col: Any,
    order: str,
    *,
    keyset: bool,
    skips: bool,
    total_query: Select[Any] | None,
    sort_value: bool = False,
) -> Select[Any]:
    """The page's statement, its limit, offset (``skips``) and cursor position bound at
    execution; with ``sort_value``, each row's sort column too (``_SORT_VALUE``). Built once
    for the objects it is built from, for a query built once (a ``Database`` source): the
    project list skips both building it and SQLAlchemy's walk of a new statement for its
    cache key (about as costly as a small page's query on SQLite)."""
    if sort_value:
        # As the database gives it: a page needs only its last row's, turned by ``_sort_value``.
        query = query.add_columns(type_coerce(sort_col, NullType()).label(_SORT_VALUE))
    if order == "desc":
        page_query = query.order_by(sort_col.desc(), id_col.desc())
    else:
        page_query = query.order_by(sort_col.asc(), id_col.asc())
    if keyset:
        page_query = page_query.where(_keyset_after(sort_col, id_col, order))
    if total_query is not None:
        page_query = page_query.add_columns(
            total_query.correlate(None).scalar_subquery().label("rostra_total")
        )
    page_query = page_query.limit(bindparam(_LIMIT))
    # No OFFSET clause at all on a first page: PostgreSQL plans a prepared statement for any
    # offset once it has run a few times, and such a plan read a million rows' first page
    # seven times slower.
    return page_query.offset(bindparam(_OFFSET)) if skips else page_query


def _json_of(item: BaseModel | bytes) -> bytes:
    return item if isinstance(item, bytes) else item.__pydantic_serializer__.to_json(item)


def _pagination_and_links(
    request: Request,
    params: ListParams,
    total: int | None,
    has_more: bool,
    next_cursor: str | None,
) -> tuple[dict[str, Any], list[str]]:
    """The mode's pagination object (section 5) and its RFC 8288 links; ``first`` is always
    there, so every list answers a Link header."""
    links: list[str] = []
    # The request's own address and parameters, with the position replaced in each link.
    base = str(request.url).partition("?")[0]
    kept = [
        (name, value)
        for name, value in request.query_params.multi_items()
        if name not in ("offset", "page", "cursor")
    ]
    # Encoded once for every link: each appends its own position (a plain parameter name).
    start = f"<{base}?{urlencode(kept)}&" if kept else f"<{base}?"

    def link(rel: str, name: str, value: object) -> None:
        links.append(f'{start}{name}={quote_plus(str(value))}>; rel="{rel}"')

    if params.mode == "cursor":
        pagination: dict[str, Any] = {
            "limit": params.limit,
            "has_more": has_more,
            "next_cursor": next_cursor,
        }
        if total is not None:
            pagination["total"] = total
        link("first", "cursor", "")
        if next_cursor:
            link("next", "cursor", next_cursor)
        return pagination, links

    assert total is not None  # offset and page modes always count
    pages = math.ceil(total / params.limit)
    if params.mode == "page":
        pagination = {
            "page": params.page,
            "per_page": params.limit,
            "total": total,
            "pages": pages,
            "has_more": has_more,
            "next_cursor": next_cursor,
        }
        link("first", "page", 1)
        if params.page > 1:
            link("prev", "page", params.page - 1)
        if has_more:
            link("next", "page", params.page + 1)
        link("last", "page", max(pages, 1))
        return pagination, links

    pagination = {
        "limit": params.limit,
        "offset": params.offset,
        "total": total,
        "has_more": has_more,
        "next_cursor": next_cursor,
    }
    link("first", "offset", 0)
    if params.offset > 0:
        link("prev", "offset", max(0, params.offset - params.limit))
    if has_more:
        link("next", "offset", params.offset + params.limit)
    link("last", "offset", max(pages - 1, 0) * params.limit)
    return pagination, links

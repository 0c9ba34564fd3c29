"""Long staff lists, a page at a time: a page number and a page size from the query string,
read as row ids are (``funding.db.row_id``), and the links to the other pages, the list's own
filters kept. The list itself orders its rows by a stable key (a name, then the row's id)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from starlette.requests import Request

from funding.db import row_id

PER_PAGE = 50
MAX_PER_PAGE = 500


@dataclass(frozen=True)
class Pager:
    page: int
    per_page: int
    total: int
    params: tuple[tuple[str, str], ...]  # the request's other query parameters, kept in the links

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    def link(self, page: int) -> str:
        """The query string of another page of the same list."""
        extra = [("page", str(page))] + ([("par_page", str(self.per_page))] if self.per_page != PER_PAGE else [])
        return "?" + urlencode([*self.params, *extra])

    @property
    def previous(self) -> str | None:
        return self.link(self.page - 1) if self.page > 1 else None

    @property
    def next(self) -> str | None:
        return self.link(self.page + 1) if self.page < self.pages else None


def pager(request: Request, total: int) -> Pager:
    """The page the request asks for (1 by default; past the last: the last)."""
    params = request.query_params
    per_page = min(row_id(params.get("par_page")) or PER_PAGE, MAX_PER_PAGE)
    pages = max(1, -(-total // per_page))
    page = min(max(row_id(params.get("page")) or 1, 1), pages)
    kept = tuple((k, v) for k, v in params.multi_items() if k not in ("page", "par_page"))
    return Pager(page, per_page, total, kept)


def asked_page(request: Request) -> Pager:
    """The page the request asks for before the total is known (a query that counts as it reads
    the page); ``pager(request, total)`` then says whether it was past the last one."""
    return pager(request, 1 << 62)

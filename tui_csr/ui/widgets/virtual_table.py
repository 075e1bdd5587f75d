"""A DataTable whose rows stay in a Python list: only the rows on screen are ever rendered.

Textual's :class:`~textual.widgets.DataTable` keeps, for every row added, a ``Row``, a dict of
cells, a key in a two-way index and a line in its offset list, and measures every cell of it:
10,000 rows cost seconds and ~100 MB before the first paint. :class:`VirtualTable` looks the same
and keeps DataTable's keys, cursor, mouse, scrolling, header clicks and messages, but its rows are
a sequence of objects with a ``key`` (``str``) and ``cells`` (``str``\\ s, shown literally, never as
markup); the column widths come with them (:func:`column_widths`). DataTable's own row storage
(``rows``, ``_data``, ``_row_locations``, ``_y_offsets``, ``ordered_rows``) is replaced by views
over that sequence, so nothing is copied or measured per row: showing 100,000 rows costs what
showing 20 does. Every row is one line high.

Written against Textual 8.2.8's DataTable internals (the project pins it); ``add_row``,
``update_cell``, ``remove_row`` and ``sort`` are not available: the owner hands over a new list
with :meth:`VirtualTable.show_rows` instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

from rich.cells import cell_len
from rich.text import Text
from textual.geometry import Region, Size
from textual.widgets import DataTable
from textual.widgets._data_table import ColumnKey, Row, RowKey

from tui_csr.ui.text import shown


class TableRow(Protocol):
    """What :class:`VirtualTable` shows: a unique key and the cells, as plain text."""

    @property
    def key(self) -> str: ...

    @property
    def cells(self) -> Sequence[str]: ...


def cell_width(text: str) -> int:
    """Terminal cells ``text`` takes once shown (control characters escaped, wide characters
    counted twice): ``len`` for the common printable ASCII text."""
    if text.isascii() and text.isprintable():
        return len(text)
    return cell_len(shown(text))


def column_widths(widths: Sequence[Sequence[int]], columns: int) -> list[int]:
    """The widest cell of each column, from each row's cell widths (0 for no rows)."""
    if not widths:
        return [0] * columns
    return [max(column) for column in zip(*widths, strict=True)]


class _IndexedKey(RowKey):
    """A row key that remembers where it was made, so finding its row costs no search."""

    __slots__ = ("index",)

    def __init__(self, value: str, index: int) -> None:
        super().__init__(value)
        self.index = index


class _Locations:
    """``DataTable._row_locations`` (RowKey <-> index) over the row sequence."""

    def __init__(self, table: VirtualTable) -> None:
        self._table = table

    def get_key(self, index: int) -> RowKey | None:
        rows = self._table.source
        if 0 <= index < len(rows):
            return _IndexedKey(rows[index].key, index)
        return None

    def get(self, key: object, default: int | None = None) -> int | None:
        index = self._table.index_of(key)
        return default if index is None else index

    def __contains__(self, key: object) -> bool:
        return self._table.index_of(key) is not None

    def __iter__(self) -> Iterator[RowKey]:
        return (_IndexedKey(row.key, i) for i, row in enumerate(self._table.source))

    def __len__(self) -> int:
        return len(self._table.source)


class _Rows:
    """``DataTable.rows`` (RowKey -> Row metadata): every row one line high."""

    def __init__(self, table: VirtualTable) -> None:
        self._table = table

    def get(self, key: object, default: Row | None = None) -> Row | None:
        if isinstance(key, RowKey) and self._table.index_of(key) is not None:
            return Row(key, 1)
        return default

    def __getitem__(self, key: object) -> Row:
        row = self.get(key)
        if row is None:
            raise KeyError(key)
        return row

    def __contains__(self, key: object) -> bool:
        return self._table.index_of(key) is not None

    def __len__(self) -> int:
        return len(self._table.source)

    def __iter__(self) -> Iterator[RowKey]:
        return iter(_Locations(self._table))

    def keys(self) -> Iterator[RowKey]:
        return iter(self)

    def values(self) -> Iterator[Row]:
        return (Row(key, 1) for key in self)

    def clear(self) -> None:
        """DataTable.clear() empties its dicts; the sequence is replaced by show_rows()."""


class _Data:
    """``DataTable._data`` (RowKey -> {ColumnKey: cell}): the cells as literal Text."""

    def __init__(self, table: VirtualTable) -> None:
        self._table = table

    def get(self, key: object, default: Any = None) -> dict[ColumnKey, Text] | Any:
        index = self._table.index_of(key)
        if index is None:
            return default
        return self._table.cells_at(index)

    def __getitem__(self, key: object) -> dict[ColumnKey, Text]:
        cells = self.get(key)
        if cells is None:
            raise KeyError(key)
        return cells

    def __contains__(self, key: object) -> bool:
        return self._table.index_of(key) is not None

    def __len__(self) -> int:
        return len(self._table.source)

    def __iter__(self) -> Iterator[RowKey]:
        return iter(_Locations(self._table))

    def clear(self) -> None:
        """See :meth:`_Rows.clear`."""


class _RowSeq(Sequence[Row]):
    """``DataTable.ordered_rows`` and slices of it, made as they are read."""

    def __init__(self, table: VirtualTable, span: range) -> None:
        self._table = table
        self._span = span

    def __len__(self) -> int:
        return len(self._span)

    def __getitem__(self, item):
        if isinstance(item, slice):
            return _RowSeq(self._table, self._span[item])
        index = self._span[item]
        return Row(_IndexedKey(self._table.source[index].key, index), 1)


class _Offsets:
    """``DataTable._y_offsets``: line y of the body is row y, line 0 of it."""

    def __init__(self, table: VirtualTable) -> None:
        self._table = table

    def __len__(self) -> int:
        return len(self._table.source)

    def __getitem__(self, y: int) -> tuple[RowKey, int]:
        rows = self._table.source
        if not 0 <= y < len(rows):
            raise IndexError(y)  # a LookupError: DataTable draws a blank line
        return _IndexedKey(rows[y].key, y), 0

    def clear(self) -> None:
        """See :meth:`_Rows.clear`."""


class _StorageView:
    """A DataTable storage attribute served as a view over the table's ``source``;
    DataTable's own assignments to it (in ``__init__`` and ``clear``) are ignored."""

    def __init__(self, view: Callable[[Any], Any]) -> None:
        self.view = view

    def __get__(self, table: Any, owner: type | None = None) -> Any:
        return self if table is None else self.view(table)

    def __set__(self, table: Any, value: object) -> None:
        pass


class VirtualTable(DataTable):
    """A DataTable over a sequence of :class:`TableRow` (see the module's docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.source: Sequence[TableRow] = ()
        self._widths: list[int] = []
        self._positions: dict[str, int] | None = None
        super().__init__(*args, **kwargs)

    # -- DataTable's row storage, as views over ``source`` ----------------------------------
    # DataTable.__init__ and clear() assign these; the views stay, the sequence is replaced.
    rows = _StorageView(lambda t: _Rows(t))
    _data = _StorageView(lambda t: _Data(t))
    _row_locations = _StorageView(lambda t: _Locations(t))

    @property
    def _y_offsets(self) -> _Offsets:  # type: ignore[override]
        return _Offsets(self)

    @property
    def ordered_rows(self) -> _RowSeq:  # type: ignore[override]
        return _RowSeq(self, range(len(self.source)))

    # -- the rows ---------------------------------------------------------------------------
    def clear(self, columns: bool = False) -> VirtualTable:
        """No rows (and no columns, with ``columns``): DataTable's clear, the sequence dropped
        first (add_column would otherwise visit every old row)."""
        self.source = ()
        self._positions = None
        self._widths = []
        super().clear(columns)
        return self

    def show_rows(self, rows: Sequence[TableRow], widths: Sequence[int]) -> None:
        """Show ``rows`` (the columns exist already); ``widths``: the widest cell of each
        column, in terminal cells (see :func:`column_widths`). The cursor stays where it is,
        within the new rows."""
        self.source = rows
        self._positions = None
        self._widths = list(widths)
        self._clear_caches()
        self._update_count += 1
        self._require_update_dimensions = True
        self.check_idle()
        self.cursor_coordinate = self.cursor_coordinate  # clamped to the new rows
        if rows and self.columns and self.show_cursor and self.cursor_type != "none":
            self._highlight_cursor()
        self.refresh()

    def index_of(self, key: object) -> int | None:
        """Where the row with ``key`` (a RowKey or str) is, or None."""
        value = key.value if isinstance(key, RowKey) else key
        if not isinstance(value, str):
            return None  # the header row's key (value None), or no key at all
        rows = self.source
        index = getattr(key, "index", None)
        if index is not None and index < len(rows) and rows[index].key == value:
            return index
        if self._positions is None:
            self._positions = {row.key: i for i, row in enumerate(rows)}
        return self._positions.get(value)

    def cells_at(self, index: int) -> dict[ColumnKey, Text]:
        """Row ``index``'s cells by column key, as literal Text (never read as markup)."""
        cells = self.source[index].cells
        return {column.key: Text(shown(cell), end="")
                for column, cell in zip(self.ordered_columns, cells, strict=False)}

    def add_row(self, *cells: Any, height: int | None = 1, key: str | None = None,
                label: Any = None) -> RowKey:
        raise NotImplementedError("VirtualTable shows a sequence: use show_rows()")

    def sort(self, *columns: Any, key: Any = None, reverse: bool = False) -> VirtualTable:
        raise NotImplementedError("VirtualTable shows a sequence: sort it, then show_rows()")

    # -- geometry: every row one line, no sums over the rows above --------------------------
    def _update_dimensions(self, new_rows: object) -> None:
        for column, width in zip(self.ordered_columns, self._widths, strict=False):
            column.content_width = max(cell_len(column.label.plain), width)
        header = self.header_height if self.show_header else 0
        width = sum(column.get_render_width(self) for column in self.columns.values())
        self.virtual_size = Size(width, len(self.source) + header)

    def _get_row_region(self, row_index: int) -> Region:
        if not self.is_valid_row_index(row_index):
            return Region(0, 0, 0, 0)
        width = sum(column.get_render_width(self) for column in self.columns.values())
        y = row_index + (self.header_height if self.show_header else 0)
        return Region(0, y, max(self.size.width, width), 1)

    def _get_cell_region(self, coordinate: Any) -> Region:
        if not self.is_valid_coordinate(coordinate):
            return Region(0, 0, 0, 0)
        row_index, column_index = coordinate
        columns = self.ordered_columns
        x = sum(column.get_render_width(self) for column in columns[:column_index])
        y = row_index + (self.header_height if self.show_header else 0)
        return Region(x, y, columns[column_index].get_render_width(self), 1)

"""A TinyDB storage that never leaves a half-written or corrupt file behind.

Every write goes to a private temp file in the same folder, is fsynced and then ``os.replace``d onto
the store, so a reader (or a process killed mid-write) only ever sees a whole old or a whole new file.
The previous file is kept as ``<name>.bak``. A file that cannot be parsed is never overwritten: the
user gets a :class:`~tui_csr.errors.StoreError` that names it and the backup.

Once the file is large (1 MB and more), a write appends its changed documents to a journal beside
it instead of rewriting it whole, and folds the journal in now and then: see
:mod:`tui_csr.store.journal`.

This class does no locking; :mod:`tui_csr.store.lock` serialises processes around it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from typing import Any

from tinydb.storages import Storage

from tui_csr import crashpoint
from tui_csr.errors import StoreError
from tui_csr.fileio import fsync_dir
from tui_csr.store import codec, journal

_FILE_MODE = 0o600
_DIR_MODE = 0o700

Data = dict[str, dict[str, Any]]
_Key = tuple[int, int, int]


def _stat_key(st: os.stat_result) -> _Key:
    return (st.st_ino, st.st_mtime_ns, st.st_size)


class AtomicJSONStorage(Storage):
    """JSON file storage with atomic replace, a ``.bak`` of the previous file and a parse cache.

    ``read()`` returns the cached parsed data while the file's ``(inode, mtime_ns, size)`` is
    unchanged, so only a change made by another process costs a re-parse. The returned dict is the
    cache itself: a caller that mutates it must either ``write()`` it or call :meth:`invalidate`.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.backup_path = self.path.with_name(self.path.name + ".bak")
        self.journal_path = journal.journal_path_for(self.path)
        self._cache_key: _Key | None = None
        self._cache: Data | None = None
        # How much of the journal the cache holds: its inode and the offset after the last line.
        self._journal_ino: int | None = None
        self._journal_offset = 0
        folder = self.path.parent
        if not folder.exists():
            try:
                folder.mkdir(parents=True, mode=_DIR_MODE)
            except FileExistsError:
                pass
            except OSError as exc:
                raise StoreError(
                    f"The store folder {folder} cannot be created: {exc.strerror or exc}."
                ) from exc

    # -- reading ----------------------------------------------------------------------------

    def read(self) -> Data | None:
        """Return the store's tables, or ``None`` when the file does not exist yet."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self.invalidate()
            if self.journal_path.exists():
                raise self._corrupt(f"it is missing while its journal {self.journal_path} "
                                    "exists") from None
            return None
        except OSError as exc:
            raise self._io_error("read", exc) from exc
        if self._cache is not None and self._cache_key == _stat_key(st):
            return self._catch_up()
        return self._load()

    def _catch_up(self) -> Data:
        """The cache, with the journal lines other processes appended since it was read."""
        assert self._cache is not None
        try:
            st = os.stat(self.journal_path)
        except FileNotFoundError:
            return self._cache if self._journal_ino is None else self._load()
        except OSError as exc:
            raise self._io_error("read", exc) from exc
        if self._journal_ino not in (None, st.st_ino) or st.st_size < self._journal_offset:
            return self._load()  # not the journal we read: start again from the file
        if st.st_size == self._journal_offset:
            return self._cache
        self._replay(self._cache, self._journal_offset)
        return self._cache

    def _replay(self, data: Data, offset: int) -> None:
        try:
            lines, end, ino, size = journal.read_from(self.journal_path, offset)
        except journal.JournalError as exc:
            self.invalidate()
            raise StoreError(
                f"The store's journal {self.journal_path} is unreadable: {exc}. It was left "
                f"untouched; move it aside to go back to {self.path} as last saved whole."
            ) from exc
        except OSError as exc:
            self.invalidate()
            raise self._io_error("read", exc) from exc
        journal.apply(data, lines)
        self._journal_ino = ino if size is not None else None
        self._journal_offset = end

    def _load(self) -> Data:
        """Parse the file from disk (holding one open descriptor, so stat and bytes agree)."""
        try:
            with open(self.path, "rb") as fh:
                key = _stat_key(os.fstat(fh.fileno()))
                raw = fh.read()
        except OSError as exc:
            raise self._io_error("read", exc) from exc
        data = self._parse(raw)
        self._journal_ino, self._journal_offset = None, 0
        self._replay(data, 0)
        self._cache, self._cache_key = data, key
        return data

    def _parse(self, raw: bytes) -> Data:
        if not raw or raw.isspace():  # not raw.strip(): that would copy a 20 MB file
            raise self._corrupt(f"it is empty ({len(raw)} bytes), probably truncated")
        try:
            data = codec.loads(raw)
        except UnicodeDecodeError as exc:
            raise self._corrupt(f"it is not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
        except codec.JSONDecodeError as exc:
            raise self._corrupt(
                f"it is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
            ) from exc
        problem = _layout_problem(data)
        if problem:
            raise self._corrupt(f"it is not a TinyDB store ({problem})")
        return data

    # -- writing ----------------------------------------------------------------------------

    def write(self, data: Data, op: str = "") -> None:
        """Replace the file with ``data`` atomically, keeping the old file as ``<name>.bak``."""
        try:
            payload = codec.dumps(data)
        except (TypeError, ValueError) as exc:
            self.invalidate()
            raise StoreError(f"The store {self.path} was not written: {exc}.") from exc
        folder = self.path.parent
        try:
            self._check_current_is_good()
            tmp = folder / f".{self.path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _FILE_MODE)
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(payload)
                    fh.flush()
                    os.fsync(fh.fileno())
                if op:
                    crashpoint.reached(f"store-write:{op}")
                self._keep_backup()
                os.replace(tmp, self.path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
            fsync_dir(folder)
            key = _stat_key(os.stat(self.path))
            # The new file holds everything the journal held (replaying it again would change
            # nothing, so a crash before this unlink is harmless).
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.journal_path)
            self._journal_ino, self._journal_offset = None, 0
        except StoreError:
            self.invalidate()
            raise
        except OSError as exc:
            self.invalidate()
            raise self._io_error("written", exc) from exc
        except BaseException:
            self.invalidate()
            raise
        self._cache, self._cache_key = data, key

    def commit(self, data: Data, changes: list[tuple[str, str]] | None = None,
               op: str = "") -> None:
        """Save ``data``, whose documents ``changes`` (table, document id) are all that changed
        since it was read: appended to the journal when the store file is large (see
        :mod:`tui_csr.store.journal`), else (and when the journal is due to be folded in) by
        :meth:`write`."""
        size = self._cache_key[2] if self._cache_key is not None else 0
        if (changes is None or self._cache is not data or size < journal.MIN_STORE_BYTES
                or journal.should_fold(size, self._journal_offset)):
            self.write(data, op)
            return
        ops = [[table, doc_id, data.get(table, {}).get(doc_id)] for table, doc_id in changes]
        try:
            self._check_current_is_good()
            ino, offset = journal.append(self.journal_path, ops, self._journal_offset,
                                         pause=f"store-write:{op}" if op else "")
        except StoreError:
            self.invalidate()
            raise
        except (TypeError, ValueError) as exc:
            self.invalidate()
            raise StoreError(f"The store {self.path} was not written: {exc}.") from exc
        except OSError as exc:
            self.invalidate()
            raise self._io_error("written", exc) from exc
        except BaseException:
            self.invalidate()
            raise
        self._journal_ino, self._journal_offset = ino, offset

    def _check_current_is_good(self) -> None:
        """Refuse to replace a file we have not parsed successfully (it may be corrupt)."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return
        if self._cache is None or self._cache_key != _stat_key(st):
            self._load()  # raises StoreError on a corrupt file, which is then left alone

    def _keep_backup(self) -> None:
        """Make ``<name>.bak`` the file about to be replaced (a hard link, else a copy)."""
        try:
            current = os.stat(self.path)
        except FileNotFoundError:
            return
        with contextlib.suppress(OSError):
            if os.path.samestat(current, os.stat(self.backup_path)):
                return  # a writer was killed after its backup step: the backup is already this file
        tmp = self.backup_path.with_name(
            f".{self.backup_path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        )
        try:
            try:
                os.link(self.path, tmp)
            except OSError:  # no hard links here (some network or FUSE file systems): copy
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _FILE_MODE)
                with os.fdopen(fd, "wb") as out, open(self.path, "rb") as src:
                    while chunk := src.read(1 << 20):
                        out.write(chunk)
                    out.flush()
                    os.fsync(out.fileno())
            os.replace(tmp, self.backup_path)
        finally:
            # Also after success: rename() between two links of one inode succeeds doing nothing.
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def remove_stale_temp_files(self) -> int:
        """Delete temp files left by a writer that was killed. Call only while holding the lock."""
        removed = 0
        for pattern in (f".{self.path.name}.*.tmp", f".{self.backup_path.name}.*.tmp"):
            for stale in self.path.parent.glob(pattern):
                with contextlib.suppress(OSError):
                    stale.unlink()
                    removed += 1
        return removed

    # -- misc -------------------------------------------------------------------------------

    def invalidate(self) -> None:
        """Forget the cached data, so the next read parses the file again."""
        self._cache = None
        self._cache_key = None
        self._journal_ino, self._journal_offset = None, 0

    def close(self) -> None:
        """Drop the cache (there are no open handles between calls)."""
        self.invalidate()

    def _corrupt(self, reason: str) -> StoreError:
        self.invalidate()
        if self.backup_path.exists():
            advice = f"restore it from {self.backup_path} or move it aside"
        else:
            advice = f"move it aside or restore it from your own backup (there is no {self.backup_path})"
        return StoreError(
            f"The store {self.path} is unreadable: {reason}. It was left untouched; {advice}."
        )

    def _io_error(self, verb: str, exc: OSError) -> StoreError:
        return StoreError(f"The store {self.path} could not be {verb}: {exc.strerror or exc}.")


def _layout_problem(data: object) -> str | None:
    """Describe why ``data`` is not ``{table: {doc_id: {document}}}``, or return ``None``."""
    if not isinstance(data, dict):
        return f"the top level is {_json_type(data)}, not an object"
    for name, table in data.items():
        if not isinstance(table, dict):
            return f"table {name!r} is {_json_type(table)}, not an object"
        for doc_id, doc in table.items():
            if not doc_id.isdigit():
                return f"table {name!r} has a document id {doc_id!r} that is not a number"
            if not isinstance(doc, dict):
                return f"document {doc_id} in table {name!r} is not an object"
    return None


def _json_type(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "null" if value is None else "an object"

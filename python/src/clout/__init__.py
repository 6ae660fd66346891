"""Clout from Python: anomaly-detection influencer results in memory.

Load result dumps (the formats ``clout`` reads, or snapshot files) and ask
Elasticsearch's Get Influencers query of them, answered exactly as
Elasticsearch answers it::

    import clout
    store = clout.Store()
    store.load("data/it_ops_new_kpi.ndjson")
    page = store.get_influencers("it_ops_new_kpi", size=5)
    frame = store.to_pandas("it_ops_new_kpi")

A ``Store`` may be shared between threads: loads and queries release the
GIL, and the engine underneath is thread-safe. Errors raise the
``ApiError`` classes of :mod:`clout._errors` (named as Elasticsearch's
Python client names them).
"""

from __future__ import annotations

import datetime as _dt
import json as _json
import numbers as _numbers
import os as _os
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from . import _clout
from ._errors import (
    ApiError,
    AuthenticationException,
    AuthorizationException,
    BadRequestError,
    ConflictError,
    LoadError,
    NotFoundError,
    RequestError,
    TransportError,
)

__all__ = [
    "ApiError",
    "AuthenticationException",
    "AuthorizationException",
    "BadRequestError",
    "COLUMNS",
    "ConflictError",
    "LoadError",
    "LoadReport",
    "NotFoundError",
    "RequestError",
    "SourceReport",
    "Store",
    "TransportError",
]

__version__ = "0.1.0"

#: The columns of ``to_pandas`` and ``to_numpy``, in the order of a result
#: document's fields.
COLUMNS: Tuple[str, ...] = (
    "job_id",
    "result_type",
    "influencer_field_name",
    "influencer_field_value",
    "influencer_score",
    "initial_influencer_score",
    "probability",
    "bucket_span",
    "is_interim",
    "timestamp",
)

# pandas' datetime64[ns] covers 1677-09-21T00:12:43.145Z to
# 2262-04-11T23:47:16.854Z.
_MIN_NS_MILLIS = -9223372036854
_MAX_NS_MILLIS = 9223372036854

_UNSET: Any = object()


@dataclass(frozen=True)
class SourceReport:
    """What one loaded source held and what became of it."""

    source: str
    format: str
    compression: str
    bytes: int
    documents: int
    influencers_added: int
    replaced: int
    deleted: int
    unchanged: int
    bulk_deletes: int
    delete_misses: int
    skipped: Dict[str, int]
    rejected: int
    errors: List[str]
    jobs: List[str]
    threads: int
    seconds: float


@dataclass(frozen=True)
class LoadReport:
    """The sources of one ``Store.load`` call, each one atomic, and totals."""

    sources: List[SourceReport] = field(default_factory=list)

    @property
    def documents(self) -> int:
        return sum(s.documents for s in self.sources)

    @property
    def influencers_added(self) -> int:
        return sum(s.influencers_added for s in self.sources)

    @property
    def replaced(self) -> int:
        return sum(s.replaced for s in self.sources)

    @property
    def unchanged(self) -> int:
        return sum(s.unchanged for s in self.sources)

    @property
    def rejected(self) -> int:
        return sum(s.rejected for s in self.sources)

    @property
    def errors(self) -> List[str]:
        return [e for s in self.sources for e in s.errors]

    @property
    def jobs(self) -> List[str]:
        seen: Dict[str, None] = {}
        for s in self.sources:
            for j in s.jobs:
                seen.setdefault(j, None)
        return list(seen)

    @property
    def bytes(self) -> int:
        return sum(s.bytes for s in self.sources)


_INT64_MAX = 2**63 - 1


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool) or type(value).__name__ == "bool_"


def _check_type(name: str, value: Any, types: Tuple[type, ...], what: str) -> None:
    # bool is an int in Python (and numpy.bool_ an integer-like); neither is
    # a number here.
    if _is_bool(value) and bool not in types:
        raise TypeError(f"{name} must be {what}, not bool")
    if not isinstance(value, types):
        raise TypeError(f"{name} must be {what}, not {type(value).__name__}")


def _integer(name: str, value: Any, what: str = "an int") -> int:
    """An int, or any integer type (numpy.int64, ...), as int."""
    _check_type(name, value, (_numbers.Integral,), what)
    return int(value)


def _epoch_millis(name: str, value: Any) -> int:
    """A datetime (naive ones are UTC, as Elasticsearch reads a date without
    a zone), a numpy.datetime64, or epoch milliseconds, as epoch
    milliseconds (floored)."""
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=_dt.timezone.utc)
        delta = value - _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
        millis = (delta.days * 86_400_000 + delta.seconds * 1000
                  + delta.microseconds // 1000)
    elif isinstance(value, _dt.date):
        millis = (value - _dt.date(1970, 1, 1)).days * 86_400_000
    elif type(value).__name__ == "datetime64":
        import numpy as np
        if np.isnat(value):
            raise ValueError(f"{name} is NaT, not a date")
        millis = int(value.astype("datetime64[ms]").astype(np.int64))
    else:
        millis = _integer(name, value, "a datetime, a date, epoch milliseconds "
                                       "(int) or a string")
    if not -_INT64_MAX <= millis <= _INT64_MAX:
        raise ValueError(f"{name} [{millis}] is out of range for epoch milliseconds")
    return millis


def _date_param(name: str, value: Any) -> str:
    if isinstance(value, str):
        return value
    return str(_epoch_millis(name, value))


def _number_param(name: str, value: Any) -> str:
    _check_type(name, value, (_numbers.Real,), "a number")
    try:
        return repr(float(value))
    except OverflowError:
        raise ValueError(f"{name} [{value}] is too large for a double") from None


def _int_param(name: str, value: Any) -> str:
    return str(_integer(name, value))


def _bool_param(name: str, value: Any) -> str:
    if not _is_bool(value):
        raise TypeError(f"{name} must be a bool, not {type(value).__name__}")
    return "true" if value else "false"


def _job(job_id: Any) -> str:
    _check_type("job_id", job_id, (str,), "a str")
    return job_id


def _now(now: Any) -> Optional[int]:
    return None if now is None else _epoch_millis("now", now)


def _filter_params(start: Any, end: Any, exclude_interim: Any,
                   influencer_score: Any) -> List[Tuple[str, str]]:
    params = []
    if start is not None:
        params.append(("start", _date_param("start", start)))
    if end is not None:
        params.append(("end", _date_param("end", end)))
    if exclude_interim is not _UNSET:
        params.append(("exclude_interim", _bool_param("exclude_interim", exclude_interim)))
    if influencer_score is not _UNSET:
        params.append(("influencer_score", _number_param("influencer_score", influencer_score)))
    return params


class Store:
    """Influencer results in memory, and the Get Influencers query over them.

    ``max_result_window`` is Elasticsearch's ``index.max_result_window``: the
    largest ``from_ + size`` a query may ask for (default 10000).

    Thread-safe: share one store between threads. Loads and queries release
    the GIL; a query sees a load entirely or not at all.
    """

    def __init__(self, *, max_result_window: int = 10000) -> None:
        max_result_window = _integer("max_result_window", max_result_window)
        if not 0 <= max_result_window <= 2**31 - 1:
            raise ValueError("max_result_window must be within [0, 2147483647], "
                             f"not {max_result_window}")
        self._store = _clout.Store(max_result_window)

    # -- Loading ---------------------------------------------------------

    def load(self, *sources: Union[str, "_os.PathLike[str]", bytes, Any],
             lenient: bool = False, threads: int = 0) -> LoadReport:
        """Loads each source in order, each one atomically, and reports.

        A source is a path (``str`` or ``pathlib.Path``) to a dump in any
        format ``clout`` reads (detected from its content) or to a snapshot
        file; ``bytes`` holding a dump; or a binary or text file object
        (read whole). Results upsert by identity, as in Elasticsearch.

        ``lenient`` skips bad documents (counted, the first errors kept in
        the report) instead of failing. ``threads`` parse an NDJSON file in
        parallel (0: up to 8, one per core).

        Raises ``LoadError`` (with ``source`` and ``line``) for a bad
        source: that source loads nothing, the ones before it stay loaded.
        ``TypeError`` for a source of another type, ``FileNotFoundError``
        never (a missing file is a ``LoadError`` with status 500, as the
        CLI reports it).
        """
        _check_type("lenient", lenient, (bool,), "a bool")
        threads = _integer("threads", threads)
        if not 0 <= threads <= 1024:
            raise ValueError(f"threads must be within [0, 1024], not {threads}")
        if threads == 0:
            threads = max(1, min(_cpu_count(), 8))
        # Every source's type is checked before any is loaded.
        for source in sources:
            if not isinstance(source, (str, _os.PathLike, bytes, bytearray,
                                       memoryview)) and not hasattr(source, "read"):
                raise TypeError("a source is a path, bytes or a file object, not "
                                f"{type(source).__name__}")
        reports = []
        for source in sources:
            if isinstance(source, (str, _os.PathLike)):
                # The file system's bytes (any name, UTF-8 or not); the name
                # in messages with undecodable bytes escaped.
                path = _os.fsencode(source)
                name = path.decode("utf-8", "backslashreplace")
                call = lambda: self._store.load_path(path, lenient, threads, name)
            elif isinstance(source, (bytes, bytearray, memoryview)):
                data = bytes(source)
                name = "<bytes>"
                call = lambda: self._store.load_bytes(data, lenient, threads, name)
            else:
                data = source.read()
                if isinstance(data, str):
                    data = data.encode("utf-8")
                if not isinstance(data, bytes):
                    raise TypeError(f"{type(source).__name__}.read() returned "
                                    f"{type(data).__name__}, not bytes or str")
                name = str(getattr(source, "name", "<file>"))
                call = lambda: self._store.load_bytes(data, lenient, threads, name)
            try:
                reports.append(SourceReport(**call()))
            except LoadError as error:
                if error.source is None:
                    error.source = name
                raise
        return LoadReport(reports)

    # -- Queries ---------------------------------------------------------

    def _request(self, job_id: Any, start: Any, end: Any, exclude_interim: Any,
                 influencer_score: Any, sort: Any, desc: Any, from_: Any,
                 size: Any, body: Any) -> Tuple[str, Optional[str], List[Tuple[str, str]]]:
        job = _job(job_id)
        params = _filter_params(start, end, exclude_interim, influencer_score)
        if sort is not _UNSET:
            _check_type("sort", sort, (str,), "a str")
            params.append(("sort", sort))
        if desc is not _UNSET:
            params.append(("desc", _bool_param("desc", desc)))
        if from_ is not _UNSET:
            params.append(("from", _int_param("from_", from_)))
        if size is not _UNSET:
            params.append(("size", _int_param("size", size)))
        if body is None:
            return job, None, params
        if params:
            names = ", ".join(("from_" if n == "from" else n) for n, _ in params)
            raise ValueError("a request is a body or parameters, not both: "
                             f"drop {names} or put them in the body")
        if isinstance(body, dict):
            text = _json.dumps(body)
        elif isinstance(body, (bytes, bytearray)):
            text = bytes(body).decode("utf-8")
        elif isinstance(body, str):
            text = body
        else:
            raise TypeError(f"body must be a dict, str or bytes, not {type(body).__name__}")
        return job, text, []

    def get_influencers_json(self, job_id: str, *, start: Any = None, end: Any = None,
                             exclude_interim: Any = _UNSET, influencer_score: Any = _UNSET,
                             sort: Any = _UNSET, desc: Any = _UNSET, from_: Any = _UNSET,
                             size: Any = _UNSET, body: Any = None, now: Any = None,
                             pretty: bool = False, human: bool = False) -> str:
        """The Get Influencers response as Elasticsearch's exact JSON text.

        Arguments as for :meth:`get_influencers`; ``pretty`` indents as
        ``?pretty`` does and ``human`` adds ``timestamp_string``.
        """
        job, text, params = self._request(job_id, start, end, exclude_interim,
                                          influencer_score, sort, desc, from_,
                                          size, body)
        _check_type("pretty", pretty, (bool,), "a bool")
        _check_type("human", human, (bool,), "a bool")
        return self._store.query_json(job, text, params, _now(now), pretty, human)

    def get_influencers(self, job_id: str, *, start: Any = None, end: Any = None,
                        exclude_interim: Any = _UNSET, influencer_score: Any = _UNSET,
                        sort: Any = _UNSET, desc: Any = _UNSET, from_: Any = _UNSET,
                        size: Any = _UNSET, body: Any = None, now: Any = None) -> Dict[str, Any]:
        """Elasticsearch's Get Influencers API: the response as Python objects.

        Returns ``{"count": N, "influencers": [...]}`` with each influencer a
        dict whose keys are in the response's order.

        - ``start``/``end``: keep ``start <= timestamp < end``. A
          ``datetime`` (naive means UTC), epoch milliseconds (``int``), or a
          string as Elasticsearch reads it (ISO 8601, epoch millis, date
          math such as ``"now-1d/d"``).
        - ``exclude_interim`` (default False), ``influencer_score`` (keep
          scores >= it; default 0.0), ``sort`` (default
          ``"influencer_score"``), ``desc`` (default True), ``from_``
          (default 0) and ``size`` (default 100): the API's parameters.
        - ``body``: the request as a dict or JSON text instead of the
          parameters above (not both), e.g. ``{"page": {"size": 5}}``.
        - ``now``: the moment date math reads as "now" (a ``datetime`` or
          epoch ms); default the system clock.

        Raises ``NotFoundError`` for an unknown job, ``BadRequestError`` for
        a bad date, sort field, page or body (Elasticsearch's status, type
        and reason), ``TypeError`` for an argument of the wrong type.
        """
        job, text, params = self._request(job_id, start, end, exclude_interim,
                                          influencer_score, sort, desc, from_,
                                          size, body)
        return self._store.query_dict(job, text, params, _now(now))

    def _columns(self, job_id: Any, start: Any, end: Any, exclude_interim: Any,
                 influencer_score: Any, columns: Optional[Sequence[str]],
                 now: Any) -> Tuple[str, List[str], Dict[str, Any]]:
        job = _job(job_id)
        params = _filter_params(start, end, exclude_interim, influencer_score)
        if columns is None:
            wanted = list(COLUMNS)
        else:
            if isinstance(columns, str):
                raise TypeError("columns must be a sequence of column names, not a str")
            wanted = list(columns)
            for c in wanted:
                if c not in COLUMNS:
                    raise ValueError(f"unknown column [{c}]; the columns are "
                                     + ", ".join(COLUMNS))
        return job, wanted, self._store.columns(job, params, _now(now), wanted)

    def to_numpy(self, job_id: str, *, start: Any = None, end: Any = None,
                 exclude_interim: Any = _UNSET, influencer_score: Any = _UNSET,
                 columns: Optional[Sequence[str]] = None,
                 now: Any = None) -> Dict[str, Any]:
        """The job's results that pass the filters, in ingest order, as NumPy
        arrays by column (``COLUMNS``, or those named in ``columns``).

        Numbers are ``float64``/``int64``, ``is_interim`` is ``bool``,
        ``timestamp`` is ``datetime64[ms]``, strings are object arrays. The
        arrays are the caller's own: later writes to the store do not
        change them. The filters are those of :meth:`get_influencers`.
        """
        import numpy as np

        job, wanted, cols = self._columns(job_id, start, end, exclude_interim,
                                          influencer_score, columns, now)
        n = len(cols["timestamp"])
        out: Dict[str, Any] = {}
        for c in wanted:
            if c in ("job_id", "result_type"):
                out[c] = np.full(n, job if c == "job_id" else "influencer", dtype=object)
            elif c in ("influencer_field_name", "influencer_field_value"):
                codes, categories = cols[c]
                table = np.empty(len(categories), dtype=object)
                table[:] = categories
                out[c] = table[codes]
            elif c == "timestamp":
                out[c] = cols[c].astype("datetime64[ms]")
            elif c == "is_interim":
                out[c] = cols[c].astype(bool)
            else:
                out[c] = cols[c]
        return out

    def to_pandas(self, job_id: str, *, start: Any = None, end: Any = None,
                  exclude_interim: Any = _UNSET, influencer_score: Any = _UNSET,
                  columns: Optional[Sequence[str]] = None, now: Any = None) -> Any:
        """The job's results that pass the filters, in ingest order, as a
        ``pandas.DataFrame`` built from NumPy arrays (no Python object per
        row).

        Columns: ``COLUMNS`` (or those named in ``columns``). ``timestamp``
        is ``datetime64[ns, UTC]``; a timestamp that type cannot hold
        (before 1677-09-21 or after 2262-04-11) raises ``ValueError`` naming
        it (use :meth:`to_numpy`, whose timestamps are milliseconds).
        Strings are categoricals over the distinct values (sorted);
        ``is_interim`` is ``bool``. Filters as in :meth:`get_influencers`.
        """
        import numpy as np
        import pandas as pd

        job, wanted, cols = self._columns(job_id, start, end, exclude_interim,
                                          influencer_score, columns, now)
        n = len(cols["timestamp"])
        data: Dict[str, Any] = {}
        for c in wanted:
            if c in ("job_id", "result_type"):
                value = job if c == "job_id" else "influencer"
                data[c] = pd.Categorical.from_codes(np.zeros(n, dtype=np.int8), categories=[value])
            elif c in ("influencer_field_name", "influencer_field_value"):
                codes, categories = cols[c]
                data[c] = pd.Categorical.from_codes(codes, categories=pd.Index(categories, dtype=object))
            elif c == "timestamp":
                millis = cols[c]
                if n:
                    low, high = int(millis.min()), int(millis.max())
                    for t in (low, high):
                        if t < _MIN_NS_MILLIS or t > _MAX_NS_MILLIS:
                            raise ValueError(
                                f"timestamp [{t}] (epoch ms) is outside what "
                                "pandas' datetime64[ns] holds (1677-09-21 to "
                                "2262-04-11); use to_numpy() for datetime64[ms]")
                nanos = millis * np.int64(1_000_000)
                data[c] = pd.DatetimeIndex(nanos.view("datetime64[ns]")).tz_localize("UTC")
            elif c == "is_interim":
                data[c] = cols[c].astype(bool)
            else:
                data[c] = cols[c]
        # The dict is in `wanted` order already: pandas 1.5 given columns=
        # too would build one Timestamp object per row.
        return pd.DataFrame(data, copy=False)

    # -- The rest of the API ---------------------------------------------

    def jobs(self) -> List[str]:
        """The known jobs, sorted (jobs without results included)."""
        return self._store.jobs()

    def stats(self) -> Dict[str, Any]:
        """Counts: ``influencers`` in all, ``generation`` (batches applied),
        ``influencer_field_names``, and per job in ``jobs``: ``influencers``,
        ``min_timestamp``/``max_timestamp`` (epoch ms, None when empty) and
        ``segments``."""
        return self._store.stats()

    def delete_job(self, job_id: str) -> None:
        """Removes the job and all its results. ``NotFoundError`` if it is
        unknown (the store unchanged)."""
        self._store.delete_job(_job(job_id))

    def apply_bulk(self, ndjson: Union[bytes, str], *, index: str = "") -> Dict[str, Any]:
        """Applies an Elasticsearch ``_bulk`` body of result documents and
        returns the ``_bulk`` response as Python objects (``errors``,
        ``took``, ``items``): a bad item fails alone, as in Elasticsearch.
        ``index`` is the index of ``POST /{index}/_bulk`` for actions that
        name none. A malformed body raises ``BadRequestError``."""
        if isinstance(ndjson, str):
            ndjson = ndjson.encode("utf-8")
        _check_type("ndjson", ndjson, (bytes,), "bytes or a str")
        _check_type("index", index, (str,), "a str")
        return _json.loads(self._store.apply_bulk(ndjson, index))

    def __repr__(self) -> str:
        stats = self._store.stats()
        return (f"<clout.Store: {len(stats['jobs'])} jobs, "
                f"{stats['influencers']} influencers>")


def _cpu_count() -> int:
    return _os.cpu_count() or 1

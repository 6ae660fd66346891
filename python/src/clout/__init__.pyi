# Type stub of the clout package (python/src/clout/__init__.py documents
# each call).
import datetime
import os
from dataclasses import dataclass
from typing import IO, Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy
import pandas

from ._errors import ApiError as ApiError
from ._errors import AuthenticationException as AuthenticationException
from ._errors import AuthorizationException as AuthorizationException
from ._errors import BadRequestError as BadRequestError
from ._errors import ConflictError as ConflictError
from ._errors import LoadError as LoadError
from ._errors import NotFoundError as NotFoundError
from ._errors import RequestError as RequestError
from ._errors import TransportError as TransportError

__version__: str
COLUMNS: Tuple[str, ...]

# A date: a datetime (naive means UTC), a date, a numpy.datetime64, epoch
# milliseconds (any integer type), or text
# as Elasticsearch reads it (ISO 8601, epoch millis, date math).
DateLike = Union[datetime.datetime, datetime.date, numpy.datetime64, int, str]
# "now" for date math: a datetime, a date or epoch milliseconds.
NowLike = Union[datetime.datetime, datetime.date, int]
Source = Union[str, os.PathLike, bytes, bytearray, memoryview, IO[bytes], IO[str]]

@dataclass(frozen=True)
class SourceReport:
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
    sources: List[SourceReport]
    @property
    def documents(self) -> int: ...
    @property
    def influencers_added(self) -> int: ...
    @property
    def replaced(self) -> int: ...
    @property
    def unchanged(self) -> int: ...
    @property
    def rejected(self) -> int: ...
    @property
    def errors(self) -> List[str]: ...
    @property
    def jobs(self) -> List[str]: ...
    @property
    def bytes(self) -> int: ...

class Store:
    def __init__(self, *, max_result_window: int = 10000) -> None: ...
    def load(self, *sources: Source, lenient: bool = False, threads: int = 0) -> LoadReport: ...
    def get_influencers(
        self,
        job_id: str,
        *,
        start: Optional[DateLike] = None,
        end: Optional[DateLike] = None,
        exclude_interim: bool = False,
        influencer_score: float = 0.0,
        sort: str = "influencer_score",
        desc: bool = True,
        from_: int = 0,
        size: int = 100,
        body: Union[None, Dict[str, Any], str, bytes] = None,
        now: Optional[NowLike] = None,
    ) -> Dict[str, Any]: ...
    def get_influencers_json(
        self,
        job_id: str,
        *,
        start: Optional[DateLike] = None,
        end: Optional[DateLike] = None,
        exclude_interim: bool = False,
        influencer_score: float = 0.0,
        sort: str = "influencer_score",
        desc: bool = True,
        from_: int = 0,
        size: int = 100,
        body: Union[None, Dict[str, Any], str, bytes] = None,
        now: Optional[NowLike] = None,
        pretty: bool = False,
        human: bool = False,
    ) -> str: ...
    def to_numpy(
        self,
        job_id: str,
        *,
        start: Optional[DateLike] = None,
        end: Optional[DateLike] = None,
        exclude_interim: bool = False,
        influencer_score: float = 0.0,
        columns: Optional[Sequence[str]] = None,
        now: Optional[NowLike] = None,
    ) -> Dict[str, numpy.ndarray]: ...
    def to_pandas(
        self,
        job_id: str,
        *,
        start: Optional[DateLike] = None,
        end: Optional[DateLike] = None,
        exclude_interim: bool = False,
        influencer_score: float = 0.0,
        columns: Optional[Sequence[str]] = None,
        now: Optional[NowLike] = None,
    ) -> pandas.DataFrame: ...
    def jobs(self) -> List[str]: ...
    def stats(self) -> Dict[str, Any]: ...
    def delete_job(self, job_id: str) -> None: ...
    def apply_bulk(self, ndjson: Union[bytes, str], *, index: str = "") -> Dict[str, Any]: ...

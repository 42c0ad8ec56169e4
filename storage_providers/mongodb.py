"""A MongoDB database in the layout of SPEC §6, shared with sqooler's Mongo spoolers.

A path `a/b/c` of the layout is database `a`, collection `b.c`. Jobs, statuses,
results and leases are documents whose `_id` is `ObjectId(job id)`; configs are
found by `display_name` (or `payload.display_name` when signed) and public keys by
`kid`. Writes are journaled. A claim is an insert into `running` under the job's
own `_id` (a duplicate key means another spooler has it) followed by the delete
from the queue, which decides the race: the copy always exists before the delete,
so a crash between the two leaves the job in both places, which the reaper repairs.
"""

from __future__ import annotations

import contextlib
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote_plus

from bson import ObjectId

from .base import QUEUE_BATCH_SECONDS, Place, Ref, StorageProvider
from .errors import AccessDenied, AlreadyExists, NotFound, StorageError, Unavailable
from .schemas import Document

if TYPE_CHECKING:
    from pymongo import MongoClient
    from pymongo.collection import Collection

# Where each place lives: (database, collection); "{display}" is the backend's name.
COLLECTIONS = {
    Place.CONFIGS: ("backends", "configs"),
    Place.QUEUED: ("jobs", "queued.{display}"),
    Place.RUNNING: ("jobs", "running"),
    Place.FINISHED: ("jobs", "finished.{display}"),
    Place.DELETED: ("jobs", "deleted"),
    Place.STATUS: ("status", "{display}"),
    Place.RESULTS: ("results", "{display}"),
    Place.PUBLIC_KEYS: ("backends", "public_keys"),
    Place.LEASES: ("jobs", "leases"),
    Place.ENDINGS: ("jobs", "endings"),
}
IN_BATCH = 500  # ids per `$in` query
# A queue listing is a collection scan (what the server does even for a sorted, limited
# query on `_id`): a claimer lists again only after this many times its last listing
# took, so that on a long queue listing stays a small share of its time.
RELIST_FACTOR = 20

# MongoDB's codes for a refused login or a refused operation.
DENIED_CODES = frozenset({13, 18, 8000})


@dataclass(frozen=True)
class MongoTimeouts:
    """How long to wait for the server, in seconds, before the request fails as Unavailable."""

    server_selection: float = 3.0
    connect: float = 3.0
    socket: float = 10.0


def mongo_uri(username: str, password: str, url: str) -> tuple[str, dict[str, str]]:
    """The URI for a login (SPEC §5) and the credentials to hand the driver separately.

    A bare host (what labs store today) becomes the `mongodb+srv://` URI of the
    replaced system, with user and password percent-encoded; a full URI is used as
    given, with the credentials passed beside it (self-hosted servers).
    """
    if url.startswith(("mongodb://", "mongodb+srv://")):
        credentials = {"username": username, "password": password} if username else {}
        return url, credentials
    user, secret = quote_plus(username), quote_plus(password)
    return f"mongodb+srv://{user}:{secret}@{url}/?retryWrites=true&w=majority", {}


class MongodbProvider(StorageProvider):
    """Documents in MongoDB; one client per provider object, made on first use."""

    storage_type = "mongodb"

    def __init__(
        self,
        name: str,
        *,
        username: str,
        password: str,
        database_url: str,
        timeouts: MongoTimeouts | None = None,
    ) -> None:
        super().__init__(name)
        self._uri, self._credentials = mongo_uri(username, password, database_url)
        self._timeouts = timeouts or MongoTimeouts()
        self._client: MongoClient[Document] | None = None
        self._collections: dict[tuple[Place, str], Collection[Document]] = {}
        self._relist_after: dict[str, float] = {}

    def __repr__(self) -> str:  # never the URI: it may hold the password
        return f"<MongodbProvider {self.name}>"

    # ---- the client --------------------------------------------------------------

    @property
    def client(self) -> MongoClient[Document]:
        if self._client is None:
            from pymongo import MongoClient

            t = self._timeouts
            with _translated("connect"):
                self._client = MongoClient(
                    self._uri,
                    tz_aware=True,
                    tzinfo=UTC,
                    journal=True,
                    serverSelectionTimeoutMS=int(t.server_selection * 1000),
                    connectTimeoutMS=int(t.connect * 1000),
                    socketTimeoutMS=int(t.socket * 1000),
                    connect=False,
                    **self._credentials,  # type: ignore[arg-type]
                )
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
            self._collections.clear()

    def _collection(self, place: Place, display: str = "") -> Collection[Document]:
        """The collection of a place, made once per client (making one costs a read's 3%)."""
        key = (place, display)
        found = self._collections.get(key)
        if found is None:
            database, collection = COLLECTIONS[place]
            found = self.client[database][collection.format(display=display)]
            self._collections[key] = found
        return found

    def _filter(self, ref: Ref) -> dict[str, Any]:
        """The query that finds the document of `ref` (its parts are checked already)."""
        if ref.place is Place.CONFIGS:
            return {"$or": [{"display_name": ref.doc_id}, {"payload.display_name": ref.doc_id}]}
        if ref.place is Place.PUBLIC_KEYS:
            return {"kid": ref.doc_id}
        return {"_id": ObjectId(ref.doc_id)}

    # ---- primitives ----------------------------------------------------------------

    def _read(self, ref: Ref) -> Document:
        with _translated("read"):
            doc = self._collection(ref.place, ref.display).find_one(self._filter(ref))
        if doc is None:
            raise NotFound(f"{ref.place} {ref.doc_id} not found")
        doc.pop("_id", None)
        if ref.place is Place.PUBLIC_KEYS:
            doc = _text_key(doc)
        return doc

    def _write(self, ref: Ref, doc: Document, *, create: bool) -> None:
        from pymongo.errors import DuplicateKeyError

        collection = self._collection(ref.place, ref.display)
        query = self._filter(ref)
        stored = _bson_dates(doc) if ref.place is Place.CONFIGS else dict(doc)
        stored.pop("_id", None)
        with _translated("write"):
            if "_id" not in query:  # configs and keys keep the random _id they were given
                collection.replace_one(query, stored, upsert=True)
            elif create:
                try:
                    collection.insert_one({"_id": query["_id"], **stored})
                except DuplicateKeyError:
                    raise AlreadyExists(f"{ref.place} {ref.doc_id} already exists") from None
            else:
                collection.replace_one(query, stored, upsert=True)

    def _move(self, src: Ref, dst: Ref) -> None:
        # Copy, then delete: a crash in between leaves the job in both places, never
        # in neither. An existing copy at the target (an earlier, interrupted move)
        # is overwritten by the same document.
        doc = self._raw(src)
        with _translated("move"):
            self._collection(dst.place, dst.display).replace_one({"_id": doc["_id"]}, doc, True)
            self._collection(src.place, src.display).delete_one({"_id": doc["_id"]})

    def _claim(self, src: Ref, dst: Ref) -> None:
        from pymongo.errors import DuplicateKeyError

        doc = self._raw(src)
        target = self._collection(dst.place, dst.display)
        with _translated("claim"):
            try:
                target.insert_one(doc)
            except DuplicateKeyError:
                raise NotFound(f"job {src.doc_id} is someone else's") from None
            taken = self._collection(src.place, src.display).delete_one({"_id": doc["_id"]})
            if taken.deleted_count == 0:
                # Someone else took it (and maybe ran it and moved it on) between our read
                # and our delete: our copy at the target is the only one there, so it goes.
                target.delete_one({"_id": doc["_id"]})
                raise NotFound(f"job {src.doc_id} is someone else's")

    def _queue_batch(self, display: str, *, fresh: bool) -> tuple[deque[str], bool]:
        """The base's batch, listed again at most every RELIST_FACTOR listing times.

        An empty batch or a fresh look lists at once, as in the base: only the refresh
        of a batch that still holds jobs waits longer on a long queue.
        """
        listed_at, batch = self._batches.get(display, (0.0, deque()))
        due = listed_at + self._relist_after.get(display, QUEUE_BATCH_SECONDS)
        if batch and not fresh and time.monotonic() < due:
            return batch, False
        started = time.monotonic()
        batch, listed = super()._queue_batch(display, fresh=True)
        took = time.monotonic() - started
        self._relist_after[display] = max(QUEUE_BATCH_SECONDS, RELIST_FACTOR * took)
        return batch, listed

    def _read_many(self, refs: Sequence[Ref]) -> dict[str, Document]:
        if refs[0].place in (Place.CONFIGS, Place.PUBLIC_KEYS):
            return super()._read_many(refs)
        collection = self._collection(refs[0].place, refs[0].display)
        ids = [ObjectId(ref.doc_id) for ref in refs]
        found: dict[str, Document] = {}
        with _translated("read"):
            for start in range(0, len(ids), IN_BATCH):
                for doc in collection.find({"_id": {"$in": ids[start : start + IN_BATCH]}}):
                    found[str(doc.pop("_id"))] = doc
        return found

    def _raw(self, ref: Ref) -> Document:
        """A job's document with its `_id`, for copying between collections."""
        with _translated("read"):
            doc = self._collection(ref.place, ref.display).find_one(self._filter(ref))
        if doc is None:
            raise NotFound(f"{ref.place} {ref.doc_id} not found")
        return doc

    def _delete(self, ref: Ref) -> None:
        with _translated("delete"):
            self._collection(ref.place, ref.display).delete_one(self._filter(ref))

    def _list_ids(self, place: Place, display: str) -> list[str]:
        with _translated("list"):
            found = self._collection(place, display).find({}, {"_id": 1})
            # a foreign document whose _id is no ObjectId is no job of the layout
            return [str(d["_id"]) for d in found if isinstance(d.get("_id"), ObjectId)]

    def _list_backends(self) -> list[str]:
        configs = self._collection(Place.CONFIGS)
        with _translated("list"):
            names = configs.distinct("display_name") + configs.distinct("payload.display_name")
        return [name for name in names if isinstance(name, str)]


def _bson_dates(doc: Document) -> Document:
    """A config with `last_queue_check` as a BSON date, as sqooler stores it (plain or signed)."""
    stored = dict(doc)
    if isinstance(stored.get("payload"), dict) and "signature" in stored:
        stored["payload"] = _bson_dates(stored["payload"])
        return stored
    value = stored.get("last_queue_check")
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            parsed = datetime.fromisoformat(value)
            stored["last_queue_check"] = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return stored


def _text_key(jwk: Document) -> Document:
    """A public JWK with `x` as text: sqooler stores it as BSON binary."""
    x = jwk.get("x")
    if isinstance(x, bytes):
        return {**jwk, "x": x.decode("ascii", errors="replace")}
    return jwk


@contextlib.contextmanager
def _translated(what: str) -> Iterator[None]:
    """pymongo's exceptions as the provider error family, with texts that hold no secret."""
    from bson.errors import BSONError
    from pymongo import errors

    try:
        yield
    except StorageError:
        raise
    except (BSONError, OverflowError):
        raise StorageError(f"MongoDB cannot hold this document ({what}).") from None
    except errors.OperationFailure as exc:
        if exc.code in DENIED_CODES:
            raise AccessDenied(
                f"MongoDB refused the credentials or the operation ({what})."
            ) from None
        raise Unavailable(f"MongoDB refused the operation ({what}, code {exc.code}).") from None
    except errors.ConfigurationError:
        raise Unavailable(f"The MongoDB address cannot be used ({what}).") from None
    except errors.PyMongoError as exc:
        raise Unavailable(f"MongoDB did not answer ({what}: {type(exc).__name__}).") from None

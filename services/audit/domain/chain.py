"""The per-entity hash chain that makes the archive tamper-evident, and its verification.

Each archived event carries its place in its entity's chain (`chainIndex`, from 1), the hash of the
entity's previous archived event (`prevHash`; a run of zeros for the first) and its own `hash`: the
SHA-256 of its canonical JSON, which includes `prevHash`. Changing, removing or reordering any record
breaks the links after it; comparing the archive with the table's history items catches a removed
tail and anything changed in one home but not the other.

Pure: `verify` gets what was read from both homes and answers every break, in a stable order.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable

from msgspec import Struct, field
from pydantic import ValidationError

from services.common.audit import AuditEvent

GENESIS = "0" * 64  # what the first event of every entity links to


class ArchivedEvent(AuditEvent):
    """An audit event in its entity's chain: one NDJSON line of the archive, and a history item."""

    chainIndex: int
    prevHash: str
    hash: str

    @property
    def entity(self) -> tuple[str, str]:
        return self.entityType, self.entityId


def _digest(event: AuditEvent, chain_index: int, prev_hash: str) -> str:
    body = {**event.model_dump(mode="json", include=set(AuditEvent.model_fields)), "chainIndex": chain_index}
    if body.get("traceFromClient") is None:
        body.pop("traceFromClient", None)  # a later, optional field: events without it hash as they always did
    body["prevHash"] = prev_hash
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def link(event: AuditEvent, chain_index: int, prev_hash: str) -> ArchivedEvent:
    """`event` as the `chain_index`-th link of its entity's chain, after the link hashed `prev_hash`."""
    fields = event.model_dump(include=set(AuditEvent.model_fields))
    return ArchivedEvent(
        **fields, chainIndex=chain_index, prevHash=prev_hash, hash=_digest(event, chain_index, prev_hash)
    )


def object_key(event: ArchivedEvent) -> str:
    """Where the archive keeps an event: partitioned by day (for Athena and lifecycle), named by its
    stream record so that a redelivery writes to the same key and finds it taken."""
    day = event.at[:10] if len(event.at) >= 10 else "undated"
    return f"audit/dt={day}/{event.entityType}/{event.eventId}.ndjson.gz"


class Break(Struct, frozen=True, order=True):
    """One place where the trail is not what it should be."""

    entityType: str
    entityId: str
    chainIndex: int
    where: str  # the archive object, or "history" for the table
    problem: str

    def __str__(self) -> str:
        return f"{self.entityType} {self.entityId} #{self.chainIndex} ({self.where}): {self.problem}"


class ArchiveObject(Struct):
    """What one archive key holds, as read: its records (or why it could not be read) and its versions."""

    key: str
    lines: list[str]
    versions: int = 1
    deleted: bool = False


class ChainHead(Struct, frozen=True):
    """An entity's chain head as the table keeps it: how many links, the last one's hash and time."""

    entityType: str
    entityId: str
    length: int
    hash: str
    last_at: str | None  # absent on heads written before it was kept


class Verification(Struct):
    records: int = 0
    entities: int = 0
    history_items: int = 0
    pending: int = 0  # history items too recent to be archived yet: not breaks (see `verify`)
    breaks: list[Break] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not self.breaks

    @property
    def first_break(self) -> Break | None:
        return min(self.breaks) if self.breaks else None

    def summary(self) -> str:
        checked = (
            f"{self.records} archived events in {self.entities} chains, {self.history_items} history items checked"
        )
        if self.pending:
            checked += f", {self.pending} too recent to be archived yet"
        if self.intact:
            return f"intact: {checked}"
        return f"BROKEN: {len(self.breaks)} breaks; first: {self.first_break}\n({checked})"


def _parse(archive_object: ArchiveObject, breaks: list[Break]) -> list[ArchivedEvent]:
    key = archive_object.key
    parts = key.split("/")
    unknown = (parts[2] if len(parts) == 4 else "?", "?", 0, key)  # audit/dt=<day>/<entityType>/<eventId>…
    if archive_object.deleted:
        breaks.append(Break(*unknown, "the object was deleted (its latest version is a delete marker)"))
        return []
    records = []
    for number, line in enumerate(archive_object.lines, start=1):
        try:
            records.append(ArchivedEvent.model_validate_json(line))
        except ValidationError as error:
            breaks.append(Break(*unknown, f"line {number} is not an archived event: {error.error_count()} errors"))
    if archive_object.versions > 1:
        overwritten = f"the object was overwritten ({archive_object.versions} versions)"
        named: list[tuple[str, str, int, str]] = [(r.entityType, r.entityId, r.chainIndex, key) for r in records]
        named = named or [unknown]
        breaks.extend(Break(*where, overwritten) for where in named)
    return records


def verify(
    archive: Iterable[ArchiveObject],
    history: Iterable[ArchivedEvent],
    recent_since: str | None = None,
    heads: Iterable[ChainHead] | None = None,
) -> Verification:
    """Check every chain of the archive, compare the archive with the history items, and each chain
    with its head: the one item that says how long the chain is, so that its last events removed from
    both homes alike are missed too.

    On a live system the newest events may be in the history and not yet in the archive (the consumer
    writes the table first, and may be behind); history items missing from the archive whose `at` is
    at or after `recent_since` (ISO 8601 UTC) count as pending instead of breaks.
    """
    result = Verification()
    breaks = result.breaks
    chains: dict[tuple[str, str], list[tuple[ArchivedEvent, str]]] = defaultdict(list)
    archived: dict[str, ArchivedEvent] = {}
    for archive_object in archive:
        for record in _parse(archive_object, breaks):
            result.records += 1
            chains[record.entity].append((record, archive_object.key))
            archived[record.eventId] = record
            here = (record.entityType, record.entityId, record.chainIndex, archive_object.key)
            if object_key(record) != archive_object.key:
                breaks.append(Break(*here, f"the record belongs at {object_key(record)}"))
    result.entities = len(chains)
    for (_, _), links in chains.items():
        links.sort(key=lambda pair: pair[0].chainIndex)
        previous: ArchivedEvent | None = None
        for record, key in links:
            here = (record.entityType, record.entityId, record.chainIndex, key)
            expected_index = previous.chainIndex + 1 if previous else 1
            if record.chainIndex < expected_index:
                breaks.append(Break(*here, f"a second record claims place {record.chainIndex}"))
            elif record.chainIndex > expected_index:
                breaks.append(Break(*here, f"places {expected_index}..{record.chainIndex - 1} are missing"))
            expected_prev = previous.hash if previous else GENESIS
            if record.chainIndex == expected_index and record.prevHash != expected_prev:
                breaks.append(Break(*here, "prevHash does not match the hash of the record before it"))
            if _digest(record, record.chainIndex, record.prevHash) != record.hash:
                breaks.append(Break(*here, "the content does not match its hash: the record was altered"))
            previous = record
    seen: set[str] = set()
    last_in_history: dict[tuple[str, str], ArchivedEvent] = {}
    for item in history:
        result.history_items += 1
        seen.add(item.eventId)
        known = last_in_history.get(item.entity)
        if known is None or item.chainIndex > known.chainIndex:
            last_in_history[item.entity] = item
        where = (item.entityType, item.entityId, item.chainIndex, "history")
        twin = archived.get(item.eventId)
        if twin is None and recent_since is not None and item.at >= recent_since:
            result.pending += 1
        elif twin is None:
            breaks.append(Break(*where, f"event {item.eventId} is in the history but not in the archive"))
        elif twin != item:
            fields = ArchivedEvent.model_fields
            differing = sorted(name for name in fields if getattr(twin, name) != getattr(item, name))
            breaks.append(Break(*where, f"the archive and the history disagree on {', '.join(differing)}"))
    for event_id, record in archived.items():
        if event_id not in seen:
            here = (record.entityType, record.entityId, record.chainIndex, object_key(record))
            breaks.append(Break(*here, f"event {event_id} is in the archive but not in the history"))
    for head in heads or []:
        last = last_in_history.pop((head.entityType, head.entityId), None)
        if last is not None and (last.chainIndex, last.hash) == (head.length, head.hash):
            continue
        if recent_since is not None and head.last_at is not None and head.last_at >= recent_since:
            result.pending += 1  # the index the history is read from may not show the newest link yet
            continue
        ends = f"the history ends at #{last.chainIndex}" if last else "the history has none of it"
        problem = f"the chain's head counts {head.length} links ({ends}): its last events were removed"
        breaks.append(Break(head.entityType, head.entityId, head.length, "chain head", problem))
    if heads is not None:  # read (even if none came back): every chain in the history has one
        for (entity_type, entity_id), last in last_in_history.items():
            breaks.append(Break(entity_type, entity_id, last.chainIndex, "chain head", "the chain has no head"))
    return result

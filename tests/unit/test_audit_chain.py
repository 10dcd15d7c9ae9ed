"""The archive's hash chains and their verification: every kind of tampering is caught, and the
report names the first break precisely."""

from __future__ import annotations

import gzip

from hypothesis import given
from hypothesis import strategies as st

from services.audit.adapters.s3_archive import decode, encode
from services.audit.domain.chain import GENESIS, ArchivedEvent, ArchiveObject, ChainHead, link, object_key, verify
from services.common.audit import AuditEvent, Change


def event(entity: str, n: int, action: str = "BOOKING_RESCHEDULED") -> AuditEvent:
    return AuditEvent(
        eventId=f"{entity}-e{n}",
        sequence=str(1000 + n),
        entityType="Booking",
        entityId=entity,
        action=action,
        actor="lena",
        requestId=f"req-{n}",
        traceId="1-5f84c7a1-0123456789abcdef01234567",
        at=f"2026-11-2{n % 10}T10:00:0{n % 10}Z",
        changes={"start": Change(before=f"2026-12-0{n}T09:00:00Z", after=f"2026-12-0{n}T10:00:00Z")},
    )


def chain(entity: str, length: int) -> list[ArchivedEvent]:
    links: list[ArchivedEvent] = []
    for n in range(1, length + 1):
        links.append(link(event(entity, n), n, links[-1].hash if links else GENESIS))
    return links


def archive_of(*records: ArchivedEvent) -> list[ArchiveObject]:
    return [ArchiveObject(object_key(r), decode(encode(r))) for r in records]


def test_an_untouched_archive_is_intact() -> None:
    a, b = chain("bkg_a", 3), chain("bkg_b", 2)
    result = verify(archive_of(*a, *b), [*a, *b])
    assert result.intact and result.summary().startswith("intact: 5 archived events in 2 chains, 5 history items")
    assert a[0].prevHash == GENESIS and a[1].prevHash == a[0].hash and a[2].chainIndex == 3


def test_linking_is_deterministic_and_bound_to_the_content() -> None:
    first = link(event("bkg_a", 1), 1, GENESIS)
    assert first == link(event("bkg_a", 1), 1, GENESIS)
    assert first.hash != link(event("bkg_a", 1), 2, GENESIS).hash
    assert first.hash != link(event("bkg_a", 1), 1, "f" * 64).hash
    assert encode(first) == encode(first)  # the same record always makes the same object (no gzip mtime)
    assert gzip.decompress(encode(first)).endswith(b"}\n")


def test_an_altered_record_is_caught_where_it_was_altered() -> None:
    records = chain("bkg_a", 4)
    objects = archive_of(*records)
    objects[2].lines = [objects[2].lines[0].replace('"actor":"lena"', '"actor":"mallory"')]
    result = verify(objects, records)
    assert not result.intact
    first = result.first_break
    assert first is not None
    assert (first.entityId, first.chainIndex, first.where) == ("bkg_a", 3, object_key(records[2]))
    assert "altered" in first.problem or "disagree" in first.problem
    assert any("the content does not match its hash" in b.problem for b in result.breaks)
    assert any(b.where == "history" and "actor" in b.problem for b in result.breaks)


def test_an_altered_record_with_a_recomputed_hash_breaks_the_next_link() -> None:
    records = chain("bkg_a", 3)
    forged = link(event("bkg_a", 2, action="BOOKING_CANCELLED"), 2, records[0].hash)
    result = verify(archive_of(records[0], forged, records[2]), records)
    problems = {(b.chainIndex, b.problem) for b in result.breaks}
    assert (3, "prevHash does not match the hash of the record before it") in problems
    assert any(index == 2 and "disagree on action, hash" in problem for index, problem in problems)


def test_a_removed_record_leaves_a_gap_and_a_missing_history_twin() -> None:
    records = chain("bkg_a", 4)
    result = verify(archive_of(records[0], records[1], records[3]), records)
    first = result.first_break
    assert first is not None and first.chainIndex == 3
    assert first.problem == "event bkg_a-e3 is in the history but not in the archive"
    assert any(b.chainIndex == 4 and b.problem == "places 3..3 are missing" for b in result.breaks)


def test_a_removed_tail_is_caught_by_the_history() -> None:
    records = chain("bkg_a", 3)
    result = verify(archive_of(*records[:2]), records)
    assert [str(b) for b in result.breaks] == [
        "Booking bkg_a #3 (history): event bkg_a-e3 is in the history but not in the archive"
    ]


def head_of(records: list[ArchivedEvent]) -> ChainHead:
    last = records[-1]
    return ChainHead(last.entityType, last.entityId, last.chainIndex, last.hash, last.at)


def test_a_tail_removed_from_both_homes_is_caught_by_the_chain_head() -> None:
    records = chain("bkg_a", 3)
    intact = verify(archive_of(*records), records, heads=[head_of(records)])
    assert intact.intact
    # the last event deleted from the archive (its versions too) and from the history alike
    result = verify(archive_of(*records[:2]), records[:2], heads=[head_of(records)])
    assert [str(b) for b in result.breaks] == [
        "Booking bkg_a #3 (chain head): the chain's head counts 3 links (the history ends at #2): "
        "its last events were removed"
    ]
    # unless that last link is younger than the settling time (the index may not show it yet)
    pending = verify(archive_of(*records[:2]), records[:2], recent_since=records[2].at, heads=[head_of(records)])
    assert pending.intact and pending.pending == 1
    # and a chain whose head is gone is a break too
    others = chain("bkg_b", 1)
    headless = verify(archive_of(*records, *others), [*records, *others], heads=[head_of(records)])
    assert [str(b) for b in headless.breaks] == ["Booking bkg_b #1 (chain head): the chain has no head"]
    # and no heads at all is no pass: every chain lacks one (unless heads are not asked about)
    none_read = verify(archive_of(*others), others, heads=[])
    assert [str(b) for b in none_read.breaks] == ["Booking bkg_b #1 (chain head): the chain has no head"]
    assert verify(archive_of(*others), others).intact


def test_an_event_only_in_the_archive_and_a_doubled_place_are_breaks() -> None:
    records = chain("bkg_a", 2)
    double = link(event("bkg_a", 9), 2, records[0].hash)
    result = verify(archive_of(*records, double), records)
    problems = sorted(b.problem for b in result.breaks)
    assert "a second record claims place 2" in problems
    assert "event bkg_a-e9 is in the archive but not in the history" in problems


def test_overwritten_deleted_misplaced_and_unreadable_objects_are_breaks() -> None:
    records = chain("bkg_a", 2)
    objects = archive_of(*records)
    objects[0].versions = 2
    moved = ArchiveObject("audit/dt=2020-01-01/Booking/elsewhere.ndjson.gz", objects[1].lines)
    gone = ArchiveObject("audit/dt=2026-11-21/Booking/bkg_a-e1x.ndjson.gz", [], deleted=True)
    garbage = ArchiveObject("audit/dt=2026-11-21/Booking/junk.ndjson.gz", ["not json"])
    result = verify([objects[0], moved, gone, garbage], records)
    problems = " | ".join(b.problem for b in result.breaks)
    assert "overwritten (2 versions)" in problems
    assert "the record belongs at audit/dt=2026-11-22/Booking/bkg_a-e2.ndjson.gz" in problems
    assert "delete marker" in problems
    assert "line 1 is not an archived event" in problems


@given(
    length=st.integers(min_value=1, max_value=6),
    victim=st.integers(min_value=0, max_value=5),
    field=st.sampled_from(["actor", "action", "at", "entityId", "requestId", "changes", "prevHash", "chainIndex"]),
)
def test_any_change_to_any_field_of_any_record_is_caught(length: int, victim: int, field: str) -> None:
    records = chain("bkg_p", length)
    victim %= length
    values = records[victim].model_dump()
    values[field] = {
        "actor": "mallory",
        "action": "BOOKING_CANCELLED",
        "at": "2000-01-01T00:00:00Z",
        "entityId": "bkg_other",
        "requestId": "req-forged",
        "changes": {},
        "prevHash": "f" * 64,
        "chainIndex": values["chainIndex"] + 1,
    }[field]
    tampered = ArchivedEvent.model_validate(values)
    objects = archive_of(*records)
    objects[victim].lines = [tampered.model_dump_json()]
    result = verify(objects, records)
    assert not result.intact


def test_history_too_recent_to_be_archived_is_pending_not_a_break() -> None:
    records = chain("bkg_a", 3)  # at: 2026-11-21…, 2026-11-22…, 2026-11-23…
    result = verify(archive_of(*records[:2]), records, recent_since="2026-11-23T00:00:00Z")
    assert result.intact and result.pending == 1
    assert result.summary().endswith("1 too recent to be archived yet")
    strict = verify(archive_of(*records[:2]), records, recent_since="2026-11-24T00:00:00Z")
    assert not strict.intact and strict.pending == 0

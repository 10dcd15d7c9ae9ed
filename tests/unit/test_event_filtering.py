"""Lambda's filter rules as the local mapping applies them, and the audit mapping's own filter held to
the audit classifier: no record that is an audit event may be filtered out."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

from local.lambda_runtime.event_filtering import EventFilter, FilterPatternError
from local.lambda_runtime.event_source_mapping import MappingSettings
from services.audit.domain.events import INTERNAL, audit_event


def keeps(pattern: dict[str, Any], record: dict[str, Any]) -> bool:
    event_filter = EventFilter.from_criteria({"Filters": [{"Pattern": json.dumps(pattern)}]})
    assert event_filter is not None
    return event_filter.keeps(record)


RECORD = {
    "eventName": "MODIFY",
    "dynamodb": {
        "NewImage": {"entityType": {"S": "Booking"}, "status": {"S": "CANCELLED"}, "n": {"N": "3"}},
        "OldImage": {"entityType": {"S": "Booking"}},
    },
    "count": 300,
    "flag": True,
    "nothing": None,
    "tags": ["a", "b"],
}


def test_event_filter_values_in_an_array_are_alternatives_and_fields_must_all_match() -> None:
    assert keeps({"eventName": ["INSERT", "MODIFY"]}, RECORD)
    assert keeps({"eventName": ["MODIFY"], "dynamodb": {"NewImage": {"status": {"S": ["CANCELLED"]}}}}, RECORD)
    assert not keeps({"eventName": ["MODIFY"], "dynamodb": {"NewImage": {"status": {"S": ["CONFIRMED"]}}}}, RECORD)
    assert not keeps({"missing": ["x"]}, RECORD)  # a field the pattern names must be there


def test_event_filter_compares_json_values_exactly() -> None:
    assert keeps({"count": [300]}, RECORD)
    assert not keeps({"count": [300.0]}, RECORD)  # numbers by their text, as Lambda documents
    assert not keeps({"count": ["300"]}, RECORD)
    assert not keeps({"dynamodb": {"NewImage": {"n": {"N": [3]}}}}, RECORD)  # DynamoDB's N is a string
    assert (
        keeps({"flag": [True]}, RECORD) and not keeps({"flag": [1]}, RECORD) and not keeps({"flag": ["true"]}, RECORD)
    )
    assert keeps({"nothing": [None]}, RECORD)
    assert not keeps({"missing": [None]}, RECORD)  # null is a present null, not an absent field
    assert keeps({"tags": ["b"]}, RECORD)  # an array matches when an element does


def test_event_filter_prefix_anything_but_and_exists() -> None:
    new = {"dynamodb": {"NewImage": {"status": {"S": [{"prefix": "CANC"}]}}}}
    assert keeps(new, RECORD)
    assert not keeps({"dynamodb": {"NewImage": {"status": {"S": [{"prefix": "cancel"}]}}}}, RECORD)  # no case-folding
    assert keeps({"dynamodb": {"NewImage": {"status": {"S": [{"anything-but": ["CONFIRMED"]}]}}}}, RECORD)
    assert not keeps({"dynamodb": {"NewImage": {"status": {"S": [{"anything-but": "CANCELLED"}]}}}}, RECORD)
    assert not keeps({"missing": [{"anything-but": ["x"]}]}, RECORD)  # anything but a value, not no value
    assert keeps({"dynamodb": {"OldImage": {"entityType": {"S": [{"exists": True}]}}}}, RECORD)
    assert keeps({"dynamodb": {"OldImage": {"status": {"S": [{"exists": False}]}}}}, RECORD)
    # exists only sees leaves: a missing parent is no value, an object is not one either
    assert keeps({"absent": {"deeper": {"S": [{"exists": False}]}}}, RECORD)
    assert not keeps({"dynamodb": {"NewImage": [{"exists": True}]}}, RECORD)


@pytest.mark.parametrize(
    "pattern",
    [
        '{"count": [{"numeric": [">", 0]}]}',
        '{"eventName": [{"suffix": "ERT"}]}',
        '{"eventName": [{"equals-ignore-case": "insert"}]}',
        '{"eventName": [{"wildcard": "IN*"}]}',
        '{"eventName": [{"anything-but": {"prefix": "IN"}}]}',
        '{"$or": [{"eventName": ["INSERT"]}, {"eventName": ["MODIFY"]}]}',
        '{"eventName": "INSERT"}',  # a rule is an array (Lambda refuses this too)
        '{"eventName": []}',
        "[]",
        "not json",
    ],
)
def test_event_filter_refuses_what_it_does_not_implement_or_lambda_refuses(pattern: str) -> None:
    with pytest.raises(FilterPatternError):
        EventFilter.from_criteria({"Filters": [{"Pattern": pattern}]})


def test_event_filter_takes_at_most_five_filters() -> None:
    six = {"Filters": [{"Pattern": json.dumps({"eventName": [str(n)]})} for n in range(6)]}
    with pytest.raises(FilterPatternError):
        EventFilter.from_criteria(six)
    assert EventFilter.from_criteria({}) is None and EventFilter.from_criteria(None) is None


# -- the audit mapping's filter against the classifier ----------------------------------------------

ENTITY_FIELDS = {
    "bookingId": "bkg_1",
    "providerId": "prv_1",
    "serviceId": "svc_1",
    "customerId": "cust_1",
    "date": "2030-01-07",
    "requestId": "r",
}
KINDS = ["Booking", "Schedule", "Override", "Service", "PersonalDataErasure", "Provider", *sorted(INTERNAL), "Other"]
VARIANTS: list[dict[str, Any]] = [
    {},
    {"status": "CANCELLED"},
    {"status": "NO_SHOW"},
    {"start": "2030-01-07T11:00:00Z"},
    {"lastChange": "OVERRIDE_REMOVED 2030-01-07"},
    {"lastChange": "OVERRIDE_SET 2030-01-07"},
    {"lastChange": "SCHEDULE_UPDATED"},
    {"availabilityVersion": 2},
]


def images(kind: str | None, change: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    old = {"entityType": kind, "status": "CONFIRMED", "start": "2030-01-07T10:00:00Z", **ENTITY_FIELDS}
    if kind is None:
        del old["entityType"]
    return old, {**old, **change}


def stream_record(event_name: str, old: dict[str, Any], new: dict[str, Any], ttl: bool) -> dict[str, Any]:
    from services.common.dynamodb import to_item

    dynamodb: dict[str, Any] = {"SequenceNumber": "1", "ApproximateCreationDateTime": 1.0, "Keys": {}}
    if event_name != "REMOVE":
        dynamodb["NewImage"] = to_item(new)
    if event_name != "INSERT":
        dynamodb["OldImage"] = to_item(old)
    record: dict[str, Any] = {
        "eventID": "e",
        "eventName": event_name,
        "eventSource": "aws:dynamodb",
        "dynamodb": dynamodb,
    }
    if ttl:
        record["userIdentity"] = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
    return record


def every_kind_of_record() -> list[dict[str, Any]]:
    records = []
    for kind, change, event_name in itertools.product([*KINDS, None], VARIANTS, ["INSERT", "MODIFY", "REMOVE"]):
        old, new = images(kind, change)
        records.append(stream_record(event_name, old, new, ttl=False))
        if event_name == "REMOVE":
            records.append(stream_record(event_name, old, new, ttl=True))
    return records


def test_audit_mapping_filter_keeps_every_record_the_classifier_makes_an_event_of() -> None:
    # Given the deployed mapping's filter, and records of every entity type, event and change
    event_filter = MappingSettings.from_template().event_filter
    assert event_filter is not None, "the audit mapping has FilterCriteria"
    records = every_kind_of_record()

    # Then no record that is an audit event is dropped
    lost = [r for r in records if audit_event(r) is not None and not event_filter.keeps(r)]
    assert not lost, json.dumps(lost[:3], indent=1)
    # and what is dropped is what the consumer would ignore: internal items, removals, version bumps
    dropped = [r for r in records if not event_filter.keeps(r)]
    assert all(audit_event(r) is None for r in dropped)
    for record in records:
        image = record["dynamodb"].get("NewImage") or record["dynamodb"]["OldImage"]
        kind = image.get("entityType", {}).get("S")
        if kind in INTERNAL or kind in {None, "Other"} or record["eventName"] == "REMOVE":
            assert not event_filter.keeps(record), record
    bump = stream_record("MODIFY", *images("Provider", {"lastChange": "SCHEDULE_UPDATED"}), ttl=False)
    assert not event_filter.keeps(bump)

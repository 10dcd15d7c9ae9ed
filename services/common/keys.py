"""The table's key schema: every entity's keys are built here and nowhere else (docs/data-model.md).

A provider's partition holds everything a slot search needs, ordered so that one Query over one SK
range reads it all: configuration first (`CONFIG#…`), then the calendar by date (`DAY#<date>#…`:
a local date's override, a UTC day's busy time). Past calendar items carry a TTL, so the range stays
about as long as the future up to the window's end.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC as UTC_ZONE
from datetime import date, datetime, timedelta
from typing import Final

PROVIDERS_INDEX: Final = "GSI1"  # GSI1PK = "PROVIDERS": every provider, ordered by name

PROVIDER_PREFIX: Final = "PROVIDER#"
CONFIG_PREFIX: Final = "CONFIG#"
PROFILE_SK: Final = "CONFIG#PROFILE"
SCHEDULE_SK: Final = "CONFIG#SCHEDULE"
SERVICE_PREFIX: Final = "CONFIG#SERVICE#"
CALENDAR_PREFIX: Final = "DAY#"  # sorts after "CONFIG#": one range holds both
ALL_PROVIDERS: Final = "PROVIDERS"

Key = dict[str, dict[str, str]]


def new_id(prefix: str) -> str:
    """A new opaque id such as `prv_3f2c…` (the prefix says what it names)."""
    return f"{prefix}_{uuid.uuid4().hex}"


def new_booking_id(provider_id: str) -> str:
    """`bkg_<provider's 32 hex><16 random hex>`: opaque to clients; inside, it names the provider's
    partition, so a reschedule finds the booking's time with the same single Query as the new slot."""
    return f"bkg_{provider_id.removeprefix('prv_')}{uuid.uuid4().hex[:16]}"


def provider_of_booking(booking_id: str) -> str:
    return f"prv_{booking_id.removeprefix('bkg_')[:32]}"


HOLD_ID_PREFIX: Final = "hld_"


def new_hold_id(provider_id: str) -> str:
    """`hld_<provider's 32 hex><16 random hex>`, as a booking's id: it names the provider's partition."""
    return f"{HOLD_ID_PREFIX}{provider_id.removeprefix('prv_')}{uuid.uuid4().hex[:16]}"


def hold_key(hold_id: str) -> Key:
    return {"PK": {"S": f"HOLD#{hold_id}"}, "SK": {"S": "HOLD"}}


SERIES_ID_PREFIX: Final = "ser_"
PENDING_SERIES_PREFIX: Final = "CONFIG#SERIES#"


def new_series_id(provider_id: str) -> str:
    """`ser_<provider's 32 hex><16 random hex>`, as a booking's id: it names the provider's partition."""
    return f"{SERIES_ID_PREFIX}{provider_id.removeprefix('prv_')}{uuid.uuid4().hex[:16]}"


def provider_of_series(series_id: str) -> str:
    return f"prv_{series_id.removeprefix(SERIES_ID_PREFIX)[:32]}"


def series_key(series_id: str) -> Key:
    return {"PK": {"S": f"SERIES#{series_id}"}, "SK": {"S": "SERIES"}}


def pending_series_key(provider_id: str, series_id: str) -> Key:
    """A series while it is being claimed (decision 0024): under the provider's configuration, so the
    calendar's one Query reads it with everything else and judges the series' spans by it."""
    return {"PK": {"S": provider_pk(provider_id)}, "SK": {"S": f"{PENDING_SERIES_PREFIX}{series_id}"}}


WAITLIST_ID_PREFIX: Final = "wl_"
WAITLIST_INDEX: Final = "GSI2"
ACTIVE_WAITLIST: Final = "WAITLIST#ACTIVE"  # GSI2PK of every entry still waiting or offered


def new_waitlist_id(provider_id: str) -> str:
    """`wl_<provider's 32 hex><16 random hex>`, as a booking's id: it names the provider's partition."""
    return f"{WAITLIST_ID_PREFIX}{provider_id.removeprefix('prv_')}{uuid.uuid4().hex[:16]}"


def waitlist_key(waitlist_id: str) -> Key:
    return {"PK": {"S": f"WAITLIST#{waitlist_id}"}, "SK": {"S": "WAITLIST"}}


def active_waitlist_keys(provider_id: str, created_at: str, waitlist_id: str) -> Key:
    """An entry's place in the line while it waits or is offered (GSI2, taken out when it ends): one
    partition for every provider's line, ordered by provider, then age, so the sweep reads all lines
    and a provider's change reads its own, oldest first, with one Query each."""
    return {"GSI2PK": {"S": ACTIVE_WAITLIST}, "GSI2SK": {"S": f"{provider_id}#{created_at}#{waitlist_id}"}}


def customer_waitlist_key(customer: str) -> Key:
    """How many entries a customer has in lines (`live`), raised in the entry's transaction under a
    cap and lowered in the transaction that ends it."""
    return {"PK": {"S": f"CUSTOMER#{customer}"}, "SK": {"S": "WAITLIST"}}


def limit_counter_key(provider_id: str, counter: str) -> Key:
    """One limit's count (services/common/limits.py), in a partition of the provider's limits: not in
    the provider's own, whose calendar Query must stay small."""
    return {"PK": {"S": f"LIMITS#{provider_id}"}, "SK": {"S": counter}}


def customer_holds_key(caller: str) -> Key:
    """The live holds a caller asked for (id → expiry) with a version: the cap on them is checked in
    the hold's transaction."""
    return {"PK": {"S": f"CUSTOMER#{caller}"}, "SK": {"S": "HOLDS"}}


def booking_key(booking_id: str) -> Key:
    return {"PK": {"S": f"BOOKING#{booking_id}"}, "SK": {"S": "BOOKING"}}


def idempotency_key(caller: str, key: str) -> Key:
    return {"PK": {"S": f"IDEMPOTENCY#{caller}#{key}"}, "SK": {"S": "IDEMPOTENCY"}}


def provider_pk(provider_id: str) -> str:
    return f"{PROVIDER_PREFIX}{provider_id}"


def provider_key(provider_id: str) -> Key:
    return {"PK": {"S": provider_pk(provider_id)}, "SK": {"S": PROFILE_SK}}


def provider_list_keys(provider_id: str, name: str) -> Key:
    """The GSI1 attributes that place a provider in the ordered list of all providers."""
    return {"GSI1PK": {"S": ALL_PROVIDERS}, "GSI1SK": {"S": f"{name.casefold()}#{provider_id}"}}


def schedule_key(provider_id: str) -> Key:
    return {"PK": {"S": provider_pk(provider_id)}, "SK": {"S": SCHEDULE_SK}}


def service_key(provider_id: str, service_id: str) -> Key:
    return {"PK": {"S": provider_pk(provider_id)}, "SK": {"S": f"{SERVICE_PREFIX}{service_id}"}}


def override_key(provider_id: str, day: date) -> Key:
    """`day` is the provider's local date."""
    return {"PK": {"S": provider_pk(provider_id)}, "SK": {"S": f"{CALENDAR_PREFIX}{day.isoformat()}#OVERRIDE"}}


# Busy time is kept in blocks of this many minutes of UTC time (decision 0007): two bookings contend
# only when their spans, buffers included, touch the same block. 30 minutes is the smallest block for
# which the longest possible change still fits one transaction: a 20-hour span (720 minutes plus two
# 240-minute buffers) touches at most 41 blocks, and a reschedule writes its old and new ones (82)
# beside the booking and two checks, under DynamoDB's 100 items.
BLOCK_MINUTES: Final = 30


def busy_blocks(start: datetime, end: datetime) -> list[datetime]:
    """The starts (UTC) of the blocks a span [start, end) touches."""
    first = start.astimezone(UTC_ZONE).replace(second=0, microsecond=0)
    first -= timedelta(minutes=first.minute % BLOCK_MINUTES)
    blocks = []
    while first < end:
        blocks.append(first)
        first += timedelta(minutes=BLOCK_MINUTES)
    return blocks


def block_id(block: datetime) -> str:
    """`2026-03-02T09:30`: a block's name, as its key and the calendar's versions spell it."""
    return block.astimezone(UTC_ZONE).strftime("%Y-%m-%dT%H:%M")


def busy_block_of(sort_key: str) -> tuple[str, str]:
    """The UTC date and the block id (`keys.block_id`) a busy block's sort key names: its item holds
    neither on its own, so that the slot search reads less (decision 0023)."""
    day, time = sort_key[len(CALENDAR_PREFIX) : len(CALENDAR_PREFIX) + 10], sort_key[-5:]
    return day, f"{day}T{time}"


def busy_block_key(provider_id: str, block: datetime) -> Key:
    """The busy time of one block: every booking's span that touches it. Under its UTC date, so the
    slot search's one Query reads it with the rest of that day's calendar."""
    day, time = block_id(block).split("T")
    return {"PK": {"S": provider_pk(provider_id)}, "SK": {"S": f"{CALENDAR_PREFIX}{day}#BUSY#{time}"}}


def slot_query_range(until: datetime) -> tuple[str, str]:
    """The SK range of a provider's partition holding everything a search up to `until` needs.

    One day past `until`'s UTC date, because a local date can be ahead of the UTC date.
    """
    last = (until.astimezone(UTC_ZONE).date() + timedelta(days=1)).isoformat()
    return CONFIG_PREFIX, f"{CALENDAR_PREFIX}{last}#~"


# What lapses without a write (a hold's expiry, an approval's deadline) is written down by the minute's
# sweep, which finds it by a marker put with it: one partition per hour of lapsing, read up to now.
EXPIRING_PREFIX: Final = "EXPIRING#"
EXPIRY_CURSOR: Final = {"PK": {"S": f"{EXPIRING_PREFIX}CURSOR"}, "SK": {"S": "CURSOR"}}


def expiry_hour(moment: datetime) -> str:
    """The hour a marker is filed under: `2026-12-01T09` (UTC), sorting as time does."""
    return moment.astimezone(UTC_ZONE).strftime("%Y-%m-%dT%H")


def expiry_marker_key(lapses_at: datetime, kind: str, entity_id: str) -> Key:
    """`EXPIRING#<hour>` / `<lapses at, UTC>#<kind>#<id>`: a Query of an hour's partition up to now
    reads what has lapsed, in the order it lapsed."""
    at = lapses_at.astimezone(UTC_ZONE).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"PK": {"S": f"{EXPIRING_PREFIX}{expiry_hour(lapses_at)}"}, "SK": {"S": f"{at}#{kind}#{entity_id}"}}


FEED_ID_PREFIX: Final = "fd_"


def feed_key(feed_id: str) -> Key:
    """A calendar feed, found by the id its URL names."""
    return {"PK": {"S": f"FEED#{feed_id}"}, "SK": {"S": "FEED"}}


def provider_feed_key(provider_id: str) -> Key:
    """Which feed is the provider's live one. In the provider's partition, but after its calendar's
    range (`FEED` sorts after `DAY#…`), so no calendar Query reads it."""
    return {"PK": {"S": provider_pk(provider_id)}, "SK": {"S": "FEED"}}


# Webhook subscriptions (decision 0029): all in one partition, by scope (every provider's events, or
# one provider's), so an event's subscribers are two Queries; each found by its id through a pointer.
# A subscription's deliveries are in its own partition, the newest first by their time-ordered ids.
WEBHOOKS_PK: Final = "WEBHOOKS"
WEBHOOKS_ALL: Final = "ALL#"


def webhook_scope(provider_id: str | None) -> str:
    """The subscriptions' SK prefix for one provider's events, or for every provider's."""
    return WEBHOOKS_ALL if provider_id is None else f"{PROVIDER_PREFIX}{provider_id}#"


def webhook_key(provider_id: str | None, webhook_id: str) -> Key:
    return {"PK": {"S": WEBHOOKS_PK}, "SK": {"S": f"{webhook_scope(provider_id)}{webhook_id}"}}


def webhook_pointer_key(webhook_id: str) -> Key:
    return {"PK": {"S": f"WEBHOOK#{webhook_id}"}, "SK": {"S": "SUBSCRIPTION"}}


DELIVERY_PREFIX: Final = "DELIVERY#"


def delivery_key(webhook_id: str, delivery_id: str) -> Key:
    return {"PK": {"S": f"WEBHOOK#{webhook_id}"}, "SK": {"S": f"{DELIVERY_PREFIX}{delivery_id}"}}


# External busy time (decision 0030): what a provider's other calendar booked, one item per invitee,
# its span in the busy blocks as a booking's would be. Its id is derived from the invitee's URI, so a
# redelivery of the same invitee finds the item it made.
EXTERNAL_ID_PREFIX: Final = "ext_"


def external_id(source: str, reference: str) -> str:
    """`ext_` + 40 hex of SHA-256 over the source and its own id for the booking (Calendly's invitee URI)."""
    return f"{EXTERNAL_ID_PREFIX}{hashlib.sha256(f'{source} {reference}'.encode()).hexdigest()[:40]}"


def external_key(external: str) -> Key:
    return {"PK": {"S": f"EXTERNAL#{external}"}, "SK": {"S": "EXTERNAL"}}


def calendly_integration_key(provider_id: str) -> Key:
    """A provider's Calendly connection (its sealed signing key). After the calendar's range
    (`INTEGRATION#` sorts after `DAY#…`), so no calendar Query reads it."""
    return {"PK": {"S": provider_pk(provider_id)}, "SK": {"S": "INTEGRATION#CALENDLY"}}


# Notifications (decision 0031): a customer's contact and consent, each message claimed once, and
# each booking's one reminder plan.
def customer_bookings_partition(customer_id: str) -> str:
    """GSI2PK of a customer's bookings (GSI2SK: `<start UTC>#<bookingId>`)."""
    return f"CUSTOMER#{customer_id}"


def contact_key(customer: str) -> Key:
    return {"PK": {"S": f"CUSTOMER#{customer}"}, "SK": {"S": "CONTACT"}}


def notification_key(booking_id: str, version: int, kind: str) -> Key:
    return {"PK": {"S": f"NOTIFICATION#{booking_id}"}, "SK": {"S": f"MESSAGE#{version}#{kind}"}}


def reminder_plan_key(booking_id: str) -> Key:
    return {"PK": {"S": f"NOTIFICATION#{booking_id}"}, "SK": {"S": "REMINDER"}}

"""No cyclic garbage collection while a container initialises: each handler module imports this first.

A handler's imports (boto3, Powertools, pydantic, OpenTelemetry) create a few hundred thousand
objects that live as long as the container, and CPython's collector walks all of them again at each
full collection those allocations trigger: about 55 ms of a 340 ms init, measured with
`make bench-cold-start`. Imports make next to no cyclic garbage, so the collector waits until the
handler module has loaded. `done()` then moves everything init made into the permanent generation
(`gc.freeze()`), so the collections during requests skip it too, and turns the collector back on.

Importing this module is what pauses the collector, so it pauses only for the first handler module a
process loads: one per Lambda container (tests that import several handlers just collect as usual).
See docs/decisions/0014-garbage-collection-during-init.md.
"""

from __future__ import annotations

import gc

gc.disable()


def done() -> None:
    """The end of init: what exists now lives as long as the container; collect only what comes later."""
    gc.freeze()
    gc.enable()

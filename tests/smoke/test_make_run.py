"""`make run` as a user runs it: a subprocess on a free port, used, then stopped with Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow

STARTUP_SECONDS = 180  # generous: a cold machine may still be compiling bytecode


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def get_json(url: str, token: str | None = None, data: bytes | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=data, method="POST" if data else "GET")
    if data:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def descendants(pid: int) -> set[int]:
    """Every live process below `pid` (read from /proc, no extra dependency)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found: set[int] = set()
    pending = [pid]
    while pending:
        for child in children.get(pending.pop(), []):
            found.add(child)
            pending.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_until(check: Any, seconds: float, what: str, process: subprocess.Popen[bytes]) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"make run exited ({process.returncode}) while waiting for {what}")
        try:
            result = check()
            if result:
                return result
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    pytest.fail(f"timed out waiting for {what}")


def test_make_run_serves_health_warms_functions_authenticates_and_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        ["make", "--no-print-directory", "run", f"PORT={port}", f"STATE_DIR={tmp_path}"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, like a terminal's foreground job
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        # /health answers through the gateway, from the availability function
        status, health = wait_until(lambda: get_json(f"{base}/health"), STARTUP_SECONDS, "/health", process)
        assert status == 200 and health["table"]["reachable"] is True

        # every function was warmed once at start-up
        functions = get_json(f"{base}/_local/status")[1]["functions"]
        assert sorted(f["logicalId"] for f in functions.values()) == [
            "AuditFunction",
            "AvailabilityFunction",
            "BackupFunction",
            "BookingFunction",
            "NotificationFunction",
            "PublisherFunction",
            "WaitlistFunction",
            "WebhookFunction",
        ]
        assert all(f["state"] == "warm" for f in functions.values())

        # an authenticated route, with a token from the local mint
        _, minted = get_json(f"{base}/_local/token", data=json.dumps({"sub": "smoke", "groups": ["ops"]}).encode())
        status, me = get_json(f"{base}/me", token=minted["token"])
        assert (status, me) == (200, {"sub": "smoke", "groups": ["ops"]})
        assert get_json(f"{base}/me")[0] == 401

        # the seeded demo providers offer slots over a 62-day window
        customer = get_json(f"{base}/_local/token", data=json.dumps({"sub": "c", "groups": ["customers"]}).encode())[1]
        providers = get_json(f"{base}/providers", token=minted["token"])[1]["items"]  # ops see owners
        demo = [p for p in providers if p.get("ownerSub") == "demo-provider"]
        assert len(demo) == 3
        start = datetime.now(UTC)
        window = f"from={quote(start.isoformat())}&to={quote((start + timedelta(days=62)).isoformat())}"
        for provider in demo:
            services = get_json(f"{base}/providers/{provider['providerId']}/services", token=customer["token"])[1]
            for service in services["items"]:
                url = f"{base}/providers/{provider['providerId']}/slots?serviceId={service['serviceId']}&{window}"
                status, found = get_json(url, token=customer["token"])
                assert status == 200 and len(found["slots"]) > 100, (provider["name"], service["name"])

        # 40 customers race for one slot: Lambda's account pool takes them all, past the local worker
        # processes (two per core) they queue, and exactly one books (no 503 for a limit AWS would not apply)
        provider = demo[0]
        service = get_json(f"{base}/providers/{provider['providerId']}/services", token=customer["token"])[1]
        service_id = service["items"][0]["serviceId"]
        url = f"{base}/providers/{provider['providerId']}/slots?serviceId={service_id}&{window}"
        contested = get_json(url, token=customer["token"])[1]["slots"][0]["start"]
        racers = [
            get_json(f"{base}/_local/token", data=json.dumps({"sub": f"racer-{n}", "groups": ["customers"]}).encode())[
                1
            ]["token"]
            for n in range(40)
        ]
        body = json.dumps({"providerId": provider["providerId"], "serviceId": service_id, "start": contested}).encode()
        barrier = threading.Barrier(40)

        def race(racer: str) -> int:
            barrier.wait()
            return get_json(f"{base}/bookings", token=racer, data=body)[0]

        with ThreadPoolExecutor(40) as pool:
            statuses = sorted(pool.map(race, racers))
        assert (statuses.count(201), statuses.count(409)) == (1, 39), statuses
        booking = get_json(f"{base}/_local/status")[1]["functions"]["appointments-local-booking"]
        assert booking["throttles"] == 0 and booking["environments"] <= booking["environmentLimit"]
        if booking["environmentLimit"] < 40:  # a machine with fewer workers than racers queued some
            assert booking["queued"] > 0

        # the seeded changes went through the stream into the audit archive, which verifies
        wait_until(lambda: get_json(f"{base}/_local/status")[1]["stream"]["delivered"] > 0, 60, "the stream", process)
        verified = subprocess.run(
            ["make", "--no-print-directory", "audit-verify", f"PORT={port}"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert verified.returncode == 0 and " intact: " in verified.stdout, verified.stdout + verified.stderr

        children = descendants(process.pid)
        assert len(children) >= 4  # the stack, the emulator and three function environments
    finally:
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        output, _ = process.communicate(timeout=60)
    text = output.decode()
    assert "Appointments local stack ready" in text
    assert "curl -s -H 'Authorization: Bearer " in text and "/me" in text
    assert "Logs" in text and str(tmp_path) in text
    assert "Stopped; no process left behind." in text
    time.sleep(1)
    assert [pid for pid in children if alive(pid)] == []

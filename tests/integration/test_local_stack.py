"""The whole local stack in-process, over real HTTP: gateway → Lambda workers → emulated DynamoDB."""

from __future__ import annotations

import http.client
import json
import socket
import time
import urllib.request
from pathlib import Path

from local.seed import DEMO_PROVIDERS
from local.stack import LocalStack, aws_client
from services.common.keys import ALL_PROVIDERS, PROVIDERS_INDEX
from tests.integration.conftest import call, token


def test_health_travels_the_whole_path(stack: LocalStack) -> None:
    status, headers, body = call(stack, "GET", "/health")
    assert status == 200
    assert body["status"] == "ok"
    assert body["table"] == {"reachable": True, "latencyMs": body["table"]["latencyMs"]}  # no name: it answers anyone
    assert body["tzdataVersion"][:4].isdigit()
    assert headers["X-Amzn-Trace-Id"].startswith("Root=1-")


def test_every_function_was_warmed_at_start(stack: LocalStack) -> None:
    status, _, body = call(stack, "GET", "/_local/status")
    assert status == 200
    functions = body["functions"]
    logical_ids = {f["logicalId"] for f in functions.values()}
    assert logical_ids == {
        "AvailabilityFunction",
        "BookingFunction",
        "PublisherFunction",
        "WaitlistFunction",
        "WebhookFunction",
        "NotificationFunction",
        "AuditFunction",
        "BackupFunction",
    }
    assert all(f["state"] == "warm" and f["initDurationMs"] > 0 for f in functions.values())
    # and the templates' schedules run on the stack's clock
    assert set(body["schedules"]["fired"]) == {"appointments-local-waitlist-sweep", "appointments-local-backup"}


def test_authenticated_route_sees_the_callers_claims(stack: LocalStack) -> None:
    status, _, body = call(stack, "GET", "/me", token=token(stack, "alice", ["customers", "providers"]))
    assert (status, body) == (200, {"sub": "alice", "groups": ["customers", "providers"]})


def test_authorization_failures_are_problems(stack: LocalStack) -> None:
    status, headers, body = call(stack, "GET", "/me")
    assert (status, body["code"]) == (401, "UNAUTHORIZED")
    assert headers["Content-Type"] == "application/problem+json"
    assert call(stack, "GET", "/me", token="garbage")[0] == 401
    status, _, body = call(stack, "GET", "/me", token=token(stack, "nobody", []))
    assert (status, body["code"]) == (403, "FORBIDDEN")


def test_unknown_routes_and_oversize_bodies_are_refused_by_the_gateway(stack: LocalStack) -> None:
    assert call(stack, "GET", "/no/such/thing")[0] == 404
    status, _, body = call(stack, "GET", "/health", raw=b"x" * (6 * 1024 * 1024 + 1))
    assert (status, body) == (413, {"message": "Request Too Long"})  # API Gateway's own, not customizable


def test_openapi_and_swagger_ui_are_served(stack: LocalStack) -> None:
    status, _, document = call(stack, "GET", "/openapi.json")
    assert status == 200 and document["openapi"].startswith("3.")
    with urllib.request.urlopen(f"{stack.url}/docs", timeout=10) as response:
        assert b"swagger-ui" in response.read()
    assert call(stack, "GET", "/docs?format=json")[2] == document
    with urllib.request.urlopen(f"{stack.url}/docs/swagger-ui-bundle.min.js", timeout=10) as response:
        assert len(response.read()) > 100_000  # served locally: the page works offline


def test_access_log_and_function_logs_are_written(stack: LocalStack) -> None:
    call(stack, "GET", "/health")
    time.sleep(0.3)
    access = [json.loads(line) for line in (stack.logs_dir / "api-access.log").read_text().splitlines()]
    assert any(r["resourcePath"] == "/health" and r["status"] == 200 for r in access)
    log = Path(stack.status()["functions"]["appointments-local-availability"]["logFile"]).read_text()
    assert '"type": "platform.report"' in log
    assert '"service":"availability"' in log.replace(" ", "")  # Powertools' structured line from the handler


def test_demo_data_was_seeded(stack: LocalStack) -> None:
    assert stack.emulator is not None
    dynamodb = aws_client("dynamodb", stack.emulator.endpoint)
    providers = dynamodb.query(
        TableName="appointments-local",
        IndexName=PROVIDERS_INDEX,
        KeyConditionExpression="GSI1PK = :all",
        ExpressionAttributeValues={":all": {"S": ALL_PROVIDERS}},
    )["Items"]
    demo = [p for p in providers if p.get("ownerSub", {}).get("S") == "demo-provider"]
    assert {p["timeZone"]["S"] for p in demo} == {p.time_zone for p in DEMO_PROVIDERS}


def test_chunked_bodies_are_read_and_broken_framing_is_a_400(stack: LocalStack) -> None:
    assert stack.server is not None
    connection = http.client.HTTPConnection("127.0.0.1", stack.server.port, timeout=10)
    chunks = iter([b'{"sub": "chunky", ', b'"groups": ["ops"]}'])
    connection.request("POST", "/_local/token", body=chunks, encode_chunked=True)
    response = connection.getresponse()
    assert response.status == 200 and json.loads(response.read())["token"]
    connection.close()
    with socket.create_connection(("127.0.0.1", stack.server.port), timeout=10) as raw:
        host = f"127.0.0.1:{stack.server.port}".encode()
        raw.sendall(b"POST /health HTTP/1.1\r\nHost: " + host + b"\r\nContent-Length: lots\r\n\r\n")
        status_line = raw.makefile("rb").readline()
    assert status_line.split()[1] == b"400"


def test_a_request_for_another_name_is_refused_before_anything_runs(stack: LocalStack) -> None:
    # A page using DNS rebinding reaches 127.0.0.1 under a name of its own, and its requests say so
    assert stack.server is not None
    port = stack.server.port
    for host in (f"rebind.attacker.example:{port}", "127.0.0.1", f"localhost.attacker.example:{port}"):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("POST", "/_local/token", body=b'{"sub": "x", "groups": ["admins"]}',
                           headers={"Host": host, "Content-Type": "application/json"})  # fmt: skip
        answer = connection.getresponse()
        problem = json.loads(answer.read())
        connection.close()
        assert (answer.status, answer.getheader("Content-Type"), problem["code"]) == (
            403,
            "application/problem+json",
            "FORBIDDEN_HOST",
        )
        assert "token" not in problem
    # while the machine's own names are answered
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}"):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", "/health", headers={"Host": host})
        assert connection.getresponse().status == 200
        connection.close()


def test_the_emulator_too_answers_only_its_loopback_names(stack: LocalStack) -> None:
    # it holds the data and takes the faults: a rebinding page must not reach it under another name
    assert stack.emulator is not None
    port = stack.emulator.port
    for host, expected in ((f"rebind.attacker.example:{port}", 403), (f"127.0.0.1:{port}", 200)):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", "/_faults", headers={"Host": host})
        assert connection.getresponse().status == expected, host
        connection.close()

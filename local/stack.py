"""The whole stack on one machine: emulated AWS, the functions, the gateway, demo data.

`LocalStack.start()` brings everything up in dependency order; `stop()` tears it down in reverse
and leaves no process behind. Data lives in the emulator's memory and is gone when it stops.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import boto3

from local.account import REGION
from local.apigateway.api import ApiDefinition
from local.apigateway.gateway import Gateway
from local.apigateway.http_messages import HttpRequest, HttpResponse, problem_response
from local.apigateway.server import GatewayServer
from local.clock import StackClock
from local.cloudformation.provision import (
    DataStack,
    deploy_data_stack,
    deploy_event_buses,
    deploy_keys,
    deploy_queues,
    deploy_schedule_groups,
)
from local.cloudwatch.alarms import AlarmEvaluator, load_alarms
from local.cloudwatch.dashboard import Sources, dashboard_body, log_groups
from local.cloudwatch.metric_store import MetricStore
from local.cloudwatch.samplers import ServiceSamplers
from local.cognito import user_pool
from local.console.routes import OpsConsole
from local.emulator.server import EmulatorProcess
from local.eventbridge.rules import EventRules, load_rules
from local.lambda_runtime import invoke_api
from local.lambda_runtime.concurrency import ACCOUNT_LIMIT
from local.lambda_runtime.event_source_mapping import EventSourceMapping, MappingSettings
from local.lambda_runtime.function_runtime import MAX_ENVIRONMENTS
from local.lambda_runtime.functions import load_functions, unretried_async
from local.lambda_runtime.service import LambdaService
from local.scheduler.schedules import OneTimeSchedules, Scheduler, emulator_due, load_schedules, schedule_groups
from local.seed import DEMO_PROVIDERS, seed_if_empty
from local.wafv2.web_acl import WebAcl
from local.xray.daemon import XRayDaemon
from services.common.cors import parse_origins

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


@dataclass
class StackConfig:
    port: int = 3000
    stage: str = "local"
    state_dir: Path = Path(".local")
    seed: bool = True
    account_concurrency: int = ACCOUNT_LIMIT  # Lambda's concurrent executions for the whole account
    environments: int = MAX_ENVIRONMENTS  # worker processes per function; past them invocations wait
    alarm_time_scale: float = 1.0  # > 1 for drills: alarm periods pass that many times faster
    alarm_interval: float = 10.0
    # The stage's AllowedOrigins (services/common/cors.py): empty, CORS off, as a stage deploys by default.
    allowed_origins: str = ""
    # The web ACL's rate rule per client IP (local/wafv2/); off unless asked for, since tests and
    # benchmarks send far more from 127.0.0.1 than one client may. `make run` turns it on.
    waf: bool = False
    waf_rate_limit: int | None = None  # the WafRateLimit parameter; None: the template's default
    waf_rate_window_seconds: int | None = None  # the WafRateWindowSeconds parameter
    echo: Callable[[str], None] | None = field(default=lambda line: print(line, flush=True))

    def stack_parameters(self) -> dict[str, str]:
        """The stack parameters these settings stand for: CORS and the WAF rate rule."""
        parse_origins(self.allowed_origins)  # refused here as CloudFormation refuses it (AllowedPattern)
        parameters = {"AllowedOrigins": self.allowed_origins}
        if self.waf_rate_limit is not None:
            parameters["WafRateLimit"] = str(self.waf_rate_limit)
        if self.waf_rate_window_seconds is not None:
            parameters["WafRateWindowSeconds"] = str(self.waf_rate_window_seconds)
        return parameters


def aws_client(service: str, endpoint: str) -> Any:
    """A client of the emulator, with throw-away credentials."""
    make_client: Any = boto3.client  # the stubs only type literal service names
    return make_client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


@dataclass
class LocalStack:
    config: StackConfig
    emulator: EmulatorProcess | None = None
    data: DataStack | None = None
    lambdas: LambdaService | None = None
    server: GatewayServer | None = None
    warm_results: dict[str, float | Exception] = field(default_factory=dict)
    seeded_providers: int = 0
    startup_seconds: float = 0.0
    user_pools: user_pool.UserPools | None = None
    event_source_mapping: EventSourceMapping | None = None  # the table's stream → the audit consumer
    publisher_mapping: EventSourceMapping | None = None  # the table's stream → the domain events' publisher
    event_rules: EventRules | None = None  # the bus's events → the rules' targets (the waitlist function)
    scheduler: Scheduler | None = None
    one_time_schedules: OneTimeSchedules | None = None  # created at run time (webhooks' retries)
    xray: XRayDaemon | None = None
    metrics: MetricStore | None = None
    alarms: AlarmEvaluator | None = None
    clock: StackClock = field(default_factory=StackClock)
    web_acl: WebAcl | None = None

    @property
    def logs_dir(self) -> Path:
        return self.config.state_dir / "logs"

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.port}"

    def start(self) -> None:
        started = time.perf_counter()
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        self.outbox_path.unlink(missing_ok=True)  # the data is in memory, and so new: so is the outbox
        try:
            self.emulator = EmulatorProcess.start(log_path=self.logs_dir / "emulator.log")
            endpoint = self.emulator.endpoint
            dynamodb: DynamoDBClient = aws_client("dynamodb", endpoint)
            self.data = deploy_data_stack(dynamodb, aws_client("s3", endpoint), self.config.stage)
            parameters = {
                "Stage": self.config.stage,
                **self.data.as_parameters(),
                **user_pool.auth_parameters(),
                "DependenciesLayerArn": "local",
                "LoopbackWebhooks": "true",  # webhook receivers on 127.0.0.1 (decision 0029)
                "NotificationOutbox": str(self.outbox_path),  # WhatsApp's stand-in (decision 0031)
                **self.config.stack_parameters(),
            }
            queues = deploy_queues(aws_client("sqs", endpoint), "audit.yaml", parameters)
            queues |= deploy_queues(aws_client("sqs", endpoint), "booking.yaml", parameters)
            deploy_event_buses(aws_client("events", endpoint), "booking.yaml", parameters)
            deploy_keys(aws_client("kms", endpoint), "booking.yaml", parameters)
            deploy_schedule_groups(aws_client("scheduler", endpoint), "booking.yaml", parameters)
            if self.config.seed:
                self.seeded_providers = seed_if_empty(dynamodb, self.data.table_name)
            specs = load_functions(parameters)
            self.clock.listeners.append(self._move_emulator_clock)
            now = self.clock.now
            self.metrics = MetricStore(f"appointments-{self.config.stage}", self.config.stage, now=now)
            self.xray = XRayDaemon(self.logs_dir / "traces.log").start()
            self.xray.listeners.append(self.metrics.on_span)
            self.lambdas = LambdaService.create(
                specs,
                endpoint,
                self.logs_dir,
                xray_daemon=self.xray.address,
                account_limit=self.config.account_concurrency,
                max_environments=self.config.environments,
                clock=self.clock,
            )
            for runtime in self.lambdas.functions.values():
                runtime.listeners.append(self.metrics.on_invocation)
                runtime.start_listeners.append(self.metrics.on_start)
                runtime.logs.listeners.append(self.metrics.add_log_line)
            sqs = aws_client("sqs", endpoint)
            dead_letters = queues["AuditDeadLetterQueue"]
            sampled = ServiceSamplers(self.metrics, endpoint, now=now)
            self.alarms = AlarmEvaluator(
                load_alarms(parameters),
                self.metrics,
                self.logs_dir / "alarms.log",
                interval=self.config.alarm_interval,
                samplers=[
                    lambda: sampled.queue_depth(sqs, dead_letters),
                    lambda: sampled.queue_depth(sqs, queues["PublisherDeadLetterQueue"]),
                    sampled.injected_faults,
                    sampled.consumed_capacity,
                ],
                time_scale=self.config.alarm_time_scale,
                now=now,
            ).start()
            self.warm_results = self.lambdas.warm_all()
            self.event_source_mapping = EventSourceMapping(
                aws_client("dynamodbstreams", endpoint),
                aws_client("sqs", endpoint),
                self.data.table_stream_arn,
                self.lambdas.functions["AuditFunction"],
                MappingSettings.from_template(),
                queues["AuditDeadLetterQueue"],
                on_batch_age=self._record_iterator_age,
                now=now,
            )
            self.event_source_mapping.start()
            self.publisher_mapping = EventSourceMapping(
                aws_client("dynamodbstreams", endpoint),
                aws_client("sqs", endpoint),
                self.data.table_stream_arn,
                self.lambdas.functions["PublisherFunction"],
                MappingSettings.from_template("booking.yaml"),
                queues["PublisherDeadLetterQueue"],
                on_batch_age=self._record_iterator_age,
                now=now,
            )
            self.publisher_mapping.start()
            self.event_rules = EventRules(
                load_rules(parameters, specs), self.lambdas.functions, endpoint, now, on_metric=self._count_metric
            ).start()
            self.scheduler = Scheduler(load_schedules(parameters, specs), self.lambdas.functions, now).start()
            self.one_time_schedules = OneTimeSchedules(
                aws_client("scheduler", endpoint),
                emulator_due(endpoint),
                schedule_groups(parameters),
                self.lambdas.functions,
                unretried_async(parameters),
                now,
            ).start()
            self.user_pools = user_pool.UserPools.load_or_create(self.config.state_dir)
            self.web_acl = WebAcl.from_template(parameters, now, self.metrics.put) if self.config.waf else None
            gateway = Gateway(
                ApiDefinition.load(allowed_origins=self.config.allowed_origins),
                self.lambdas,
                self.user_pools,
                stage=self.config.stage,
                access_log=self.logs_dir / "api-access.log",
                echo=self.config.echo,
                on_access=self.metrics.on_request,
                now=now,
                web_acl=self.web_acl,
            )
            gateway.add_local_route("GET", "/_local/status", self._status)
            gateway.add_local_route("GET", "/_local/traces", self._trace)
            gateway.add_local_route("GET", "/_local/alarms", self._alarms)
            gateway.add_local_route("GET", "/_local/faults", self._faults)
            gateway.add_local_route("PUT", "/_local/faults", self._faults)
            gateway.add_local_route("GET", "/_local/capacity", self._capacity)
            gateway.add_local_route("DELETE", "/_local/capacity", self._capacity)
            gateway.add_local_route("GET", "/_local/events", self._events)
            gateway.add_local_route("GET", "/_local/outbox", self._outbox)
            gateway.add_local_route("GET", "/_local/clock", self._clock)
            gateway.add_local_route("POST", "/_local/clock", self._clock)
            # Lambda's Invoke API, for an SDK pointed at the stack (make audit-redrive)
            gateway.add_local_route("POST", invoke_api.PATH, invoke_api.invoke_route(self.lambdas))
            groups = [(r.spec.log_group, r.logs.lines) for r in self.lambdas.functions.values()]
            OpsConsole(
                # Locally the runbooks are served beside the dashboard, so its links work offline.
                dashboard_body({**parameters, "RunbookBaseUrl": "/_ops/runbooks"}),
                Sources(self.metrics, self.alarms, log_groups(groups)),
                self.xray,
                now,
            ).register(gateway)
            self.server = GatewayServer(gateway, self.config.port)
            self.server.start()
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.perf_counter() - started

    def status(self) -> dict[str, Any]:
        """What runs, for the banner, `GET /_local/status` and the tests."""
        functions = {}
        if self.lambdas is not None:
            for logical_id, runtime in self.lambdas.functions.items():
                warmed = self.warm_results.get(logical_id)
                functions[runtime.spec.name] = {
                    "logicalId": logical_id,
                    "state": "warm" if runtime.environments > 0 else "cold",
                    "environments": runtime.environments,
                    "reservedConcurrency": runtime.spec.reserved_concurrency,
                    "concurrencyLimit": runtime.concurrency_limit,
                    "environmentLimit": runtime.max_environments,
                    "queued": runtime.queued,
                    "initDurationMs": round(warmed, 1) if isinstance(warmed, float) else None,
                    "initError": str(warmed) if isinstance(warmed, Exception) else None,
                    "invocations": runtime.invocations,
                    "throttles": runtime.throttles,
                    "logFile": str(runtime.logs.path),
                }
        runner = self.event_source_mapping
        scheduler, rules, publisher = self.scheduler, self.event_rules, self.publisher_mapping
        one_time = self.one_time_schedules
        return {
            "schedules": {"fired": scheduler.fired, "failed": scheduler.failed} if scheduler else None,
            "oneTimeSchedules": (
                {"fired": one_time.fired, "failed": one_time.failed, "refused": one_time.refused} if one_time else None
            ),
            "events": {
                "published": publisher.delivered,
                "deadLettered": publisher.dead_lettered,
                "publisherDeadLetterQueue": publisher.dead_letter_url,
                "targets": {
                    "delivered": rules.delivered,
                    "invoked": rules.invoked,
                    "functionErrors": rules.function_errors,
                    "dropped": rules.dropped,
                },
            }
            if publisher and rules
            else None,
            "stream": {"delivered": runner.delivered, "deadLettered": runner.dead_lettered} if runner else None,
            "stage": self.config.stage,
            "emulator": self.emulator.endpoint if self.emulator else None,
            "table": self.data.table_name if self.data else None,
            "auditTable": self.data.audit_table_name if self.data else None,
            "auditBucket": self.data.audit_bucket_name if self.data else None,
            "backupBucket": self.data.backup_bucket_name if self.data else None,
            "auditDeadLetterQueue": runner.dead_letter_url if runner else None,
            "auditFunction": runner.runtime.spec.name if runner else None,
            "xrayDaemon": self.xray.address if self.xray else None,
            "spansReceived": self.xray.received if self.xray else 0,
            "functions": functions,
        }

    def _status(self, _request: HttpRequest) -> HttpResponse:
        return HttpResponse(200, {"Content-Type": "application/json"}, json.dumps(self.status()).encode())

    def _trace(self, request: HttpRequest) -> HttpResponse:
        """`GET /_local/traces?traceId=1-…-…`: the spans the daemon received for one trace."""
        trace_id = parse_qs(urlsplit(request.target).query).get("traceId", [""])[0]
        spans = self.xray.trace(trace_id) if self.xray else []
        body = json.dumps({"traceId": trace_id, "spans": spans}).encode()
        return HttpResponse(200 if spans else 404, {"Content-Type": "application/json"}, body)

    def _events(self, request: HttpRequest) -> HttpResponse:
        """`GET /_local/events?after=N`: what the stack's buses accepted, in order (the emulator's
        journal, local/emulator/event_bus.py): each entry's sequence, bus, source, detail-type and
        detail, the EventId EventBridge gave it, and its trace header."""
        assert self.event_rules is not None
        try:
            after = int(parse_qs(urlsplit(request.target).query).get("after", ["0"])[0])
        except ValueError:
            errors = [{"field": "query.after", "message": "a whole number (an entry's sequence)"}]
            return problem_response(400, "Bad Request", "VALIDATION_FAILED", "after must be a whole number", errors)
        body = json.dumps(self.event_rules.journal(after)).encode()
        return HttpResponse(200, {"Content-Type": "application/json"}, body)

    @property
    def outbox_path(self) -> Path:
        return self.config.state_dir / "outbox.ndjson"

    def _outbox(self, request: HttpRequest) -> HttpResponse:
        """`GET /_local/outbox`: the WhatsApp messages the notifications function would have sent, in
        order (its outbox channel appends them to one file: services/booking/adapters/whatsapp.py)."""
        items = []
        if self.outbox_path.exists():
            items = [json.loads(line) for line in self.outbox_path.read_text(encoding="utf-8").splitlines() if line]
        return HttpResponse(200, {"Content-Type": "application/json"}, json.dumps({"items": items}).encode())

    def _count_metric(self, namespace: str, name: str, dimensions: dict[str, str]) -> None:
        """One count of an AWS service's metric (a rule's AWS/Events, Lambda's AsyncEventsDropped)."""
        if self.metrics is not None:
            self.metrics.put(namespace, name, dimensions, 1.0, self.clock.now())

    def _record_iterator_age(self, function_name: str, age_ms: float) -> None:
        if self.metrics is not None:
            at = self.clock.now()
            self.metrics.put("AWS/Lambda", "IteratorAge", {"FunctionName": function_name}, age_ms, at)

    def _faults(self, request: HttpRequest) -> HttpResponse:
        """`GET`/`PUT /_local/faults`: the emulator's fault plan (local/emulator/faults.py), read or set."""
        return self._to_emulator(request, "/_faults")

    def _capacity(self, request: HttpRequest) -> HttpResponse:
        """`GET`/`DELETE /_local/capacity`: DynamoDB units per request (local/emulator/capacity.py), read or cleared."""
        return self._to_emulator(request, "/_capacity")

    def _to_emulator(self, request: HttpRequest, path: str) -> HttpResponse:
        assert self.emulator is not None
        forwarded = urllib.request.Request(
            f"{self.emulator.endpoint}{path}",
            method=request.method,
            data=request.body if request.method == "PUT" else None,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(forwarded, timeout=10) as answer:
                return HttpResponse(answer.status, {"Content-Type": "application/json"}, answer.read())
        except urllib.error.HTTPError as error:
            return HttpResponse(error.code, {"Content-Type": "application/json"}, error.read())

    def _clock(self, request: HttpRequest) -> HttpResponse:
        """`GET /_local/clock` → `{now, offsetSeconds}`; `POST {"advanceSeconds": N}` moves the whole
        stack's now forward by N > 0 seconds (local/clock.py) and answers the same."""
        if request.method == "POST":
            try:
                body = json.loads(request.body or b"{}")
                seconds = body["advanceSeconds"] if isinstance(body, dict) else None
                if isinstance(seconds, bool) or not isinstance(seconds, int | float):
                    raise ValueError("advanceSeconds must be a number greater than 0")
                # What the stream holds now would have reached the audit consumer within a second on
                # AWS: deliver it before the records look days old (MaximumRecordAgeInSeconds).
                for mapping in (self.event_source_mapping, self.publisher_mapping):
                    if mapping is not None:
                        mapping.wait_caught_up(timeout=30)
                if self.event_rules is not None:  # and the events published from it to the rules' targets
                    self.event_rules.wait_caught_up(timeout=30)
                self.clock.advance(float(seconds))
            except OSError as error:  # the emulator did not take the new time: nothing moved
                detail = f"the emulator did not move its clock: {error}"
                return problem_response(503, "Service Unavailable", "SERVICE_UNAVAILABLE", detail)
            except (ValueError, KeyError) as error:
                message = "advanceSeconds must be a number greater than 0, at most ten years ahead in all"
                detail = f"{message} (the clock never goes back): {error}"
                errors = [{"field": "body.advanceSeconds", "message": message}]
                return problem_response(400, "Bad Request", "VALIDATION_FAILED", detail, errors)
        return HttpResponse(200, {"Content-Type": "application/json"}, json.dumps(self.clock.state()).encode())

    def _move_emulator_clock(self, offset: float) -> None:
        """The emulator's time follows the stack's clock: stream records, TTL expiry."""
        if self.emulator is None:
            return
        moved = urllib.request.Request(
            f"{self.emulator.endpoint}/_clock",
            method="PUT",
            data=json.dumps({"offsetSeconds": offset}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(moved, timeout=10) as answer:
            answer.read()

    def _alarms(self, _request: HttpRequest) -> HttpResponse:
        """`GET /_local/alarms`: every alarm of the templates, its state, reason and recent history."""
        body = json.dumps({"alarms": self.alarms.status() if self.alarms else []}).encode()
        return HttpResponse(200, {"Content-Type": "application/json"}, body)

    def banner(self) -> str:
        assert self.user_pools is not None and self.data is not None
        token = self.user_pools.mint("demo-customer", ["customers"])
        lines = [
            f"Appointments local stack ready in {self.startup_seconds:.1f} s (stage '{self.config.stage}')",
            "",
            f"  API            {self.url}",
            f"  Health         {self.url}/health",
            f"  OpenAPI        {self.url}/openapi.json",
            f"  Swagger UI     {self.url}/docs",
            f'  Token mint     POST {self.url}/_local/token  {{"sub": "…", "groups": ["customers"]}}'
            "  (or: make token SUB=… GROUPS=…)",
            "  Functions",
        ]
        for name, state in self.status()["functions"].items():
            if state["initError"]:
                detail = f"FAILED to initialize: {state['initError']}"
            else:
                init, limit = state["initDurationMs"], state["concurrencyLimit"]
                pool = "reserved" if state["reservedConcurrency"] is not None else "the account's unreserved pool"
                detail = (
                    f"{state['state']} (init {init:.0f} ms; up to {limit} concurrent, {pool};"
                    f" {state['environmentLimit']} local environments, then queued)"
                )
            lines.append(f"    {name:<34} {detail}")
        assert self.emulator is not None
        seeded = (
            f"{self.seeded_providers} demo providers seeded ({', '.join(p.time_zone for p in DEMO_PROVIDERS)})"
            if self.seeded_providers
            else "table already had data; nothing seeded"
        )
        lines += [
            f"  Emulated AWS   {self.emulator.endpoint} (moto: tables {self.data.table_name} and "
            f"{self.data.audit_table_name}, bucket {self.data.audit_bucket_name}; data in memory, gone on exit)",
            f"  Demo data      {seeded}",
            "  Table stream   → audit consumer (batches, retries, bisection, DLQ: as cloudformation/audit.yaml)",
            "                 → publisher → domain events on the bus (as cloudformation/booking.yaml)",
            f"  Event bus      appointments-{self.config.stage}: rules → their functions (the waitlist, webhooks);"
            f" what it accepted: {self.url}/_local/events",
            f"  Schedules      {self._schedules_line()}",
            f"  Logs           {self.logs_dir}/ (api-access.log, one <function>.log per function, emulator.log)",
            f"  Traces         {self.logs_dir}/traces.log (X-Ray segment documents, one span a line)",
            f"  Operations     {self.url}/_ops (the CloudWatch dashboard, alarms, traces, logs and faults)",
            f'  Clock          {self.url}/_local/clock (POST {{"advanceSeconds": N}} moves the whole stack\'s now)',
            f"  CORS           {self._cors_line()}",
            f"  WAF            {self._waf_line()}",
            f"  Alarms         {self.url}/_local/alarms (the templates' alarms, evaluated every 10 s on local"
            f" metrics; state changes in {self.logs_dir}/alarms.log)",
            "",
            "  Try it:",
            f"    curl -s {self.url}/health",
            f"    curl -s -H 'Authorization: Bearer {token}' {self.url}/me",
            "",
            "Access log follows. Ctrl-C stops everything.",
        ]
        return "\n".join(lines)

    def _schedules_line(self) -> str:
        schedules = self.scheduler.schedules if self.scheduler else []
        named = ", ".join(f"{s.name} every {s.period_seconds} s" for s in schedules) or "none"
        one_time = "the one-time ones the functions create (webhooks' retries)"
        return f"{named}, and {one_time} (EventBridge Scheduler, on the stack's clock)"

    def _cors_line(self) -> str:
        origins = self.config.allowed_origins
        return f"pages of {origins.replace(',', ', ')} may call the API" if origins else "off (ALLOWED_ORIGINS=…)"

    def _waf_line(self) -> str:
        if self.web_acl is None:
            return "off: no rate limit per client IP"
        rule = self.web_acl.rule
        return f"{rule.limit} requests per client IP within {rule.window_seconds} s, then {rule.status} (WAF=off: none)"

    def stop(self) -> None:
        """Stop in reverse order; safe to call on a partly started stack, and twice."""
        if self.server is not None:
            self.server.stop()
            self.server = None
        if self.scheduler is not None:
            self.scheduler.stop()
            self.scheduler = None
        if self.one_time_schedules is not None:
            self.one_time_schedules.stop()
            self.one_time_schedules = None
        if self.event_rules is not None:
            self.event_rules.stop()
            self.event_rules = None
        if self.publisher_mapping is not None:
            self.publisher_mapping.stop()
            self.publisher_mapping = None
        if self.event_source_mapping is not None:
            self.event_source_mapping.stop()
            self.event_source_mapping = None
        if self.lambdas is not None:
            self.lambdas.shutdown()
            self.lambdas = None
        if self.alarms is not None:
            self.alarms.stop()
            self.alarms = None
        if self.xray is not None:
            self.xray.stop()
            self.xray = None
        if self.emulator is not None:
            self.emulator.stop()
            self.emulator = None

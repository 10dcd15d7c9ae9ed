"""`python -m local run` (what `make run` does), `python -m local token` (`make token`) and
`python -m local faults` (`make faults`). Building and deploying are `python -m deploy`'s."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import FrameType

from local.cognito import user_pool
from local.lambda_runtime.concurrency import ACCOUNT_LIMIT
from local.lambda_runtime.function_runtime import MAX_ENVIRONMENTS
from local.stack import LocalStack, StackConfig


def run(args: argparse.Namespace) -> int:
    stack = LocalStack(
        StackConfig(
            port=args.port,
            state_dir=Path(args.state_dir),
            seed=not args.no_seed,
            account_concurrency=args.account_concurrency,
            environments=args.environments,
            allowed_origins=args.allowed_origins,
            waf=not args.no_waf,
            waf_rate_limit=args.waf_rate_limit,
            waf_rate_window_seconds=args.waf_rate_window,
        )
    )
    stopping = threading.Event()

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    print("Starting the Appointments local stack…", flush=True)
    try:
        stack.start()
        print(stack.banner(), flush=True)
        stopping.wait()
        print("\nStopping…", flush=True)
    finally:
        stack.stop()
    print("Stopped; no process left behind.", flush=True)
    return 0


def token(args: argparse.Namespace) -> int:
    """A token from the pool that holds the groups: admins and ops sign in to the staff pool."""
    pools = user_pool.UserPools.load_or_create(Path(args.state_dir))
    groups = [group for group in args.groups.split(",") if group]
    unknown = sorted(set(groups) - set(user_pool.GROUPS))
    if unknown:
        print(f"unknown group(s) {', '.join(unknown)}; known: {', '.join(user_pool.GROUPS)}", file=sys.stderr)
        return 2
    try:
        print(pools.mint(args.sub, groups, args.ttl, now=stack_now(args.port)))
    except user_pool.MixedPoolsError as error:
        print(error, file=sys.stderr)
        return 2
    return 0


def stack_now(port: int) -> float:
    """The running stack's now (its clock may have moved: a token must be valid at its time), else
    the machine's, when no stack answers on `port`."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_local/clock", timeout=2) as answer:
            return time.time() + float(json.load(answer)["offsetSeconds"])
    except (OSError, ValueError, KeyError):
        return time.time()


def faults(args: argparse.Namespace) -> int:
    """Set the running stack's faults (all of them: what is not given is switched off), then show them."""
    plan = {
        "dynamodbThrottle": args.dynamodb_throttle,
        "dynamodbError": args.dynamodb_error,
        "dynamodbDelayMs": args.dynamodb_delay_ms,
        "archiveError": args.archive_error,
        "staleReadsMs": args.stale_reads_ms,
        "eventsPutFailure": args.events_put_failure,
    }
    request = urllib.request.Request(
        f"http://127.0.0.1:{args.port}/_local/faults",
        method="PUT",
        data=json.dumps(plan).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            print(answer.read().decode())
    except urllib.error.HTTPError as error:
        print(error.read().decode(), file=sys.stderr)
        return 2
    except urllib.error.URLError as error:
        print(f"no local stack answers on port {args.port} ({error.reason}); start one with make run", file=sys.stderr)
        return 2
    return 0


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local", description="The Appointments local stack.")
    parser.add_argument("--state-dir", default=".local", help="keys and logs (default .local)")
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run", help="run the whole stack on emulated AWS")
    run_parser.add_argument("--port", type=int, default=3000)
    run_parser.add_argument("--no-seed", action="store_true", help="do not seed demo data")
    run_parser.add_argument(
        "--account-concurrency",
        type=positive,
        default=ACCOUNT_LIMIT,
        help="the account's concurrent executions, which functions without a reservation share (Lambda: 1000)",
    )
    run_parser.add_argument(
        "--environments",
        type=positive,
        default=MAX_ENVIRONMENTS,
        help="worker processes per function; past them invocations wait instead of being throttled",
    )
    run_parser.add_argument(
        "--allowed-origins",
        default="",
        help="the stage's AllowedOrigins: origins whose pages may call the API (CORS), comma-separated; none: off",
    )
    run_parser.add_argument("--no-waf", action="store_true", help="do not emulate the WAF's rate rule per client IP")
    run_parser.add_argument("--waf-rate-limit", type=positive, help="WafRateLimit (default: the template's)")
    run_parser.add_argument(
        "--waf-rate-window", type=int, choices=(60, 120, 300, 600), help="WafRateWindowSeconds (default: template's)"
    )
    run_parser.set_defaults(handler=run)
    token_parser = commands.add_parser("token", help="mint a development token")
    token_parser.add_argument("--sub", required=True)
    token_parser.add_argument(
        "--groups",
        default="customers",
        help="comma-separated: customers,providers (the customer pool) or admins,ops (the staff pool)",
    )
    token_parser.add_argument("--ttl", type=int, default=user_pool.DEFAULT_TTL_SECONDS)
    token_parser.add_argument("--port", type=int, default=3000, help="a running stack's port, whose clock it follows")
    token_parser.set_defaults(handler=token)
    faults_parser = commands.add_parser("faults", help="inject faults into the running stack (none given: clear them)")
    faults_parser.add_argument("--port", type=int, default=3000)
    faults_parser.add_argument(
        "--dynamodb-throttle", type=float, default=0.0, help="share of DynamoDB requests throttled"
    )
    faults_parser.add_argument("--dynamodb-error", type=float, default=0.0, help="share answered 500")
    faults_parser.add_argument("--dynamodb-delay-ms", type=int, default=0, help="delay before each DynamoDB request")
    faults_parser.add_argument("--archive-error", type=float, default=0.0, help="share of audit archive writes failing")
    faults_parser.add_argument(
        "--events-put-failure", type=float, default=0.0, help="share of PutEvents entries failing (InternalFailure)"
    )
    faults_parser.add_argument(
        "--stale-reads-ms", type=int, default=0, help="eventually consistent reads answer data up to this old"
    )
    faults_parser.set_defaults(handler=faults)
    args = parser.parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())

"""`make run`: the whole service on one machine, no AWS account, no Docker.

A moto server stands in for DynamoDB, SQS, SNS and Secrets Manager (resources created from infra.resources,
the same description that deploys them); the Chalice app serves the API; a poller feeds the orders queue to
the SQS handlers found on the app object; scheduled handlers run on their rate; demo partners answer orders
and call back; a "phone" prints every customer notification, and seller alerts get their own lines.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# Tells tools/moto_server.py that its stdin is our pipe, to exit when it closes.
EXIT_WITH_PARENT = "ORDER_RELAY_MOTO_EXIT_WITH_PARENT"
REGION = "us-east-1"
COLOURS = {
    "dim": "2",
    "red": "31",
    "green": "32",
    "yellow": "33",
    "blue": "34",
    "magenta": "35",
    "cyan": "36",
    "bold": "1",
}


def paint(text: str, colour: str) -> str:
    if not sys.stdout.isatty() or os.environ.get("NO_COLOR"):
        return text
    return f"\033[{COLOURS[colour]}m{text}\033[0m"


_print_lock = threading.Lock()


def say(tag: str, text: str, colour: str = "cyan") -> None:
    stamp = time.strftime("%H:%M:%S")
    with _print_lock:
        print(f"{paint(stamp, 'dim')} {paint(f'{tag:<13}', colour)} {text}", flush=True)


class Refused(SystemExit):
    def __init__(self, message: str) -> None:
        print(paint(f"order-relay: {message}", "red"), file=sys.stderr, flush=True)
        super().__init__(1)


# --- pre-flight ------------------------------------------------------------------------------------------------


def state_dir() -> Path:
    return Path(os.environ.get("ORDER_RELAY_STATE_DIR", ROOT / ".local"))


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def claim_lock(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    lock = directory / "stack.pid"
    if lock.exists():
        with contextlib.suppress(ValueError, OSError):
            pid = int(lock.read_text().strip())
            os.kill(pid, 0)
            stack = directory / "stack.json"
            where = json.loads(stack.read_text())["api_url"] if stack.exists() else "starting"
            raise Refused(f"already running (pid {pid}, {where}). Stop it with Ctrl-C in its terminal first.")
    lock.write_text(str(os.getpid()))
    return lock


# --- the pieces ------------------------------------------------------------------------------------------------


def start_moto(port: int) -> subprocess.Popen[bytes]:
    """The moto server as a child process that never outlives this one: it holds the read end of a pipe whose
    only write end is ours (`stdin`), and exits when that closes, which the kernel does when we exit, however we
    die (SIGKILL included). `process.terminate()` stops it earlier."""
    process = subprocess.Popen(  # noqa: S603 - our own interpreter, fixed arguments
        # moto's server with its transactions' rollback kept to the items they name (see tools/moto_server.py).
        [sys.executable, "-m", "tools.moto_server", "-H", "127.0.0.1", "-p", str(port)],
        cwd=ROOT,
        env={**os.environ, EXIT_WITH_PARENT: "1"},
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise Refused(f"the moto server exited at start (port {port})")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return process
        threading.Event().wait(0.05)
    process.kill()
    raise Refused("the moto server did not start within 20 s")


class PrettyLogs(logging.Handler):
    """Turns the service's structured log lines into one readable line per thing that happens."""

    def emit(self, record: logging.LogRecord) -> None:
        data = record.__dict__
        message = record.getMessage()
        order = data.get("order_id", "")
        if message == "delivery attempt":
            outcome = data["outcome"]
            colour = {"delivered": "green", "retry": "yellow", "failed": "red", "expired": "red"}[outcome]
            code = data.get("status_code") or "no answer"
            say(
                "dispatch",
                f"{data['event']} {order} -> {data['integrator']}: {paint(outcome, colour)} "
                f"({code}, {data['latency_ms']:.0f} ms, attempt {data['attempt']})",
                "blue",
            )
        elif message == "delivery expired":
            say("deadline", f"{data['event']} {order} -> {data['integrator']}: {paint('expired', 'red')}", "red")
        elif message == "acknowledgement overdue":
            say(
                "ack",
                f"{order} {data['integrator']}: {paint('overdue', 'red')} (no callback by {data['ack_due_at']})",
                "red",
            )
        elif message == "acknowledgement":
            say("ack", f"{order} {data['integrator']}: {data['ack']}", "magenta")
        elif message.startswith("circuit"):
            colour = "green" if message.startswith("circuit closed") else "yellow"
            detail = f" until {data['next_probe_at']}" if data.get("next_probe_at") else ""
            say("circuit", f"{data.get('integrator')}: {paint(message, colour)}{detail}", "magenta")
        elif message in ("delivery waiting", "waiting deliveries resumed"):
            say("circuit", f"{data.get('integrator')}: {message} {order or data.get('count', '')}", "magenta")
        elif message == "order status changed":
            say("status", f"{order} {data['from']} -> {paint(data['to'], 'bold')} ({data['source']})", "magenta")
        elif message in ("order created", "order updated", "order cancelled"):
            say("api", f"{message}: {order}", "cyan")
        elif record.levelno >= logging.WARNING:
            extras = {k: data[k] for k in ("order_id", "integrator", "reason", "status") if k in data}
            say("warning", f"{message} {extras}", "yellow")
            if record.exc_info and record.levelno >= logging.ERROR:  # an unexpected fault: show where
                say("trace", "".join(traceback.format_exception(*record.exc_info)).rstrip(), "red")


def quiet_service_logs() -> None:
    from chalicelib.observability import logger

    std = logging.getLogger(logger.service)
    for handler in list(std.handlers):
        std.removeHandler(handler)
    std.addHandler(PrettyLogs())
    std.setLevel(logging.INFO)
    std.propagate = False


# Lambda ends an invocation at its timeout; this process cannot stop a batch that overruns on a loaded machine. The
# dispatcher's delivery claims last until the invocation's end, so the local context reports the queue's longest
# visibility timeout: a claim outlives any local batch and a slow batch is never sent twice.
LOCAL_TIMEOUT = 900


def run_pollers(app: Any, stop: threading.Event) -> list[threading.Thread]:
    """ORDER_RELAY_POLLERS pollers (default 1) per SQS handler on the app object, as Lambda runs concurrent
    invocations of one event source: a new handler needs no change here."""
    import boto3

    from tools.poller import poll_once, sqs_event_sources

    sqs = boto3.client("sqs", region_name=REGION)
    threads = []
    for source in sqs_event_sources(app):
        url = sqs.get_queue_url(QueueName=str(source.queue))["QueueUrl"]

        def loop(url: str = url, name: str = source.name) -> None:
            while not stop.is_set():
                try:
                    result = poll_once(
                        app, sqs, url, handler_name=name, wait_seconds=1, region=REGION, timeout_seconds=LOCAL_TIMEOUT
                    )
                except Exception as exc:  # noqa: BLE001 - keep the stack up, say what happened
                    if not stop.is_set():
                        say("poller", f"{name}: {exc}", "red")
                    stop.wait(1)
                    continue
                if result.crashed:
                    say("poller", f"{name} batch of {result.received} crashed; SQS will redeliver it", "red")
                elif result.failed_ids:
                    say("poller", f"{name}: {len(result.failed_ids)} records failed; left for redelivery", "yellow")

        for n in range(max(1, int(os.environ.get("ORDER_RELAY_POLLERS", "1")))):
            thread = threading.Thread(target=loop, name=f"poller-{source.name}-{n}", daemon=True)
            thread.start()
            threads.append(thread)
    return threads


def scheduled_event() -> dict[str, Any]:
    """An EventBridge scheduled event as Lambda receives it."""
    return {
        "version": "0",
        "id": secrets.token_hex(16),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "region": REGION,
        "resources": [],
        "detail": {},
    }


def run_schedules(app: Any, stop: threading.Event) -> None:
    """Scheduled handlers on their rate (cron expressions run every minute here)."""
    from chalice.app import Rate, ScheduledEventConfig

    from tools.poller import lambda_context

    def seconds(expression: Any) -> float:
        if isinstance(expression, Rate):
            return float(expression.value * {"MINUTES": 60, "HOURS": 3600, "DAYS": 86400}[expression.unit])
        return 60.0

    for source in app.event_sources:
        if not isinstance(source, ScheduledEventConfig):
            continue

        def loop(name: str = source.name, every: float = seconds(source.schedule_expression)) -> None:
            while not stop.wait(every):
                try:
                    app.handler_map[name](scheduled_event(), lambda_context(name))
                except Exception as exc:  # noqa: BLE001
                    say("schedule", f"{name} failed: {exc}", "red")

        threading.Thread(target=loop, name=f"schedule-{source.name}", daemon=True).start()


def run_phone(topic_arn: str, stop: threading.Event) -> None:
    """A queue subscribed to the notifications topic, printed as a phone would show each push."""
    import boto3

    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName="local-phone")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    boto3.client("sns", region_name=REGION).subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn)

    def loop() -> None:
        while not stop.is_set():
            with contextlib.suppress(Exception):
                for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
                    "Messages", []
                ):
                    envelope = json.loads(message["Body"])
                    push = json.loads(envelope["Message"])
                    attributes = {k: v["Value"] for k, v in envelope["MessageAttributes"].items()}
                    if attributes.get("audience") == "seller":  # a seller alert, never on a customer's phone
                        say("seller", f"{paint(attributes['seller_id'], 'bold')} | {push['body']}", "red")
                    else:
                        say(
                            "phone",
                            f"{paint(attributes['user_id'], 'bold')} | {push['title']}: {push['body']}",
                            "green",
                        )
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])

    threading.Thread(target=loop, name="phone", daemon=True).start()


def start_tracking(app: Any, topic_arn: str, api_port: int, stop: threading.Event) -> Any:
    """API Gateway's WebSocket API for the tracking pages (`chalice local` has none; tools/local_websocket.py) and
    the fan-out fed from the topic through the `audience=customer` filter, as in AWS."""
    from chalicelib.settings import reset_settings
    from tools.local_tracking import run_fanout
    from tools.local_websocket import LocalWebsocketApi

    configured = os.environ.get("ORDER_RELAY_WS_PORT")  # 0: any free port
    port = int(configured) if configured else (api_port + 1 if port_free(api_port + 1) else 0)

    def failed(route: str, exc: Exception) -> None:
        say("websocket", f"{route}: {exc}", "red")

    sockets = LocalWebsocketApi(app, port=port, on_error=failed)
    sockets.start()
    os.environ["TRACKING_WEBSOCKET_URL"] = sockets.websocket_url
    os.environ["TRACKING_MANAGEMENT_URL"] = sockets.management_url
    reset_settings()
    run_fanout(app, topic_arn, stop, lambda exc: say("tracking", f"fan-out: {exc}", "red"))
    return sockets


def create_demo_order(api_url: str, seller_token: str) -> str | None:
    """One order for the demo partners to walk, so the banner has a tracking link to open."""
    import requests

    from tools.sample_order import order_body

    response = requests.post(
        f"{api_url}/api/v1/orders",
        json=order_body(user_id="u-demo"),
        headers={"Authorization": f"Bearer {seller_token}"},
        timeout=10,
    )
    return str(response.json().get("tracking_url")) if response.status_code == 201 else None


def start_demo(api_url: str, admin_token: str) -> Any:
    import requests

    from tools.demo_integrators import DemoPartners, registrations

    step = float(os.environ.get("ORDER_RELAY_DEMO_STEP_SECONDS", "1"))
    partners = DemoPartners(lambda name, text: say(name, text, "yellow"), step_seconds=step)
    partners.start()
    headers = {"Authorization": f"Bearer {admin_token}"}
    for body in registrations(partners.base_url):
        response = requests.post(f"{api_url}/api/v1/integrators", json=body, headers=headers, timeout=10)
        if response.status_code != 201:
            raise Refused(f"could not register demo integrator {body['name']}: {response.text}")
        created = response.json()
        partners.callback_secrets[body["name"]] = created["callback_secret"]
        partners.callback_urls[body["name"]] = created["callback_url"]
    return partners


# --- main ------------------------------------------------------------------------------------------------------


def configure(api_port: int, aws_port: int) -> str:
    admin_token = os.environ.get("ORDER_RELAY_ADMIN_TOKEN") or "orl_admin_" + secrets.token_urlsafe(24)
    os.environ.update(
        {
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{aws_port}",
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "ORDER_RELAY_ADMIN_TOKEN": admin_token,
            "ALLOW_LOOPBACK_INTEGRATORS": "true",
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{api_port}",
            "SQS_PARTIAL_BATCH_RESPONSE": "true",
            "POWERTOOLS_SERVICE_NAME": "order-relay",
            "POWERTOOLS_METRICS_NAMESPACE": "OrderRelay",
            "POWERTOOLS_METRICS_DISABLED": os.environ.get("POWERTOOLS_METRICS_DISABLED", "true"),
        }
    )
    # Demo-friendly protection settings (a partner outage shows its circuit open, probe and close within seconds);
    # values given to `make run` win.
    os.environ.setdefault("CIRCUIT_FAILURE_THRESHOLD", "3")
    os.environ.setdefault("CIRCUIT_COOLDOWN_SECONDS", "10")
    os.environ.pop("AWS_PROFILE", None)
    return admin_token


def _terminated(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def stop_on_signals() -> None:
    """Ctrl-C (SIGINT) and SIGTERM stop the stack whatever its parent did. A background job of a non-interactive
    shell starts with SIGINT ignored, and Python then installs no KeyboardInterrupt handler: the stack never left
    its wait. Both signals raise KeyboardInterrupt in the main thread, during start-up too, so the same clean-up
    runs (moto stopped, state files removed)."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _terminated)


def main() -> None:  # noqa: C901, PLR0915 - a linear start-up script reads best in one place
    stop_on_signals()
    started = time.monotonic()
    api_port = int(os.environ.get("ORDER_RELAY_PORT", "8000"))
    aws_port = int(os.environ.get("ORDER_RELAY_AWS_PORT", "4577"))
    for name, port in (("ORDER_RELAY_PORT", api_port), ("ORDER_RELAY_AWS_PORT", aws_port)):
        if not port_free(port):
            raise Refused(f"port {port} is in use; choose another with {name}=<port> make run")
    directory = state_dir()
    lock = claim_lock(directory)
    stop = threading.Event()
    moto = start_moto(aws_port)
    partners = None
    try:
        admin_token = configure(api_port, aws_port)
        sys.path.insert(0, str(ROOT))
        from infra.resources import provision

        env = provision("local", region=REGION, endpoint_url=os.environ["AWS_ENDPOINT_URL"])
        os.environ.update(env)
        quiet_service_logs()
        import app as application
        from tools.local_gateway import serve_api

        app = application.app
        api_url = f"http://127.0.0.1:{api_port}"
        server = serve_api(app, api_port, ROOT)
        run_pollers(app, stop)
        run_schedules(app, stop)
        run_phone(env["NOTIFICATIONS_TOPIC_ARN"], stop)
        sockets = start_tracking(app, env["NOTIFICATIONS_TOPIC_ARN"], api_port, stop)
        import requests

        seller = requests.post(
            f"{api_url}/api/v1/tokens",
            json={"role": "seller", "seller_id": "s-1"},
            headers={"Authorization": f"Bearer {admin_token}"},
            timeout=10,
        ).json()["token"]
        demo_order = None
        if os.environ.get("ORDER_RELAY_DEMO", "1") != "0":
            partners = start_demo(api_url, admin_token)
            if os.environ.get("ORDER_RELAY_DEMO_ORDER", "1") != "0":
                demo_order = create_demo_order(api_url, seller)
        stack = {
            "api_url": api_url,
            "aws_endpoint_url": os.environ["AWS_ENDPOINT_URL"],
            "region": REGION,
            "admin_token": admin_token,
            "seller_token": seller,
            "notifications_topic_arn": env["NOTIFICATIONS_TOPIC_ARN"],
            "queue_url": env["ORDERS_QUEUE_URL"],
            "tables": {k.removesuffix("_TABLE").lower(): v for k, v in env.items() if k.endswith("_TABLE")},
            "demo_integrators": partners.base_url if partners else None,
            "websocket_url": sockets.websocket_url,
            "websocket_management_url": sockets.management_url,
            "demo_tracking_url": demo_order,
            "pid": os.getpid(),
            "moto_pid": moto.pid,
        }
        # Atomically (written aside, then renamed): a reader that sees the file never reads it half written.
        written = directory / "stack.json.tmp"
        written.write_text(json.dumps(stack, indent=2))
        os.replace(written, directory / "stack.json")
        banner(stack, time.monotonic() - started)
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
        say("stack", "stopping", "dim")
        stop.set()
        server.server.shutdown()
        sockets.stop()
    finally:
        stop.set()
        if partners is not None:
            partners.stop()
        moto.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            moto.wait(5)
        if moto.poll() is None:
            moto.kill()
        with contextlib.suppress(FileNotFoundError):
            (directory / "stack.json").unlink()
        lock.unlink(missing_ok=True)


def example_order() -> str:
    from tools.sample_order import SAMPLE_ORDER

    return json.dumps(SAMPLE_ORDER)


def banner(stack: dict[str, Any], seconds: float) -> None:
    api = stack["api_url"]
    lines = [
        "",
        paint(f"order-relay is running (ready in {seconds:.1f} s)", "bold"),
        f"  API            {api}/api/v1   (OpenAPI: {api}/api/v1/openapi.json)",
        f"  console        {api}/console   (sign in with the admin token)",
        f"  live tracking  {stack['websocket_url']}   (WebSocket API of the tracking pages)",
        f"  AWS (moto)     {stack['aws_endpoint_url']}",
        f"  admin token    {stack['admin_token']}",
        f"  seller token   {stack['seller_token']}   (seller s-1)",
        f"  demo partners  {'delivery, loyalty, food-ordering' if stack['demo_integrators'] else 'off'}",
        f"  state          {state_dir() / 'stack.json'}",
        "",
        *(
            [
                "Track the demo order live, as its customer would (the partners walk it in a few seconds;",
                "ORDER_RELAY_DEMO_STEP_SECONDS=10 slows them down; every new order answers its own tracking_url):",
                f"  {stack['demo_tracking_url']}",
                "",
            ]
            if stack.get("demo_tracking_url")
            else []
        ),
        "Create an order as the seller and watch it travel:",
        f"  curl -s -X POST {api}/api/v1/orders \\",
        f"    -H 'Authorization: Bearer {stack['seller_token']}' -H 'Content-Type: application/json' \\",
        f"    -d '{example_order()}'",
        "",
        *(
            [
                "Make a demo partner fail for a minute and watch its circuit open, probe and close:",
                f"  curl -s -X POST '{stack['demo_integrators']}/control/outage/delivery?seconds=60'",
                f"  curl -s {api}/api/v1/integrators/delivery/health -H 'Authorization: Bearer {stack['admin_token']}'",
                "",
            ]
            if stack["demo_integrators"]
            else []
        ),
        "Ctrl-C stops everything.",
        "",
    ]
    with _print_lock:
        print("\n".join(lines), flush=True)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:  # stopped during start-up: everything started is already stopped
        sys.exit(130)

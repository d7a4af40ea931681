"""Webhook and e-mail notifications across receivers that are down for a minute: counted.

    .venv/bin/python -m bench.notifications [--studies 25] [--down-s 60] [--retry-s PRODUCTION]

Starts a private stack (bench/_stack.py, under var/bench-notifications/: SQLite, its own
redis-server, one Celery worker on the ``outbound`` queue with Django's SMTP backend) and
two receivers on loopback: a webhook endpoint (http.server, checks each HMAC signature) and
an SMTP server (aiosmtpd), both from tests/receivers.py. Builds ``--studies`` reports
awaiting review, adds 2 webhook and 2 e-mail targets, and notifies every report at once
(4 notifications a study). Both receivers' ports stay closed for ``--down-s`` seconds from
then, and open after. The worker retries with the production backoff
(BRAINAI_NOTIFY_RETRY_S = 10 s doubling, BRAINAI_NOTIFY_MAX_ATTEMPTS = 8) unless told.

Prints, per kind: notifications, sent, failed, lost (never received), duplicated (received
more than once, counted by notification id), badly signed, attempts (how many needed 1, 2,
3 ...), and the seconds from the receivers coming up to the last one sent; then one line of
JSON. Figures, never pass/fail.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import _stack  # noqa: E402

_stack.WORK = ROOT / "var" / "bench-notifications"  # not var/bench: other benches may be running
SECRET = "bench-notification-secret-0123456789"




def _start_worker(env: dict) -> Path:
    _stack._start("worker", [_stack.PY, "-m", "celery", "-A", "brainai_site", "worker", "-Q", "outbound",
                             "--pool", "prefork", "--concurrency", "1", "--without-gossip", "--without-mingle",
                             "--without-heartbeat", "-n", "bench-notify@%h", "--loglevel", "INFO"], env)
    log = _stack.WORK / "worker.log"
    deadline = time.monotonic() + 120
    while " ready." not in log.read_text(errors="replace"):
        if time.monotonic() > deadline:
            sys.exit(f"worker did not start; see {log}")
        time.sleep(0.2)
    return log


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=25, help="reports to notify (4 notifications each)")
    parser.add_argument("--down-s", type=float, default=60.0, help="seconds both receivers stay down")
    parser.add_argument("--retry-s", type=float, default=None, help="BRAINAI_NOTIFY_RETRY_S (default: production)")
    parser.add_argument("--settle-s", type=float, default=1800.0, help="give up waiting after this long")
    args = parser.parse_args(argv)

    from tests.broker import free_port

    smtp_port = free_port()
    env = _stack.environment()
    env.update({"EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend", "EMAIL_HOST": "127.0.0.1",
                "EMAIL_PORT": str(smtp_port)})
    if args.retry_s is not None:
        env["BRAINAI_NOTIFY_RETRY_S"] = str(args.retry_s)
    _stack.migrate(env)
    _stack.start_redis(env)
    log = _start_worker(env)
    _stack.activate(env)

    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import transaction

    from brainai_site.celery import app
    from scans import services
    from scans.models import Notification, NotificationStatus, NotificationTarget, NotifyEvent, TargetKind
    from tests import builders as b
    from tests.receivers import SmtpReceiver, WebhookReceiver

    # Reports built by hand; their analysis tasks go to queues nobody here consumes.
    user = b.make_user(get_user_model(), "bench", "staff")
    original_send = app.send_task
    app.send_task = lambda *a, **kw: None
    try:
        reports = [b.ready_report(user, 1, seed=1000 + i, patient_id=f"BENCH-{i}") for i in range(args.studies)]
    finally:
        app.send_task = original_send
    hook = WebhookReceiver(SECRET)
    smtp = SmtpReceiver(port=smtp_port)
    for i in range(2):
        NotificationTarget.objects.create(name=f"hook {i}", kind=TargetKind.WEBHOOK, url=hook.url, secret=SECRET)
        NotificationTarget.objects.create(name=f"mail {i}", kind=TargetKind.EMAIL, emails=f"ward{i}@clinic.test")

    t0 = time.monotonic()
    with transaction.atomic():
        for report in reports:
            services.notify(report.study, NotifyEvent.AWAITING_REVIEW, report)
    total = Notification.objects.count()
    print(f"{total} notifications queued; receivers down for {args.down_s:.0f} s "
          f"(retry {settings.BRAINAI_NOTIFY_RETRY_S if args.retry_s is None else args.retry_s:g} s doubling, "
          f"{settings.BRAINAI_NOTIFY_MAX_ATTEMPTS} attempts)", flush=True)
    time.sleep(max(0.0, t0 + args.down_s - time.monotonic()))
    attempts_while_down = sum(Notification.objects.values_list("attempts", flat=True))
    hook.start()
    smtp.start()
    up = time.monotonic()
    try:
        while Notification.objects.filter(status=NotificationStatus.PENDING).exists():
            if time.monotonic() - up > args.settle_s:
                print(f"still pending after {args.settle_s:.0f} s; see {log}")
                break
            time.sleep(0.5)
        last_sent = max((n.sent_at for n in Notification.objects.exclude(sent_at=None)), default=None)
    finally:
        hook.stop()
        smtp.stop()

    results = {}
    for kind, received in (("webhook", hook.ids()), ("email", smtp.ids())):
        rows = list(Notification.objects.filter(target__kind=kind).values_list("pk", "status", "attempts"))
        ids = {pk for pk, _, _ in rows}
        results[kind] = {
            "notifications": len(rows),
            "sent": sum(s == NotificationStatus.SENT for _, s, _ in rows),
            "failed": sum(s == NotificationStatus.FAILED for _, s, _ in rows),
            "lost": len(ids - set(received)),
            "duplicated": sum(1 for i, n in received.items() if n > 1),
            "badly_signed": sum(not h.signed for h in hook.hooks) if kind == "webhook" else 0,
            "attempts": dict(sorted(Counter(a for _, _, a in rows).items())),
        }
    settle = (last_sent.timestamp() - (time.time() - (time.monotonic() - up))) if last_sent else None

    print(f"\nmachine: {os.cpu_count()} CPUs, {_stack.cpu_model()}; python {platform.python_version()}")
    print(f"{'kind':8} {'total':>6} {'sent':>5} {'failed':>6} {'lost':>5} {'dup':>4} {'bad sig':>7}  attempts needed")
    for kind, r in results.items():
        print(f"{kind:8} {r['notifications']:6d} {r['sent']:5d} {r['failed']:6d} {r['lost']:5d} {r['duplicated']:4d} "
              f"{r['badly_signed']:7d}  {r['attempts']}")
    print(f"attempts made while down: {attempts_while_down}; last one sent {settle:.1f} s after the receivers "
          f"came up" if settle is not None else "nothing was sent")
    print(json.dumps({"bench": "notifications", "down_s": args.down_s, "retry_s": settings.BRAINAI_NOTIFY_RETRY_S
                      if args.retry_s is None else args.retry_s, "max_attempts": settings.BRAINAI_NOTIFY_MAX_ATTEMPTS,
                      "attempts_while_down": attempts_while_down,
                      "settle_s": round(settle, 1) if settle is not None else None, "cpus": os.cpu_count(),
                      "results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

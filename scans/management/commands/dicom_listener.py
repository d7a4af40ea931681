"""`manage.py dicom_listener`: the DICOM C-STORE SCP (scans.listener) until SIGTERM or Ctrl-C."""
import signal

from django.core.management.base import BaseCommand

from scans.listener import Listener


class Command(BaseCommand):
    help = "Receive studies over DICOM (C-ECHO, C-STORE) and take each in once it is quiet."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=None, help="address to listen on (BRAINAI_DICOM_HOST)")
        parser.add_argument("--port", type=int, default=None, help="port; 0 = a free one (BRAINAI_DICOM_PORT)")
        parser.add_argument("--ae-title", default=None, help="our AE title (BRAINAI_DICOM_AE_TITLE)")

    def handle(self, *args, host=None, port=None, ae_title=None, **options):
        listener = Listener(host=host, port=port, ae_title=ae_title)
        signal.signal(signal.SIGTERM, lambda *_: listener.request_stop())
        signal.signal(signal.SIGINT, lambda *_: listener.request_stop())
        port = listener.start()
        self.stdout.write(f"DICOM listener {listener.ae_title} on {listener.host}:{port} "
                          f"(study quiet period {listener.quiet_s:g} s)")
        self.stdout.flush()
        listener.wait()
        listener.stop()

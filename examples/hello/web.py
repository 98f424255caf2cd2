"""A tiny web process: binds $PORT, answers every request, logs to stdout, stops on SIGTERM."""
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

GREETING = os.environ.get("GREETING", "Hello")
PROCESS = os.environ.get("PS", "web")


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"{GREETING} from {PROCESS}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        # One line per request, to stdout: logs are an event stream.
        print(f"{self.command} {self.path} -> {fmt % args}", flush=True)


def main():
    port = int(os.environ["PORT"])
    server = ThreadingHTTPServer(("0.0.0.0", port), Handler)

    def stop(signum, _frame):
        print(f"received signal {signum}, shutting down", flush=True)
        threading.Thread(target=server.shutdown).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"listening on port {port}", flush=True)
    server.serve_forever()
    server.server_close()
    sys.exit(0)


if __name__ == "__main__":
    main()

"""A PagerDuty/Slack/heartbeat stand-in for the compose test: one JSON line per POST on stdout
({"path": ..., "body": ...}), read back with `docker logs`. Standard library only: it runs
in the service image."""

import json
from http.server import BaseHTTPRequestHandler, HTTPServer


class Sink(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {"raw": raw.decode(errors="replace")}
        print(json.dumps({"path": self.path, "body": body}), flush=True)
        self.send_response(202)
        self.end_headers()
        self.wfile.write(b'{"status": "success"}')

    def log_message(self, *args: object) -> None:
        return


if __name__ == "__main__":
    HTTPServer(("0.0.0.0", 8080), Sink).serve_forever()

"""A stand-in for an engine's server command (llama-server, vLLM) in native-mode tests.

    python fake_native_server.py -m MODEL --alias NAME --host H --port P [--behave B]

--behave: "serve" (healthy at once), "exit" (writes to stderr, exits with code 3 at once),
"never-healthy" (listens, /health answers 503 forever), "child" (serves, and starts a child
process in its group, like vLLM's engine core). GET /props answers {"build_info": "fake-1"}.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-m", required=True)
    parser.add_argument("--alias", required=True)
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--behave", default="serve")
    args = parser.parse_args()
    print(f"fake engine: loading {args.m} as {args.alias}", file=sys.stderr, flush=True)
    if args.behave == "exit":
        print("fake engine: error: cannot load the model", file=sys.stderr, flush=True)
        sys.exit(3)
    if args.behave == "child":
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    healthy = args.behave != "never-healthy"

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/health":
                self._answer(200 if healthy else 503, {"status": "ok" if healthy else "loading"})
            elif self.path == "/props":
                self._answer(200, {"build_info": "fake-1", "model": args.m})
            else:
                self._answer(404, {})

        def _answer(self, status: int, body: object) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *log_args: object) -> None:
            return  # keep the engine log to what the tests look for

    server = ThreadingHTTPServer((args.host, args.port), Handler)
    print(f"fake engine: listening on {args.host}:{args.port}", file=sys.stderr, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()

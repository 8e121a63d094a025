#!/usr/bin/env python3
"""A logging reverse proxy on 127.0.0.1 standing in for an internal mirror.

    mirror_proxy.py LOG_FILE PREFIX=UPSTREAM [PREFIX=UPSTREAM ...]

`GET /PREFIX/REST` is fetched from `UPSTREAM/REST` and relayed; each request
line (method and path) is appended to LOG_FILE. Bodies that name another
upstream by its absolute URL (PyPI's index links to files.pythonhosted.org,
npm's metadata to registry.npmjs.org) are rewritten to point back at this
proxy, as devpi, Nexus or Verdaccio do. Prints the port it listens on, then
serves until killed.
"""

import http.server
import socketserver
import sys
import urllib.error
import urllib.request

LOG = sys.argv[1]
ROUTES = [arg.split("=", 1) for arg in sys.argv[2:]]
# Headers passed on to upstream and back.
REQUEST_HEADERS = ["Accept", "If-Modified-Since", "If-None-Match", "Range", "User-Agent"]
RESPONSE_HEADERS = ["Content-Type", "Last-Modified", "ETag", "Content-Range", "Accept-Ranges"]
# Bodies small and textual enough to rewrite.
TEXTUAL = ("text/html", "application/json", "application/vnd.pypi", "application/vnd.npm")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def do_HEAD(self):
        self.relay(head=True)

    def do_GET(self):
        self.relay(head=False)

    def relay(self, head):
        with open(LOG, "a") as log:
            log.write(f"{self.command} {self.path}\n")
        for prefix, upstream in ROUTES:
            if self.path.startswith(f"/{prefix}/"):
                url = upstream.rstrip("/") + "/" + self.path[len(prefix) + 2 :]
                break
        else:
            return self.answer(404, {}, b"no route\n", head)
        req = urllib.request.Request(url, method="HEAD" if head else "GET")
        for h in REQUEST_HEADERS:
            if self.headers.get(h):
                req.add_header(h, self.headers[h])
        req.add_header("Accept-Encoding", "identity")
        try:
            resp = urllib.request.urlopen(req, timeout=60)
        except urllib.error.HTTPError as e:
            resp = e
        except Exception as e:  # noqa: BLE001 - any upstream failure is a 502
            return self.answer(502, {}, f"upstream: {e}\n".encode(), head)
        with resp:
            status = resp.status if hasattr(resp, "status") else resp.code
            headers = {h: resp.headers[h] for h in RESPONSE_HEADERS if resp.headers.get(h)}
            kind = headers.get("Content-Type", "")
            if head:
                return self.answer(status, headers, b"", True, resp.headers.get("Content-Length"))
            if kind.startswith(TEXTUAL):
                body = resp.read()
                me = f"http://127.0.0.1:{self.server.server_address[1]}"
                for prefix, upstream in ROUTES:
                    body = body.replace(upstream.rstrip("/").encode() + b"/", f"{me}/{prefix}/".encode())
                return self.answer(status, headers, body, False)
            length = resp.headers.get("Content-Length")
            if length is None:
                return self.answer(status, headers, resp.read(), False)
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", length)
            self.end_headers()
            while True:
                chunk = resp.read(1 << 16)
                if not chunk:
                    break
                self.wfile.write(chunk)

    def answer(self, status, headers, body, head, length=None):
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", length if length is not None else str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    server = Server(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()

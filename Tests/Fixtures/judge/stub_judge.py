#!/usr/bin/env python3
"""A stand-in OpenAI-compatible judge for the judge client's tests (Tests/CLITests/EvalJudgeTests).

It answers POST .../chat/completions with a rating computed from the prompt, so a test can check
what reached the results: the trait rating is the number of characters of the answer shown to it
modulo 101, coherence is 100 minus that, and the 0-2 ratings are 2, 1, 2 (concept, instruction,
fluency). Flags make it misbehave the ways a real endpoint does:

  --status-first N CODE  answer HTTP CODE (429 with Retry-After: 0, or a 5xx) to the first N requests
  --garbage MODE         "once": the first answer to each prompt is prose, the retry a number;
                         "always": every answer is prose
  --stop-after N         serve N requests, then close the socket and exit (a server stopped mid-run)
  --log FILE             append one line per request received (the test counts them)

It prints its port on the first line of stdout (it binds port 0 on 127.0.0.1).
"""
import argparse
import json
import re
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--status-first", nargs=2, type=int, default=[0, 429])
    parser.add_argument("--garbage", choices=["none", "once", "always"], default="none")
    parser.add_argument("--stop-after", type=int, default=0)
    parser.add_argument("--log", default="")
    args = parser.parse_args()
    state = {"count": 0}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_POST(self):
            state["count"] += 1
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length) or b"{}")
            if args.log:
                with open(args.log, "a") as f:
                    f.write(json.dumps({"path": self.path, "n": state["count"], "messages": len(body.get("messages", []))}) + "\n")
            if not self.path.endswith("/chat/completions"):
                return self.reply(404, {"error": "not found"})
            if state["count"] <= args.status_first[0]:
                return self.reply(args.status_first[1], {"error": "busy"}, {"Retry-After": "0"})
            messages = body.get("messages", [])
            prompt = messages[0]["content"] if messages else ""
            retry = len(messages) > 1
            if args.garbage == "always" or (args.garbage == "once" and not retry):
                content = "Let me think about it: I would say it is quite good overall."
            else:
                content = rate(prompt)
            self.reply(200, {"id": "stub", "object": "chat.completion", "model": body.get("model"),
                             "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                                          "finish_reason": "stop"}]})
            if args.stop_after and state["count"] >= args.stop_after:
                self.server.stopping = True

        def reply(self, code, obj, headers=None):
            data = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

    def rate(prompt):
        shown = re.search(r"\[(?:ANSWER|TEXT) START\]\n(.*?)\n\[(?:ANSWER|TEXT) END\]", prompt, re.S)
        n = len(shown.group(1)) % 101 if shown else 50
        if "personality trait" in prompt:
            return str(n)
        if "how coherent" in prompt:
            return str(100 - n)
        if "concept" in prompt and "Reply with 0, 1 or 2" in prompt:
            return "2"
        if "INSTRUCTION START" in prompt:
            return "1"
        return "2"

    server = HTTPServer(("127.0.0.1", 0), Handler)
    server.stopping = False
    print(server.server_address[1], flush=True)
    while not server.stopping:
        server.handle_request()
    server.server_close()


if __name__ == "__main__":
    main()

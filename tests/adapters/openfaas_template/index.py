"""A stand-in for the OpenFaaS python3-http template's ``index.py``, written to its contract.

OpenFaaS publishes the template as a Dockerfile and an ``index.py`` run in an image; this
follows that ``index.py`` (../shared/reference/runtimes.md) on the same stack, Flask served
by waitress, from the same layout: this file at the image's ``/home/app`` beside the handler
folder ``function/``, imported as ``from function import handler``.

- Any method on any path calls ``handler.handle(event, context)`` with ``event.body``
  (bytes), ``event.headers``, ``event.method``, ``event.query``, ``event.path`` and
  ``context.hostname``.
- A dict reply becomes ``(body, statusCode or 200, headers)``: a dict body through
  ``jsonify``, anything else ``str()``-ed; ``None`` is an empty 200; anything else is given
  to Flask as it is.

Only the address differs, for a test bed: 127.0.0.1 and ``UPSTREAM_PORT`` (the template binds
``0.0.0.0:5000``, reached only through of-watchdog in the container).
"""

import os
import site

site.addsitedir("/home/app/python")  # where the image installs the function's packages

from flask import Flask, jsonify, request
from waitress import serve

from function import handler

app = Flask(__name__)


class Event:
    def __init__(self):
        self.body = request.get_data()
        self.headers = request.headers
        self.method = request.method
        self.query = request.args
        self.path = request.path


class Context:
    def __init__(self):
        self.hostname = os.getenv("HOSTNAME", "localhost")


def to_flask(reply):
    if reply is None:
        return "", 200
    if not isinstance(reply, dict):
        return reply
    status = reply.get("statusCode", 200)
    if "body" not in reply:
        body = ""
    elif type(reply["body"]) is dict:
        body = jsonify(reply["body"])
    else:
        body = str(reply["body"])
    headers = reply.get("headers", [])
    if type(headers) is dict:
        headers = list(headers.items())
    return body, status, headers


@app.route("/", defaults={"path": ""}, methods=["GET", "PUT", "POST", "PATCH", "DELETE"])
@app.route("/<path:path>", methods=["GET", "PUT", "POST", "PATCH", "DELETE"])
def call_handler(path):
    return to_flask(handler.handle(Event(), Context()))


if __name__ == "__main__":
    serve(app, host="127.0.0.1", port=int(os.getenv("UPSTREAM_PORT", "5000")))

"""A stand-in for the Kubeless python3.8 runtime image's server, written to its contract.

Kubeless publishes its runtime only as a container image; this follows what that image's
``/_kubeless.py`` does (../shared/reference/runtimes.md), on the same stack: Python 3.8,
bottle 0.12.13 served by cherrypy 8.9.1 behind wsgi-request-logger, prometheus_client.

- The function module ``MOD_NAME`` is imported from the function folder (the image's
  ``/kubeless``, here ``KUBELESS_DIR``) and ``FUNC_HANDLER`` is called as
  ``handler(event, context)`` in a child process of a ``forkserver`` context that preloads
  this module (and so the function) once; arguments and result cross by pickling.
- ``event["data"]`` is ``request.json`` only when ``Content-Type`` is exactly
  ``application/json`` (an unparsable JSON body fails in the server: 500), else the bytes.
- No reply within ``FUNC_TIMEOUT`` seconds: the child is terminated, 408.
- A returned ``bottle.HTTPResponse`` is sent as it is; an exception from the function, 500.
- ``GET /healthz`` answers ``OK``; ``GET /metrics`` Prometheus text.

Only two things differ, both for a test bed: it binds 127.0.0.1 (``FUNC_PORT``), and the
function folder comes from ``KUBELESS_DIR`` instead of the fixed ``/kubeless``.
"""

import importlib
import io
import logging
import multiprocessing
import os
import queue
import sys

import bottle
import prometheus_client

THIS_MODULE = os.path.splitext(os.path.basename(__file__))[0]
if os.getenv("MOD_NAME") == THIS_MODULE:
    raise ValueError("the function module cannot be named " + THIS_MODULE)

sys.path.append(os.getenv("KUBELESS_DIR", "/kubeless"))
function_module = importlib.import_module(os.environ["MOD_NAME"])
function = getattr(function_module, os.environ["FUNC_HANDLER"])
port = int(os.getenv("FUNC_PORT", "8080"))
timeout = float(os.getenv("FUNC_TIMEOUT", "180"))
bottle.BaseRequest.MEMFILE_MAX = int(os.getenv("FUNC_MEMFILE_MAX", str(100 * 1024 * 1024)))

app = bottle.app()
context = {
    "function-name": function.__name__,
    "timeout": timeout,
    "runtime": os.getenv("FUNC_RUNTIME"),
    "memory-limit": os.getenv("FUNC_MEMORY_LIMIT"),
}
# Set in __main__ only, as in the image: the forkserver imports this module without them.
mp_context = None
calls = errors = durations = None


class RequestCopy(bottle.BaseRequest):
    """The request as the function receives it: a bottle request whose environ is pickled
    without the parts that cannot be (streams, the app and route objects), and whose body
    is always an in-memory copy."""

    def __init__(self, body, environ):
        super().__init__(environ)
        self.environ["bottle.request.body"] = io.BytesIO(body)

    def __getstate__(self):
        state = self.environ.copy()
        for key in ("wsgi.errors", "wsgi.input", "bottle.app", "bottle.route", "route.handle"):
            state.pop(key, None)
        return state

    def __setstate__(self, state):
        self.environ = state


def call_function(results, event, ctx):
    try:
        results.put(function(event, ctx))
    except Exception as error:  # sent back and raised in the server: a 500
        results.put(error)


@app.get("/healthz")
def healthz():
    return "OK"


@app.get("/metrics")
def metrics():
    bottle.response.content_type = prometheus_client.CONTENT_TYPE_LATEST
    return prometheus_client.generate_latest(prometheus_client.REGISTRY)


@app.route("/<:re:.*>", method=["GET", "POST", "PATCH", "DELETE"])
def invoke():
    request = bottle.request
    body = request.body.read()
    copy = RequestCopy(body, request.environ.copy())
    data = request.json if request.get_header("content-type") == "application/json" else body
    event = {
        "data": data,
        "event-id": request.get_header("event-id"),
        "event-type": request.get_header("event-type"),
        "event-time": request.get_header("event-time"),
        "event-namespace": request.get_header("event-namespace"),
        "extensions": {"request": copy},
    }
    method = request.method
    calls.labels(method).inc()
    with errors.labels(method).count_exceptions(), durations.labels(method).time():
        results = mp_context.Queue()
        child = mp_context.Process(target=call_function, args=(results, event, context))
        child.start()
        try:
            result = results.get(block=True, timeout=timeout)
        except queue.Empty:
            child.terminate()
            child.join()
            return bottle.HTTPError(408, "Timeout while processing the function")
        child.join()
        if isinstance(result, Exception) and not isinstance(result, bottle.HTTPResponse):
            logging.error("Function returned an exception: %s", result)
            raise result
        return result


def start_forkserver():
    """Nothing: starting one child makes the forkserver (and its preload) start now."""


if __name__ == "__main__":
    import requestlogger

    mp_context = multiprocessing.get_context(os.getenv("MP_CONTEXT", "forkserver"))
    if mp_context.get_start_method() == "forkserver":
        # Children forked from a server that already imported the function share its
        # module-level state (our engine) instead of importing it per request.
        mp_context.set_forkserver_preload([THIS_MODULE])
        warmup = mp_context.Process(target=start_forkserver)
        warmup.start()
        warmup.join()

    durations = prometheus_client.Histogram(
        "function_duration_seconds", "Duration of user function in seconds", ["method"])
    calls = prometheus_client.Counter(
        "function_calls_total", "Number of calls to user function", ["method"])
    errors = prometheus_client.Counter(
        "function_failures_total", "Number of exceptions in user function", ["method"])
    logged = requestlogger.WSGILogger(app, [logging.StreamHandler(stream=sys.stdout)],
                                      requestlogger.ApacheFormatter())
    bottle.run(logged, server="cherrypy", host="127.0.0.1", port=port,
               numthreads=int(os.getenv("CHERRYPY_NUMTHREADS", "10")))

"""Running the service: the app behind waitress (Flask's debug server under --debug), with workers.

The HTTP server runs in a thread; the main thread runs the embedded workers (they own SIGINT
and SIGTERM, see `GradingWorker.run`) or, with none, waits for a signal.
"""

from __future__ import annotations

import logging
import signal
import threading

from flask import Flask

from grader.app.extensions import Backends
from grader.queue import GradingWorker

log = logging.getLogger(__name__)

# Requests that ?wait for a report each hold a thread.
HTTP_THREADS = 32


def serve(app: Flask, *, host: str, port: int, workers: int, sandbox: str, pool_size: int | None,
          debug: bool = False) -> None:
    run, stop = _http_server(app, host, port, debug)
    threading.Thread(target=run, name="http", daemon=True).start()
    log.info("serving http://%s:%d/ with %d worker(s)%s", host, port, workers,
             f" in {sandbox} sandboxes" if workers else "")
    try:
        if workers:
            backends: Backends = app.extensions["grader"]
            GradingWorker(backends.queue, sandbox=sandbox, threads=workers, pool_size=pool_size,
                          outbox=backends.outbox).run()
        else:
            _wait_for_signal()
    finally:
        stop()


def _http_server(app: Flask, host: str, port: int, debug: bool):
    """(run, stop) for waitress, or for Flask's development server with the debugger under --debug."""
    if debug:
        from werkzeug.debug import DebuggedApplication
        from werkzeug.serving import make_server

        app.debug = True
        server = make_server(host, port, DebuggedApplication(app, evalex=True), threaded=True)
        return server.serve_forever, server.shutdown
    import waitress

    server = waitress.create_server(app, host=host, port=port, threads=HTTP_THREADS, ident="grader")
    return server.run, server.close


def _wait_for_signal() -> None:
    stopped = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopped.set())
    stopped.wait()

"""The browser's web server: Flask, GET only, JSON endpoints beside the static page.

Endpoints (every ``REF`` is anything the command line accepts: a branch, a tag, a snapshot id
or a unique prefix of one):

- ``/api/graph``: ``{"svg", "snapshots": [snapshot, ...]}`` (the ancestry graph of every
  branch, with ``data-snapshot`` attributes on its nodes);
- ``/api/snapshot/REF``: a snapshot (as ``pyicechunk show --json``);
- ``/api/tree/REF``: ``{"snapshot_id", "nodes": [...]}`` (as ``pyicechunk ls --json``);
- ``/api/array/REF?path=/a``: the array's node with its chunk statistics;
- ``/api/values/REF?path=/a[&slice=0:10,:]``: ``{"selection", "shape", "values"}`` of a 1-d
  or 2-d slice, at most :data:`MAX_VALUES` values (by default the start of the array).

Errors are ``{"error": message}`` with status 400 (bad request) or 404 (nothing there).
"""

from __future__ import annotations

import ipaddress
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from flask import Flask, jsonify, request, send_from_directory
from werkzeug.serving import make_server

from pyicechunk.cli._describe import (
    chunk_stats,
    json_values,
    node_json,
    open_node,
    parse_selection,
    tree_json,
)
from pyicechunk.cli._history import diff_json, snapshot_json
from pyicechunk.cli._output import CliError
from pyicechunk.cli._refs import Snapshots
from pyicechunk.graph import ancestry_graph

__all__ = ["MAX_VALUES", "create_app", "serve"]

STATIC = Path(__file__).with_name("static")
MAX_VALUES = 250_000
# Default plot sizes: the first values along a line, the first rows and columns of a plane.
_LINE = 2_000
_PLANE = 200


def _default_slice(shape: tuple[int, ...]) -> str:
    if not shape:
        return ""
    if len(shape) == 1:
        return f"0:{min(shape[0], _LINE)}"
    leading = ["0"] * (len(shape) - 2)
    plane = [f"0:{min(n, _PLANE)}" for n in shape[-2:]]
    return ",".join(leading + plane)


def create_app(repo: Any) -> Flask:
    """The Flask application that serves ``repo`` read-only."""
    app = Flask(__name__, static_folder=None)
    app.json.sort_keys = False  # type: ignore[attr-defined]

    def snapshots() -> Snapshots:
        # A fresh view per request: refs move while the server runs.
        return Snapshots(repo)

    def session(found: Snapshots, ref: str) -> tuple[str, Any]:
        target = found.resolve(ref)
        return target.snapshot_id, repo.readonly_session(snapshot_id=target.snapshot_id)

    def array_at(ref: str) -> tuple[str, Any]:
        path = request.args.get("path", "")
        snapshot_id, read = session(snapshots(), ref)
        node = open_node(read, path)
        if not isinstance(node, zarr.Array):
            raise CliError(f"/{node.path} is a group, not an array")
        return snapshot_id, node

    @app.errorhandler(CliError)
    def not_found(error: CliError) -> Any:
        return jsonify(error=str(error)), 404

    @app.errorhandler(ValueError)
    def bad_request(error: ValueError) -> Any:
        return jsonify(error=str(error)), 400

    @app.get("/")
    def index() -> Any:
        return send_from_directory(STATIC, "index.html")

    @app.get("/static/<path:name>")
    def static_file(name: str) -> Any:
        return send_from_directory(STATIC, name)

    @app.get("/api/graph")
    def graph() -> Any:
        found = snapshots()
        drawn = ancestry_graph(repo, plain=True)
        known = found.all()
        listed = [
            snapshot_json(found, known.get(n.id) or repo.lookup_snapshot(n.id)) for n in drawn.nodes
        ]
        return jsonify(svg=drawn.svg(interactive=True), snapshots=listed)

    @app.get("/api/snapshot/<ref>")
    def snapshot(ref: str) -> Any:
        found = snapshots()
        info = repo.lookup_snapshot(found.resolve(ref).snapshot_id)
        doc = snapshot_json(found, info)
        if info.parent_id is None:
            doc["changes"] = None
        else:
            changes = repo.diff(from_snapshot_id=info.parent_id, to_snapshot_id=info.id)
            doc["changes"] = diff_json(changes, info.parent_id, info.id)
            doc["changes"]["text"] = str(changes)
        return jsonify(doc)

    @app.get("/api/tree/<ref>")
    def tree(ref: str) -> Any:
        snapshot_id, read = session(snapshots(), ref)
        return jsonify(snapshot_id=snapshot_id, nodes=tree_json(read, "/"))

    @app.get("/api/array/<ref>")
    def array(ref: str) -> Any:
        snapshot_id, node = array_at(ref)
        return jsonify(snapshot_id=snapshot_id, **node_json(node), **chunk_stats(node))

    @app.get("/api/values/<ref>")
    def values(ref: str) -> Any:
        _, node = array_at(ref)
        text = request.args.get("slice") or _default_slice(tuple(node.shape))
        chosen = parse_selection(text, node.ndim) if text else ()
        data = np.asarray(node[chosen])
        if data.ndim > 2:
            raise CliError(f"the selection {text!r} has {data.ndim} dimensions; plot 1 or 2")
        if data.size > MAX_VALUES:
            raise CliError(
                f"the selection {text!r} has {data.size:,} values; at most "
                f"{MAX_VALUES:,} can be plotted"
            )
        return jsonify(selection=text, shape=list(data.shape), values=json_values(data))

    return app


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(
    repo: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    on_ready: Callable[[str], None] | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Serve ``repo`` until interrupted (or until ``stop`` is set).

    Parameters
    ----------
    repo
        The repository to show.
    host, port
        Where to listen; port 0 picks a free one.
    on_ready
        Called with the page's URL once the server listens.
    stop
        When given, the server stops soon after this event is set.
    """
    app = create_app(repo)
    if _is_loopback(host):
        # Only answer requests addressed to this machine (no DNS rebinding from a web page).
        app.config["TRUSTED_HOSTS"] = ["127.0.0.1", "localhost", "[::1]", host]
    # One line per request on stderr would drown what `serve` prints; errors still show.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = make_server(host, port, app, threaded=True)
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{server.server_port}/"
    if on_ready is not None:
        on_ready(url)
    if stop is None:
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass  # Ctrl-C is how this server is meant to stop
        finally:
            server.server_close()
        return
    worker = threading.Thread(target=server.serve_forever, daemon=True)
    worker.start()
    stop.wait()
    server.shutdown()
    server.server_close()
    worker.join()

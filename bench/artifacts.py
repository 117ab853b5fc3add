"""Artifacts: a repeated input transfers nothing; a 200 MB output goes to S3 about as fast as
boto3's TransferManager alone sends it to the same server.

* Repeated input: a step whose input is a URL on a web server the bench runs (20 MB, with an
  ``ETag``); it runs twice on one agent; the server counts the body bytes it sent each time.
* Output upload: the master's store is an S3 bucket on seaweedfs (``weed mini``, as in the
  tests). The bench claims an execution itself with the agent's client and times the agent's own
  upload path (``agent.io.upload_outputs``: prepare, presigned multipart PUTs, register) for a
  200 MB file; the baseline is ``boto3``'s ``upload_file`` (TransferManager, default settings)
  of the same file to the same server.
"""

from __future__ import annotations

import hashlib
import http.server
import os
import threading
import time

from .common import VALOHAI_YAML, Bench, main_for

SIZE_INPUT = 20 * 1024 * 1024
SIZE_OUTPUT = 200 * 1024 * 1024


class _Counting(http.server.ThreadingHTTPServer):
    sent = 0
    body = b""
    etag = ""


def _input_server(data: bytes) -> _Counting:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            srv: _Counting = self.server  # type: ignore[assignment]
            if self.headers.get("If-None-Match") == srv.etag:
                self.send_response(304)
                self.send_header("ETag", srv.etag)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("ETag", srv.etag)
            self.send_header("Content-Length", str(len(srv.body)))
            self.end_headers()
            self.wfile.write(srv.body)
            srv.sent += len(srv.body)

        def log_message(self, *args: object) -> None:
            pass

    server = _Counting(("127.0.0.1", 0), Handler)
    server.body, server.etag = data, '"' + hashlib.sha256(data).hexdigest()[:16] + '"'
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def repeated_input(ctx: Bench) -> None:
    server = _input_server(os.urandom(SIZE_INPUT))
    ctx.cleanup(server.shutdown)
    url = f"http://127.0.0.1:{server.server_address[1]}/data.bin"
    yaml = VALOHAI_YAML + (
        "\n- step:\n    name: consume\n    image: python:3.11\n"
        '    command: test -s "$VH_INPUTS_DIR/data/data.bin"\n'
        f"    inputs:\n      - name: data\n        default: {url}\n"
    )
    stack = ctx.stack(agents=1, name="inputs")
    stack.wait_agents(1)
    project, commit = stack.project_with_steps({"valohai.yaml": yaml})
    sent = []
    for _ in range(2):
        before = server.sent
        execution = stack.submit(project, commit, "consume")
        final = stack.wait_status(execution["id"], timeout=120)
        if final["status"] != "complete":
            raise RuntimeError(stack.explain(execution["id"]))
        sent.append(server.sent - before)
    ctx.figure(
        "repeated input (URL, 20 MB): bytes transferred the second time",
        sent[1],
        "B",
        target="0 B",
        met=sent[1] == 0,
    )
    ctx.note(f"first run transferred {sent[0]:,} B; the second a conditional GET answered 304")
    stack.stop()


def s3_upload(ctx: Bench) -> None:
    from agent import io
    from agent.client import AgentClient
    from tests.stores.servers import S3_KEY, S3_SECRET, s3_client, start_seaweedfs

    weed = start_seaweedfs(os.path.join(ctx.tmp, "weed"))
    ctx.cleanup(weed.stop)
    os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"] = S3_KEY, S3_SECRET
    s3 = s3_client(weed.url)
    s3.create_bucket(Bucket="bench")  # type: ignore[attr-defined]
    store_url = f"s3://bench/artifacts?endpoint_url={weed.url}"
    stack = ctx.stack(agents=0, master_args=["--store-url", store_url], name="s3")
    project, commit = stack.project_with_steps()
    path = os.path.join(ctx.tmp, "model.bin")
    with open(path, "wb") as f:
        for _ in range(SIZE_OUTPUT // (8 * 1024 * 1024)):
            f.write(os.urandom(8 * 1024 * 1024))

    ours, theirs = [], []
    client = AgentClient(stack.url, stack.agent_token)
    ctx.cleanup(client.close)
    for n in range(2 if ctx.quick else 3):
        execution = stack.submit(project, commit, "noop")
        spec = client.claim({"id": "bench", "name": "bench"}, 10)
        if spec is None or spec["id"] != execution["id"]:
            raise RuntimeError(f"claimed {spec and spec['id']}, not {execution['id']}")
        out_dir = os.path.join(ctx.tmp, f"outputs{n}")
        os.makedirs(out_dir)
        os.link(path, os.path.join(out_dir, "model.bin"))
        files = io.collect_outputs(out_dir)  # hashing is not part of the upload
        done = threading.Event()
        beat = threading.Thread(target=_heartbeat, args=(client, spec, done), daemon=True)
        beat.start()  # as the agent's loop does while it uploads
        start = time.perf_counter()
        try:
            datums = io.upload_outputs(client, spec["id"], int(spec["attempt"]), files)
            ours.append(time.perf_counter() - start)
        finally:
            done.set()
            beat.join()
        if [d.get("name") for d in datums] != ["model.bin"]:
            raise RuntimeError(f"the upload registered {datums}")
        client.status(spec["id"], int(spec["attempt"]), "complete", 0, "")
        start = time.perf_counter()
        s3.upload_file(path, "bench", f"baseline/{n}.bin")  # type: ignore[attr-defined]
        theirs.append(time.perf_counter() - start)
    mb = SIZE_OUTPUT / 1e6
    best_ours, best_theirs = mb / min(ours), mb / min(theirs)
    ratio = best_ours / best_theirs
    ctx.figure(
        "200 MB output upload to S3 (agent path, presigned multipart)",
        best_ours,
        "MB/s",
        target=">= 0.9x TransferManager",
        met=ratio >= 0.9,
        baseline="boto3 upload_file (TransferManager) to the same server",
        baseline_value=best_theirs,
        ratio=ratio,
        ratio_target=">= 0.9",
    )
    ctx.note(
        f"best of {len(ours)} alternating runs each; ours {[round(t, 2) for t in ours]} s, "
        f"TransferManager {[round(t, 2) for t in theirs]} s"
    )


def _heartbeat(client: object, spec: dict, done: threading.Event) -> None:
    while not done.wait(float(spec.get("heartbeat_seconds") or 2)):
        client.heartbeat(spec["id"], int(spec["attempt"]))  # type: ignore[attr-defined]


def run(ctx: Bench) -> None:
    repeated_input(ctx)
    s3_upload(ctx)


if __name__ == "__main__":
    main_for("artifacts", run)

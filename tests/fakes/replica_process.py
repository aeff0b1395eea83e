"""A fake replica process for the local supervisor (`GPUFLEET_LOCAL_REPLICA_COMMAND`): the process tree
of the real entrypoint without vLLM. Not a model server.

`python -m tests.fakes.replica_process` stands for the entrypoint: it starts a child in its
process group (as the entrypoint starts vLLM's server: same group, so the group's kill takes both)
and waits for it, handing SIGTERM on.
The child (`--serve`) renames itself as vLLM's processes do (`setproctitle`, which also wipes
the environment `/proc` shows), then answers `/health` and the OpenAI worker paths
(`FakeOpenAiWorker`) on GPUFLEET_REPLICA_HOST:GPUFLEET_REPLICA_PORT until SIGTERM. So killing
the parent alone leaves a serving child behind, as killing the real entrypoint leaves vLLM
serving, and one that only its session, not its environment, marks as the environment's.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

import setproctitle
from werkzeug.serving import make_server

from tests.fakes.openai_worker import FakeOpenAiWorker


def serve() -> None:
    setproctitle.setproctitle("FAKE::ReplicaServer")
    worker = FakeOpenAiWorker(model=os.environ.get("GPUFLEET_REPLICA_SERVED_NAME", "fake-model"), name=str(os.getpid()))
    server = make_server(os.environ["GPUFLEET_REPLICA_HOST"], int(os.environ["GPUFLEET_REPLICA_PORT"]), worker,
                         threaded=True)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    server.serve_forever()


def entrypoint() -> int:
    child = subprocess.Popen([sys.executable, "-m", __spec__.name, "--serve"])
    signal.signal(signal.SIGTERM, lambda *_: child.send_signal(signal.SIGTERM))
    return child.wait()


if __name__ == "__main__":
    if sys.argv[1:] == ["--serve"]:
        serve()
    else:
        sys.exit(entrypoint())

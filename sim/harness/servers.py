"""Servers the harness starts: Debian's redis-server and nginx, each in a private temp dir.

A server runs in the foreground in its own session (process group), with its
configuration, data, logs and pid file in a fresh ``uksim-*`` temporary directory, inside
the path's namespace when there is one. :func:`start` registers its stop (SIGTERM to the
group, then SIGKILL) and the removal of the directory on the cleanup stack before it
returns, and waits until the server answers.

Redis always gets a generated password (``requirepass``); persistence is off
(``save ""``, ``appendonly no``) unless AOF is asked for (``appendonly yes`` with
``appendfsync always``). nginx serves one static page written by the harness, with
``daemon off``, ``master_process on`` and no access log, or one shipped as syslog
datagrams to a sink of the harness (:mod:`sim.harness.collector`).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from sim.errors import ToolError
from sim.harness import hostload, safety, tools
from sim.harness.cleanup import CleanupStack, signals_held
from sim.harness.netpaths import Endpoint

READY_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 10.0


@dataclass
class Server:
    """A running server: its process, files and the settings it was started with."""

    name: str
    process: subprocess.Popen[bytes]
    workdir: Path
    argv: list[str]
    config_text: str
    password: str | None = None
    settings: dict[str, object] = field(default_factory=dict)


def make_workdir(stack: CleanupStack, base: str | None = None) -> Path:
    """A fresh private directory ``uksim-*`` (mode 0700), removed at cleanup."""
    path = Path(tempfile.mkdtemp(prefix="uksim-", dir=base))
    stack.push(f"directory {path}", lambda: shutil.rmtree(path, ignore_errors=True))
    # Who owns the server started here (read by ``uksim measure cleanup``).
    (path / "owner.pid").write_text(f"{os.getpid()}\n")
    return path


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group, wait, then SIGKILL what is left."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=STOP_TIMEOUT_S)
    # Workers (nginx) may outlive their master: kill the whole group regardless, and wait
    # until every one of them has exited, not only the master (a SIGKILL takes effect
    # when the process next runs, which on a busy machine can be a while).
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    try:
        proc.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        raise ToolError(f"server pid {proc.pid} did not stop") from exc
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while (left := hostload.live_members(proc.pid)):
        if time.monotonic() > deadline:
            raise ToolError(f"server pid {proc.pid}: processes {left} of its group did not stop")
        time.sleep(0.01)


def _launch(
    stack: CleanupStack, name: str, argv: list[str], workdir: Path
) -> subprocess.Popen[bytes]:
    out = (workdir / f"{name}.stdout").open("wb")
    # Signals held: the stop is registered before an interrupt can unwind the stack.
    with signals_held():
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=workdir,
            )
        except OSError as exc:
            raise ToolError(f"could not start {name}: {exc}") from exc
        finally:
            out.close()
        stack.push(f"{name} (pid {proc.pid})", lambda: _stop(proc))
    return proc


def _tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(text[-lines:])


def _wait_ready(server_name: str, proc: subprocess.Popen[bytes], endpoint: Endpoint,
                probe: bytes, expect: bytes, logs: list[Path]) -> None:
    """Poll the target until the server answers ``probe`` with bytes starting ``expect``."""
    safety.check_load_target(endpoint.target_address)
    deadline = time.monotonic() + READY_TIMEOUT_S
    last_error = "no answer"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            detail = "; ".join(t for t in (_tail(p) for p in logs) if t)
            raise ToolError(f"{server_name} exited with code {proc.returncode}: {detail}")
        try:
            with socket.create_connection(
                (endpoint.target_address, endpoint.target_port), timeout=2.0
            ) as s:
                s.sendall(probe)
                reply = b""
                while len(reply) < len(expect):
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    reply += chunk
                if reply.startswith(expect):
                    return
                last_error = f"unexpected reply {reply[:60]!r}"
        except OSError as exc:
            last_error = str(exc)
        time.sleep(0.05)
    raise ToolError(
        f"{server_name} did not answer on {endpoint.target_address}:{endpoint.target_port} "
        f"within {READY_TIMEOUT_S:g} s ({last_error})"
    )


def redis_command(endpoint: Endpoint, password: str, *words: str) -> bytes:
    """Send one authenticated command to the server as RESP and return the raw reply."""
    safety.check_load_target(endpoint.target_address)

    def encode(parts: tuple[str, ...]) -> bytes:
        out = f"*{len(parts)}\r\n".encode()
        for p in parts:
            b = p.encode()
            out += f"${len(b)}\r\n".encode() + b + b"\r\n"
        return out

    with socket.create_connection((endpoint.target_address, endpoint.target_port), 5.0) as s:
        s.sendall(encode(("AUTH", password)) + encode(words))
        reply = b""
        while reply.count(b"\r\n") < 2:
            chunk = s.recv(4096)
            if not chunk:
                break
            reply += chunk
    if not reply.startswith(b"+OK\r\n"):
        raise ToolError(f"redis-server refused the harness's password: {reply[:60]!r}")
    return reply[5:]


def start_redis(stack: CleanupStack, endpoint: Endpoint, *, aof: bool,
                base_dir: str | None = None) -> Server:
    """Start redis-server behind ``endpoint`` with a generated password; wait until ready."""
    binary = tools.require("redis-server")
    workdir = make_workdir(stack, base_dir)
    password = secrets.token_hex(24)
    tools.SECRETS.add(password)
    lines = [
        f"bind {endpoint.listen_address}",
        f"port {endpoint.listen_port}",
        f"requirepass {password}",
        "protected-mode yes",
        "daemonize no",
        "supervised no",
        f"dir {workdir}",
        f"logfile {workdir / 'redis.log'}",
        f"pidfile {workdir / 'redis.pid'}",
        'save ""',
        "appendonly yes" if aof else "appendonly no",
        "appendfsync always",
    ]
    config_text = "\n".join(lines) + "\n"
    conf = workdir / "redis.conf"
    conf.write_text(config_text)
    conf.chmod(0o600)
    argv = [*endpoint.exec_prefix(), binary, str(conf)]
    proc = _launch(stack, "redis-server", argv, workdir)
    auth_ping = (f"AUTH {password}\r\nPING\r\n").encode()
    _wait_ready("redis-server", proc, endpoint, auth_ping, b"+OK\r\n+PONG\r\n",
                [workdir / "redis.log", workdir / "redis-server.stdout"])
    return Server(
        "redis-server", proc, workdir, argv, tools.redact(config_text), password,
        {"aof": aof, "appendfsync": "always" if aof else None, "save": ""},
    )


def write_page(path: Path, size_bytes: int) -> None:
    """Write an HTML page of exactly ``size_bytes`` bytes (at least 64)."""
    head = "<!DOCTYPE html>\n<html><head><title>uksim</title></head><body>\n<p>"
    tail = "</p>\n</body></html>\n"
    filler_bytes = max(0, size_bytes - len(head) - len(tail))
    words = ("uksim measures the time a request takes on each path. " * 64)[:filler_bytes]
    text = head + words + tail
    path.write_text(text[:size_bytes] if len(text) > size_bytes else text)


def start_nginx(stack: CleanupStack, endpoint: Endpoint, *, workers: int, page_bytes: int,
                base_dir: str | None = None, syslog_to: tuple[str, int] | None = None
                ) -> Server:
    """Start nginx behind ``endpoint`` serving one static page; wait until it answers.

    Without ``syslog_to`` it keeps no access log; with ``(address, port)`` it sends each
    request's access-log line there as a syslog datagram (``access_log syslog:server=``,
    nginx's RFC 3164 framing, the combined format)."""
    binary = tools.require("nginx")
    workdir = make_workdir(stack, base_dir)
    www = workdir / "www"
    www.mkdir()
    write_page(www / "index.html", page_bytes)
    for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (workdir / sub).mkdir()
    if syslog_to is None:
        access_log = "off"
    else:
        safety.check_load_target(syslog_to[0])  # the log, too, goes only to our own hosts
        access_log = f"syslog:server={syslog_to[0]}:{syslog_to[1]},tag=nginx combined"
    config_text = f"""# generated by uksim measure
daemon off;
master_process on;
user root;
worker_processes {workers};
pid {workdir}/nginx.pid;
error_log {workdir}/error.log warn;
events {{
    worker_connections 4096;
}}
http {{
    access_log {access_log};
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 65s;
    keepalive_requests 1000000;
    client_body_temp_path {workdir}/client_body;
    proxy_temp_path {workdir}/proxy;
    fastcgi_temp_path {workdir}/fastcgi;
    uwsgi_temp_path {workdir}/uwsgi;
    scgi_temp_path {workdir}/scgi;
    types {{
        text/html html;
    }}
    default_type application/octet-stream;
    server {{
        listen {endpoint.listen_address}:{endpoint.listen_port};
        root {www};
        index index.html;
    }}
}}
"""
    conf = workdir / "nginx.conf"
    conf.write_text(config_text)
    argv = [*endpoint.exec_prefix(), binary, "-p", f"{workdir}/", "-e",
            f"{workdir}/error.log", "-c", str(conf)]
    proc = _launch(stack, "nginx", argv, workdir)
    probe = f"GET /index.html HTTP/1.0\r\nHost: {endpoint.target_address}\r\n\r\n".encode()
    _wait_ready("nginx", proc, endpoint, probe, b"HTTP/1.1 200",
                [workdir / "error.log", workdir / "nginx.stdout"])
    return Server("nginx", proc, workdir, argv, config_text, None,
                  {"worker_processes": workers, "page_bytes": page_bytes,
                   "keepalive_requests": 1000000, "access_log": access_log})

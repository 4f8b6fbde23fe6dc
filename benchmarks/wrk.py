"""Running ``wrk --latency`` and reading its report.

Where the exact status matters (a 304 expected), a small Lua script tallies the HTTP status of
every answer, because wrk itself only counts answers that are not 2xx or 3xx. Elsewhere wrk's own
count is used: a Lua ``response()`` hook makes wrk copy every body into Lua, which for a 170 KB
page costs the load generator more CPU than the server spends (on a 2-core machine it would
measure wrk, not the blog). A ``request()`` hook is cheap (it returns one of two prepared
requests): every run has one, to close each connection after ``reconnect_every`` requests.
Figures from before it (results of 2026-11-27) kept their connections for the whole run.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

# The status tally (where a 304 is expected): every answer's status, summed over wrk's threads.
_TALLY_LUA = r"""
local threads = {}
function setup(thread) table.insert(threads, thread) end
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
function done(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do
    local s = t:get("statuses")
    for code, n in pairs(s) do total[code] = (total[code] or 0) + n end
  end
  local parts = {}
  for code, n in pairs(total) do table.insert(parts, code .. "=" .. n) end
  io.write("STATUSES " .. table.concat(parts, " ") .. "\n")
end
"""

# Readers who come and go: every connection asks to be closed after EVERY requests, and wrk
# opens a new one. Without it, wrk's connections stay for the whole run with whichever gunicorn
# worker accepted them at its start; if one worker was busy just then (a flood, a render), the
# other may win all of them and serve every reader alone, and the figure is decided by that draw.
_RECONNECT_LUA = r"""
local plain, closing
local n = 0
local function build_requests()
  local h = {}
  for k, v in pairs(wrk.headers) do h[k] = v end
  plain = wrk.format(nil, nil, h)
  h["Connection"] = "close"
  closing = wrk.format(nil, nil, h)
end
function request()
  n = n + 1
  if n % EVERY == 0 then return closing end
  return plain
end
"""


def lua_script(*, tally: bool, reconnect_every: int | None) -> str | None:
    """The wrk script for a run (wrk takes one), or None when plain wrk will do."""
    parts, init = [], []
    if tally:
        parts.append(_TALLY_LUA)
        init.append("statuses = {}")
    if reconnect_every:
        parts.append(_RECONNECT_LUA.replace("EVERY", str(int(reconnect_every))))
        init.append("build_requests()")
    if not parts:
        return None
    return "\n".join(parts) + "function init(args)\n  " + "\n  ".join(init) + "\nend\n"


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


@dataclass
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    statuses: dict[int, int] = field(default_factory=dict)
    socket_errors: str = ""
    non_2xx_3xx: int = 0
    raw: str = ""

    def count_other_than(self, status: int) -> int:
        if not self.statuses:  # not tallied: wrk's own count of answers that were not 2xx or 3xx
            return self.non_2xx_3xx
        return sum(n for code, n in self.statuses.items() if code != status)


def ensure_wrk() -> str:
    """The wrk binary; installed with apt when we are root, else explained (and we exit)."""
    path = shutil.which("wrk")
    if path:
        return path
    import os

    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("wrk is missing: installing it with apt-get (Debian package 'wrk') ...", flush=True)
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=False)
        path = shutil.which("wrk")
        if path:
            return path
    sys.exit("wrk is needed for the benchmarks: run `apt-get install wrk` (as root), then `make bench` again.")


def wrk_version(binary: str) -> str:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True)
    first = (out.stdout or out.stderr).strip().splitlines()
    return first[0].split(" Copyright")[0] if first else "unknown"


def _ms(value: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", value)
    if not match:
        raise ValueError(f"unreadable wrk time {value!r}")
    return float(match.group(1)) * _UNITS_MS[match.group(2)]


def parse(output: str) -> WrkResult:
    def find(pattern: str, default: str | None = None) -> str:
        match = re.search(pattern, output, re.MULTILINE)
        if match:
            return match.group(1)
        if default is None:
            raise ValueError(f"wrk output lacks {pattern!r}:\n{output}")
        return default

    statuses = {}
    line = find(r"^STATUSES ?(.*)$", "")
    for part in line.split():
        code, n = part.split("=")
        statuses[int(code)] = int(n)
    return WrkResult(
        rps=float(find(r"^Requests/sec:\s+([\d.]+)")),
        p50_ms=_ms(find(r"^\s+50%\s+(\S+)")),
        p99_ms=_ms(find(r"^\s+99%\s+(\S+)")),
        requests=int(find(r"^\s+(\d+) requests in")),
        statuses=statuses,
        socket_errors=find(r"^\s+Socket errors: (.*)$", ""),
        non_2xx_3xx=int(find(r"^\s+Non-2xx or 3xx responses: (\d+)", "0")),
        raw=output,
    )


class Wrk:
    def __init__(self, binary: str, workdir: Path, *, threads: int = 2, connections: int = 32,
                 duration: float = 10.0, warmup: float = 2.0, reconnect_every: int | None = 100):
        self.binary = binary
        self.threads = threads
        self.connections = connections
        self.duration = duration
        self.warmup = warmup
        self.reconnect_every = reconnect_every  # None: connections kept for the whole run
        self.workdir = workdir

    def run(self, url: str, headers: dict[str, str] | None = None, *, duration: float | None = None,
            connections: int | None = None, tally: bool = False) -> WrkResult:
        """One wrk run. ``tally``: count every answer's status (costs wrk CPU: see the module docstring)."""
        connections = connections or self.connections
        cmd = [self.binary, f"-t{min(self.threads, connections)}", f"-c{connections}",
               f"-d{max(1, round(duration or self.duration))}s", "--latency", "--timeout", "10s"]
        script = lua_script(tally=tally, reconnect_every=self.reconnect_every)
        if script:
            path = self.workdir / f"wrk-{'tally-' if tally else ''}{self.reconnect_every or 'keep'}.lua"
            path.write_text(script)
            cmd += ["-s", str(path)]
        for name, value in (headers or {}).items():
            cmd += ["-H", f"{name}: {value}"]
        cmd.append(url)
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(f"wrk failed ({out.returncode}): {out.stderr.strip() or out.stdout.strip()}")
        return parse(out.stdout)

    def measure(self, url: str, headers: dict[str, str] | None = None, *, connections: int | None = None,
                tally: bool = False) -> WrkResult:
        """Warm the URL up (templates compiled, connections pooled, caches filled), then measure.

        ``tally``: count every answer's status (needed where a 304 is expected; costs wrk CPU).
        """
        if self.warmup:
            self.run(url, headers, duration=self.warmup, connections=min(8, connections or self.connections))
        return self.run(url, headers, connections=connections, tally=tally)

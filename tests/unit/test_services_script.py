"""tests/services.sh on a machine with nothing installed, with Redis stopped, and with both.

The script runs for real under bash; only the system commands it calls (apt-get, redis-server,
redis-cli) are stand-ins on PATH that record their arguments, so no package is installed and
no server started by this test.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.support import ROOT

SCRIPT = ROOT / "tests" / "services.sh"
BASH = shutil.which("bash") or "/bin/bash"

# Each stand-in appends its name and arguments to calls.log. redis-cli answers only once the
# redis-server stand-in has "started" (left a marker); apt-get "installs" the commands it names.
REDIS_SERVER = '#!{bash}\necho "redis-server $*" >> "{tmp}/calls.log"\n: > "{tmp}/up"\n'
REDIS_CLI = '#!{bash}\n[ -e "{tmp}/up" ]\n'
H2LOAD = "#!{bash}\nexit 0\n"
APT_GET = """#!{bash}
echo "apt-get $*" >> "{tmp}/calls.log"
for word in "$@"; do
  case "$word" in
    redis-server) cp "{tmp}/stock/redis-server" "{tmp}/stock/redis-cli" "{tmp}/bin/" ;;
    nghttp2-client) cp "{tmp}/stock/h2load" "{tmp}/bin/" ;;
  esac
done
"""


def _machine(tmp: Path, *, installed: bool, running: bool) -> Path:
    stock, bin_dir = tmp / "stock", tmp / "bin"
    stock.mkdir()
    bin_dir.mkdir()
    scripts = {
        "redis-server": REDIS_SERVER,
        "redis-cli": REDIS_CLI,
        "h2load": H2LOAD,
        "apt-get": APT_GET,
    }
    for name, text in scripts.items():
        path = stock / name
        path.write_text(text.format(bash=BASH, tmp=tmp))
        path.chmod(0o755)
    shutil.copy(stock / "apt-get", bin_dir / "apt-get")
    if installed:
        for name in ("redis-server", "redis-cli", "h2load"):
            shutil.copy(stock / name, bin_dir / name)
    for tool in ("seq", "sleep", "cp"):  # coreutils the script and stand-ins use
        real = shutil.which(tool)
        assert real is not None
        (bin_dir / tool).symlink_to(real)
    if running:
        (tmp / "up").touch()
    return bin_dir


def _run(tmp: Path, bin_dir: Path) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    done = subprocess.run(
        [BASH, str(SCRIPT)],
        env={"PATH": str(bin_dir), "TMPDIR": str(tmp)},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    log = tmp / "calls.log"
    return done, log.read_text().splitlines() if log.exists() else []


def test_a_bare_machine_gets_the_packages_and_a_running_redis(tmp_path: Path) -> None:
    done, calls = _run(tmp_path, _machine(tmp_path, installed=False, running=False))
    assert done.returncode == 0, done.stderr
    assert calls[0] == "apt-get update -qq"  # a fresh machine's package lists are empty
    install = calls[1].split()
    assert install[:2] == ["apt-get", "install"]
    assert {"redis-server", "nghttp2-client"} <= set(install)
    (start,) = calls[2:]
    assert "--bind 127.0.0.1 --port 6379" in start
    assert "--daemonize yes" in start


def test_installed_but_stopped_redis_is_started_without_apt(tmp_path: Path) -> None:
    done, calls = _run(tmp_path, _machine(tmp_path, installed=True, running=False))
    assert done.returncode == 0, done.stderr
    assert [call.split()[0] for call in calls] == ["redis-server"]


def test_a_ready_machine_is_left_alone(tmp_path: Path) -> None:
    done, calls = _run(tmp_path, _machine(tmp_path, installed=True, running=True))
    assert done.returncode == 0, done.stderr
    assert calls == []


def test_make_test_and_ci_run_it() -> None:
    plan = subprocess.run(
        ["make", "-n", "test"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert "bash tests/services.sh" in plan
    assert "make test" in (ROOT / ".ci" / "run").read_text()

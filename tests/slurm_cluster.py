"""A one-node SLURM cluster on this machine, for the tests of docs/hpc.md (issue 21).

Debian packages a real scheduler; this module installs it when it is missing, configures it in
a private state folder (its own ``slurm.conf``, MUNGE key and socket, ports, spool and logs:
nothing under ``/etc`` is used or changed) and starts MUNGE, ``slurmctld`` and ``slurmd``:

* one node named after this machine (``hostname -s``), ``CPUs=2`` and the machine's memory as
  ``RealMemory``, in one default partition;
* ``ProctrackType=proctrack/linuxproc`` and ``TaskPlugin=task/none`` (no cgroups, so it runs
  in a container), ``SelectType=select/cons_tres`` with ``CR_Core_Memory`` (jobs reserve cores
  and memory, as on a real cluster), ``SlurmUser=root``;
* finished jobs stay visible to ``scontrol show job`` for an hour (``MinJobAge``), with their
  state and exit code, and are listed in ``jobcomp.log`` (``jobcomp/filetxt``).

Commands and Python API::

    python tests/slurm_cluster.py install          # apt-get the packages when missing
    python tests/slurm_cluster.py start DIR        # prints: export SLURM_CONF=DIR/slurm.conf
    python tests/slurm_cluster.py stop DIR         # cancels every job, stops the daemons

    cluster = Cluster.start(Path("DIR")); ...; cluster.stop()

Every client (``sbatch``, ``squeue``...) finds the cluster through ``SLURM_CONF``. Starting
needs root (the daemons run as root, MUNGE as its own user): :class:`ClusterUnavailable` says
why when the cluster cannot start. The daemons are stopped by the process ids they wrote to
the state folder, never by name.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

#: Debian packages of the scheduler, its clients and its authentication.
PACKAGES = ("slurmctld", "slurmd", "slurm-client", "munge")
#: Programs the cluster needs (from :data:`PACKAGES`).
PROGRAMS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "scancel", "sinfo")
#: Cores of the node: what the CI machines have.
CPUS = 2
#: Seconds to wait for the node to be idle after the daemons start.
START_TIMEOUT_S = 60


class ClusterUnavailable(RuntimeError):
    """The cluster cannot be installed or started here; the message says why."""


def missing_programs() -> list[str]:
    return [name for name in PROGRAMS if shutil.which(name) is None]


def install(*, quiet: bool = True) -> None:
    """Install :data:`PACKAGES` with apt-get when a program is missing (needs root).

    Raises
    ------
    ClusterUnavailable
        Not root, no apt-get, or the installation failed.
    """
    if not missing_programs():
        return
    if os.geteuid() != 0:
        raise ClusterUnavailable(f"SLURM is not installed ({', '.join(missing_programs())} "
                                 "missing) and installing it needs root")
    if shutil.which("apt-get") is None:
        raise ClusterUnavailable("SLURM is not installed and there is no apt-get to install it "
                                 f"(packages: {' '.join(PACKAGES)})")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    out = subprocess.DEVNULL if quiet else None
    command = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *PACKAGES]
    # the package lists may be missing (a fresh container): update once and try again
    if subprocess.run(command, env=env, stdout=out, stderr=out).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, stdout=out, stderr=out)
        if subprocess.run(command, env=env, stdout=out, stderr=out).returncode != 0:
            raise ClusterUnavailable(f"apt-get could not install {' '.join(PACKAGES)}")
    if missing_programs():
        raise ClusterUnavailable(f"after installing, still missing: {missing_programs()}")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _memory_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    raise ClusterUnavailable("cannot read the machine's memory from /proc/meminfo")


def slurm_conf(state: Path, *, node: str, memory_mb: int, ctld_port: int, d_port: int) -> str:
    """The ``slurm.conf`` of a one-node cluster whose files all live in ``state``."""
    return f"""\
# One-node test cluster (tests/slurm_cluster.py); every file in {state}
ClusterName=megfmri-test
SlurmctldHost={node}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={state}/munge/munge.socket
StateSaveLocation={state}/ctld
SlurmdSpoolDir={state}/spool
SlurmctldPidFile={state}/slurmctld.pid
SlurmdPidFile={state}/slurmd.pid
SlurmctldLogFile={state}/slurmctld.log
SlurmdLogFile={state}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
SlurmdParameters=config_overrides
MpiDefault=none
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc={state}/jobcomp.log
MinJobAge=3600
KillWait=30
InactiveLimit=0
NodeName={node} NodeAddr=127.0.0.1 CPUs={CPUS} RealMemory={memory_mb} State=UNKNOWN
PartitionName=test Nodes={node} Default=YES MaxTime=INFINITE State=UP
"""


@dataclass
class Cluster:
    """A running one-node cluster; ``env`` is what its clients need (``SLURM_CONF``)."""

    state: Path
    node: str

    @property
    def conf(self) -> Path:
        return self.state / "slurm.conf"

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def run(self, *args: str, check: bool = True) -> str:
        """Run a SLURM client command against this cluster; its standard output."""
        proc = subprocess.run(list(args), env=self.env, capture_output=True, text=True,
                              timeout=60)
        if check and proc.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
        return proc.stdout

    # -- start -------------------------------------------------------------------------------
    @classmethod
    def start(cls, state: Path, *, install_missing: bool = True) -> Cluster:
        """Install when missing, configure in ``state`` and start; wait until the node is idle.

        Raises
        ------
        ClusterUnavailable
            Not Linux, not root, SLURM cannot be installed, or a daemon did not start (the
            message ends with the tail of its log).
        """
        if not Path("/proc/self/stat").exists():
            raise ClusterUnavailable("needs Linux (/proc)")
        if os.geteuid() != 0:
            raise ClusterUnavailable("the SLURM daemons of the test cluster run as root; "
                                     "run the tests as root (as CI does) to use it")
        if install_missing:
            install()
        elif missing_programs():
            raise ClusterUnavailable(f"SLURM is not installed: {missing_programs()} missing")
        try:
            import pwd

            munge = pwd.getpwnam("munge")
        except KeyError:
            raise ClusterUnavailable("no 'munge' user (the munge package creates it)") from None
        state = Path(state).resolve()
        if (state / "slurmctld.pid").exists():
            raise ClusterUnavailable(f"{state} holds a cluster already: stop it first")
        node = socket.gethostname().split(".")[0]
        # MUNGE runs as its own user: every folder above its files must let it through
        state.mkdir(parents=True, exist_ok=True)
        state.chmod(0o755)
        for parent in state.parents:
            if not os.access(parent, os.X_OK) or (parent.stat().st_mode & 0o001) == 0:
                raise ClusterUnavailable(f"MUNGE (user munge) cannot reach {state}: {parent} is "
                                         "not searchable by other users; use a folder under /tmp")
        for sub in ("ctld", "spool"):
            (state / sub).mkdir(exist_ok=True)
        munge_dir = state / "munge"
        munge_dir.mkdir(exist_ok=True)
        munge_dir.chmod(0o711)  # clients reach the socket; the key itself is 0400
        key = munge_dir / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        for path in (munge_dir, key):
            os.chown(path, munge.pw_uid, munge.pw_gid)
        conf = slurm_conf(state, node=node, memory_mb=_memory_mb(), ctld_port=_free_port(),
                          d_port=_free_port())
        (state / "slurm.conf").write_text(conf)
        cluster = cls(state=state, node=node)
        try:
            cluster._daemon("munged", ["runuser", "-u", "munge", "--", "munged",
                                       f"--key-file={key}",
                                       f"--socket={munge_dir / 'munge.socket'}",
                                       f"--pid-file={munge_dir / 'munged.pid'}",
                                       f"--log-file={munge_dir / 'munged.log'}",
                                       f"--seed-file={munge_dir / 'munged.seed'}"],
                            munge_dir / "munged.pid", munge_dir / "munged.log")
            cluster._daemon("slurmctld", ["slurmctld", "-f", str(cluster.conf)],
                            state / "slurmctld.pid", state / "slurmctld.log")
            cluster._daemon("slurmd", ["slurmd", "-f", str(cluster.conf)],
                            state / "slurmd.pid", state / "slurmd.log")
            cluster._wait_idle()
        except BaseException:
            cluster.stop()
            raise
        return cluster

    def _daemon(self, name: str, command: list[str], pid_file: Path, log: Path) -> None:
        """Start a daemon (it forks into the background) and wait for its process id file."""
        proc = subprocess.run(command, env=self.env, capture_output=True, text=True, timeout=60)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if proc.returncode == 0 and pid_file.is_file() and pid_file.read_text().strip():
                if _alive(int(pid_file.read_text().split()[0])):
                    return
            if proc.returncode != 0:
                break
            time.sleep(0.1)
        raise ClusterUnavailable(f"{name} did not start (exit {proc.returncode}): "
                                 f"{proc.stderr.strip()} {_tail(log)}")

    def _wait_idle(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        state = ""
        while time.monotonic() < deadline:
            try:
                state = self.run("sinfo", "-h", "-N", "-o", "%t").strip()
            except (RuntimeError, subprocess.TimeoutExpired):
                state = ""
            if state == "idle":
                return
            time.sleep(0.5)
        raise ClusterUnavailable(f"the node is not idle after {START_TIMEOUT_S} s (state "
                                 f"{state or 'unknown'}): {_tail(self.state / 'slurmd.log')}")

    # -- stop --------------------------------------------------------------------------------
    def stop(self, timeout_s: float = 60) -> None:
        """Cancel every job, wait for them to end, then stop slurmd, slurmctld and MUNGE."""
        if _pid(self.state / "slurmctld.pid") is not None:
            try:
                jobs = self.run("squeue", "-h", "-o", "%A", check=False).split()
                if jobs:
                    self.run("scancel", *jobs, check=False)
                deadline = time.monotonic() + timeout_s
                while jobs and time.monotonic() < deadline:
                    time.sleep(0.5)
                    jobs = self.run("squeue", "-h", "-o", "%A", check=False).split()
            except subprocess.TimeoutExpired:
                pass
        for pid_file in (self.state / "slurmd.pid", self.state / "slurmctld.pid",
                         self.state / "munge" / "munged.pid"):
            pid = _pid(pid_file)
            if pid is None:
                continue
            _end(pid, timeout_s=10)
            pid_file.unlink(missing_ok=True)


def _pid(path: Path) -> int | None:
    try:
        pid = int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if _alive(pid) else None


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _end(pid: int, timeout_s: float) -> None:
    """SIGTERM ``pid``, then SIGKILL when it is still there after ``timeout_s``."""
    for signum in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not _alive(pid):
                return
            time.sleep(0.1)


def _tail(path: Path, lines: int = 8) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return f"(no log at {path})"
    return f"-- {path.name}: " + " | ".join(text)


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="slurm_cluster.py", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("install", help="install the Debian packages when a program is missing")
    for name in ("start", "stop"):
        sub.add_parser(name, help=f"{name} the cluster whose state is in DIR").add_argument(
            "state", type=Path, metavar="DIR")
    args = parser.parse_args(argv)
    try:
        if args.command == "install":
            install(quiet=False)
        elif args.command == "start":
            cluster = Cluster.start(args.state)
            print(f"export SLURM_CONF={cluster.conf}")
        else:
            state = args.state.resolve()
            Cluster(state=state, node=socket.gethostname().split(".")[0]).stop()
    except ClusterUnavailable as err:
        print(f"slurm_cluster.py: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

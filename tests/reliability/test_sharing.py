"""Sharing results: ``dvc push`` to a local-directory remote and to an SSH remote, ``dvc pull``
into a fresh ``git clone``: identical files, and nothing to reproduce.

The SSH test starts its own ``sshd`` on 127.0.0.1 (a free port, a generated host key, a
throw-away client key, a config file in a temp dir) and is skipped, with the reason, where
``sshd`` or the ``dvc_ssh`` plugin is missing (CI: ``apt-get install -y openssh-server``).
"""

from __future__ import annotations

import getpass
import importlib.util
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from .conftest import OUTPUT_FOLDERS, TARGET, TinyRun
from .tiny import dvc, file_hashes, git, modes, run

pytestmark = pytest.mark.slow


def clone_and_pull(run_: TinyRun, dst: Path, remote: str, url: str, **config: str) -> Path:
    """Push the run's outputs to ``url``, clone its repository to ``dst`` and pull there."""
    env, repo = run_.env, run_.repo
    dvc("remote", "add", "--local", "-f", remote, url, cwd=repo, env=env)
    for key, value in config.items():
        dvc("remote", "modify", "--local", remote, key, value, cwd=repo, env=env)
    pushed = dvc("push", "-r", remote, "--with-deps", TARGET, cwd=repo, env=env)
    assert "pushed" in pushed.stdout.lower(), pushed.stdout
    git("clone", "-q", str(repo), str(dst), cwd=dst.parent, env=env)
    dvc("remote", "add", "--local", "-f", remote, url, cwd=dst, env=env)
    for key, value in config.items():
        dvc("remote", "modify", "--local", remote, key, value, cwd=dst, env=env)
    dvc("pull", "-r", remote, "--with-deps", TARGET, cwd=dst, env=env)
    return dst


def assert_same_results_and_nothing_to_run(
    run_: TinyRun, clone: Path, try_repro: bool = True
) -> None:
    original = file_hashes(run_.repo, OUTPUT_FOLDERS)
    pulled = file_hashes(clone, OUTPUT_FOLDERS)
    assert original, "the tiny run wrote nothing"
    assert "data/shards/dfew/index.json" in original and "models/dfew/fold1/model.pt" in original
    assert "metrics/dfew/fold1.json" in original
    assert pulled == original
    for folder in OUTPUT_FOLDERS:  # pulled under umask 022: readable by colleagues too
        assert modes(clone / folder) == {}, folder
    status = dvc("status", "--with-deps", TARGET, cwd=clone, env=run_.env).stdout
    assert "up to date" in status, status
    if not try_repro:
        return
    repro = dvc("repro", TARGET, cwd=clone, env=run_.env).stdout
    assert "Running stage" not in repro, repro
    assert file_hashes(clone, OUTPUT_FOLDERS) == original


def test_push_pull_local_remote(tiny_run, tmp_path):
    clone = clone_and_pull(tiny_run, tmp_path / "clone", "localdir", str(tmp_path / "remote"))
    assert any((tmp_path / "remote").rglob("*")), "nothing was pushed"
    assert_same_results_and_nothing_to_run(tiny_run, clone)


# ------------------------------------------------------------------------------------------
# SSH remote
# ------------------------------------------------------------------------------------------


def _sshd() -> str | None:
    found = shutil.which("sshd") or ("/usr/sbin/sshd" if Path("/usr/sbin/sshd").is_file() else None)
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"sshd exited with {proc.returncode}: {proc.stderr.read()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                if sock.recv(4).startswith(b"SSH-"):
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"sshd did not answer on port {port} within {timeout} s")


@pytest.fixture
def sshd(tmp_path, session_dvc_env):
    """An sshd on 127.0.0.1 accepting one throw-away key for the current user."""
    binary = _sshd()
    if binary is None:
        pytest.skip("sshd not installed (apt-get install -y openssh-server); SSH remote untested")
    if importlib.util.find_spec("dvc_ssh") is None:
        pytest.skip("dvc-ssh not installed (pip install -e '.[dev]'); SSH remote untested")
    if os.geteuid() == 0:  # root's sshd needs its privilege separation directory
        try:
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        except OSError as exc:
            pytest.skip(f"sshd as root needs /run/sshd, which cannot be created ({exc})")
    conf = tmp_path / "sshd"
    conf.mkdir()
    host_key, client_key = conf / "host_ed25519", conf / "client_ed25519"
    for key in (host_key, client_key):
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)],
            check=True,
            capture_output=True,
        )
    (conf / "authorized_keys").write_text(client_key.with_suffix(".pub").read_text())
    port = _free_port()
    config = conf / "sshd_config"
    config.write_text(
        "\n".join(
            [
                f"Port {port}",
                "ListenAddress 127.0.0.1",
                f"HostKey {host_key}",
                f"AuthorizedKeysFile {conf / 'authorized_keys'}",
                f"PidFile {conf / 'sshd.pid'}",
                "StrictModes no",
                "UsePAM no",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PubkeyAuthentication yes",
                "PermitRootLogin prohibit-password",
                "Subsystem sftp internal-sftp",
                "",
            ]
        )
    )
    proc = subprocess.Popen(
        [binary, "-D", "-e", "-f", str(config)], stderr=subprocess.PIPE, text=True
    )
    try:
        _wait_for_port(port, proc)
        # the client trusts exactly this host key (strict checking, throw-away HOME)
        ssh_dir = Path(session_dvc_env["HOME"]) / ".ssh"
        ssh_dir.mkdir(mode=0o700, exist_ok=True)
        host_pub = host_key.with_suffix(".pub").read_text().split()
        with open(ssh_dir / "known_hosts", "a") as fh:
            fh.write(f"[127.0.0.1]:{port} {host_pub[0]} {host_pub[1]}\n")
        yield {
            "port": port,
            "keyfile": str(client_key),
            "user": getpass.getuser(),
            "known_hosts": str(ssh_dir / "known_hosts"),
        }
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_push_pull_ssh_remote(tiny_run, sshd, tmp_path):
    store = tmp_path / "ssh-store"
    store.mkdir()
    url = f"ssh://127.0.0.1:{sshd['port']}{store}"
    run(  # the server works for plain ssh, with strict host key checking
        ["ssh", "-i", sshd["keyfile"], "-p", str(sshd["port"]), "-o", "BatchMode=yes",
         "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={sshd['known_hosts']}",
         f"{sshd['user']}@127.0.0.1", "true"],
        cwd=tmp_path, env=tiny_run.env,
    )  # fmt: skip
    clone = clone_and_pull(
        tiny_run, tmp_path / "clone", "sshstore", url, keyfile=sshd["keyfile"], user=sshd["user"]
    )
    assert any(store.rglob("*")), "nothing arrived over SSH"
    assert_same_results_and_nothing_to_run(tiny_run, clone, try_repro=False)  # local test does

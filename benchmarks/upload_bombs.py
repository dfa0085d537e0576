"""What hostile uploads cost the process that plays: peak memory of `antiphon run`.

Starts `antiphon run` with its web UI in a temporary workspace (everything on
127.0.0.1) and, through the web UI's own routes as a browser would:

1. uploads a dataset that is 1 MB as sent and 1 GB unpacked (a deflate bomb: valid,
   all zeros), then opens the Datasets page and the dataset's plot data;
2. uploads a `.keras` model of the same kind (a 1 GB weights file inside).

For each step it reports the HTTP status and the peak resident memory of the
`antiphon run` process during that step (Linux's VmHWM, reset before each step by
writing 5 to /proc/PID/clear_refs), and whether the upload was kept. The bombs come
from tests/bombs.py.

    python benchmarks/upload_bombs.py [--source OTHER/src] [--markdown out.md]

``--source`` runs another checkout's code (e.g. the version before the checks) with
this one's bombs, for a before/after comparison.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

import bombs  # noqa: E402


def free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def peak_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


def reset_peak(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, help="another checkout's src/ to run")
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args()
    env = dict(os.environ)
    if args.source:
        env["PYTHONPATH"] = str(args.source.resolve())
    with tempfile.TemporaryDirectory(prefix="antiphon-bombs-") as tmp:
        root = Path(tmp) / "ws"
        subprocess.run([sys.executable, "-m", "antiphon", "init", str(root)], env=env, check=True)
        config = root / "config.toml"
        text = config.read_text()
        for old, port in (
            ("server_port = 6000", free_port(socket.SOCK_DGRAM)),
            ("client_port = 6001", free_port(socket.SOCK_DGRAM)),
            ("monitor_port = 4001", free_port(socket.SOCK_DGRAM)),
            ("command_port = 4002", free_port(socket.SOCK_DGRAM)),
        ):
            text = text.replace(old, f"{old.split(' = ')[0]} = {port}")
        config.write_text(text)
        web = free_port(socket.SOCK_STREAM)
        process = subprocess.Popen(
            [sys.executable, "-m", "antiphon", "run", "--web-port", str(web), "--quiet"],
            cwd=root,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        rows = []
        try:
            client = httpx.Client(base_url=f"http://127.0.0.1:{web}", timeout=300)
            deadline = time.monotonic() + 60
            while True:
                try:
                    if client.get("/healthz").json()["playing"]:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit("antiphon run did not start")
                time.sleep(0.2)
            client.get("/")
            token = {"x-csrf-token": client.cookies["antiphon_csrf"]}
            html = {"accept": "text/html"}
            rows.append(("started, idle", "", peak_mb(process.pid), ""))
            dataset = bombs.dataset_bomb(Path(tmp) / "bomb.npz")
            keras = bombs.keras_bomb(Path(tmp) / "bomb.keras")

            def step(title: str, method: str, url: str, **kwargs) -> None:
                reset_peak(process.pid)
                started = time.monotonic()
                headers = token if method == "POST" else token | html  # errors as text
                response = client.request(method, url, headers=headers, **kwargs)
                took = time.monotonic() - started
                rows.append(
                    (title, str(response.status_code), peak_mb(process.pid), f"{took:.2f} s")
                )
                print(f"{title}: {response.status_code} {response.text[:300]}", flush=True)

            with dataset.open("rb") as f:
                step(
                    f"upload {dataset.stat().st_size >> 10} KB dataset bomb",
                    "POST",
                    "/datasets/upload",
                    files={"file": ("bomb.npz", f)},
                )
            kept = (root / "datasets" / "bomb.npz").exists()
            rows.append(("dataset bomb kept?", "", 0.0, "yes" if kept else "no"))
            step("Datasets page", "GET", "/datasets")
            if kept:
                step("its plot data", "GET", "/datasets/bomb.npz/data")
            with keras.open("rb") as f:
                step(
                    f"upload {keras.stat().st_size >> 10} KB .keras bomb",
                    "POST",
                    "/models/upload",
                    files={"file": ("bomb.keras", f)},
                )
            kept = (root / "models" / "bomb.keras").exists()
            rows.append((".keras bomb kept?", "", 0.0, "yes" if kept else "no"))
            step("Models page", "GET", "/models")
            alive = process.poll() is None and client.get("/healthz").status_code == 200
            rows.append(("engine still up?", "", 0.0, "yes" if alive else "no"))
        finally:
            process.terminate()
            process.wait(30)
    lines = [
        "| step | HTTP | peak RSS of `antiphon run` (MB) | |",
        "|---|---|---|---|",
        *(
            f"| {t} | {c} | {m:.0f} | {x} |" if m else f"| {t} | {c} | | {x} |"
            for t, c, m, x in rows
        ),
    ]
    print("\n".join(lines))
    if args.markdown:
        args.markdown.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

"""Two checkouts of our Rasa server side by side: CPU per reply, rounds alternating A and B.

On a shared machine the CPU a reply costs drifts by a quarter within minutes, so two servers run
one after the other cannot be compared. Here both checkouts' Rasa and action servers are up at
once (each with its own embedded Redis, one SQLite file of demo consumers between them), and
rounds alternate A, B, A, B: each round drives one server with 10 concurrent senders (new unknown
numbers each round; ``--registered`` of them write from registered mobiles, whose sessions grow
from round to round on both sides alike). CPU is utime+stime of each server's process tree
(/proc). Each checkout runs its own code and its own cached model (`bijli train` in it first).

    python bench/rasa_ab.py A_CHECKOUT B_CHECKOUT [--registered 7] [--messages 100] [--rounds 8]
    git worktree add /tmp/before <commit>; python bench/rasa_ab.py /tmp/before .
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import rasa_bench as rb  # noqa: E402

from bot import migrations  # noqa: E402
from bot.dev.embedded_redis import EmbeddedRedis, free_port  # noqa: E402
from bot.settings import load  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkouts", nargs=2, type=Path)
    parser.add_argument("--registered", type=int, default=7)
    parser.add_argument("--messages", type=int, default=100, help="per round")
    parser.add_argument("--rounds", type=int, default=8, help="per checkout")
    parser.add_argument("--sanic-workers", type=int, default=1)
    args = parser.parse_args()
    roots = [path.resolve() for path in args.checkouts]
    rb.CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        database_url = f"sqlite:///{tmp}/bench.sqlite3"
        migrations.upgrade(database_url)
        from bot.dev.launcher import load_demo_data

        load_demo_data(load({"DATABASE_URL": database_url}), 2000)
        mobiles = rb.registered_mobiles(database_url, min(args.registered, 10))
        secret, api_token = secrets.token_hex(32), secrets.token_hex(16)
        servers = []
        for index, root in enumerate(roots):
            redis_url = stack.enter_context(EmbeddedRedis()).url
            env = {
                "DATABASE_URL": database_url,
                "REDIS_URL": redis_url,
                "TF_CPP_MIN_LOG_LEVEL": "2",
                "BIJLI_GATEWAY_SECRET": secret,
                "ACTIONS_TOKEN": secrets.token_hex(16),
                "PYTHONPATH": str(root),  # its own code, whichever checkout the venv points at
            }
            cli = [sys.executable, "-m", "bot.cli"]
            port = free_port()
            actions = stack.enter_context(
                rb.serve(
                    f"ab-actions-{index}",
                    [*cli, "actions-server", "--port", str(port)],
                    env,
                    f"http://127.0.0.1:{port}/health",
                    cwd=root,
                )
            )
            rasa_port = free_port()
            base = f"http://127.0.0.1:{rasa_port}"
            rasa = stack.enter_context(
                rb.serve(
                    f"ab-rasa-{index}",
                    [*cli, "rasa-server"],
                    rb.our_server_env(env, rasa_port, api_token, args.sanic_workers, port),
                    base + "/",
                    cwd=root,
                )
            )
            target = rb.Target(base, secret=secret, api_token=api_token)
            rb.drive(target, "webhook", rb.OUR_MESSAGES, 20, 2, f"warm{index}")
            servers.append((target, rasa.pid, actions.pid))
        totals: list[list[float]] = [[], []]
        for rnd in range(args.rounds):
            for index, (target, rasa_pid, actions_pid) in enumerate(servers):
                before = rb.cpu_seconds(rasa_pid), rb.cpu_seconds(actions_pid)
                senders = rb.gateway_senders(mobiles, 10, 2 * rnd + index)
                reply = rb.drive(
                    target, "webhook", rb.OUR_MESSAGES, args.messages, 10, f"r{rnd}", senders
                )
                rasa_ms = (rb.cpu_seconds(rasa_pid) - before[0]) * 1000 / args.messages
                actions_ms = (rb.cpu_seconds(actions_pid) - before[1]) * 1000 / args.messages
                totals[index].append(rasa_ms + actions_ms)
                print(
                    f"round {rnd + 1} {'AB'[index]}: {reply['rps']:5.1f} replies/s, CPU a reply: "
                    f"rasa {rasa_ms:5.1f} ms + actions {actions_ms:4.1f} ms",
                    flush=True,
                )
    for index, root in enumerate(roots):
        print(f"{'AB'[index]} {root}: median {statistics.median(totals[index]):.1f} ms a reply")
    ratios = [b / a for a, b in zip(*totals, strict=True)]
    print("B / A per round: " + ", ".join(f"{r:.2f}" for r in ratios), end="")
    print(f"; median {statistics.median(ratios):.2f}")


if __name__ == "__main__":
    main()

"""Who ran a management command, for the audit trail.

A command acts as the system, but a person started it: the trail names the command and that
person — ``SESSHU_OPERATOR`` when set (docs/operations.md asks operators to set it to their
name in the control plane when they run a command by hand), else the OS user and host (in a
Kubernetes pod: the container's user and the pod's name)."""

from __future__ import annotations

import getpass
import os
import socket

from audit.chain import Actor

_ACTOR_ID_MAX = 64  # audit.chain.ChainedEvent.actor_id


def command_actor(command: str) -> Actor:
    who = os.environ.get("SESSHU_OPERATOR", "").strip()
    if not who:
        try:
            user = getpass.getuser()
        except (KeyError, OSError):  # no name for the uid (some containers)
            user = str(os.getuid())
        who = f"{user}@{socket.gethostname()}"
    return Actor.system(f"manage.py {command} ({who})"[:_ACTOR_ID_MAX])

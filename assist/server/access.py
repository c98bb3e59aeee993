"""Who may see what: bearer tokens for the pages and event streams.

An agent token sees its own agent id only; a supervisor token sees the floor and every
agent. With no tokens configured, a server bound to loopback is open (development mode);
bound to any other address, it refuses until tokens are configured.
"""

from __future__ import annotations

import hmac
import ipaddress
from dataclasses import dataclass

from assist.config import AccessConfig


@dataclass(frozen=True)
class Grant:
    supervisor: bool
    agent_id: str | None  # for an agent token: the one agent it may see

    def may_see_agent(self, agent_id: str) -> bool:
        return self.supervisor or self.agent_id == agent_id


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Access:
    def __init__(self, config: AccessConfig, host: str) -> None:
        self._cfg = config
        self.dev_mode = not (config.agent_tokens or config.supervisor_tokens) and is_loopback(host)

    def grant(self, token: str | None) -> Grant | None:
        if self.dev_mode:
            return Grant(supervisor=True, agent_id=None)
        if not token:
            return None
        for known in self._cfg.supervisor_tokens:
            if hmac.compare_digest(known, token):
                return Grant(supervisor=True, agent_id=None)
        for known, agent_id in self._cfg.agent_tokens.items():
            if hmac.compare_digest(known, token):
                return Grant(supervisor=False, agent_id=agent_id)
        return None

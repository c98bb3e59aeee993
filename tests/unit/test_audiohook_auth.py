from __future__ import annotations

import pytest

from assist.protocols.audiohook_auth import authority


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("assist.example.com", "assist.example.com"),
        ("assist.example.com:443", "assist.example.com"),
        ("127.0.0.1:80", "127.0.0.1"),
        ("127.0.0.1:8765", "127.0.0.1:8765"),
    ],
)
def test_authority_drops_default_ports(host, expected):
    assert authority(host) == expected

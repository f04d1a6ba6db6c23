"""Which Host headers the app answers to (`web.allowed_hosts`), as pure functions.

A forged Host (DNS rebinding, a proxy that passes anything) must neither reach the app nor make
the same-origin check trust an attacker's origin, so both ask `host_allowed`.
"""

from __future__ import annotations

from urllib.parse import urlparse

from ebbtide.config.sections import WebConfig

LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})
_WILDCARD_BINDS = frozenset({"", "0.0.0.0", "::"})


def allowed_hosts(web: WebConfig) -> frozenset[str]:
    """The configured names, or loopback + web.host + public_url's host when none are configured."""
    if web.allowed_hosts:
        return frozenset(h.strip().lower().strip("[]") for h in web.allowed_hosts if h.strip())
    names = set(LOOPBACK)
    if web.host not in _WILDCARD_BINDS:
        names.add(web.host.lower().strip("[]"))
    if web.public_url:
        public = urlparse(web.public_url).hostname
        if public:
            names.add(public.lower())
    return frozenset(names)


def hostname_of(host_header: str) -> str:
    """`example.com:8000` → `example.com`; `[::1]:8000` → `::1`."""
    h = host_header.strip().lower()
    if h.startswith("["):
        return h[1:].split("]", 1)[0]
    return h.rsplit(":", 1)[0] if h.count(":") == 1 else h


def host_allowed(host_header: str | None, allowed: frozenset[str]) -> bool:
    if "*" in allowed:
        return True
    if not host_header:
        return False
    name = hostname_of(host_header)
    if name in allowed:
        return True
    # ".example.com" allows every subdomain of example.com
    return any(a.startswith(".") and (name.endswith(a) or name == a[1:]) for a in allowed)

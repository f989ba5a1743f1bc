"""Business or consumer, from an email address's domain and the shipped free-mail list
(``schemas/free_email_domains.txt``)."""

from __future__ import annotations

from functools import cache

from pipeline.resources import resource_dir

__all__ = ["email_domain", "email_kind", "free_email_domains"]


@cache
def free_email_domains() -> frozenset[str]:
    """The free-mail providers' domains, read once from the shipped list."""
    text = (resource_dir("schemas") / "free_email_domains.txt").read_text(encoding="utf-8")
    lines = (line.split("#", 1)[0].strip().lower() for line in text.splitlines())
    return frozenset(line for line in lines if line)


def email_domain(email: object) -> str | None:
    """The lower-cased domain of ``email``, or None if it is not an address."""
    if not isinstance(email, str):
        return None
    local, at, domain = email.strip().rpartition("@")
    domain = domain.lower().rstrip(".")
    if not at or not local or "." not in domain or " " in domain:
        return None
    return domain


def email_kind(email: object) -> str | None:
    """``consumer`` for a free-mail address (or a subdomain of one), ``business`` for any
    other address, None when ``email`` is not an address."""
    domain = email_domain(email)
    if domain is None:
        return None
    free = free_email_domains()
    parts = domain.split(".")
    if any(".".join(parts[i:]) in free for i in range(len(parts) - 1)):
        return "consumer"
    return "business"

"""Who runs meshsim: principals bound to operating-system users, the way PostgreSQL's peer
authentication maps the OS user of a local connection to a database role.

A principal is a name meshsim acts for: a consumer (``--as``, ``Mesh.session``), a product's
owner or a domain's owner team (``--by``), a governance admin (a consumer). A mesh may bind a
principal to OS users: ``os_users`` on a consumer in ``mesh.yaml``, ``owner_os_users`` in a
``domain.yaml`` (its owner team) or a product file (its owner). For a bound principal,
:func:`authenticate` compares the effective OS user of this process with the bound ones and
refuses any other. A principal bound twice to different OS users (an error to
``meshsim validate``) is refused to everyone: a file must not widen another's binding. An
unbound principal is asserted: whoever runs meshsim may name it, and
``meshsim validate`` says so.

The check stops one local user from acting as another through meshsim; it is no defence against
someone who can write the spec, the workspace or the catalog files themselves.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from meshsim.errors import IdentityError, SpecError
from meshsim.spec.loader import DomainSpec, MeshSpec


@dataclass(frozen=True)
class Actor:
    """A principal and the OS user that acted as it: what a catalog decision records."""

    principal: str
    os_user: str


@dataclass(frozen=True)
class Binding:
    principal: str
    os_users: tuple[str, ...]
    key: str  # os_users or owner_os_users
    file: Path

    @property
    def where(self) -> str:
        return f"{self.key} in {self.file}"


def current_os_user() -> str:
    """The OS user running meshsim, as :data:`os_user_source` reads it."""
    return os_user_source()


def effective_os_user() -> str:
    """The effective OS user of this process, from the password database: never from the
    environment, since ``$USER`` and ``$LOGNAME`` are whatever the caller sets."""
    try:
        import pwd
    except ImportError:  # pragma: no cover - no password database (Windows): the login name
        import getpass

        return getpass.getuser()
    uid = os.geteuid()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:  # a uid without a passwd entry (some containers): bound by its number
        return str(uid)


#: Where :func:`current_os_user` comes from; tests replace it (monkeypatch) to be someone else.
os_user_source: Callable[[], str] = effective_os_user


def declarations(spec: MeshSpec) -> list[Binding]:
    """Every binding the spec declares, in file order (a principal may be declared twice)."""
    mesh_file = spec.root / "mesh.yaml"
    found = [
        Binding(c.name, tuple(c.os_users), "os_users", mesh_file)
        for c in spec.mesh.consumers
        if c.os_users
    ]
    for domain in _binding_domains(spec):
        team, owners = domain.domain.owner_team, domain.domain.owner_os_users
        if team and owners:
            found.append(
                Binding(team, tuple(owners), "owner_os_users", domain.path / "domain.yaml")
            )
        for product in domain.products:
            owner, owners = product.product.owner, product.product.owner_os_users
            if owner and owners:
                found.append(Binding(owner, tuple(owners), "owner_os_users", product.path))
    return found


def _bindings(spec: MeshSpec) -> dict[str, list[Binding]]:
    """:func:`declarations` by principal, made once per spec (every command authenticates)."""
    found: dict[str, list[Binding]] | None = spec.memo.get("bindings")
    if found is None:
        found = {}
        for binding in declarations(spec):
            found.setdefault(binding.principal, []).append(binding)
        spec.memo["bindings"] = found
    return found


def _binding_domains(spec: MeshSpec) -> Sequence[DomainSpec]:
    """The domains that may bind owners: all, or of a lazily loaded spec only those whose
    files may set ``owner_os_users`` (so that a query's identity check parses no others)."""
    from meshsim.spec.lazy import LazyDomains

    if isinstance(spec.domains, LazyDomains):
        return spec.domains.mentioning(BINDING_KEY)
    return spec.domains


#: the key of a domain's or a product's file that binds its owner to OS users
BINDING_KEY = "owner_os_users"


def remember_binding_scan(mesh_dir: Path, scan_index: Path) -> None:
    """Note in the workspace's scan index what each spec file says of owner bindings, after
    a build has read them all: the first identity check after it reads no file again."""
    from meshsim.spec.lazy import LazyDomains

    try:
        LazyDomains(mesh_dir, {}, scan_index=scan_index).mentioning(BINDING_KEY)
    except SpecError:  # a file changed since the build read it: the next check reads it
        return


def principals(spec: MeshSpec) -> list[str]:
    """Everyone meshsim can act for: consumers, then owner teams and product owners."""
    names = list(spec.consumer_names())
    for domain in spec.domains:
        names.append(domain.domain.owner_team or "")
        names.extend(p.product.owner or "" for p in domain.products)
    return list(dict.fromkeys(n for n in names if n))


def authenticate(spec: MeshSpec, principal: str) -> Actor:
    """The OS user running meshsim, acting as ``principal``; an IdentityError if the mesh binds
    ``principal`` to other OS users. The one identity check of ``--as``, ``--by`` and the
    Python API."""
    os_user = current_os_user()
    bound = _bindings(spec).get(principal, [])
    other = next((b for b in bound if set(b.os_users) != set(bound[0].os_users)), None)
    if other is not None:  # what 'meshsim validate' calls an error: refused, never widened
        first = bound[0]
        raise IdentityError(
            f"principal '{principal}' is bound to different OS users: "
            f"{', '.join(first.os_users)} ({first.where}) and {', '.join(other.os_users)} "
            f"({other.where}), so meshsim cannot tell who may act as it",
            principal=principal,
            os_user=os_user,
            allowed=(),
            hint="bind it once, then run 'meshsim validate'",
        )
    allowed = tuple(dict.fromkeys(u for b in bound for u in b.os_users))
    if bound and os_user not in allowed:
        noun = "OS user" if len(allowed) == 1 else "OS users"
        raise IdentityError(
            f"principal '{principal}' is bound to {noun} {', '.join(allowed)}, but meshsim "
            f"runs as OS user '{os_user}'",
            principal=principal,
            os_user=os_user,
            allowed=allowed,
            hint=f"run it as {' or '.join(allowed)} (e.g. 'sudo -u {allowed[0]} meshsim ...'), "
            f"or bind '{os_user}' too ({'; '.join(b.where for b in bound)})",
        )
    return Actor(principal, os_user)

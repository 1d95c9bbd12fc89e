"""The domains of a mesh folder, loaded one domain at a time as lookups need them.

A query over one table needs its domain's files, the consumers and the policies (mesh.yaml),
not the other 9,999 tables' files. :func:`meshsim.spec.loader.load_mesh` with ``lazy=True``
parses mesh.yaml and gives the spec a :class:`LazyDomains`: looking a table or product up by
name (``spec.table("sales.orders")``) parses that domain's folder only; iterating the domains
(``spec.tables()``, the listings, the access matrix) parses every folder, with every problem
of every file at once, as an eager load does. A domain whose files do not validate is an
error when it is first needed; what is never needed is never read. ``meshsim validate`` and
``meshsim build`` load eagerly, so a mesh they accept has no such error anywhere.

A derived view (the registered tables' inferred columns, the system domain) is a
:class:`LazyDomains` over another: it shares its parsing and transforms each domain as it is
loaded.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, overload

from meshsim.errors import SpecError
from meshsim.spec.loader import (
    DomainSpec,
    content_digest,
    domain_folder_names,
    domain_folders,
    load_domain,
    product_files,
)
from meshsim.spec.models import NAME_PATTERN
from meshsim.spec.scanindex import ScanIndex
from meshsim.spec.watch import SpecFiles, Status
from meshsim.spec.yamlfile import read_spec_bytes

Transform = Callable[[DomainSpec], DomainSpec]
_HINT = "fix the files above, then run 'meshsim validate'"


class ParsedDomains:
    """Domains parsed by earlier loads of one mesh folder, each with the status its files had
    when read (:meth:`SpecFiles.recorded`): a later load whose files have the same status
    reuses the parse instead of reading them again. This lets a query's spec and a listing's
    spec (:class:`meshsim.mesh.Mesh` keeps both) each watch only what it read."""

    def __init__(self) -> None:
        self._parsed: dict[Path, tuple[object, DomainSpec | None, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def load(self, folder: Path, recorded: object, lines: dict[str, Any]) -> DomainSpec | None:
        """``folder``'s domain (``load_domain``'s answer, its lines added to ``lines``): the
        earlier parse when ``recorded`` is the status its files had then, else parsed now."""
        with self._lock:
            found = self._parsed.get(folder)
        if found is None or found[0] != recorded:
            problems: list[str] = []
            own: dict[str, Any] = {}
            domain = load_domain(folder, problems, own)
            if problems:
                raise SpecError(problems, hint=_HINT)
            found = (recorded, domain, own)
            with self._lock:
                self._parsed[folder] = found
        lines.update(found[2])
        return found[1]


class LazyDomains(Sequence[DomainSpec]):
    def __init__(
        self,
        root: Path,
        lines: dict[str, Any],
        *,
        base: LazyDomains | None = None,
        transform: Transform | None = None,
        extra: tuple[DomainSpec, ...] = (),
        watch: SpecFiles | None = None,
        parsed: ParsedDomains | None = None,
        scan_index: Path | None = None,
    ) -> None:
        self.root = root
        #: earlier parses of this folder's domains, shared with other loads of it
        self.parsed: ParsedDomains = base.parsed if base is not None else parsed or ParsedDomains()
        #: where :meth:`mentioning` keeps what each file said (:mod:`meshsim.spec.scanindex`)
        self.scan_index: Path | None = base.scan_index if base is not None else scan_index
        self.lines = lines
        #: the files read so far, for change detection (a derived view shares its base's)
        self.watch: SpecFiles = base.watch if base is not None else watch or SpecFiles()
        self._base = base
        self._transform = transform
        self._extra = {d.name: d for d in extra}
        self._named: dict[str, DomainSpec | None] = {}
        self._all: tuple[DomainSpec, ...] | None = None
        self._mentioning: dict[str, list[DomainSpec]] = {}
        self._lock = threading.RLock()

    def derive(
        self, *, transform: Transform | None = None, extra: tuple[DomainSpec, ...] = ()
    ) -> LazyDomains:
        """These domains with ``transform`` applied to each and ``extra`` appended."""
        return LazyDomains(self.root, self.lines, base=self, transform=transform, extra=extra)

    @property
    def loaded(self) -> bool:
        return self._all is not None

    def named(self, name: str) -> DomainSpec | None:
        """The domain ``name``, parsing its folder (only) the first time."""
        if name in self._extra:
            return self._extra[name]
        with self._lock:
            if self._all is not None:
                return next((d for d in self._all if d.name == name), None)
            if name not in self._named:
                self._named[name] = self._load(name)
            return self._named[name]

    def _load(self, name: str) -> DomainSpec | None:
        if self._base is not None:
            domain = self._base.named(name)
            return self._transform(domain) if domain and self._transform else domain
        folder = self.root / name
        if not re.fullmatch(NAME_PATTERN, name):
            return None  # not a domain name (a lookup of a SQL name, which can be anything)
        self.watch.watch_domain(folder)  # absent too: creating it is a change
        if not folder.is_dir():
            return None
        return self.parsed.load(folder, self.watch.recorded(folder), self.lines)

    def _everything(self) -> tuple[DomainSpec, ...]:
        with self._lock:
            if self._all is None:
                self._all = self._load_all() + tuple(self._extra.values())
            return self._all

    def _load_all(self) -> tuple[DomainSpec, ...]:
        if self._base is not None:
            found = []
            for domain in self._base._everything():
                if domain.name not in self._named:
                    self._named[domain.name] = (
                        self._transform(domain) if self._transform else domain
                    )
                mine = self._named[domain.name]
                if mine is not None:
                    found.append(mine)
            return tuple(found)
        problems: list[str] = []
        domains = []
        self.watch.watch(self.root)  # the listing: a domain folder added or removed
        for folder in domain_folders(self.root):
            self.watch.watch_domain(folder)
            loaded = self._named.get(folder.name)
            if loaded is None:
                try:
                    loaded = self.parsed.load(folder, self.watch.recorded(folder), self.lines)
                except SpecError as exc:
                    problems.extend(exc.problems)  # every problem of every file at once
                    continue
            if loaded is not None:
                domains.append(loaded)
        if problems:
            raise SpecError(problems, hint=_HINT)
        return tuple(domains)

    def fingerprint(self) -> str:
        """The content digest an eager load computes: every spec file's name and bytes."""
        if self._base is not None:
            return self._base.fingerprint()
        # read as the loader reads them: a FIFO or a device is refused, never waited on
        contents = {self.root / "mesh.yaml": read_spec_bytes(self.root / "mesh.yaml")}
        for folder in domain_folders(self.root):
            domain_file = folder / "domain.yaml"
            if not domain_file.exists():
                continue
            problems: list[str] = []
            products = product_files(folder / "products", problems)
            if problems:
                raise SpecError(problems, hint=_HINT)
            for file in [domain_file, *products]:
                contents[file] = read_spec_bytes(file)
        return content_digest(self.root, contents)

    def mentioning(self, key: str) -> list[DomainSpec]:
        """The domains whose spec files may set ``key``: those whose bytes hold it, or any
        escape (a double-quoted key can spell it with escapes), parsed; the others are not.
        The identity check needs only the domains that bind owners to OS users. With a
        :attr:`scan_index`, a file unchanged since a process read it is not read again."""
        if self.loaded:
            return list(self)
        if key in self._mentioning:  # the files do not change under a spec (Mesh reloads)
            return self._mentioning[key]
        found = list(self._extra.values())
        index = ScanIndex(self.scan_index, self.root, key) if self.scan_index else None
        self.watch.watch(self.root, scan=True)
        marker = key.encode()
        root = str(self.root)
        for name in domain_folder_names(self.root):
            listed, names, paths, statuses = self.watch.scan_domain(root + os.sep + name, index)
            marks, unchanged = (
                index.known(name, listed, names, statuses)
                if index is not None
                else ([None] * len(paths), True)
            )
            # every file asked, not only up to the first that mentions it: the index keeps
            # what each file said
            mentions = [
                self._mentions(path, seen, marker) if mark is None else mark
                for path, seen, mark in zip(paths, statuses, marks, strict=True)
            ]
            if index is not None and not unchanged:
                index.remember(name, listed, names, statuses, mentions)
            if any(mentions):
                if statuses[0] is not None and not re.fullmatch(NAME_PATTERN, name):
                    # a domain.yaml the loader refuses (its name cannot be the folder's):
                    # skipping the folder would drop its bindings
                    raise SpecError(
                        [
                            f"{root}{os.sep}{name}: '{name}' is not a domain name, and its files "
                            f"may bind owners to OS users ({key})"
                        ],
                        hint="rename or remove the folder, then run 'meshsim validate'",
                    )
                domain = self.named(name)
                if domain is not None:
                    found.append(domain)
        if index is not None:
            index.save()
        self._mentioning[key] = found
        return found

    def _mentions(self, file: str, status: Status, marker: bytes) -> bool:
        if status is None:
            return False  # not there (a folder that is no domain): its creation is a change
        try:
            data = read_spec_bytes(Path(file))
        except SpecError:
            # a FIFO, a device, a file too large or unreadable: read as the loader reads it
            # (bounded, never waited on), and its domain parsed so that the loader refuses it
            return True
        return marker in data or b"\\" in data

    # --- Sequence: everything ------------------------------------------------------------

    @overload
    def __getitem__(self, index: int) -> DomainSpec: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[DomainSpec]: ...

    def __getitem__(self, index: int | slice) -> DomainSpec | Sequence[DomainSpec]:
        return self._everything()[index]

    def __len__(self) -> int:
        return len(self._everything())

    def __iter__(self) -> Iterator[DomainSpec]:
        return iter(self._everything())

    def __repr__(self) -> str:
        state = "loaded" if self.loaded else f"{len(self._named)} domain(s) loaded"
        return f"LazyDomains({str(self.root)!r}, {state})"

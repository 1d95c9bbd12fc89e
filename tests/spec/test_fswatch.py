"""Issue 17: the spec files' change check through an inotify watch (meshsim.spec.fswatch).

Request and approve at 10,000 products stat'ed the 8,000 files the identity check's scan read,
every time. With a watch of the mesh folder a check with no change stats nothing; every kind of
change is still seen by the next check, and where the watch cannot be trusted every check
stats, as before. Counts of stats, never a wall-clock time."""

from __future__ import annotations

import errno
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from meshsim.bench.meshgen import generate_mesh
from meshsim.spec.fswatch import FolderWatch, file_system_type
from meshsim.spec.loader import load_mesh
from meshsim.spec.watch import SpecFiles

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="inotify is Linux's")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A generated mesh of three domains of five products (no build: the spec files only),
    and a file beside it outside the mesh."""
    generated = generate_mesh(tmp_path / "mesh", 30, 4)
    (tmp_path / "outside.yaml").write_text("name: outside\n")
    return generated.root.resolve()


@pytest.fixture
def watch(root: Path) -> Any:
    watch = FolderWatch(root)
    yield watch
    watch.close()


def _record(root: Path, watch: FolderWatch | None) -> SpecFiles:
    """What a long-lived Mesh records: a query's domain, then the identity check's scan of
    every spec file."""
    files = SpecFiles(watch=watch)
    spec = load_mesh(root, lazy=True, watch=files)
    assert spec.table("d0000.p0_t0") is not None
    spec.domains.mentioning("owner_os_users")  # type: ignore[attr-defined]
    return files


def _stats(monkeypatch: pytest.MonkeyPatch, root: Path) -> list[str]:
    """The paths under the mesh folder stat'ed from now on (os.stat and os.lstat)."""
    stated: list[str] = []
    for name in ("stat", "lstat"):
        original = getattr(os, name)

        def counted(path: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            if str(path).startswith(str(root)):
                stated.append(str(path))
            return _original(path, *args, **kwargs)

        monkeypatch.setattr(os, name, counted)
    return stated


def _write(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


def _rename_over(path: Path) -> None:
    """What an editor's save does: a new file written beside it, renamed over it."""
    new = path.with_name(path.name + ".new")
    _write(new, path.read_text() + "\n")
    os.replace(new, path)


def _replace_mesh_folder(root: Path) -> None:
    moved = root.with_name("moved")
    os.rename(root, moved)
    shutil.copytree(moved, root, symlinks=True)


_CHANGES: dict[str, Callable[[Path], object]] = {
    "product edited in place": lambda r: _write(
        r / "d0002" / "products" / "p1.yaml",
        (r / "d0002" / "products" / "p1.yaml").read_text() + "owner_os_users: [bob]\n",
    ),
    "product renamed over": lambda r: _rename_over(r / "d0002" / "products" / "p1.yaml"),
    "product chmod": lambda r: os.chmod(r / "d0002" / "products" / "p1.yaml", 0o600),
    "product touched": lambda r: os.utime(r / "d0002" / "products" / "p1.yaml", ns=(1, 1)),
    "product truncated": lambda r: os.truncate(r / "d0002" / "products" / "p1.yaml", 3),
    "product removed": lambda r: os.unlink(r / "d0002" / "products" / "p1.yaml"),
    "new product file": lambda r: _write(r / "d0002" / "products" / "p9.yaml", "name: p9\n"),
    "domain.yaml edited": lambda r: _write(
        r / "d0001" / "domain.yaml", (r / "d0001" / "domain.yaml").read_text() + "\n"
    ),
    "new domain folder": lambda r: (r / "d0009").mkdir(),
    "domain folder renamed away": lambda r: os.rename(r / "d0002", r / "_d0002"),
    "domain folder replaced": lambda r: (
        os.rename(r / "d0002", r.parent / "d0002"),
        shutil.copytree(r.parent / "d0002", r / "d0002"),
    ),
    "products folder chmod": lambda r: os.chmod(r / "d0001" / "products", 0o700),
    "mesh.yaml edited": lambda r: _write(r / "mesh.yaml", (r / "mesh.yaml").read_text() + "\n"),
    "mesh folder replaced": _replace_mesh_folder,
    "hard link made elsewhere": lambda r: os.link(
        r / "d0002" / "products" / "p1.yaml", r.parent / "elsewhere.yaml"
    ),
    "product replaced by a link": lambda r: (
        os.unlink(r / "d0002" / "products" / "p1.yaml"),
        os.symlink(r.parent / "outside.yaml", r / "d0002" / "products" / "p1.yaml"),
    ),
}


@pytest.mark.parametrize("change", sorted(_CHANGES))
def test_a_check_stats_nothing_until_a_change_and_then_sees_it(
    root: Path, watch: FolderWatch, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    files = _record(root, watch)
    assert files.changed(scans=True) is False  # armed: watched, then compared once
    assert files.watched
    stated = _stats(monkeypatch, root)
    assert files.changed(scans=True) is False
    assert files.changed() is False
    assert stated == []
    _CHANGES[change](root)
    assert files.changed(scans=True) is True
    assert _record_of_stats(files) is True  # what the stats say: the ground truth


def test_a_write_through_a_link_in_another_folder_is_seen(
    root: Path, watch: FolderWatch, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder's watch sees the writes made through its own entries only: each spec file is
    watched itself too."""
    product = root / "d0002" / "products" / "p1.yaml"
    link = root.parent / "elsewhere.yaml"
    os.link(product, link)
    files = _record(root, watch)
    assert files.changed(scans=True) is False
    stated = _stats(monkeypatch, root)
    assert files.changed(scans=True) is False
    assert stated == []
    with open(link, "a") as handle:
        handle.write("owner_os_users: [bob]\n")
    assert files.changed(scans=True) is True


def _record_of_stats(files: SpecFiles) -> bool:
    unwatched = SpecFiles()
    unwatched._seen, unwatched._scanned = files._seen, files._scanned
    return unwatched.changed(scans=True)


def test_a_change_only_the_scan_read_is_seen_by_the_scans_check_after_a_query_check(
    root: Path, watch: FolderWatch
) -> None:
    """A query's check (no scans) drains the event of a file only the identity scan read:
    the next identity check must still see it."""
    files = _record(root, watch)
    assert files.changed(scans=True) is False
    _write(root / "d0002" / "domain.yaml", (root / "d0002" / "domain.yaml").read_text() + "\n")
    assert files.changed() is False  # the query's files did not change
    assert files.changed(scans=True) is True


def test_a_file_recorded_after_the_first_check_is_armed_and_its_change_seen(
    root: Path, watch: FolderWatch, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lookup of another domain after the first check records its files; the next check
    compares those (only), and a change of them after that is seen."""
    files = SpecFiles(watch=watch)
    spec = load_mesh(root, lazy=True, watch=files)
    assert spec.table("d0000.p0_t0") is not None
    assert files.changed() is False
    assert spec.table("d0001.p0_t0") is not None
    stated = _stats(monkeypatch, root)
    assert files.changed() is False
    assert sorted(stated) == sorted(str(p) for p, _ in files.recorded(root / "d0001"))
    stated.clear()
    assert files.changed() is False
    assert stated == []
    os.utime(root / "d0001" / "products" / "p0.yaml", ns=(1, 1))
    assert files.changed() is True


@pytest.mark.parametrize(
    ("replaced", "old_product"),
    [("d0002", "products/p1.yaml"), ("d0002/products", "p1.yaml"), ("d0002/products/p1.yaml", "")],
)
def test_a_reload_after_a_path_was_replaced_watches_the_new_one(
    root: Path, watch: FolderWatch, monkeypatch: pytest.MonkeyPatch, replaced: str, old_product: str
) -> None:
    """The records of a reload (a new SpecFiles on the Mesh's one watch) are armed on the
    paths as they are now: a change to the new file is seen, one to the old file moved away
    is none."""
    files = _record(root, watch)
    assert files.changed(scans=True) is False
    old = root.parent / "old"
    os.rename(root / replaced, old)
    if old.is_dir():
        shutil.copytree(old, root / replaced)
    else:
        shutil.copy(old, root / replaced)
    assert files.changed(scans=True) is True
    reloaded = _record(root, watch)
    assert reloaded.changed(scans=True) is False
    stated = _stats(monkeypatch, root)
    assert reloaded.changed(scans=True) is False
    assert stated == []
    moved = old / old_product if old_product else old
    moved.write_text(moved.read_text() + "owner_os_users: [bob]\n")
    assert reloaded.changed(scans=True) is False
    product = root / "d0002" / "products" / "p1.yaml"
    product.write_text(product.read_text() + "owner_os_users: [bob]\n")
    assert reloaded.changed(scans=True) is True


def test_events_of_files_nobody_recorded_stat_nothing(
    root: Path, watch: FolderWatch, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writes to a file that is no spec file, in a watched folder and above the mesh folder."""
    notes = root / "d0000" / "products" / "notes.txt"
    notes.write_text("")
    files = _record(root, watch)
    assert files.changed(scans=True) is False
    stated = _stats(monkeypatch, root)
    for _ in range(3):
        notes.write_text("more")
        (root.parent / "beside.txt").write_text("x")
        assert files.changed(scans=True) is False
    assert stated == []


# --- where the watch cannot be trusted: every check stats, as without one ------------------


def _stats_every_check(files: SpecFiles, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert files.changed(scans=True) is False
    stated = _stats(monkeypatch, root)
    assert files.changed(scans=True) is False
    assert len(stated) == len(files._seen) + len(files._scanned)
    assert not files.watched


def test_a_mesh_on_a_file_system_not_known_to_be_local_is_stat_ed(
    root: Path, watch: FolderWatch, monkeypatch: pytest.MonkeyPatch
) -> None:
    import meshsim.spec.fswatch as fswatch

    monkeypatch.setattr(fswatch, "file_system_type", lambda mountinfo, path: "nfs")
    _stats_every_check(_record(root, watch), root, monkeypatch)


def test_a_watch_the_kernel_refuses_leaves_the_stats(
    root: Path, watch: FolderWatch, monkeypatch: pytest.MonkeyPatch
) -> None:
    """max_user_watches reached (ENOSPC) while arming: stat, and see the changes so."""
    import ctypes

    assert watch.start() is not None
    real = watch._add_watch
    added = [0]

    def refusing(fd: int, path: bytes, mask: int) -> int:
        added[0] += 1
        if added[0] > 3:  # the folders above the mesh folder, then no more
            ctypes.set_errno(errno.ENOSPC)
            return -1
        return int(real(fd, path, mask))

    monkeypatch.setattr(watch, "_add_watch", refusing)
    files = _record(root, watch)
    _stats_every_check(files, root, monkeypatch)
    assert not watch.active  # closed: the watches it held are the user's other programs' too
    os.utime(root / "d0002" / "products" / "p1.yaml", ns=(1, 1))
    assert files.changed(scans=True) is True


def test_a_linked_spec_file_is_stat_ed_and_a_change_of_its_target_seen(
    root: Path, watch: FolderWatch, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A link's target changes without an event in the watched folder."""
    product = root / "d0002" / "products" / "p1.yaml"
    target = root.parent / "p1-target.yaml"
    shutil.move(product, target)
    product.symlink_to(target)
    files = _record(root, watch)
    _stats_every_check(files, root, monkeypatch)
    _write(target, target.read_text() + "owner_os_users: [bob]\n")
    assert files.changed(scans=True) is True


def test_lost_events_send_the_next_check_to_the_stats_and_the_one_after_to_none(
    root: Path, watch: FolderWatch, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More events than the kernel queues (IN_Q_OVERFLOW), none of them a change."""
    limit = int(Path("/proc/sys/fs/inotify/max_queued_events").read_text())
    if limit > 200_000:
        pytest.skip(f"the kernel queues {limit} events: too many to overflow in a test")
    notes = [root / "d0000" / "products" / f"notes{i}.txt" for i in (1, 2)]
    for note in notes:
        note.write_text("")
    files = _record(root, watch)
    assert files.changed(scans=True) is False
    epoch = watch.epoch
    for index in range(limit + 10):  # two files by turns: the kernel merges no two events
        os.utime(notes[index % 2], ns=(index, index))
    stated = _stats(monkeypatch, root)
    assert files.changed(scans=True) is False
    assert watch.epoch > epoch  # started over on a new inotify instance
    assert len(stated) >= len(files._seen) + len(files._scanned)
    stated.clear()
    assert files.changed(scans=True) is False
    assert stated == []
    os.utime(root / "d0002" / "products" / "p1.yaml", ns=(1, 1))
    assert files.changed(scans=True) is True


def test_a_change_of_the_mount_table_sends_the_next_check_to_the_stats(
    root: Path, watch: FolderWatch, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Something mounted over a spec folder raises no inotify event; /proc/self/mountinfo
    polls as changed (faked here: tests mount nothing)."""
    import select

    files = _record(root, watch)
    assert files.changed(scans=True) is False
    real = watch._poll

    class MountChanged:
        def poll(self, timeout: int) -> list[tuple[int, int]]:
            monkeypatch.setattr(watch, "_poll", real)  # once
            return [(0, select.POLLPRI)]

    monkeypatch.setattr(watch, "_poll", MountChanged())
    stated = _stats(monkeypatch, root)
    assert files.changed(scans=True) is False
    assert len(stated) >= len(files._seen) + len(files._scanned)


def test_a_spec_file_on_another_device_is_stat_ed(
    root: Path, watch: FolderWatch, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A mount inside the mesh folder (faked: the mesh folder's device said to be another)."""
    files = _record(root, watch)
    assert watch.start() is not None
    assert watch.device is not None
    monkeypatch.setattr(watch, "device", watch.device + 1)
    _stats_every_check(files, root, monkeypatch)


def test_a_closed_watch_leaves_the_stats(root: Path, watch: FolderWatch) -> None:
    files = _record(root, watch)
    assert files.changed(scans=True) is False
    watch.close()
    assert files.changed(scans=True) is False
    assert not files.watched
    os.utime(root / "mesh.yaml", ns=(1, 1))
    assert files.changed(scans=True) is True


@pytest.mark.parametrize(
    ("mountinfo", "path", "kind"),
    [
        ("27 1 254:0 / / rw - ext4 /dev/vda rw\n", "/tmp/mesh", "ext4"),
        (
            "27 1 254:0 / / rw - ext4 /dev/vda rw\n"
            "40 27 0:50 / /mnt/share rw - nfs4 host:/export rw\n",
            "/mnt/share/mesh",
            "nfs4",
        ),
        (
            "27 1 254:0 / / rw - ext4 /dev/vda rw\n"
            "41 27 0:51 / /home/me/remote\\040box rw - fuse.sshfs me@box: rw\n",
            "/home/me/remote box/mesh",
            "fuse.sshfs",
        ),
        (
            "27 1 254:0 / / rw - ext4 /dev/vda rw\n"
            "40 27 0:50 / /mnt/share rw - nfs4 host:/export rw\n",
            "/mnt/shared/mesh",  # a longer name, not under the mount point
            "ext4",
        ),
        (  # mounted twice at one point: the last one is what a path reaches
            "27 1 254:0 / / rw - ext4 /dev/vda rw\n"
            "40 27 0:50 / /mnt rw - cifs //srv/x rw\n"
            "42 40 0:52 / /mnt rw - tmpfs tmpfs rw\n",
            "/mnt/mesh",
            "tmpfs",
        ),
    ],
)
def test_the_file_system_of_a_path_is_its_longest_mount_point(
    mountinfo: str, path: str, kind: str
) -> None:
    assert file_system_type(mountinfo, path) == kind


def test_a_forked_child_takes_no_event_from_its_parent(root: Path, watch: FolderWatch) -> None:
    """A child shares its parent's inotify instance: an event it read would be gone for the
    parent. The child starts its own."""
    files = _record(root, watch)
    assert files.changed(scans=True) is False
    os.utime(root / "d0002" / "products" / "p1.yaml", ns=(1, 1))
    child = os.fork()
    if child == 0:  # pragma: no cover - the child's answer is its exit status
        os._exit(0 if files.changed(scans=True) else 1)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert files.changed(scans=True) is True


def test_checks_from_many_threads_never_unsee_a_change(root: Path, watch: FolderWatch) -> None:
    """Once a change is there, every later check in every thread says so (the records never
    move), whichever thread drained its event."""
    import threading

    files = _record(root, watch)
    assert files.changed(scans=True) is False
    started = threading.Barrier(5)
    answers: list[list[bool]] = [[] for _ in range(4)]

    def check(mine: list[bool]) -> None:
        started.wait()
        for index in range(300):
            mine.append(files.changed(scans=index % 2 == 0) or files.changed(scans=True))

    threads = [threading.Thread(target=check, args=(mine,)) for mine in answers]
    for thread in threads:
        thread.start()
    started.wait()
    os.utime(root / "d0001" / "products" / "p2.yaml", ns=(1, 1))
    for thread in threads:
        thread.join()
    assert files.changed(scans=True) is True
    for mine in answers:
        first = mine.index(True) if True in mine else len(mine)
        assert all(mine[first:]), "a check said unchanged after one saw the change"

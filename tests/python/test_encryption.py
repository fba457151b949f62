"""Encryption at rest (RELIABILITY.md "T1 encryption").

An encrypted database is checked against what it promises:

* no marker string (metadata, documents, string ids, snapshot metadata) and no vector's
  bytes appear in plaintext in any file of its directory, its snapshots included —
  while open (the write-ahead log) and after close (tables, graph file, manifests);
* a missing or wrong master key, or a key for a plaintext database, raises
  ``EncryptionKeyError`` and leaves every file byte-for-byte and mtime untouched;
* everything reads back after a reopen (vectors bit-identical, metadata, documents,
  search equal to numpy's brute force), the graph loaded from its encrypted file;
* rotation rewraps the key files (database and snapshots): the old key stops working,
  the new one opens everything, no table file changes;
* the key providers (environment variable, key file, callable, bytes) and their errors;
* a process killed while writing loses no acknowledged batch.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import numpy as np
import nusterdb as nd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nusterdb import (
    DatabaseConfig,
    DatabaseLockedError,
    EncryptionConfig,
    EncryptionKeyError,
    EnvKey,
    IndexRebuiltWarning,
    InvalidArgumentError,
    KeyFile,
    NusterDB,
)
from nusterdb.encryption import KeyProvider

KEY = bytes(range(32))
OTHER = bytes(range(100, 132))
DIM = 24


def files_of(root: Path) -> Iterator[Path]:
    for p in sorted(root.rglob("*")):
        if p.is_file():
            yield p


def fingerprint(root: Path) -> Dict[str, Tuple[int, str]]:
    """Every file's mtime and SHA-256, by path."""
    return {
        str(p.relative_to(root)): (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
        for p in files_of(root)
    }


def plaintext_hits(root: Path, needles: List[bytes]) -> List[Tuple[str, bytes]]:
    hits = []
    for p in files_of(root):
        data = p.read_bytes()
        hits += [(str(p.relative_to(root)), n) for n in needles if n in data]
    return hits


def vector_needles(x: np.ndarray, rows: List[int]) -> List[bytes]:
    # 12 bytes: three components, unlikely anywhere else; also the big-endian form.
    out = [x[r, 3:6].astype("<f4").tobytes() for r in rows]
    return out + [x[r, 3:6].astype(">f4").tobytes() for r in rows]


def data(n: int, seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, DIM)).astype(np.float32)
    x[:, 0] += 37.0  # a common offset, as real embeddings have
    return x


@pytest.mark.parametrize("index_type", ["flat", "hnsw"])
@pytest.mark.parametrize("id_type", ["int", "str"])
def test_no_stored_value_appears_in_plaintext_in_any_file(
    tmp_path: Path, index_type: str, id_type: str
) -> None:
    path = tmp_path / "db"
    enc = EncryptionConfig(KEY)
    cfg = DatabaseConfig(DIM, index_type=index_type, id_type=id_type, encryption=enc)
    n = 1500
    x = data(n)
    ids = [f"IDMARKER-{i}" for i in range(n)] if id_type == "str" else list(range(n))
    markers = [b"META-MARKER-ZEBRA", b"DOC-MARKER-OKAPI", b"SNAP-MARKER-TAPIR"]
    if id_type == "str":
        markers.append(b"IDMARKER-")
    needles = markers + vector_needles(x, [0, 17, 999, n - 1])
    db = NusterDB(path, config=cfg)
    db.bulk_add(
        ids,
        x,
        metadata=[{"secret": f"META-MARKER-ZEBRA {i}", "n": i} for i in range(n)],
        documents=[f"DOC-MARKER-OKAPI number {i}" for i in range(n)],
    )
    db.update(ids[3], metadata={"secret": "META-MARKER-ZEBRA again"})
    # Open: the write-ahead log holds everything so far.
    assert plaintext_hits(path, needles) == []
    db.flush()
    db.snapshot_with_metadata("s1", {"note": "SNAP-MARKER-TAPIR"})
    db.compact()
    db.close()
    names = {p.name for p in path.iterdir()}
    assert "nusterdb.key" in names
    if index_type == "hnsw":
        assert "hnsw.graph" in names
    assert not any(n.startswith("segment-") for n in names), names
    assert plaintext_hits(path, needles) == []
    assert (path / "snapshots" / "s1" / "nusterdb.key").exists()

    # A plaintext twin holds the same needles (the check can fail).
    plain = tmp_path / "plain"
    with NusterDB(plain, config=DatabaseConfig(DIM, index_type=index_type, id_type=id_type)) as p:
        p.bulk_add(
            ids,
            x,
            metadata=[{"secret": f"META-MARKER-ZEBRA {i}"} for i in range(n)],
            documents=[f"DOC-MARKER-OKAPI number {i}" for i in range(n)],
        )
        p.snapshot_with_metadata("s1", {"note": "SNAP-MARKER-TAPIR"})
    found = {needle for _, needle in plaintext_hits(plain, needles)}
    assert set(markers) <= found


def build(path: Path, n: int = 2000, index_type: str = "hnsw") -> np.ndarray:
    x = data(n)
    cfg = DatabaseConfig(DIM, index_type=index_type, encryption=EncryptionConfig(KEY))
    with NusterDB(path, config=cfg) as db:
        db.bulk_add(
            list(range(n)),
            x,
            metadata=[{"i": i, "s": f"v{i}"} for i in range(n)],
            documents=[f"doc {i}" for i in range(n)],
        )
        db.snapshot_named("before")
    return x


def test_everything_reads_back_and_the_graph_loads_from_its_encrypted_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "db"
    x = build(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error", IndexRebuiltWarning)
        db = NusterDB(path, encryption=EncryptionConfig(KEY))
    with db:
        assert db.config.encrypted
        assert db.config.vectors == "memory"
        assert db.graph_load()["state"] == "loaded"
        assert len(db) == len(x)
        for i in (0, 5, 1999):
            v = db.get(i)
            assert v is not None
            assert np.array_equal(np.asarray(v.data, dtype=np.float32), x[i])
            m = db.get_metadata(i)
            assert m is not None
            assert m["i"] == i
            assert m["s"] == f"v{i}"
            assert db.get_document(i) == f"doc {i}"
        rng = np.random.default_rng(3)
        queries = x[rng.choice(len(x), 50, replace=False)] + 0.01
        found = 0
        for q in queries:
            truth = np.argsort(((x - q) ** 2).sum(axis=1))[:10]
            got = [h[0] for h in db.search(q, k=10, ef_search=200)]
            found += len(set(truth.tolist()) & set(got))
        assert found / (10 * len(queries)) >= 0.95
        assert [s["name"] for s in db.list_snapshots()] == ["before"]
        assert db.stats().vector_count == len(x)


def test_flat_search_equals_numpy_after_reopen(tmp_path: Path) -> None:
    path = tmp_path / "db"
    x = build(path, n=800, index_type="flat")
    with NusterDB(path, encryption=EncryptionConfig(KEY)) as db:
        q = x[10] + 0.5
        d = np.sqrt(((x - q) ** 2).sum(axis=1))
        order = np.argsort(d, kind="stable")[:10]
        hits = db.search(q, k=10)
        assert [h[0] for h in hits] == order.tolist()
        np.testing.assert_allclose([h[1] for h in hits], d[order], rtol=1e-5)


def test_a_damaged_graph_file_is_rebuilt_and_nothing_is_lost(tmp_path: Path) -> None:
    path = tmp_path / "db"
    x = build(path, n=600)
    graph = path / "hnsw.graph"
    raw = bytearray(graph.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    graph.write_bytes(bytes(raw))
    with pytest.warns(IndexRebuiltWarning, match="authentication tag"):
        db = NusterDB(path, encryption=EncryptionConfig(KEY))
    with db:
        assert db.graph_load()["state"] == "rebuilt"
        assert len(db) == len(x)
        assert db.search(x[42], k=1)[0][0] == 42


@pytest.mark.parametrize(
    "encryption",
    [None, EncryptionConfig(OTHER)],
    ids=["no key", "wrong key"],
)
@pytest.mark.parametrize("read_only", [False, True])
def test_a_missing_or_wrong_key_raises_and_modifies_nothing(
    tmp_path: Path, encryption: EncryptionConfig, read_only: bool
) -> None:
    path = tmp_path / "db"
    build(path, n=300)
    before = fingerprint(path)
    listing = sorted(p.name for p in path.iterdir())
    with pytest.raises(EncryptionKeyError):
        NusterDB(path, encryption=encryption, read_only=read_only)
    with pytest.raises(EncryptionKeyError):
        NusterDB.open(path, encryption=encryption, read_only=read_only)
    with pytest.raises(EncryptionKeyError):
        NusterDB.verify(path, encryption=encryption)
    assert fingerprint(path) == before
    assert sorted(p.name for p in path.iterdir()) == listing
    # The snapshot needs the key too.
    with pytest.raises(EncryptionKeyError):
        NusterDB(path / "snapshots" / "before", encryption=encryption, read_only=True)
    # And the right key still opens it.
    with NusterDB(path, encryption=EncryptionConfig(KEY), read_only=read_only) as db:
        assert len(db) == 300


def test_a_key_for_a_plaintext_database_raises(tmp_path: Path) -> None:
    path = tmp_path / "db"
    with NusterDB(path, dim=4) as db:
        db.add(1, [1, 2, 3, 4])
    before = fingerprint(path)
    with pytest.raises(EncryptionKeyError, match="not encrypted"):
        NusterDB(path, encryption=EncryptionConfig(KEY))
    with pytest.raises(EncryptionKeyError, match="not encrypted"):
        NusterDB.rotate_encryption_key(path, EncryptionConfig(KEY), EncryptionConfig(OTHER))
    assert fingerprint(path) == before


def test_rotation_rewraps_the_key_files_and_rewrites_no_data(tmp_path: Path) -> None:
    path = tmp_path / "db"
    x = build(path, n=500)
    old, new = EncryptionConfig(KEY), EncryptionConfig(OTHER)
    data_files = {k: v for k, v in fingerprint(path).items() if not k.endswith("nusterdb.key")}
    # Open: refused (the writer lock), nothing changed.
    with NusterDB(path, encryption=old), pytest.raises(DatabaseLockedError):
        NusterDB.rotate_encryption_key(path, old, new)
    # A wrong "old" key: refused, nothing rewrapped.
    keys_before = {k: v for k, v in fingerprint(path).items() if k.endswith("nusterdb.key")}
    with pytest.raises(EncryptionKeyError):
        NusterDB.rotate_encryption_key(path, EncryptionConfig(bytes(32)), new)
    assert {k: v for k, v in fingerprint(path).items() if k.endswith("nusterdb.key")} == keys_before

    assert NusterDB.rotate_encryption_key(path, old, new) == 2  # database + 1 snapshot
    # Run again (a rotation cut short is finished this way): already done.
    assert NusterDB.rotate_encryption_key(path, old, new) == 2
    after = fingerprint(path)
    for k, v in data_files.items():
        if k.endswith(".sst"):
            assert after.get(k) == v, f"{k} was rewritten"
    with pytest.raises(EncryptionKeyError):
        NusterDB(path, encryption=old)
    with NusterDB(path, encryption=new) as db:
        assert len(db) == len(x)
        assert db.get_document(7) == "doc 7"
        target = tmp_path / "restored"
        db.restore_snapshot("before", str(target))
        db.restore_snapshot("before")  # in place
        assert len(db) == len(x)
    with NusterDB(target, encryption=new) as r:
        assert np.array_equal(np.asarray(r.get(3).data, dtype=np.float32), x[3])  # type: ignore[union-attr]
    assert NusterDB.verify(path, encryption=new)["healthy"]
    with NusterDB(path, encryption=new) as db:
        assert len(db) == len(x)


def test_a_follower_reads_and_refreshes_with_the_key(tmp_path: Path) -> None:
    path = tmp_path / "db"
    x = build(path, n=400)
    enc = EncryptionConfig(KEY)
    writer = NusterDB(path, encryption=enc)
    with writer, NusterDB(path, encryption=enc, read_only=True) as follower:
        assert len(follower) == len(x)
        writer.add(10_000, x[0] * 2, metadata={"late": True})
        writer.flush()
        follower.refresh()
        assert 10_000 in follower
        m = follower.get_metadata(10_000)
        assert m is not None
        assert m["late"] is True


def test_verify_checks_an_encrypted_database(tmp_path: Path) -> None:
    path = tmp_path / "db"
    build(path, n=300)
    report = NusterDB.verify(path, encryption=EncryptionConfig(KEY))
    assert report["healthy"], report
    assert report["counts"]["snapshots"] == 1
    assert "snapshots" in report["checked"]
    assert "graph_file" in report["checked"]


def test_refused_combinations(tmp_path: Path) -> None:
    enc = EncryptionConfig(KEY)
    for mode in ("mmap", "disk"):
        with pytest.raises(InvalidArgumentError, match="encrypted"):
            DatabaseConfig(8, index_type="hnsw", vectors=mode, encryption=enc)
    with pytest.raises(InvalidArgumentError, match="in-memory"):
        NusterDB(None, config=DatabaseConfig(8, encryption=enc))
    build(tmp_path / "db", n=50)
    with pytest.raises(InvalidArgumentError, match="encrypted"):
        NusterDB.open(tmp_path / "db", vectors="mmap", encryption=enc)
    with pytest.raises(TypeError, match="EncryptionConfig"):
        DatabaseConfig(8, encryption=KEY)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        EncryptionConfig(12345)  # type: ignore[arg-type]


def test_key_providers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hexkey = KEY.hex()
    b64key = base64.b64encode(KEY).decode()
    monkeypatch.setenv("NDB_TEST_HEX", hexkey)
    monkeypatch.setenv("NDB_TEST_B64", b64key)
    (tmp_path / "raw.key").write_bytes(KEY)
    (tmp_path / "hex.key").write_text(hexkey + "\n")
    providers: List[KeyProvider] = [
        EnvKey("NDB_TEST_HEX"),
        EnvKey("NDB_TEST_B64"),
        KeyFile(tmp_path / "raw.key"),
        KeyFile(str(tmp_path / "hex.key")),
        lambda: KEY,
        lambda: hexkey,
        KEY,
        bytearray(KEY),
    ]
    path = tmp_path / "db"
    build(path, n=20)
    for p in providers:
        with NusterDB(path, encryption=EncryptionConfig(p), read_only=True) as db:
            assert len(db) == 20
    monkeypatch.setenv("NDB_TEST_SHORT", "abcd")
    bad: List[Any] = [
        EnvKey("NDB_TEST_UNSET_VARIABLE"),
        EnvKey("NDB_TEST_SHORT"),
        KeyFile(tmp_path / "missing.key"),
        lambda: KEY[:31],
        lambda: 5,
        KEY + b"x",
    ]
    for b in bad:
        with pytest.raises(EncryptionKeyError):
            NusterDB(path, encryption=EncryptionConfig(b))
    assert len(EncryptionConfig.generate_key()) == 64
    assert "key bytes" in repr(EncryptionConfig(KEY))
    assert KEY.hex() not in repr(EncryptionConfig(KEY))


@settings(max_examples=25, deadline=None)
@given(
    meta=st.dictionaries(
        st.text(
            alphabet=st.characters(min_codepoint=97, max_codepoint=122), min_size=1, max_size=8
        ),
        st.one_of(st.integers(-(2**40), 2**40), st.text(max_size=40), st.booleans()),
        max_size=5,
    ),
    doc=st.one_of(st.none(), st.text(max_size=200)),
)
def test_values_round_trip_through_encryption(
    tmp_path_factory: pytest.TempPathFactory, meta: Dict[str, object], doc: object
) -> None:
    path = tmp_path_factory.mktemp("prop") / "db"
    enc = EncryptionConfig(KEY)
    v = np.arange(DIM, dtype=np.float32) / 7
    with NusterDB(path, config=DatabaseConfig(DIM, encryption=enc)) as db:
        db.add(1, v, metadata=meta, document=doc)  # type: ignore[arg-type]
    with NusterDB(path, encryption=enc) as db:
        m = db.get_metadata(1)
        assert m is not None
        assert m.to_dict() == meta
        assert db.get_document(1) == doc
        assert np.array_equal(np.asarray(db.get(1).data, dtype=np.float32), v)  # type: ignore[union-attr]


WRITER = textwrap.dedent(
    """
    import sys, numpy as np, nusterdb as nd
    path, key = sys.argv[1], bytes.fromhex(sys.argv[2])
    enc = nd.EncryptionConfig(key)
    db = nd.NusterDB(path, config=nd.DatabaseConfig(8, index_type="hnsw", encryption=enc))
    print("ready", flush=True)
    b = len(db) // 100
    while True:
        ids = list(range(b * 100, b * 100 + 100))
        x = np.random.default_rng(b).standard_normal((100, 8)).astype(np.float32)
        db.bulk_add(ids, x, metadata=[{"batch": b}] * 100, documents=[f"d{b}"] * 100)
        print("ack", b, flush=True)
        b += 1
    """
)

#: Cycles of the kill test: 3 in CI, NUSTERDB_ENCRYPTION_KILL_CYCLES in the long tier.
LONG_KILL_CYCLES = int(os.environ.get("NUSTERDB_ENCRYPTION_KILL_CYCLES", "50"))


def run_kill_cycles(path: Path, cycles: int, seed: int) -> Tuple[int, int]:
    """Kills an encrypted writer of 100-row batches ``cycles`` times, 50-1,500 ms after
    its first acknowledged batch of the cycle; after each, every acknowledged batch is
    whole with bit-identical vectors, metadata and documents, no batch is partial, and
    ``verify`` is healthy. Returns (batches acknowledged, batches stored at the end)."""
    rng = np.random.default_rng(seed)
    enc = EncryptionConfig(KEY)
    acked = -1
    for _ in range(cycles):
        with subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), KEY.hex()],
            stdout=subprocess.PIPE,
            text=True,
        ) as proc:
            assert proc.stdout is not None
            deadline = time.monotonic() + 120
            kill_at = None
            for line in proc.stdout:
                if line.startswith("ack"):
                    acked = int(line.split()[1])
                    if kill_at is None:
                        kill_at = time.monotonic() + rng.uniform(0.05, 1.5)
                    if time.monotonic() >= kill_at:
                        break
                assert time.monotonic() < deadline
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        with NusterDB(path, encryption=enc) as db:
            n = len(db)
            assert n % 100 == 0, f"a partial batch: {n} rows"
            assert n >= (acked + 1) * 100, f"acknowledged batch {acked} lost: {n} rows"
            got = db.get_many(list(range(n)))
            for b in range(n // 100):
                want = np.random.default_rng(b).standard_normal((100, 8)).astype(np.float32)
                rows = got["vectors"][b * 100 : (b + 1) * 100]
                assert np.array_equal(rows, want), f"batch {b} changed"
            assert [m["batch"] for m in got["metadatas"]] == [i // 100 for i in range(n)]
            assert got["documents"] == [f"d{i // 100}" for i in range(n)]
        assert nd.NusterDB.verify(path, encryption=enc)["healthy"]
    return acked + 1, n // 100


def test_a_killed_writer_loses_no_acknowledged_batch(tmp_path: Path) -> None:
    acked, stored = run_kill_cycles(tmp_path / "db", 3, seed=1)
    print(f"encryption-kill[3 cycles]: {acked} batches acknowledged, {stored} stored")


@pytest.mark.long
def test_a_killed_writer_loses_no_acknowledged_batch_many_cycles(tmp_path: Path) -> None:
    acked, stored = run_kill_cycles(tmp_path / "db", LONG_KILL_CYCLES, seed=2)
    print(f"encryption-kill[{LONG_KILL_CYCLES} cycles]: {acked} acknowledged, {stored} stored")


def test_the_command_line_takes_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from nusterdb.cli import main

    monkeypatch.setenv("NDB_CLI_KEY", KEY.hex())
    monkeypatch.setenv("NDB_CLI_NEW", OTHER.hex())
    (tmp_path / "new.key").write_bytes(OTHER)
    rows = tmp_path / "rows.jsonl"
    rows.write_text(
        "\n".join(
            f'{{"id": {i}, "vector": [{i}.0, 1.0, 2.0], "tag": "CLI-MARKER"}}' for i in range(30)
        )
    )
    db = tmp_path / "db"
    assert main(["--key-env", "NDB_CLI_KEY", "import", str(db), str(rows)]) == 0
    assert (db / "nusterdb.key").exists()
    assert plaintext_hits(db, [b"CLI-MARKER"]) == []
    capsys.readouterr()
    # Without the key: a one-line typed error, exit 1.
    assert main(["info", str(db)]) == 1
    assert "EncryptionKeyError" in capsys.readouterr().err
    assert main(["--key-env", "NDB_CLI_KEY", "verify", str(db)]) == 0
    assert (
        main(["--key-env", "NDB_CLI_KEY", "search", str(db), "--vector", "[3, 1, 2]", "-k", "1"])
        == 0
    )
    assert (
        main(
            [
                "rotate-key",
                str(db),
                "--old-key-env",
                "NDB_CLI_KEY",
                "--new-key-file",
                str(tmp_path / "new.key"),
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["--key-env", "NDB_CLI_KEY", "info", str(db)]) == 1
    assert "EncryptionKeyError" in capsys.readouterr().err
    capsys.readouterr()
    assert main(["--key-env", "NDB_CLI_NEW", "info", str(db), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["config"]["encrypted"] is True
    assert main(["--key-env", "NDB_CLI_NEW", "info", str(db)]) == 0
    assert "encrypted at rest" in capsys.readouterr().out


def test_the_server_encrypts_every_collection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from server_fixtures import start_server, stop_and_check

    monkeypatch.setenv("NDB_SERVER_KEY", KEY.hex())
    monkeypatch.setenv("NDB_SERVER_NEW", OTHER.hex())
    data = tmp_path / "data"
    x = data_rows = data_of_server(40)
    srv = start_server(data, root_args=("--key-env", "NDB_SERVER_KEY"))
    try:
        client = nd.Client(srv.url)
        col = client.create_collection("docs", dim=DIM)
        col.bulk_add(
            list(range(len(x))),
            x,
            metadata=[{"m": "SERVER-MARKER"}] * len(x),
            documents=["SERVER-DOC-MARKER"] * len(x),
        )
        assert col.search(x[3], k=1)[0][0] == 3
        # A client's config never carries a key: refused, not dropped.
        with pytest.raises(InvalidArgumentError, match="encrypted by the server"):
            client.create_collection(
                "other", config=DatabaseConfig(DIM, encryption=EncryptionConfig(KEY))
            )
        assert [(c["name"], c["encrypted"]) for c in client.list_collections()] == [("docs", True)]
        client.close()
    finally:
        stop_and_check(srv)
    coll = data / "collections" / "docs"
    assert (coll / "nusterdb.key").exists()
    assert plaintext_hits(coll, [b"SERVER-MARKER", b"SERVER-DOC-MARKER"]) == []
    # Without the key the server does not start (a collection it cannot open).
    with pytest.raises(AssertionError):
        start_server(data, ready_timeout=20)
    # Rotated with the command line (server stopped), then served with the new key.
    from nusterdb.cli import main

    assert (
        main(
            [
                "rotate-key",
                str(data),
                "--old-key-env",
                "NDB_SERVER_KEY",
                "--new-key-env",
                "NDB_SERVER_NEW",
            ]
        )
        == 0
    )
    srv = start_server(data, root_args=("--key-env", "NDB_SERVER_NEW"))
    try:
        client = nd.Client(srv.url)
        col = client.collection("docs")
        assert col.count() == len(data_rows)
        assert col.get_document(5) == "SERVER-DOC-MARKER"
        client.close()
    finally:
        stop_and_check(srv)


def data_of_server(n: int) -> np.ndarray:
    return data(n, seed=11)

"""Finding calls: folders (recursive), manifests, single files; ids safe and unique."""

from pathlib import Path

import pytest

from pipeline.errors import InputError
from pipeline.ingest.discover import ManifestRowError, discover, safe_call_id


def touch(p: Path) -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(b"x")
    return p


def test_folder_is_searched_recursively_for_audio_only(tmp_path: Path):
    touch(tmp_path / "a.wav")
    touch(tmp_path / "sub" / "deeper" / "b.MP3")
    touch(tmp_path / "c.flac")
    touch(tmp_path / "notes.txt")
    touch(tmp_path / "labels" / "a.json")
    touch(tmp_path / ".hidden.wav")
    touch(tmp_path / ".git" / "x.wav")
    calls = discover(tmp_path)
    assert [c.call_id for c in calls] == ["a", "c", "b"]
    assert all(c.problem is None for c in calls)


def test_same_stem_in_two_folders_gets_distinct_stable_ids(tmp_path: Path):
    touch(tmp_path / "x" / "call.wav")
    touch(tmp_path / "y" / "call.wav")
    ids1 = [c.call_id for c in discover(tmp_path)]
    ids2 = [c.call_id for c in discover(tmp_path)]
    assert ids1 == ids2 and len(set(ids1)) == 2 and ids1[0] == "call"


@pytest.mark.parametrize(
    "name, expected",
    [("café call #12", "cafe_call_12"), ("-rm -rf", "rm_-rf"), ("..", None), ("ＡＢＣ", "ABC"), ("通話", None), ("a" * 300, None)],
)
def test_safe_call_id(name: str, expected: str | None):
    cid = safe_call_id(name)
    assert cid and len(cid) <= 100
    assert not cid.startswith((".", "-"))
    assert all(ch.isalnum() or ch in "._-" for ch in cid) and cid.isascii()
    if expected:
        assert cid == expected


def test_manifest_keeps_extra_columns_and_resolves_relative_paths(tmp_path: Path):
    touch(tmp_path / "audio" / "one.wav")
    touch(tmp_path / "audio" / "two.wav")
    (tmp_path / "m.csv").write_text(
        "call_id,path,agent_id,queue,started_at,campaign\n"
        "c1,audio/one.wav,a7,billing,2026-01-02T10:00:00Z,spring\n"
        ",audio/two.wav,a8,tech,2026-01-02T11:00:00Z,\n"
    )
    calls = discover(tmp_path / "m.csv")
    assert [c.call_id for c in calls] == ["c1", "two"]
    assert calls[0].path == tmp_path / "audio" / "one.wav"
    assert calls[0].metadata == {"agent_id": "a7", "queue": "billing", "started_at": "2026-01-02T10:00:00Z", "campaign": "spring"}


def test_manifest_row_problems_fail_only_that_row(tmp_path: Path):
    touch(tmp_path / "ok.wav")
    (tmp_path / "m.csv").write_text(
        "call_id,path\nc1,ok.wav\nc1,ok.wav\nc2,missing.wav\n../evil,ok.wav\nc3,\n"
    )
    calls = discover(tmp_path / "m.csv")
    assert calls[0].problem is None
    problems = [c.problem for c in calls[1:]]
    assert all(isinstance(p, ManifestRowError) for p in problems)
    assert "duplicate call_id" in str(problems[0])
    assert "file not found" in str(problems[1]) and "missing.wav" in str(problems[1])
    assert "may only hold" in str(problems[2])
    assert "empty path" in str(problems[3])
    assert len({c.call_id for c in calls}) == len(calls)
    assert all("/" not in c.call_id and not c.call_id.startswith(".") for c in calls)


def test_manifest_without_path_column_is_an_input_error(tmp_path: Path):
    (tmp_path / "m.csv").write_text("call_id,file\nc1,a.wav\n")
    with pytest.raises(InputError, match="path"):
        discover(tmp_path / "m.csv")


def test_missing_input_is_an_input_error(tmp_path: Path):
    with pytest.raises(InputError, match="no such file"):
        discover(tmp_path / "nope")


def test_single_file_input(tmp_path: Path):
    f = touch(tmp_path / "my call.wav")
    calls = discover(f)
    assert len(calls) == 1 and calls[0].call_id == "my_call" and calls[0].path == f


@pytest.mark.parametrize("rows", [
    ["evil,a.wav", "../evil,b.wav"],  # an unsafe id that folds onto a real one ...
    ["../evil,b.wav", "evil,a.wav"],  # ... whichever comes first
    ["x,a.wav", "x,b.wav", "x-line3,c.wav"],  # a renamed duplicate that equals a real id
])
def test_two_rows_never_share_a_result_folder(tmp_path: Path, rows: list[str]):
    for name in "abc":
        touch(tmp_path / f"{name}.wav")
    (tmp_path / "m.csv").write_text("call_id,path\n" + "\n".join(rows) + "\n")
    calls = discover(tmp_path / "m.csv")
    assert len({c.call_id for c in calls}) == len(calls)
    ok = {c.call_id: c.path.name for c in calls if c.problem is None}
    refused = [c for c in calls if c.problem is not None]
    assert ok == {"evil": "a.wav"} or ok == {"x": "a.wav", "x-line3": "c.wav"}  # valid ids keep their folder
    assert len(refused) == 1 and isinstance(refused[0].problem, ManifestRowError)
    assert "m.csv line" in str(refused[0].problem) and refused[0].path.name == "b.wav"
    assert [c.call_id for c in discover(tmp_path / "m.csv")] == [c.call_id for c in calls]  # the same every run


def test_a_renamed_file_never_takes_another_files_id(tmp_path: Path):
    touch(tmp_path / "x" / "call.wav")
    touch(tmp_path / "y" / "call.wav")
    renamed = next(c.call_id for c in discover(tmp_path) if c.path.parent.name == "y")
    touch(tmp_path / "z" / f"{renamed}.wav")  # a file whose own name is that id
    calls = discover(tmp_path)
    assert len({c.call_id for c in calls}) == 3
    assert next(c.call_id for c in calls if c.path.parent.name == "z") == renamed


def test_fifos_sockets_and_devices_are_refused_without_being_opened(tmp_path: Path):
    import os
    import socket

    from pipeline.errors import NotRegularFileError

    touch(tmp_path / "real.wav")
    os.mkfifo(tmp_path / "pipe.wav")
    (tmp_path / "link.wav").symlink_to(tmp_path / "real.wav")
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(tmp_path / "sock.wav"))
        calls = {c.call_id: c for c in discover(tmp_path)}
    assert calls["real"].problem is None and calls["link"].problem is None  # a link to a file is read
    for cid in ("pipe", "sock"):
        assert isinstance(calls[cid].problem, NotRegularFileError) and f"{cid}.wav" in str(calls[cid].problem)
    (tmp_path / "m.csv").write_text("call_id,path\np,pipe.wav\n")
    assert isinstance(discover(tmp_path / "m.csv")[0].problem, NotRegularFileError)
    with pytest.raises(InputError, match="FIFO"):
        discover(tmp_path / "pipe.wav")

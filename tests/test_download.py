"""Tests of helpers.download against a local HTTP server (tests/httpfixtures.py).

Oracles: the exact bytes served (and hashlib's MD5 of them), the request log of the
server (was a Range sent, was any request made), archives built here with zipfile,
tarfile and lmdb, and Pillow reading the written photos back.
"""
import hashlib
import io
import json
import socket
import tarfile
import zipfile
from pathlib import Path

import lmdb
import pytest
from PIL import Image

from helpers import download as dl
from helpers.download import (DownloadError, download_annotations, download_file,
                              extract_lmdb_images, extract_zip_images, fetch_modanet, md5sum)
from helpers.paths import Paths

try:
    from httpfixtures import http_server  # noqa: F401  (the pytest fixture)
except ImportError:  # tests/ imported as a package
    from tests.httpfixtures import http_server  # noqa: F401

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"


def payload(size, seed=0):
    """Deterministic, non-repeating-looking bytes."""
    out, block = bytearray(), hashlib.sha256(str(seed).encode()).digest()
    while len(out) < size:
        block = hashlib.sha256(block).digest()
        out += block
    return bytes(out[:size])


def md5_of(data):
    return hashlib.md5(data).hexdigest()


def jpeg_bytes(color, size=(8, 12)):
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


# --- download_file ------------------------------------------------------------------------

def test_md5sum_matches_hashlib(tmp_path):
    data = payload(3 * 1024 + 7, seed=1)
    (tmp_path / "f").write_bytes(data)
    assert md5sum(tmp_path / "f", chunk_size=1000) == md5_of(data)


def test_download_with_md5_writes_exact_bytes(http_server, tmp_path):
    data = payload(50_000)
    http_server.files["/a.bin"] = data
    dest = download_file(http_server.url("/a.bin"), tmp_path / "sub" / "a.bin",
                         md5=md5_of(data).upper(), progress=False, chunk_size=4096)
    assert dest == tmp_path / "sub" / "a.bin"
    assert dest.read_bytes() == data
    assert not dl.part_path(dest).exists()
    assert http_server.requests_for("/a.bin") == [None]


def test_rerun_skips_without_any_request(http_server, tmp_path):
    data = payload(2000)
    http_server.files["/a.bin"] = data
    for md5 in (md5_of(data), None):
        download_file(http_server.url("/a.bin"), tmp_path / "a.bin", md5=md5, progress=False)
    download_file(http_server.url("/a.bin"), tmp_path / "a.bin", md5=md5_of(data), progress=False)
    assert len(http_server.requests_for("/a.bin")) == 1


def test_existing_file_with_wrong_md5_is_downloaded_again(http_server, tmp_path):
    data = payload(2000)
    http_server.files["/a.bin"] = data
    (tmp_path / "a.bin").write_bytes(b"stale")
    download_file(http_server.url("/a.bin"), tmp_path / "a.bin", md5=md5_of(data), progress=False)
    assert (tmp_path / "a.bin").read_bytes() == data


def test_interrupted_download_keeps_part_and_resumes_with_range(http_server, tmp_path):
    data = payload(40_000, seed=2)
    http_server.files["/big.bin"] = data
    http_server.cut_after["/big.bin"] = 12_345
    dest = tmp_path / "big.bin"
    with pytest.raises(DownloadError, match="run again to resume") as err:
        download_file(http_server.url("/big.bin"), dest, md5=md5_of(data), progress=False,
                      chunk_size=1024)
    assert http_server.url("/big.bin") in str(err.value)
    assert not dest.exists()
    assert (tmp_path / "big.bin.part").read_bytes() == data[:12_345]
    download_file(http_server.url("/big.bin"), dest, md5=md5_of(data), progress=False)
    assert dest.read_bytes() == data
    assert http_server.requests_for("/big.bin") == [None, "bytes=12345-"]


def test_server_ignoring_range_still_gives_the_right_file(http_server, tmp_path):
    data = payload(30_000, seed=3)
    http_server.files["/a.bin"] = data
    http_server.ignore_range = True
    dest = tmp_path / "a.bin"
    dl.part_path(dest).write_bytes(b"X" * 5000)  # a .part the server will not continue
    download_file(http_server.url("/a.bin"), dest, md5=md5_of(data), progress=False)
    assert dest.read_bytes() == data
    assert http_server.requests_for("/a.bin") == ["bytes=5000-"]


def test_complete_part_answered_416_is_moved_into_place(http_server, tmp_path):
    data = payload(9000, seed=4)
    http_server.files["/a.bin"] = data
    dest = tmp_path / "a.bin"
    dl.part_path(dest).write_bytes(data)
    download_file(http_server.url("/a.bin"), dest, md5=md5_of(data), progress=False)
    assert dest.read_bytes() == data
    assert http_server.requests_for("/a.bin") == ["bytes=9000-"]


def test_oversized_part_answered_416_restarts_from_zero(http_server, tmp_path):
    data = payload(9000, seed=5)
    http_server.files["/a.bin"] = data
    dest = tmp_path / "a.bin"
    dl.part_path(dest).write_bytes(data + b"junk")
    download_file(http_server.url("/a.bin"), dest, progress=False)
    assert dest.read_bytes() == data
    assert http_server.requests_for("/a.bin") == ["bytes=9004-", None]


def test_content_range_parsing():
    assert dl._content_range(None) == (None, None)
    assert dl._content_range("bytes */9000") == (None, 9000)
    assert dl._content_range("bytes 10-19/20") == (10, 20)


def test_bad_checksum_raises_and_leaves_nothing(http_server, tmp_path):
    http_server.files["/a.bin"] = payload(1000)
    dest = tmp_path / "a.bin"
    wrong = "0" * 32
    with pytest.raises(DownloadError) as err:
        download_file(http_server.url("/a.bin"), dest, md5=wrong, progress=False)
    message = str(err.value)
    assert "a.bin" in message and wrong in message and md5_of(payload(1000)) in message
    assert not dest.exists() and not dl.part_path(dest).exists()


def test_http_404_names_the_url(http_server, tmp_path):
    http_server.files["/gone.bin"] = b"x"
    http_server.not_found.add("/gone.bin")
    with pytest.raises(DownloadError, match="404") as err:
        download_file(http_server.url("/gone.bin"), tmp_path / "gone.bin", progress=False)
    assert http_server.url("/gone.bin") in str(err.value)
    assert err.value.__cause__ is None and err.value.__suppress_context__
    assert not (tmp_path / "gone.bin").exists()


def test_connection_refused_names_the_url(tmp_path):
    with socket.socket() as sock:  # a port that was free a moment ago and has no listener now
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/a.bin"
    with pytest.raises(DownloadError, match="cannot connect") as err:
        download_file(url, tmp_path / "a.bin", progress=False, timeout=5)
    assert url in str(err.value)
    assert err.value.__suppress_context__


def test_git_lfs_pointer_is_refused(http_server, tmp_path):
    http_server.files["/ann.json"] = (b"version https://git-lfs.github.com/spec/v1\n"
                                      b"oid sha256:" + b"ab" * 32 + b"\nsize 105924292\n")
    dest = tmp_path / "ann.json"
    with pytest.raises(DownloadError, match="Git LFS pointer"):
        download_file(http_server.url("/ann.json"), dest, progress=False)
    assert not dest.exists() and not dl.part_path(dest).exists()


def test_not_enough_disk_space_is_a_clear_error(http_server, tmp_path, monkeypatch):
    http_server.files["/a.bin"] = payload(5000)
    monkeypatch.setattr(dl.shutil, "disk_usage", lambda path: type("U", (), {"free": 100})())
    with pytest.raises(DownloadError, match="free"):
        download_file(http_server.url("/a.bin"), tmp_path / "a.bin", progress=False)
    assert not (tmp_path / "a.bin").exists()


def test_download_annotations_into_annotations_dir(http_server, tmp_path):
    sources = {}
    for split in ("train", "val"):
        body = json.dumps({"split": split}).encode()
        http_server.files[f"/{split}.json"] = body
        sources[split] = {"file": f"modanet2018_instances_{split}.json",
                          "url": http_server.url(f"/{split}.json"), "md5": md5_of(body)}
    paths = Paths(tmp_path / "modanet")
    files = download_annotations(paths, sources=sources, progress=False)
    assert files == {"train": paths.train_annotations, "val": paths.val_annotations}
    assert json.loads(paths.val_annotations.read_text()) == {"split": "val"}
    with pytest.raises(ValueError, match="test"):
        download_annotations(paths, splits=("test",), sources=sources, progress=False)


# --- images.zip ---------------------------------------------------------------------------

def make_zip(path, files, prefix="images/"):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(prefix, "")  # the folder entry
        for name, data in files.items():
            archive.writestr(prefix + name, data)
        archive.writestr("__MACOSX/images/._" + next(iter(files)), b"resource fork")


def test_zip_extracts_basenames_filters_and_skips_on_rerun(tmp_path):
    files = {f"{i:07d}.jpg": jpeg_bytes((i * 40, 0, 0)) for i in range(1, 5)}
    make_zip(tmp_path / "images.zip", files)
    out = tmp_path / "images"
    wanted = {"0000001.jpg", "0000002.jpg", "0000003.jpg", "9999999.jpg"}
    summary = extract_zip_images(tmp_path / "images.zip", out, wanted=wanted, progress=False)
    assert summary["written"] == 3 and summary["skipped"] == 0
    assert summary["not_wanted"] == 1 and summary["ignored"] == 1
    assert summary["missing"] == 1 and summary["missing_names"] == ["9999999.jpg"]
    assert sorted(p.name for p in out.iterdir()) == ["0000001.jpg", "0000002.jpg", "0000003.jpg"]
    for name in ("0000001.jpg", "0000003.jpg"):
        assert (out / name).read_bytes() == files[name]
    (out / "0000002.jpg").write_bytes(b"short")  # a wrong size is written again
    again = extract_zip_images(tmp_path / "images.zip", out, progress=False)
    assert (again["written"], again["skipped"]) == (2, 2)
    assert (out / "0000002.jpg").read_bytes() == files["0000002.jpg"]


def test_truncated_zip_is_a_clear_error(tmp_path):
    make_zip(tmp_path / "images.zip", {"a.jpg": payload(20_000)})
    data = (tmp_path / "images.zip").read_bytes()
    (tmp_path / "cut.zip").write_bytes(data[: len(data) // 2])
    with pytest.raises(DownloadError, match="truncated or damaged archive.*download it again"):
        extract_zip_images(tmp_path / "cut.zip", tmp_path / "images", progress=False)


def test_zip_member_with_bad_crc_writes_nothing(tmp_path):
    body = b"A" * 5000
    with zipfile.ZipFile(tmp_path / "images.zip", "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("images/a.jpg", body)
    data = bytearray((tmp_path / "images.zip").read_bytes())
    data[data.index(body) + 100] ^= 0xFF  # one byte of stored data flipped: the CRC fails
    (tmp_path / "images.zip").write_bytes(bytes(data))
    with pytest.raises(DownloadError, match="damaged"):
        extract_zip_images(tmp_path / "images.zip", tmp_path / "images", progress=False)
    assert list((tmp_path / "images").glob("*")) == []


# --- photos.lmdb(.tar) --------------------------------------------------------------------

def make_lmdb_tar(folder, photos, extra=None):
    """An LMDB `folder`/photos.lmdb with {id: bytes}, packed into photos.lmdb.tar beside it."""
    db = folder / "photos.lmdb"
    env = lmdb.open(str(db), map_size=1 << 24)
    with env.begin(write=True) as txn:
        for image_id, data in {**photos, **(extra or {})}.items():
            txn.put(str(image_id).encode("ascii"), data)
    env.close()
    tar_path = folder / "photos.lmdb.tar"
    with tarfile.open(tar_path, "w") as tar:
        tar.add(db, arcname="photos.lmdb")
    return tar_path


def test_lmdb_tar_is_unpacked_and_entries_written(tmp_path):
    photos = {1109680: jpeg_bytes((200, 10, 10)), 372985: jpeg_bytes((10, 200, 10)),
              5: jpeg_bytes((10, 10, 200))}
    build = tmp_path / "build"
    build.mkdir()
    tar_path = make_lmdb_tar(build, photos)
    archive = tmp_path / "downloads" / "photos.lmdb.tar"
    archive.parent.mkdir()
    tar_path.rename(archive)
    entries = [{"id": 1109680, "file_name": "1109680.jpg"},
               {"id": 372985, "file_name": "0372985.jpg"}]  # key from the id, not the name
    out = tmp_path / "images"
    summary = extract_lmdb_images(archive, entries, out, progress=False)
    assert (summary["written"], summary["skipped"], summary["missing"]) == (2, 0, 0)
    assert (out / "0372985.jpg").read_bytes() == photos[372985]
    assert sorted(p.name for p in out.iterdir()) == ["0372985.jpg", "1109680.jpg"]
    with Image.open(out / "1109680.jpg") as im:
        assert im.size == (8, 12) and im.getpixel((4, 6))[0] > 150
    assert (archive.parent / "photos.lmdb" / "data.mdb").is_file()
    again = extract_lmdb_images(archive, entries, out, progress=False)
    assert (again["written"], again["skipped"]) == (0, 2)


def test_interrupted_untar_resumes_to_identical_files(tmp_path):
    tar_path = make_lmdb_tar(tmp_path, {7: jpeg_bytes((1, 2, 3))})
    original = (tmp_path / "photos.lmdb" / "data.mdb").read_bytes()
    (tmp_path / "photos.lmdb").rename(tmp_path / "built.lmdb")
    staging = tmp_path / "photos.lmdb.part"
    staging.mkdir()
    (staging / "data.mdb").write_bytes(original[:1000])  # as if stopped after 1000 bytes
    folder = dl.unpack_lmdb_tar(tar_path, progress=False)
    assert folder == tmp_path / "photos.lmdb" and not staging.exists()
    assert (folder / "data.mdb").read_bytes() == original


def test_truncated_tar_is_a_clear_error(tmp_path):
    tar_path = make_lmdb_tar(tmp_path, {7: payload(300_000)})
    (tmp_path / "photos.lmdb").rename(tmp_path / "built.lmdb")
    tar_path.write_bytes(tar_path.read_bytes()[:200_000])
    with pytest.raises(DownloadError, match="photos.lmdb.tar.*download it again"):
        extract_lmdb_images(tar_path, [{"id": 7, "file_name": "7.jpg"}], tmp_path / "images",
                            progress=False)
    assert not (tmp_path / "photos.lmdb").exists() and not (tmp_path / "images").exists()


def test_missing_key_and_bad_value_raise_after_writing_the_rest(tmp_path):
    tar_path = make_lmdb_tar(tmp_path, {1: jpeg_bytes((9, 9, 9))}, extra={3: b"not an image"})
    entries = [{"id": 1, "file_name": "0000001.jpg"}, {"id": 2, "file_name": "0000002.jpg"},
               {"id": 3, "file_name": "0000003.jpg"}]
    with pytest.raises(DownloadError, match=r"1 photo id\(s\) not in the LMDB.*\[2\]") as err:
        extract_lmdb_images(tar_path, entries, tmp_path / "images", progress=False)
    summary = err.value.summary
    assert summary["missing_ids"] == [2] and summary["undecodable_ids"] == [3]
    assert [p.name for p in (tmp_path / "images").iterdir()] == ["0000001.jpg"]


def test_lmdb_folder_is_accepted_and_bad_entries_are_named(tmp_path):
    make_lmdb_tar(tmp_path, {4: jpeg_bytes((5, 5, 5))})
    summary = extract_lmdb_images(tmp_path / "photos.lmdb", [{"id": 4, "file_name": "4.jpg"}],
                                  tmp_path / "images", progress=False)
    assert summary["written"] == 1
    with pytest.raises(dl.DataError, match="#0"):
        extract_lmdb_images(tmp_path / "photos.lmdb", [{"id": 4}], tmp_path / "images",
                            progress=False)


# --- fetch_modanet and the CLI ------------------------------------------------------------

def annotation_file(images):
    return json.dumps({"images": images, "annotations": [], "categories": []}).encode()


def serve_modanet(server, images_train, images_val, archives):
    """Serve annotation files and archives; returns the `sources` dict fetch_modanet takes."""
    annotations = {}
    for split, images in (("train", images_train), ("val", images_val)):
        body = annotation_file(images)
        server.files[f"/ann/{split}.json"] = body
        annotations[split] = {"file": f"modanet2018_instances_{split}.json",
                              "url": server.url(f"/ann/{split}.json"), "md5": md5_of(body)}
    sources = {"annotations": annotations}
    for route, (name, body) in archives.items():
        server.files[f"/img/{name}"] = body
        sources[route] = {"file": name, "url": server.url(f"/img/{name}"), "md5": None}
    return sources


def real_or_made_entries():
    """Image entries of the real ModaNet fixture when present, else made-up ones."""
    fixture = FIXTURES / "modanet" / "modanet_coco_subset.json"
    if fixture.is_file():
        return [{"id": e["id"], "file_name": e["file_name"]}
                for e in json.loads(fixture.read_text())["images"]]
    return [{"id": 1109680, "file_name": "1109680.jpg"}, {"id": 372985, "file_name": "0372985.jpg"},
            {"id": 432697, "file_name": "0432697.jpg"}]


def test_fetch_modanet_fast_route_end_to_end(http_server, tmp_path):
    entries = real_or_made_entries()
    train, val = entries[:-1], entries[-1:]
    photos = {e["file_name"]: jpeg_bytes((i * 50, 80, 80)) for i, e in enumerate(entries)}
    make_zip(tmp_path / "images.zip", {**photos, "not_modanet.jpg": b"x"})
    sources = serve_modanet(http_server, train, val,
                            {"fast": ("images.zip", (tmp_path / "images.zip").read_bytes())})
    paths = Paths(tmp_path / "modanet")
    summary = fetch_modanet(paths, "fast", sources, progress=False)
    assert summary["images"]["written"] == len(entries)
    assert summary["images"]["not_wanted"] == 1
    assert summary["train_images_missing"] == 0 and summary["train_images"] == len(train)
    for name, data in photos.items():
        assert (paths.images / name).read_bytes() == data
    assert paths.train_annotations.is_file() and paths.val_annotations.is_file()
    # a re-run touches nothing: no new request at all, even with the archive deleted
    requests_before = len(http_server.requests)
    (paths.downloads / "images.zip").unlink()
    again = fetch_modanet(paths, "fast", sources, progress=False)
    assert again["images"] == {"already_present": True}
    assert len(http_server.requests) == requests_before


def test_fetch_modanet_full_route_end_to_end(http_server, tmp_path):
    entries = real_or_made_entries()
    photos = {e["id"]: jpeg_bytes((30, i * 50, 90)) for i, e in enumerate(entries)}
    build = tmp_path / "build"
    build.mkdir()
    tar_path = make_lmdb_tar(build, photos, extra={123: jpeg_bytes((0, 0, 0))})
    sources = serve_modanet(http_server, entries[:2], entries[2:],
                            {"full": ("photos.lmdb.tar", tar_path.read_bytes())})
    paths = Paths(tmp_path / "modanet")
    summary = fetch_modanet(paths, "full", sources, progress=False)
    assert summary["images"]["written"] == len(entries)
    for entry in entries:
        assert (paths.images / entry["file_name"]).read_bytes() == photos[entry["id"]]
    assert not (paths.images / "123.jpg").exists()
    # once unpacked, the 40 GB tar may go: a re-run with a lost photo uses the LMDB folder
    (paths.downloads / "photos.lmdb.tar").unlink()
    (paths.images / entries[0]["file_name"]).unlink()
    requests_before = len(http_server.requests)
    again = fetch_modanet(paths, "full", sources, progress=False)
    assert (again["images"]["written"], again["images"]["skipped"]) == (1, len(entries) - 1)
    assert len(http_server.requests) == requests_before


def test_cli_annotations_only_and_error_exit(http_server, tmp_path, capsys):
    sources = serve_modanet(http_server, [{"id": 1, "file_name": "1.jpg"}], [], {})
    root = tmp_path / "modanet"
    assert dl.main(["--root", str(root), "--annotations-only", "--quiet"], sources=sources) == 0
    assert json.loads(capsys.readouterr().out)["train"].endswith("modanet2018_instances_train.json")
    assert (root / "annotations" / "modanet2018_instances_val.json").is_file()
    http_server.not_found.add("/img/images.zip")
    sources["fast"] = {"file": "images.zip", "url": http_server.url("/img/images.zip"), "md5": None}
    assert dl.main(["--root", str(root), "--quiet"], sources=sources) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "/img/images.zip" in err and "Traceback" not in err


def test_real_sources_point_at_media_and_release_urls():
    sources = dl.default_sources()
    for split, entry in sources["annotations"].items():
        assert entry["url"].startswith("https://media.githubusercontent.com/media/eBay/modanet/")
        assert entry["url"].endswith(entry["file"]) and len(entry["md5"]) == 32
    assert sources["fast"]["url"].endswith("/releases/download/v0.9/images.zip")
    assert sources["full"]["url"].endswith("/photos.lmdb.tar")

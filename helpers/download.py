"""Fetching real ModaNet: the annotation files, then the photos by one of two routes.

Notebook 01 (profile `full`) calls `fetch_modanet`; the same runs from a shell::

    python -m helpers.download [--route fast|full] [--root DIR] [--annotations-only]

Downloads are large and connections drop, so every step can be re-run: a download streams
into `<file>.part` and resumes it with an HTTP Range request, a checksum is verified before
the file is moved into place, and extraction skips images already written (each written
atomically). Failures are a `DownloadError` that says what went wrong and what to do.
Only the standard library, lmdb, Pillow and tqdm are used.
"""
import argparse
import hashlib
import http.client
import io
import json
import os
import shutil
import sys
import tarfile
import urllib.error
import urllib.request
import zipfile
import zlib
from pathlib import Path, PurePosixPath

import lmdb
from PIL import Image
from tqdm.auto import tqdm

from helpers.io import DataError, atomic_write, describe_os_error, read_json, remove_temp_files_on_signals
from helpers.modanet import ANNOTATIONS, IMAGES_FAST, IMAGES_FULL
from helpers.paths import Paths

LFS_POINTER_PREFIX = b"version https://git-lfs"
USER_AGENT = "modanet-seasons-course/0.1 (urllib)"
ROUTES = ("fast", "full")
# How many ids / names an error message or a summary lists before "...".
LISTED = 10


class DownloadError(RuntimeError):
    """A download or extraction failed; the message names the URL or file and what to do."""


def default_sources():
    """Where the real files live: {"annotations": {...}, "fast": {...}, "full": {...}}."""
    return {"annotations": ANNOTATIONS, "fast": IMAGES_FAST, "full": IMAGES_FULL}


def part_path(dest):
    """The partial-download file that sits beside `dest` until it is complete."""
    dest = Path(dest)
    return dest.with_name(dest.name + ".part")


def md5sum(path, chunk_size=1 << 20):
    """The hex MD5 of a file, read in chunks."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --- one file over HTTP -------------------------------------------------------------------

def download_file(url, dest, md5=None, progress=True, chunk_size=1 << 20, timeout=60):
    """Download `url` to `dest` (resumable, checksum-verified); returns `dest` as a Path.

    An existing `dest` (with the right MD5 when `md5` is given) is kept without a request.
    """
    dest = Path(dest)
    md5 = md5.lower() if md5 else None
    if dest.is_file():
        if md5 is None or md5sum(dest) == md5:
            return dest
        print(f"{dest}: checksum differs from the expected {md5}; downloading it again.")
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = part_path(dest)
    for _ in range(2):
        if _stream_into_part(url, part, dest.name, progress, chunk_size, timeout):
            break
        part.unlink(missing_ok=True)  # unusable .part: start once more from byte 0
    else:
        raise DownloadError(f"{url}: the server did not send the file consistently (range "
                            "requests failed twice). Try again later.")
    _refuse_lfs_pointer(part, url)
    if md5 is not None:
        actual = md5sum(part)
        if actual != md5:
            part.unlink(missing_ok=True)
            raise DownloadError(
                f"{dest.name}: checksum mismatch for {url}: expected md5 {md5}, got {actual}. "
                "The partial file was deleted; run again to download it afresh.")
    os.replace(part, dest)
    return dest


def _stream_into_part(url, part, label, progress, chunk_size, timeout):
    """Append the rest of `url` to `part`; False when the .part cannot be resumed."""
    offset = part.stat().st_size if part.is_file() else 0
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers),
                                          timeout=timeout)
    except urllib.error.HTTPError as err:
        err.close()
        if err.code == 416 and offset:
            # Nothing left to send from `offset`: complete if the sizes agree, else bad.
            return _content_range(err.headers.get("Content-Range"))[1] == offset
        raise DownloadError(f"{url}: the server answered HTTP {err.code} {err.reason}. "
                            "Check the address (helpers/modanet.py) or try again later.") from None
    except urllib.error.URLError as err:
        raise DownloadError(f"{url}: cannot connect ({err.reason}). Check the internet "
                            "connection and the address, then run again.") from None
    except (OSError, http.client.HTTPException) as err:
        raise DownloadError(f"{url}: the request failed ({err or type(err).__name__}). "
                            "Run again; a partial download resumes.") from None
    with response:
        if response.status == 206:
            start, total = _content_range(response.headers.get("Content-Range"))
            if start != offset:
                return False
            mode = "ab"
        else:  # 200: the whole file (a server that ignores Range); start again at 0
            offset, mode = 0, "wb"
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
        expected = None if total is None else total - offset
        _check_free_space(part, expected, url)
        received = 0
        with open(part, mode) as out, tqdm(total=total, initial=offset, unit="B", unit_scale=True,
                                           unit_divisor=1024, desc=label, disable=not progress) as bar:
            try:
                for chunk in iter(lambda: response.read(chunk_size), b""):
                    out.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
            except (OSError, http.client.HTTPException) as err:
                raise _dropped(url, part, offset + received, err) from None
        if expected is not None and received < expected:
            raise _dropped(url, part, offset + received, "connection closed early")
    return True


def _dropped(url, part, have, reason):
    return DownloadError(f"{url}: the connection dropped after {have} bytes ({reason}). "
                         f"The partial file {part} is kept: run again to resume.")


def _content_range(header):
    """(start, total) from 'bytes 100-199/200' or 'bytes */200'; None where unknown."""
    try:
        spec = (header or "").split(" ", 1)[1]
        span, total = spec.strip().split("/")
        start = None if span == "*" else int(span.split("-")[0])
        return start, (None if total == "*" else int(total))
    except (ValueError, IndexError):
        return None, None


def _check_free_space(target, needed, what):
    """DownloadError when `needed` bytes will not fit in the folder of `target`."""
    if needed is None:
        return
    free = shutil.disk_usage(target.parent).free
    if free < needed:
        raise DownloadError(f"{what}: needs {needed / 1e9:.1f} GB but only {free / 1e9:.1f} GB "
                            f"are free in {target.parent}. Free some space, then run again.")


def _refuse_lfs_pointer(part, url):
    with open(part, "rb") as f:
        head = f.read(len(LFS_POINTER_PREFIX))
    if head == LFS_POINTER_PREFIX:
        part.unlink(missing_ok=True)
        raise DownloadError(f"{url}: received a Git LFS pointer (a small text stub), not the "
                            "file itself. Use the media.githubusercontent.com/media/... address "
                            "of the file (as in helpers/modanet.py).")


def download_annotations(paths, splits=("train", "val"), sources=None, progress=True):
    """Download ModaNet's annotation JSON files into `paths.annotations_dir`: {split: Path}."""
    sources = ANNOTATIONS if sources is None else sources
    unknown = [s for s in splits if s not in sources]
    if unknown:
        raise ValueError(f"Unknown annotation split(s) {unknown}; known: {sorted(sources)}")
    return {split: download_file(sources[split]["url"],
                                 paths.annotations_dir / sources[split]["file"],
                                 md5=sources[split].get("md5"), progress=progress)
            for split in splits}


# --- route "fast": images.zip --------------------------------------------------------------

def extract_zip_images(zip_path, images_dir, wanted=None, progress=True):
    """Write the zip's image files (by base name) into `images_dir`; returns a summary dict.

    `wanted`: optional set of file names to keep. Files already present with the member's
    size are skipped; each file is written atomically and its CRC checked while reading.
    """
    zip_path, images_dir = Path(zip_path), Path(images_dir)
    summary = {"archive": str(zip_path), "written": 0, "skipped": 0, "not_wanted": 0,
               "ignored": 0, "duplicates": 0}
    found = set()
    damaged = (f"{zip_path}: truncated or damaged archive ({{}}). Delete it and download "
               "it again.")
    try:
        with zipfile.ZipFile(zip_path) as archive:
            members = [m for m in archive.infolist() if not m.is_dir()]
            for member in tqdm(members, desc=f"unzip {zip_path.name}", unit="file",
                               disable=not progress):
                name = PurePosixPath(member.filename).name
                if not name or name.startswith(".") or "__MACOSX" in member.filename:
                    summary["ignored"] += 1
                elif wanted is not None and name not in wanted:
                    summary["not_wanted"] += 1
                elif name in found:
                    summary["duplicates"] += 1
                else:
                    found.add(name)
                    target = images_dir / name
                    if target.is_file() and target.stat().st_size == member.file_size:
                        summary["skipped"] += 1
                        continue
                    with archive.open(member) as src, atomic_write(target, "wb") as dst:
                        shutil.copyfileobj(src, dst, 1 << 20)
                    summary["written"] += 1
    except FileNotFoundError:
        raise DownloadError(f"{zip_path}: archive not found. Download it first.") from None
    except (zipfile.BadZipFile, zlib.error, EOFError) as err:
        raise DownloadError(damaged.format(err)) from None
    missing = sorted(set(wanted) - found) if wanted is not None else []
    summary["missing"] = len(missing)
    summary["missing_names"] = missing[:LISTED]
    return summary


# --- route "full": PaperDoll's photos.lmdb(.tar) -------------------------------------------

def unpack_lmdb_tar(tar_path, progress=True, chunk_size=1 << 20):
    """Extract the LMDB folder of `tar_path` next to it (resumable); returns the folder.

    Skipped when the folder already holds data.mdb. Files are copied into
    `<folder>.part/` by their offsets in the (uncompressed) tar, so an interrupted run
    continues where it stopped; the folder gets its final name only when complete.
    """
    tar_path = Path(tar_path)
    try:
        with tarfile.open(tar_path, "r:") as tar:
            members = [m for m in tar.getmembers() if m.isfile()]
    except FileNotFoundError:
        raise DownloadError(f"{tar_path}: archive not found. Download it first.") from None
    except (tarfile.TarError, EOFError) as err:
        raise DownloadError(f"{tar_path}: not a readable tar archive ({err}). Delete it and "
                            "download it again.") from None
    data_files = [m for m in members if PurePosixPath(m.name).name == "data.mdb"]
    if not data_files:
        raise DownloadError(f"{tar_path}: holds no LMDB (no data.mdb inside). "
                            "Is it PaperDoll's photos.lmdb.tar?")
    folder_in_tar = PurePosixPath(data_files[0].name).parent
    folder = tar_path.parent / (folder_in_tar.name or tar_path.stem)
    if (folder / "data.mdb").is_file():
        return folder
    chosen = [m for m in members if PurePosixPath(m.name).parent == folder_in_tar]
    staging = folder.with_name(folder.name + ".part")
    staging.mkdir(parents=True, exist_ok=True)
    done = sum(min(f.stat().st_size, m.size) for m in chosen
               if (f := staging / PurePosixPath(m.name).name).is_file())
    _check_free_space(staging, sum(m.size for m in chosen) - done, tar_path)
    with open(tar_path, "rb") as src, tqdm(total=sum(m.size for m in chosen), unit="B",
                                           unit_scale=True, unit_divisor=1024,
                                           desc=f"untar {tar_path.name}", disable=not progress) as bar:
        for member in chosen:
            out_path = staging / PurePosixPath(member.name).name
            have = out_path.stat().st_size if out_path.is_file() else 0
            if have > member.size:
                out_path.unlink()
                have = 0
            bar.update(have)
            src.seek(member.offset_data + have)
            with open(out_path, "ab") as out:
                while have < member.size:
                    chunk = src.read(min(chunk_size, member.size - have))
                    if not chunk:
                        raise DownloadError(
                            f"{tar_path}: truncated archive ({member.name} ends after {have} of "
                            f"{member.size} bytes). Resume or redo the download, then run again.")
                    out.write(chunk)
                    have += len(chunk)
                    bar.update(len(chunk))
    os.replace(staging, folder)
    return folder


def _open_lmdb(path):
    path = Path(path)
    try:
        return lmdb.open(str(path), readonly=True, lock=False, subdir=path.is_dir())
    except lmdb.Error as err:
        raise DownloadError(f"{path}: cannot open it as an LMDB ({err}).") from None


def _entry_id_and_name(entry, index):
    try:
        image_id, file_name = entry["id"], PurePosixPath(str(entry["file_name"])).name
    except (KeyError, TypeError):
        raise DataError(f"image entry #{index}: needs 'id' and 'file_name', got {entry!r}") from None
    if not file_name:
        raise DataError(f"image entry #{index}: empty 'file_name' in {entry!r}")
    return image_id, file_name


def _is_image(data):
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.verify()
        return True
    except Exception:  # Pillow raises many types for bad data (OSError, SyntaxError, ...)
        return False


def extract_lmdb_images(lmdb_path_or_tar, image_entries, images_dir, progress=True):
    """Write the photos of `image_entries` ({"id", "file_name"}) from PaperDoll's LMDB.

    `lmdb_path_or_tar`: photos.lmdb.tar (unpacked beside it first) or the LMDB folder.
    The key of a photo is its id as ASCII decimal; the value, the encoded image, is written
    unchanged to images_dir/<file_name>. Returns a summary; when ids are missing or their
    bytes are not an image, raises DownloadError (with `.summary`) after writing the rest.
    """
    source, images_dir = Path(lmdb_path_or_tar), Path(images_dir)
    if source.is_file() and tarfile.is_tarfile(source):
        source = unpack_lmdb_tar(source, progress=progress)
    elif not source.exists():
        raise DownloadError(f"{source}: LMDB or tar not found. Download it first.")
    entries = [_entry_id_and_name(e, i) for i, e in enumerate(image_entries)]
    summary = {"lmdb": str(source), "written": 0, "skipped": 0, "missing": 0, "undecodable": 0,
               "missing_ids": [], "undecodable_ids": []}
    env = _open_lmdb(source)
    try:
        with env.begin() as txn:
            for image_id, file_name in tqdm(entries, desc="photos from LMDB", unit="img",
                                            disable=not progress):
                target = images_dir / file_name
                if target.is_file() and target.stat().st_size > 0:
                    summary["skipped"] += 1
                    continue
                data = txn.get(str(image_id).encode("ascii"))
                if data is None:
                    summary["missing"] += 1
                    summary["missing_ids"].append(image_id)
                elif not _is_image(data):
                    summary["undecodable"] += 1
                    summary["undecodable_ids"].append(image_id)
                else:
                    with atomic_write(target, "wb") as out:
                        out.write(data)
                    summary["written"] += 1
    finally:
        env.close()
    if summary["missing"] or summary["undecodable"]:
        error = DownloadError(
            f"{source}: {summary['missing']} photo id(s) not in the LMDB "
            f"(first: {summary['missing_ids'][:LISTED]}) and {summary['undecodable']} not a "
            f"readable image (first: {summary['undecodable_ids'][:LISTED]}); the other "
            f"{summary['written'] + summary['skipped']} are in {images_dir}. Check that this is "
            "PaperDoll's photos.lmdb and that the download was complete.")
        error.summary = summary
        raise error
    return summary


# --- everything ----------------------------------------------------------------------------

def _image_entries(annotation_files):
    """Image entries of the annotation files, in order, without repeats of an id."""
    entries, seen = [], set()
    for path in annotation_files:
        data = read_json(path, "ModaNet annotation file")
        images = data.get("images") if isinstance(data, dict) else None
        if not isinstance(images, list):
            raise DataError(f"{path}: no 'images' list; not a ModaNet annotation file")
        for index, entry in enumerate(images):
            image_id, file_name = _entry_id_and_name(entry, index)
            if image_id not in seen:
                seen.add(image_id)
                entries.append({"id": image_id, "file_name": file_name})
    return entries


def fetch_modanet(paths, route="fast", sources=None, progress=True):
    """Annotations, then the photos by `route` ("fast" zip or "full" LMDB); returns a summary.

    A re-run skips what is done: files already downloaded are not fetched again, and when
    every train image is already in `paths.images` the image archive is not touched.
    """
    if route not in ROUTES:
        raise ValueError(f"Unknown route {route!r}: choose one of {ROUTES}")
    sources = default_sources() if sources is None else sources
    annotation_files = download_annotations(paths, ("train", "val"), sources["annotations"],
                                            progress=progress)
    summary = {"route": route, "annotations": {k: str(v) for k, v in annotation_files.items()}}
    train_entries = _image_entries([annotation_files["train"]])
    entries = _image_entries([annotation_files["train"], annotation_files["val"]])
    if all((paths.images / e["file_name"]).is_file() for e in train_entries):
        summary["images"] = {"already_present": True}
    else:
        source = sources[route]
        unpacked = paths.downloads / Path(source["file"]).stem  # photos.lmdb (full route)
        if route == "full" and (unpacked / "data.mdb").is_file():
            archive = unpacked  # the tar may be deleted once unpacked, to save 40 GB
        else:
            archive = download_file(source["url"], paths.downloads / source["file"],
                                    md5=source.get("md5"), progress=progress)
        if route == "fast":
            summary["images"] = extract_zip_images(
                archive, paths.images, wanted={e["file_name"] for e in entries}, progress=progress)
        else:
            summary["images"] = extract_lmdb_images(archive, entries, paths.images,
                                                    progress=progress)
    missing_train = [e["file_name"] for e in train_entries
                     if not (paths.images / e["file_name"]).is_file()]
    summary["train_images"] = len(train_entries)
    summary["train_images_missing"] = len(missing_train)
    summary["train_images_missing_names"] = missing_train[:LISTED]
    return summary


def main(argv=None, sources=None):
    """Command line: fetch real ModaNet into data/modanet (or --root); returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m helpers.download",
                                     description="Download ModaNet's annotations and photos.")
    parser.add_argument("--route", choices=ROUTES, default="fast",
                        help="fast: images.zip (~2 GB); full: PaperDoll photos.lmdb.tar (~40 GB)")
    parser.add_argument("--root", type=Path, default=None,
                        help="data folder (default: the 'full' profile's, data/modanet)")
    parser.add_argument("--annotations-only", action="store_true",
                        help="download only the two annotation files")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    paths = Paths(args.root.expanduser()) if args.root else Paths.for_profile("full")
    sources = default_sources() if sources is None else sources
    try:
        if args.annotations_only:
            files = download_annotations(paths, sources=sources["annotations"],
                                         progress=not args.quiet)
            result = {split: str(path) for split, path in files.items()}
        else:
            result = fetch_modanet(paths, args.route, sources, progress=not args.quiet)
    except (DownloadError, DataError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except OSError as err:     # the data folder not writable, disk full
        print(f"error: {describe_os_error(err)}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    remove_temp_files_on_signals()     # SIGTERM / Ctrl-C leave no hidden temp file behind
    sys.exit(main())

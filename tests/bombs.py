"""Hostile files for tests: a PNG whose header claims more pixels than it holds, a limited subprocess.

`png_claiming(path, width, height)` writes a real 1x1 PNG with its IHDR size rewritten (and the
chunk's CRC fixed), so Pillow reads the claimed size from the header. At 100000 x 100000 Pillow's
Image.open raises DecompressionBombError (not an OSError) before decoding anything.
`run_limited(code)` runs Python code in a child with a 2 GB address-space cap, so a regression
that asks for gigabytes or segfaults fails the test instead of killing pytest.
"""
import io
import struct
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
MEMORY_CAP = 2 * 1024 ** 3


def png_claiming(path, width, height):
    buffer = io.BytesIO()
    Image.new("RGB", (1, 1), (200, 10, 10)).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    ihdr = data.index(b"IHDR")
    data[ihdr + 4:ihdr + 12] = struct.pack(">II", width, height)
    body = bytes(data[ihdr:ihdr + 4 + 13])
    data[ihdr + 17:ihdr + 21] = struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)
    Path(path).write_bytes(bytes(data))
    return Path(path)


def run_limited(code, memory=MEMORY_CAP):
    """(returncode, stdout, stderr) of `code` run by this Python under an address-space cap."""
    prelude = (f"import resource; resource.setrlimit(resource.RLIMIT_AS, ({memory}, {memory}))\n"
               f"import sys; sys.path.insert(0, {str(ROOT)!r})\n")
    done = subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)], capture_output=True,
                          text=True, cwd=ROOT)
    return done.returncode, done.stdout, done.stderr

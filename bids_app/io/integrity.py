"""Is a data file complete? Cheap checks for truncated FIF and NIfTI files (issue 19.5).

A copy interrupted half-way (a full disk, a transfer cut, ``datalad get`` stopped) leaves a file
whose header reads well: MNE reads a truncated FIF as a shorter recording with a warning, and
nibabel loads a truncated ``.nii.gz`` header and fails only when the data are read, hours later.
Both checks here read a few bytes per tag or per file, never the data:

- **FIF** (:func:`fif_problem`): a FIF file is a chain of tags, each with a 16-byte header
  (kind, type, size, position of the next tag; big-endian), and blocks opened and closed by
  ``FIFF_BLOCK_START``/``FIFF_BLOCK_END`` tags. The chain of a complete file ends with a tag
  marked last (``next = -1``) or exactly at the end of the file, every tag lies inside the file,
  and every block is closed (the raw data block closes after its last buffer). Walking the
  headers of a one-hour recording takes milliseconds.
- **NIfTI** (:func:`nifti_problem`): the header gives where the data start and how many bytes
  they take. An uncompressed file must be at least that long. A gzip file records its
  uncompressed length (modulo 2**32) in its last four bytes; when it is not the expected length
  the stream is decompressed (isal, ~0.3 s per 40 MB) to tell a truncated file from a file with
  trailing data or several gzip members.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

#: FIF tag kinds and the "last tag" marker (MNE's ``FIFF`` constants).
_FIFF_FILE_ID = 100
_FIFF_BLOCK_START = 104
_FIFF_BLOCK_END = 105
_FIFFV_NEXT_SEQ = 0
_FIFFV_NEXT_NONE = -1
_TAG_HEADER = struct.Struct(">iIii")  # kind, type, size, next


def fif_problem(path: Path) -> str | None:
    """Why a FIF file is incomplete (truncated or corrupt), or None when it is whole.

    Parameters
    ----------
    path : Path
        A FIF file (raw recording, calibration, transform...).

    Returns
    -------
    problem : str or None
        A sentence for the user, naming the byte where the file breaks off.
    """
    path = Path(path)
    size = path.stat().st_size
    open_blocks = blocks = 0
    visited: set[int] = set()
    with open(path, "rb") as fid:
        first = fid.read(_TAG_HEADER.size)
        if len(first) < _TAG_HEADER.size or _TAG_HEADER.unpack(first)[0] != _FIFF_FILE_ID:
            return "not a FIF file: it does not start with a FIF file identifier"
        pos = 0
        while pos != size:
            if pos + _TAG_HEADER.size > size:
                return (f"truncated: the file ends at byte {size:,} inside the header of a tag "
                        f"starting at byte {pos:,}")
            fid.seek(pos)
            kind, _type, tag_size, next_pos = _TAG_HEADER.unpack(fid.read(_TAG_HEADER.size))
            end = pos + _TAG_HEADER.size + tag_size
            if tag_size < 0 or end > size:
                return (f"truncated: a tag of {tag_size:,} bytes starts at byte {pos:,} but the "
                        f"file ends at byte {size:,}")
            if kind == _FIFF_BLOCK_START:
                open_blocks += 1
                blocks += 1
            elif kind == _FIFF_BLOCK_END:
                open_blocks -= 1
            if next_pos == _FIFFV_NEXT_NONE:
                break
            if next_pos == _FIFFV_NEXT_SEQ:
                pos = end
            elif next_pos in visited or next_pos > size or next_pos < 0:
                return f"corrupt: the tag at byte {pos:,} points to byte {next_pos:,}"
            else:
                visited.add(next_pos)
                pos = next_pos
    if open_blocks or not blocks:
        return (f"truncated: {open_blocks} block(s) of the file (measurement, raw data...) are "
                f"never closed; the file ends at byte {size:,}" if blocks else
                f"truncated: the file ends at byte {size:,}, before its first block")
    return None


def nifti_problem(path: Path, img) -> str | None:
    """Why a NIfTI file holds fewer data bytes than its header announces, or None.

    Parameters
    ----------
    path : Path
        The ``.nii`` or ``.nii.gz`` file.
    img : nibabel image
        ``nibabel.load(path)`` (only its header and array proxy are used).

    Returns
    -------
    problem : str or None
        A sentence for the user with the bytes found and expected.
    """
    path = Path(path)
    proxy = img.dataobj
    expected = int(proxy.offset) + int(np.prod(proxy.shape)) * np.dtype(proxy.dtype).itemsize
    if not path.name.endswith(".gz"):
        size = path.stat().st_size
        if size < expected:
            return (f"truncated: {size:,} bytes, but its header announces {expected:,} "
                    f"(image {tuple(proxy.shape)} of {np.dtype(proxy.dtype).name})")
        return None
    with open(path, "rb") as fid:
        fid.seek(-4, 2)
        (recorded,) = struct.unpack("<I", fid.read(4))
    if recorded == expected % 2**32:
        return None
    return _gzip_problem(path, expected, tuple(proxy.shape), np.dtype(proxy.dtype).name)


def _gzip_problem(path: Path, expected: int, shape: tuple, dtype: str) -> str | None:
    """Decompress the whole stream: complete and long enough, or why not."""
    from isal import igzip

    found = 0
    try:
        with igzip.open(path, "rb") as stream:
            while chunk := stream.read(1 << 24):
                found += len(chunk)
    except EOFError:
        return (f"truncated: the compressed data break off before their end (the header "
                f"announces {expected:,} bytes, image {shape} of {dtype})")
    except (OSError, zlib.error) as err:
        return f"corrupt: the compressed data cannot be read ({err})"
    if found < expected:
        return (f"truncated: {found:,} bytes once decompressed, but its header announces "
                f"{expected:,} (image {shape} of {dtype})")
    return None

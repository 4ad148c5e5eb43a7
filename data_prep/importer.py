"""The importer pipeline: one raw dataset -> the prepared layout (data_prep.layout), written once here.

A dataset module supplies an `Importer`, and `prepare_dataset` does the rest: find the samples,
refuse a re-run with other settings, remove a killed run's temp files, convert each sample in worker
processes (reusing the ones an earlier run finished, skipping and reporting the ones that fail),
split, write dataset.json and print the one-line summary. What a dataset supplies:

    find_samples(root, limit) -> Found   where its files are: Found(ids, samples, skipped, warnings)
        ids      every candidate id in numeric order (the first `limit`); splits are made over all
                 of them, so a sample skipped later does not move the others between splits
        samples  Sample(sample_id, image, annotation) for each id that can be converted
        skipped  {id: reason} of candidates it already knows are unusable (e.g. no label file)
        warnings lines printed as "warning: ..." (e.g. files it ignored)
        A root that is missing or not this dataset: raise MissingPathError / DatasetError.
    convert_sample(sample) -> (image, label)   one sample at its raw size: uint8 BGR image (read_image)
        and uint8 label map of class IDs (IGNORE_INDEX only with allow_ignore); raise DatasetError
        to skip it. Runs in spawned workers, so it must pickle: a module-level function, or a
        functools.partial of one binding the dataset's options. Resizing and writing are done here.
    split(ids) -> {"train": [...], "val": [...], "test": [...]}   its split policy (data_prep.splits)
    settings      options that change a sample's files, recorded in dataset.json (--size always is);
                  a re-run into the same --out with other values is refused
    meta(tally)   its dataset.json keys after "root" (options, "split": how it split); tally holds
                  the pixel counts of all 256 label values and the tally of sample_stat
    sample_stat   optional module-level function of a finished label map, tallied over samples

The CLI flags every importer takes come from add_common_arguments, and common_options(args) hands
them to the dataset's prepare(root, out, **options), which builds its Importer and calls
prepare_dataset. A new layout is then about 100 lines: a file pattern in find_samples, a reader in
convert_sample, its flags (tests/test_importer.py holds a 40-line one).
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import cv2
import numpy as np
from tqdm import tqdm

from configs import NUM_CLASSES
from configs.command_line import positive_int
from configs.errors import ConfigError
from data_prep.atomic import write_image
from data_prep.framing import dataset_framing
from data_prep.layout import DatasetError, PreparedDataset, decode, write_meta, write_splits
from data_prep.rerun import check_reuse, discard_outputs, finished_label, remove_stale_temp_files
from data_prep.splits import filter_splits, id_sort_key

Task = TypeVar("Task")
Result = TypeVar("Result")

# A JPEG's start/end-of-image markers. OpenCV 4.x decodes a truncated JPEG "successfully" (grey bottom
# rows) and 5.x still decodes one cut just before the marker, so a missing marker is the cheap sign
# of a download cut short. 0xFFD9 cannot occur inside entropy-coded data (0xFF is always stuffed).
JPEG_SOI, JPEG_EOI = b"\xff\xd8", b"\xff\xd9"
JPEG_TAIL = 4096


# ---------------------------------------------------------------------------------------------
# What a dataset supplies


@dataclass(frozen=True)
class Sample:
    """One sample to convert: its id (the prepared file stem), its raw image and its annotation."""

    sample_id: str
    image: Path
    annotation: Any  # whatever convert_sample builds the label map from (a file, part files); must pickle


@dataclass
class Found:
    """What find_samples found (see the module docstring)."""

    ids: list[str]
    samples: list[Sample]
    skipped: dict[str, str] = field(default_factory=dict)  # id -> reason
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Tally:
    """Totals over the finished samples, for an importer's dataset.json keys."""

    pixel_counts: np.ndarray  # (256,) pixels per label value (IGNORE_INDEX included)
    stats: Counter  # sample_stat value -> number of samples


@dataclass(frozen=True)
class Importer:
    """One raw dataset's part of the pipeline (see the module docstring)."""

    name: str  # the progress bar's label (its CLI subcommand)
    source: str  # dataset.json "source" and the summary's first word
    find_samples: Callable[[Path, int | None], Found]
    convert_sample: Callable[[Sample], tuple[np.ndarray, np.ndarray]]
    split: Callable[[list[str]], dict[str, list[str]]]
    settings: Mapping[str, Any] = field(default_factory=dict)
    meta: Callable[[Tally], dict] = lambda tally: {}
    sample_stat: Callable[[np.ndarray], Hashable] | None = None
    allow_ignore: bool = False  # IGNORE_INDEX is a label value it writes
    to_classes: np.ndarray | None = None  # 256-entry table, masks in another label set's IDs -> ours


# ---------------------------------------------------------------------------------------------
# Reading and resizing


def read_image(path: Path) -> np.ndarray:
    """Read a raw face image as uint8 BGR (grey, alpha and 16-bit are converted)."""
    image, data = decode(path, cv2.IMREAD_COLOR, "image")
    if data[:2].tobytes() == JPEG_SOI and JPEG_EOI not in data[-JPEG_TAIL:].tobytes():
        raise DatasetError(f"{path}: truncated JPEG (no end-of-image marker)")
    return image


def resize_image(image: np.ndarray, size: int) -> np.ndarray:
    """Resize to size x size: area averaging when shrinking (no aliasing), bilinear when growing."""
    h, w = image.shape[:2]
    if (h, w) == (size, size):
        return image
    shrink = size < h or size < w
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def resize_label_map(label: np.ndarray, size: int) -> np.ndarray:
    """Resize a label map to size x size with nearest neighbour (never invents IDs).

    INTER_NEAREST_EXACT rather than INTER_NEAREST: it samples pixel centres (as PIL's NEAREST does);
    INTER_NEAREST floors x * scale and drifts by up to half a source pixel at non-integer ratios.
    """
    if label.shape == (size, size):
        return label
    return cv2.resize(label, (size, size), interpolation=cv2.INTER_NEAREST_EXACT)


# ---------------------------------------------------------------------------------------------
# One sample


@dataclass(frozen=True)
class SampleResult:
    sample_id: str
    counts: np.ndarray | None = None  # (256,) pixel counts of the written label map
    stat: Hashable = None  # sample_stat of the written label map
    reason: str | None = None  # why the sample was skipped
    reused: bool = False  # finished by an earlier run, left as it was


def _finished(
    sample_id: str, label: np.ndarray, stat: Callable[[np.ndarray], Hashable] | None, reused: bool = False
) -> SampleResult:
    return SampleResult(
        sample_id,
        counts=np.bincount(label.ravel(), minlength=256),
        stat=stat(label) if stat is not None else None,
        reused=reused,
    )


def process_sample(
    sample: Sample,
    *,
    convert: Callable[[Sample], tuple[np.ndarray, np.ndarray]],
    out: Path,
    size: int,
    allow_ignore: bool,
    stat: Callable[[np.ndarray], Hashable] | None,
) -> SampleResult:
    """Prepare one sample (image, then label map last) or say why it was skipped."""
    prep = PreparedDataset(out)
    image_out, mask_out = prep.image_path(sample.sample_id), prep.mask_path(sample.sample_id)
    label = finished_label(image_out, mask_out, size, allow_ignore=allow_ignore)
    if label is not None:
        return _finished(sample.sample_id, label, stat, reused=True)
    try:
        image, label = convert(sample)
    except DatasetError as err:
        discard_outputs(image_out, mask_out)
        return SampleResult(sample.sample_id, reason=str(err))
    label = resize_label_map(label, size)
    write_image(image_out, cv2.cvtColor(resize_image(image, size), cv2.COLOR_BGR2RGB))
    write_image(mask_out, label)
    return _finished(sample.sample_id, label, stat)


# ---------------------------------------------------------------------------------------------
# The whole dataset


def prepare_dataset(
    importer: Importer,
    root: str | Path,
    out: str | Path,
    *,
    size: int = 512,
    workers: int = 1,
    limit: int | None = None,
    progress: bool = True,
) -> dict:
    """Prepare a raw dataset with importer into out; returns dataset.json's content.

    Re-running over the same output reuses finished samples.
    """
    root, out = Path(root), Path(out)
    if size < 1:
        raise ConfigError(f"size must be a positive number of pixels, got {size}")
    found = importer.find_samples(root, limit)
    for warning in found.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    # Split all candidate ids, then drop the skipped ones: a bad sample must not reshuffle the rest.
    splits = importer.split(found.ids)

    prep = PreparedDataset(out)
    check_reuse(prep, importer.source, {"size": size, **importer.settings})
    remove_stale_temp_files(prep)
    convert = partial(
        process_sample,
        convert=importer.convert_sample,
        out=out,
        size=size,
        allow_ignore=importer.allow_ignore,
        stat=importer.sample_stat,
    )

    pixel_counts = np.zeros(256, dtype=np.int64)
    done: list[str] = []
    skipped = [{"id": i, "reason": reason} for i, reason in found.skipped.items()]
    stats: Counter = Counter()
    reused = 0
    for result in run_tasks(convert, found.samples, workers, progress, desc=importer.name):
        if result.reason is not None:
            skipped.append({"id": result.sample_id, "reason": result.reason})
            continue
        done.append(result.sample_id)
        pixel_counts += result.counts
        stats[result.stat] += 1
        reused += result.reused
    skipped.sort(key=lambda s: id_sort_key(s["id"]))

    splits = filter_splits(splits, done)
    write_splits(prep, splits)
    # Frequencies over the 19 classes only: ignored pixels carry no label.
    meta = write_meta(
        prep,
        source=importer.source,
        size=size,
        splits=splits,
        pixel_counts=pixel_counts[:NUM_CLASSES],
        skipped=skipped,
        extra={
            # Where the faces sit: crops of wild photos match it.
            "framing": dataset_framing(prep, done, importer.to_classes),
            "root": str(root.resolve()),
            **importer.meta(Tally(pixel_counts, stats)),
        },
    )
    print_summary(importer.source, root, out, meta, done, skipped, reused)
    from data_prep.prepare_html import write_prepare_html  # albumentations: only once there is data

    print(f"report: {write_prepare_html(prep, meta)} (samples, class frequencies, augmentation preview)")
    return meta


def print_summary(
    source: str, root: Path, out: Path, meta: dict, done: Sequence[str], skipped: Sequence[dict], reused: int
) -> None:
    """Print a prepared dataset's one-line summary; raise if no sample could be prepared."""
    counts = ", ".join(f"{name} {n}" for name, n in meta["counts"].items())
    print(
        f"{source}: {len(done)} samples ({counts}), {len(skipped)} skipped"
        f"{' (reasons in dataset.json)' if skipped else ''}, {reused} reused from an earlier run "
        f"-> {out}"
    )
    if not done:
        raise DatasetError(f"{root}: no sample could be prepared; first reason: {skipped[0]['reason']}")


def _init_worker() -> None:
    # The processes are the parallelism; OpenCV's own thread pool in each would oversubscribe cores.
    cv2.setNumThreads(1)


def run_tasks(
    fn: Callable[[Task], Result], tasks: Sequence[Task], workers: int, progress: bool, desc: str
) -> Iterable[Result]:
    """Yield fn(task) per task, in completion order, from worker processes (in-process for one), with a bar.

    fn and the tasks must pickle (a module-level function or a functools.partial of one): spawned
    workers import fn by name.
    """
    bar = tqdm(total=len(tasks), desc=desc, unit="img", disable=not progress, smoothing=0.05)
    with bar:
        if workers <= 1:
            for task in tasks:
                yield fn(task)
                bar.update()
            return
        # Chunks amortise inter-process overhead; several per worker keep the load balanced.
        chunksize = max(1, min(64, len(tasks) // (workers * 8)))
        # spawn, not fork: a forked child inherits OpenCV's thread-pool state without its threads
        # and hangs in its first parallel OpenCV call once the parent has used that pool.
        context = multiprocessing.get_context("spawn")
        with context.Pool(workers, initializer=_init_worker) as pool:
            for result in pool.imap_unordered(fn, tasks, chunksize=chunksize):
                yield result
                bar.update()


# ---------------------------------------------------------------------------------------------
# CLI


def add_common_arguments(
    parser: argparse.ArgumentParser,
    *,
    root_help: str,
    val_fraction: tuple[float | None, str],
    test_fraction: tuple[float | None, str],
) -> None:
    """Add the flags every importer takes: --root, --out, --size, --workers, the split, --seed, --limit.

    val_fraction, test_fraction: (default, help) as the dataset's split policy has them.
    """
    parser.add_argument("--root", type=Path, required=True, help=root_help)
    parser.add_argument("--out", type=Path, required=True, help="prepared dataset folder to write")
    parser.add_argument("--size", type=positive_int, default=512, help="output side in pixels (default 512)")
    parser.add_argument("--workers", type=positive_int, default=1, help="processes (default 1)")
    parser.add_argument("--val-fraction", type=float, default=val_fraction[0], help=val_fraction[1])
    parser.add_argument("--test-fraction", type=float, default=test_fraction[0], help=test_fraction[1])
    parser.add_argument("--seed", type=int, default=0, help="seed of the random split (default 0)")
    parser.add_argument(
        "--limit", type=positive_int, default=None, help="prepare only the first N ids (numeric order)"
    )


def common_options(args: argparse.Namespace) -> dict[str, Any]:
    """The add_common_arguments flags other than --root/--out, as keywords of a dataset's prepare()."""
    return {
        "size": args.size,
        "workers": args.workers,
        "val_fraction": args.val_fraction,
        "test_fraction": args.test_fraction,
        "seed": args.seed,
        "limit": args.limit,
    }

"""Commands on a trained checkpoint: ``predict``, ``serve``, ``export``."""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from pathlib import Path


def name_order(path: Path) -> tuple:
    """Sort key of a path by its parts, the numbers in a name compared as numbers: ``clip2`` before ``clip10``
    (a recorder's numbering is a speaker's arrival order, which running statistics follow)."""
    pieces = tuple(tuple((0, int(piece)) if piece.isdecimal() else (1, piece.lower())
                         for piece in re.split(r"(\d+)", part) if piece) for part in path.parts)
    return pieces, path.parts  # names equal but for case or leading zeros: by the names themselves


def folder_clips(folder: Path) -> list[Path]:
    """The audio files under ``folder`` (searched recursively), in :func:`name_order`: those soundfile reads
    (:data:`~mmser.audio.AUDIO_SUFFIXES`) and those it cannot (:data:`~mmser.audio.CONVERT_FIRST_SUFFIXES`, such
    as a phone's .m4a: each is reported in its place with how to convert it, never skipped unsaid); macOS
    metadata files (``._<name>``) are left out with a note."""
    from mmser.audio import AUDIO_SUFFIXES, CONVERT_FIRST_SUFFIXES, without_os_metadata

    named = sorted((p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES + CONVERT_FIRST_SUFFIXES
                    and p.is_file()), key=name_order)
    clips, left_out = without_os_metadata(named)
    if left_out:
        print(f"note: left out {left_out} macOS metadata file(s) in {folder} (._<name>, __MACOSX/): not audio",
              file=sys.stderr)
    return clips


CLIP_LIST_COLUMNS = ("path", "transcript", "speaker")


def clip_inputs(inputs: list[str]) -> list[tuple[str, str | None, str | None]]:
    """(path, transcript or None, speaker or None) for files, folders (searched recursively, in
    :func:`name_order`) and clip-list CSVs (columns path[,transcript][,speaker], in their rows' order; separated
    by commas, semicolons or tabs: :func:`~mmser.data.manifest.read_listing`).

    A named input that does not exist is an error before any work; a clip that exists but cannot be
    read is reported in its place by the predictor."""
    from mmser.errors import MmserError

    missing = [item for item in inputs if not Path(item).exists()]
    if missing:
        raise MmserError(f"not found: {', '.join(missing)}")
    out: list[tuple[str, str | None, str | None]] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            out += [(str(p), None, None) for p in folder_clips(path)]
        elif path.suffix.lower() == ".csv":
            from mmser.data.manifest import listed_name, read_listing  # only for clip lists (pandas)

            table = read_listing(path, ("path",), "clip list")
            unread = [name for name in table.columns if name not in CLIP_LIST_COLUMNS]
            if unread:  # e.g. "text" for "transcript": said, never ignored unsaid
                print(f"note: {path}: column(s) {', '.join(unread)} not read (a clip list reads "
                      f"{', '.join(CLIP_LIST_COLUMNS)})", file=sys.stderr)
            empty = [n for n, name in enumerate(table["path"], start=2) if not name.strip()]
            if empty:
                raise MmserError(f"{path}: empty 'path' in row(s) {empty[:10]}")
            for row in table.to_dict("records"):
                name = listed_name(path.parent, row["path"].strip())
                clip = Path(name) if Path(name).is_absolute() else path.parent / name
                out.append((str(clip), row.get("transcript") or None, row.get("speaker", "").strip() or None))
        else:
            out.append((str(path), None, None))
    if not out:
        raise MmserError(f"no audio clips found in {inputs}")
    return out


def check_predict_args(args: argparse.Namespace) -> None:
    from mmser.atomic import check_writable
    from mmser.errors import MmserError

    if args.window <= 0:
        raise MmserError(f"--window {args.window}: seconds per window must be > 0")
    if args.batch_size < 1:
        raise MmserError(f"--batch-size {args.batch_size}: must be >= 1")
    if args.transcript is not None and args.transcribe:
        raise MmserError("--transcript and --transcribe exclude each other: give the words, or let Whisper transcribe")
    if args.plot and not args.timeline:
        raise MmserError("--plot draws a timeline: add --timeline")
    if args.timeline and args.transcript is not None:
        raise MmserError("--timeline with --transcript: one transcript cannot be split by time; use --transcribe "
                         "(each segment gets the words Whisper times inside it)")
    for path in (args.out, args.plot):  # where the predictions go, checked before any is made
        if path:
            check_writable(path)


def cmd_predict(args: argparse.Namespace) -> None:
    from mmser.devices import resolve_device
    from mmser.ensemble import open_predictor
    from mmser.errors import MmserError
    from mmser.inference import combine_speaker
    from mmser.labels import EMOTIONS

    check_predict_args(args)
    clips = clip_inputs(args.clips)
    enrolment = [c for c, _, _ in clip_inputs(args.enrol)] if args.enrol else None
    predictor = open_predictor(args.checkpoint, device=resolve_device(args.device), window_s=args.window)
    note_narrow_band([c for c, _, _ in clips] + (enrolment or []), args.checkpoint)
    if args.timeline:
        with predictor.keeping_frames():
            speaker = combine_speaker(predictor.enrol_parts(enrolment, args.batch_size)) if enrolment else None
            return print_timeline(predictor, clips, args, speaker)
    rows = predicted_rows(predictor, clips, args, enrolment)  # every clip in input order, a failed one with its error
    failed = [row["error"] for row in rows if "error" in row]
    if args.json:
        one_clip = len(args.clips) == 1 and len(clips) == 1 and clips[0][0] == str(Path(args.clips[0]))  # not a folder
        print(json.dumps(rows[0] if one_clip else rows, indent=2))
    else:
        for row in rows:
            if "error" not in row:
                probs = "  ".join(f"{e} {row['probabilities'][e]:.3f}" for e in EMOTIONS)
                print(f"{row['path']}: {row['label']}\n  {probs}")
    if args.out:
        import pandas as pd

        from mmser.data.manifest import write_table

        table = pd.DataFrame([{"path": r["path"], "label": r.get("label", ""),
                               **{f"prob_{e}": r["probabilities"][e] if "error" not in r else None for e in EMOTIONS},
                               "error": r.get("error", "")} for r in rows])
        write_table(table, args.out)
        if not failed:  # every prediction is in --out now; a failed clip's unit is predicted again once mended
            shutil.rmtree(kept_folder(args.out), ignore_errors=True)
    if failed:
        raise MmserError(f"{len(failed)} of {len(clips)} clip(s) failed:\n  " + "\n  ".join(failed))


def note_narrow_band(paths: list[str], checkpoints: list[str]) -> None:
    """A note naming the clips recorded below 16 kHz (8 kHz telephone audio), whose predictions are less sure
    to be right: mmser's encoders heard full-band speech (``prepare`` warns alike), and so did the model unless
    ``checkpoints`` were trained with telephone-band copies, which the note says either way (whether such copies
    help depends on the recipe: results/README.md)."""
    from mmser.audio import narrow_band_files, narrow_band_warning
    from mmser.checkpoint import file_documents, telephone_band_training
    from mmser.ensemble import checkpoint_paths

    narrow = narrow_band_files(dict.fromkeys(paths))
    if not narrow:
        return
    documents = [doc for path in checkpoint_paths(checkpoints) for doc in file_documents(path)]
    print(f"note: {narrow_band_warning(list(narrow), narrow.values())}; {telephone_band_training(documents)}",
          file=sys.stderr)


def kept_folder(out: str) -> Path:
    """Where ``mmser predict --out OUT`` keeps finished predictions until OUT is written: ``OUT.partial/``."""
    return Path(f"{out}.partial")


def predicted_rows(predictor, clips: list[tuple[str, str | None, str | None]], args: argparse.Namespace,
                   enrolment: list[str] | None) -> list[dict]:
    """Each clip's output row (:func:`~mmser.cli.kept.result_row`), in input order. With ``--out``, finished
    predictions are kept in :func:`kept_folder` by unit (whole speakers where a checkpoint standardises with a
    speaker's clips, else runs of clips), so a stopped prediction resumes."""
    from mmser.audio import file_sha256
    from mmser.cli.kept import consecutive_units, file_identity, kept_rows
    from mmser.features.speaker_norm import rows_by_speaker

    whole_speakers = predictor.accumulates_speaker or (predictor.needs_enrolment and not enrolment)
    units = (list(rows_by_speaker([who for _, _, who in clips]).values()) if whole_speakers
             else consecutive_units(len(clips)))
    run_key = repr(([file_sha256(c) for c in args.checkpoint], args.window, args.transcript, args.transcribe,
                    [file_identity(path) for path in enrolment or []])) if args.out else ""

    def predict(pending, on_done):  # with predict_listed's own progress bar
        predict_listed(predictor, pending, args.batch_size, args.transcript, args.transcribe, enrolment,
                       on_done=on_done)

    return kept_rows(clips, units, run_key, kept_folder(args.out) if args.out else None, predict,
                     "speakers" if whole_speakers else "groups of clips")


def predict_listed(predictor, clips: list[tuple[str, str | None, str | None]], batch_size: int,
                   transcript: str | None = None, transcribe: bool = False,
                   enrolment: list[str] | None = None, bar=None, on_done=None) -> list:
    """Each of ``clips`` (path, transcript, speaker) predicted as ``mmser predict`` does: a
    :class:`~mmser.inference.Prediction` or the clip's error, in input order. ``transcript`` (one for every
    clip) overrides the listed ones; ``enrolment``: one speaker's enrolment clips (``--enrol``). A checkpoint
    trained with speaker statistics takes them from ``enrolment``, else from each listed speaker's other clips
    (``enrol``) or clips so far (``running``). Shows a progress bar (stderr) beyond one batch, or advances
    ``bar`` (a tqdm of a longer job) when given. ``on_done(indices, results)`` is called as clips are finished
    (each index once; :func:`mmser.cli.kept.kept_rows` keeps them)."""
    from tqdm import tqdm

    from mmser.inference import combine_speaker

    listed = listed_enrolment(predictor, clips, enrolment)
    results: list = [None] * len(clips)
    with predictor.keeping_frames():  # an enrolment clip that is also predicted is encoded once
        enrolment_parts = predictor.enrol_parts(enrolment, batch_size) if enrolment else None
        speaker = combine_speaker(enrolment_parts) if enrolment else None
        if not listed:
            speakers = running_speakers(predictor, clips) or enrolled_speakers(clips, enrolment, enrolment_parts)
        own_bar = bar is None
        if own_bar:
            bar = tqdm(total=len(clips), desc="predict", unit="clip", disable=len(clips) <= batch_size)
        groups = (each_listed_speaker(predictor, clips, listed, batch_size, results, bar) if listed
                  else [(list(range(len(clips))), speakers, [])])
        for indices, speakers, unread in groups:  # one speaker's clips at a time when each is enrolled on its own
            bar.update(len(unread))
            if on_done is not None and unread:
                on_done(unread, results)
            for start in range(0, len(indices), batch_size):
                chunk = indices[start:start + batch_size]
                for part, given in batch_speakers(predictor, clips, chunk, speakers, speaker):
                    pairs = [(clips[i][0], transcript if transcript is not None else clips[i][1]) for i in part]
                    predicted = predictor.predict_many(pairs, batch_size, transcribe=transcribe, speaker=given)
                    for i, result in zip(part, predicted):
                        results[i] = result
                bar.update(len(chunk))
                if on_done is not None:
                    on_done(chunk, results)
    if own_bar:
        bar.close()
    return results


def running_speakers(predictor, clips: list[tuple[str, str | None, str | None]]) -> dict:
    """For a checkpoint trained with ``features.speaker_norm.mode: running``: one
    :class:`~mmser.inference.RunningSpeaker` per speaker of a clip list's ``speaker`` column (all clips one
    speaker's when no clip names one), each fed its clips in the order given; ``{}`` for other checkpoints."""
    if not predictor.accumulates_speaker:
        return {}
    named = [who for _, _, who in clips]
    if any(who is None for who in named) and any(who is not None for who in named):
        raise partly_named(clips, "its speaker's clips so far")
    if named and named[0] is None and len(clips) > 1:
        folders = dict.fromkeys(str(Path(path).parent) for path, _, _ in clips)
        across = (f" (they come from {len(folders)} folders: {', '.join(list(folders)[:3])}"
                  f"{', ...' if len(folders) > 3 else ''}; if those are different speakers, name them)"
                  if len(folders) > 1 else "")
        print(f"note: this checkpoint standardises each clip with its speaker's clips so far "
              f"(features.speaker_norm.mode=running): the {len(clips)} clips are taken as one speaker's, in the "
              f"order given{across}; a clip-list CSV with a speaker column separates speakers", file=sys.stderr)
    return {who: predictor.new_speaker() for who in dict.fromkeys(named)}


def enrolled_speakers(clips: list[tuple[str, str | None, str | None]], enrolment: list[str] | None,
                      parts: list | None) -> dict:
    """For ``--enrol``: each predicted clip that is also an enrolment clip (same bytes) gets the statistics of
    the *other* enrolment clips, as training and cross-validation draw them (keys ``("left out", i)``); ``{}``
    when no predicted clip is among them, so every clip takes the statistics of all of them."""
    from mmser.errors import MmserError
    from mmser.inference import ONLY_SELF_ENROLLED, combine_speaker, without_clip

    if not enrolment:
        return {}
    left_out = same_bytes([clip for clip, _, _ in clips], enrolment)
    if not left_out:
        return {}
    if len(enrolment) == 1:
        raise MmserError(f"{clips[next(iter(left_out))][0]}: {ONLY_SELF_ENROLLED} (--enrol)")
    print(f"note: {len(left_out)} predicted clip(s) are also enrolment clips: each is standardised with the other "
          f"{len(enrolment) - 1}, as in training (a clip never counts in its own statistics)", file=sys.stderr)
    total = combine_speaker(parts)
    return {None: total, **{("left out", i): without_clip(total, parts[j]) for i, j in left_out.items()}}


def partly_named(clips: list[tuple[str, str | None, str | None]], statistics: str, instead: str = ""):
    """The error for a clip list that names some clips' speakers and not others', for a checkpoint that
    standardises each clip with ``statistics``."""
    from mmser.errors import MmserError

    missing = [path for path, _, who in clips if who is None][:3]
    return MmserError(f"some clips name a speaker and some do not (e.g. {', '.join(missing)}): this checkpoint "
                      f"standardises each clip with {statistics}, so every clip needs one{instead}")


def listed_enrolment(predictor, clips: list[tuple[str, str | None, str | None]],
                     enrolment: list[str] | None) -> dict[str, list[int]]:
    """For a checkpoint trained with enrolment clips and a clip list whose ``speaker`` column names every clip,
    without ``--enrol``: each speaker's clip indices (first appearance order). Each clip is then standardised
    with its speaker's *other* listed clips, as cross-validation standardises a test speaker's clips; ``{}``
    for other checkpoints or lists. Raises before any work when the list names some clips' speakers and not
    others', when a speaker has a single clip, or when ``--enrol`` (one speaker's clips) meets a list naming
    several speakers."""
    from mmser.errors import MmserError
    from mmser.features.speaker_norm import rows_by_speaker

    named = [who for _, _, who in clips]
    if not predictor.needs_enrolment or all(who is None for who in named):
        return {}
    listed = {who for who in named if who is not None}
    if enrolment:
        if len(listed) > 1:
            raise MmserError(f"--enrol gives the clips of one speaker, but the clip list names {len(listed)} speakers "
                             f"({', '.join(sorted(listed)[:3])}{', ...' if len(listed) > 3 else ''}): leave out "
                             "--enrol to standardise each clip with its speaker's other listed clips")
        return {}
    if None in named:
        raise partly_named(clips, f"other clips of its speaker (features.speaker_norm.mode="
                                  f"{predictor.features.speaker_norm.mode})", ", or give --enrol")
    groups = rows_by_speaker(named)
    leave_out = predictor.features.speaker_norm.leaves_clip_out
    single = [who for who, rows in groups.items() if len(rows) < 2 and leave_out]
    if single:
        raise MmserError(f"speaker(s) {', '.join(single[:3])}{', ...' if len(single) > 3 else ''} have a single clip "
                         "in the list: this checkpoint standardises a clip with other clips of its speaker, so each "
                         "speaker needs at least 2 (or give --enrol with other clips of one speaker)")
    labels = predictor.features.speaker_norm.test_enrolment_labels
    print(f"note: {len(clips)} clips of {len(groups)} speaker(s): each clip is standardised with its speaker's "
          + ("other listed clips, as in training (a clip never counts in its own statistics)" if leave_out else
             "listed clips, itself included, as this transductive checkpoint was trained")
          + (f"; this checkpoint was trained on enrolment clips of {', '.join(labels)} speech only, and the list's "
             "clips count whatever their emotion" if labels else ""), file=sys.stderr)
    wanted = predictor.features.speaker_norm.clips
    others = {who: len(rows) - leave_out for who, rows in groups.items()}  # the clips each clip's statistics get
    few = sorted((n, who) for who, n in others.items() if wanted is not None and n < wanted)
    if few:
        print(f"note: {len(few)} of {len(groups)} speaker(s) have fewer than the {wanted} clips per speaker this "
              f"checkpoint's statistics were trained with, so theirs are noisier (fewest: {few[0][1]}, "
              f"{few[0][0]})", file=sys.stderr)
    return groups


def each_listed_speaker(predictor, clips: list[tuple[str, str | None, str | None]], groups: dict[str, list[int]],
                        batch_size: int, results: list, bar=None):
    """Yield ``(indices, speakers, unread)`` for one listed speaker at a time (from :func:`listed_enrolment`): the
    clips to predict, each keyed ``("left out", i)`` to the moments of the speaker's other readable clips (all
    of them, itself included, for a ``transductive`` checkpoint, as it was trained), and the speaker's clips
    that could not be read (their errors in ``results``). Frames encoded for the moments are kept until the speaker's clips are
    predicted, then dropped, so memory holds one speaker's at a time. A clip that cannot be read gets its error
    in ``results`` and counts for no one; so does the clip of a speaker left with a single readable one. ``bar``
    (a tqdm) shows which speaker is being enrolled."""
    from mmser.audio import AudioError
    from mmser.errors import MmserError
    from mmser.inference import combine_speaker, without_clip

    leave_out = predictor.features.speaker_norm.leaves_clip_out
    for who, rows in groups.items():
        if bar is not None:
            bar.set_postfix_str(f"speaker {who}: {len(rows)} clips' statistics")
        with predictor.keeping_frames():
            own = {}
            for start in range(0, len(rows), batch_size):  # a batch of clips read at a time
                batch = rows[start:start + batch_size]
                try:
                    own.update(zip(batch, predictor.clip_moments([clips[i][0] for i in batch], batch_size)))
                except (AudioError, MmserError):  # find which clips cannot be read: the others still count
                    for i in batch:
                        try:
                            own[i] = predictor.clip_moments([clips[i][0]], batch_size)[0]
                        except (AudioError, MmserError) as err:
                            results[i] = err
            if leave_out and len(own) == 1:
                (i,) = own
                results[i] = MmserError(f"{clips[i][0]}: speaker {who!r} has no other readable clip in the list, and "
                                        "a clip never counts in its own statistics: give other clips of the speaker")
                own = {}
            total = combine_speaker(list(own.values())) if own else {}
            if bar is not None:
                bar.set_postfix_str(f"speaker {who}: predicting")
            yield list(own), {("left out", i): without_clip(total, moments) if leave_out else total
                              for i, moments in own.items()}, [i for i in rows if i not in own]


def same_bytes(paths: list[str], references: list[str]) -> dict[int, int]:
    """``{i: j}`` for each of ``paths`` whose bytes equal those of ``references[j]`` (the last such ``j``).

    Only files of equal size are hashed (SHA-256), so a 10k-clip prediction enrolled on a few clips reads almost
    nothing twice. A path that is not a file is left out: a missing clip fails on its own, with the others
    predicted."""
    from mmser.audio import file_sha256

    by_size: dict[int, list[int]] = {}
    for j, path in enumerate(references):
        by_size.setdefault(Path(path).stat().st_size, []).append(j)
    digests: dict[int, dict[str, int]] = {}  # size -> {digest: last reference j}, hashed when first needed
    matches = {}
    for i, path in enumerate(paths):
        if not Path(path).is_file() or (size := Path(path).stat().st_size) not in by_size:
            continue
        if size not in digests:
            digests[size] = {file_sha256(references[j]): j for j in by_size[size]}
        j = digests[size].get(file_sha256(path))
        if j is not None:
            matches[i] = j
    return matches


def batch_speakers(predictor, clips: list[tuple[str, str | None, str | None]], chunk: list[int], speakers: dict,
                   speaker) -> list[tuple[list[int], object]]:
    """The ``predict_many`` calls of one batch of clips (indices ``chunk``), as (indices, speaker): one per
    running speaker of the batch (each continues its own statistics), else one call giving each clip its
    enrolment moments (``speakers`` from :func:`enrolled_speakers`), or ``speaker`` for all of them."""
    if not speakers:
        return [(chunk, speaker)]
    if predictor.accumulates_speaker:
        by_speaker: dict[str | None, list[int]] = {}
        for i in chunk:
            by_speaker.setdefault(speaker_key(clips[i], i, speakers), []).append(i)
        return [(indices, speakers[who]) for who, indices in by_speaker.items()]
    return [(chunk, [speakers[speaker_key(clips[i], i, speakers)] for i in chunk])]


def speaker_key(clip: tuple[str, str | None, str | None], index: int, speakers: dict):
    """Which of ``speakers`` (from :func:`running_speakers` or :func:`enrolled_speakers`) predicts the clip."""
    if ("left out", index) in speakers:
        return ("left out", index)
    return clip[2] if speakers and clip[2] in speakers else None


def print_timeline(predictor, clips: list[tuple[str, str | None, str | None]], args: argparse.Namespace, speaker) -> None:
    """``predict --timeline``: one recording's segments (printed, ``--json``, ``--out`` CSV, ``--plot`` PNG)."""
    import json

    from mmser.data.manifest import write_table
    from mmser.errors import MmserError
    from mmser.timeline import TimelineOptions, plot_timeline

    if len(clips) != 1:
        raise MmserError(f"--timeline takes one recording, got {len(clips)}")
    path = clips[0][0]
    options = TimelineOptions(min_segment_s=args.min_segment, max_segment_s=args.max_segment)
    timeline = predictor.timeline(path, transcribe=args.transcribe, options=options, speaker=speaker,
                                  batch_size=args.batch_size)
    if args.json:
        print(json.dumps({"path": path, **timeline.to_dict()}, indent=2))
    else:
        for s in timeline.segments:
            what = s.label if s.status == "speech" else f"({s.status})"
            top = f"  p={s.probabilities[s.label]:.2f}" if s.label else ""
            words = f"  \"{s.words}\"" if s.words else ""
            print(f"{s.start_s:8.2f} - {s.end_s:8.2f} s  {what}{top}{words}")
    if args.out:
        write_table(timeline.table(), args.out)
    if args.plot:
        plot_timeline(timeline, args.plot, title=Path(path).name)


def cmd_serve(args: argparse.Namespace) -> None:
    import uvicorn

    from mmser.checkpoint import file_documents
    from mmser.devices import resolve_device
    from mmser.ensemble import checkpoint_paths, open_predictor
    from mmser.errors import MmserError
    from mmser.serve import StreamLimits, create_app

    for flag in ("max_upload_mb", "max_duration", "max_timeline", "max_streams", "max_stream_duration"):
        if getattr(args, flag) is not None and getattr(args, flag) <= 0:
            raise MmserError(f"--{flag.replace('_', '-')} {getattr(args, flag)}: must be > 0")
    device = resolve_device(args.device)
    upload_bytes = args.max_upload_mb * 1024 * 1024 if args.max_upload_mb is not None else None
    documents = [doc for path in checkpoint_paths(args.checkpoint) for doc in file_documents(path)]
    app = create_app(open_predictor(args.checkpoint, device=device), documents=documents,
                     **given(max_upload_bytes=upload_bytes, max_duration_s=args.max_duration,
                             max_timeline_s=args.max_timeline),
                     stream_limits=StreamLimits(**given(max_streams=args.max_streams,
                                                        max_stream_s=args.max_stream_duration)))
    uvicorn.run(app, host=args.host, port=args.port, workers=1)


def given(**options) -> dict:
    """The options a command line set (not None); the others keep the defaults of what they are passed to."""
    return {name: value for name, value in options.items() if value is not None}


def cmd_export(args: argparse.Namespace) -> None:
    import warnings

    from mmser.export_onnx import export

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        document = export(args.checkpoint, args.out, progress=True)
    out = Path(args.out)
    if "parts" not in document:
        print_export(document, out)
        return
    for part in document["parts"]:
        print(f"{part['checkpoint']} -> {out / part['folder']} (weight {part['weight']:.3f}):")
        print_export(part["document"], out / part["folder"])
    print(f"{out / 'export.json'}: the mean of the {len(document['parts'])} parts' probabilities, and where each is")


def print_export(document: dict, out: Path) -> None:
    """One checkpoint's graphs and checks, and what their audio input needs."""
    for r in document["members"]:
        audio = r["audio_input"]["kind"] if r["audio_input"] else None
        print(f"{out / r['file']}: inputs {r['inputs']} (audio: {audio}), ONNX Runtime vs PyTorch max |dp| "
              f"{r['max_abs_prob_diff']:.1e} (tolerance {r['tolerance']:.0e})")
    frames = document.get("audio_frames") or {}
    if frames.get("speaker_norm", "off") != "off":
        print(f"the graphs take frames pooled by {frames['pool_stride']} and standardised per speaker "
              f"(features.speaker_norm.mode: {frames['speaker_norm']}): {out / 'export.json'}'s "
              "audio_frames says how" + (f", with {frames['speaker_prior_file']}" if frames["speaker_prior_file"] else ""))


def cmd_info(args: argparse.Namespace) -> None:
    import json

    from mmser.checkpoint_info import describe_file, info_text

    documents = [describe_file(path) for path in args.checkpoint]  # every file read before anything is printed
    print(json.dumps(documents if len(documents) > 1 else documents[0], indent=2) if args.json
          else "\n".join(info_text(d) for d in documents))


def register(add) -> None:
    p = add("predict", cmd_predict, "label + 8 probabilities for clips, folders or a clip-list CSV")
    p.add_argument("clips", nargs="+", help="audio files, folders, or a CSV with path[,transcript][,speaker] (the "
                                            "speaker column, for checkpoints that standardise per speaker: "
                                            "speaker_norm.mode=running continues each speaker's statistics; "
                                            "mode=enrol without --enrol standardises each clip with its "
                                            "speaker's other listed clips)")
    p.add_argument("--checkpoint", required=True, nargs="+", metavar="CHECKPOINT",
                   help="an mmser checkpoint: from `mmser train` (given several configs, one file averaging them), or any "
                        "fold of a run (<run>/<fold>/model.safetensors); several: the mean of their probabilities "
                        "(what `mmser average` scores of their recipes); `mmser info` says what one needs")
    p.add_argument("--transcript", help="transcript of the clip (fused / text models)")
    p.add_argument("--transcribe", action="store_true", help="transcribe with Whisper when no transcript is given")
    p.add_argument("--enrol", nargs="+", metavar="CLIP",
                   help="other clips (files, folders or a clip-list CSV) of the one speaker of CLIPS, for checkpoints "
                        "trained with per-speaker standardisation (features.speaker_norm.mode=enrol); they should "
                        "span emotions as the training's enrolment clips did (calm speech only: train with "
                        "features.speaker_norm.labels=[neutral,calm]); a predicted clip that is among them is "
                        "standardised with the others only, as in training")
    p.add_argument("--json", action="store_true",
                   help="machine-readable output: a list of one object per clip in input order (a clip that failed "
                        "has 'error' in place of label and probabilities); one clip file given: its object alone")
    p.add_argument("--out", help="also write predictions to this CSV: a row per clip in input order, with an 'error' "
                                 "column (empty for a clip predicted)")
    p.add_argument("--window", type=float, default=30.0, help="seconds per window for long clips")
    p.add_argument("--batch-size", type=int, default=8, help="windows per encoder / model call")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (CUDA when there is one)")
    p.add_argument("--timeline", action="store_true",
                   help="one long recording: cut by voice activity, an emotion per speech segment (with --transcribe, "
                        "each segment's own words)")
    p.add_argument("--plot", help="with --timeline: draw it to this PNG")
    p.add_argument("--min-segment", type=float, default=1.0, help="--timeline: shorter speech is reported, not classified (s)")
    p.add_argument("--max-segment", type=float, default=15.0, help="--timeline: longer speech is cut (s, <= 30)")

    p = add("serve", cmd_serve, "HTTP service: the web page at /, POST /predict, POST /timeline, WS /stream (live "
                                "audio), GET /health, GET /labels, /docs")
    p.add_argument("--checkpoint", required=True, nargs="+", metavar="CHECKPOINT",
                   help="one checkpoint, or several whose probabilities are averaged")
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: this machine only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--max-upload-mb", type=int, help="largest upload, MB (default 20)")
    p.add_argument("--max-duration", type=float, help="longest clip /predict accepts, seconds (default 120)")
    p.add_argument("--max-timeline", type=float, help="longest recording /timeline accepts, seconds (default 1800)")
    p.add_argument("--max-streams", type=int, help="live /stream connections open at once (default 4)")
    p.add_argument("--max-stream-duration", type=float, help="longest /stream, seconds of audio (default 3600)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (CUDA when there is one)")

    p = add("export", cmd_export, "export a checkpoint's models (what they trained: fusion, head, fine-tuned encoder blocks) to ONNX, checked")
    p.add_argument("format", choices=["onnx"])
    p.add_argument("--checkpoint", required=True, nargs="+", metavar="CHECKPOINT",
                   help="one checkpoint, or several whose probabilities are averaged (each exported to OUT/part<k>)")
    p.add_argument("--out", required=True, help="output folder")

    p = add("info", cmd_info, "what a checkpoint holds (its parts, members, frames, training data) and what "
                              "predicting with it takes (enrolment clips, a speaker's clips in order, transcripts)")
    p.add_argument("checkpoint", nargs="+", help="checkpoint files (mmser train, or <run>/<fold>/model.safetensors)")
    p.add_argument("--json", action="store_true", help="machine-readable output")

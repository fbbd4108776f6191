"""Stage 1: the clip store. Generated clips are stored exactly (clips/<generator>/<id>.npy) with the
request that made them, and reused on resume while that request (generator config, prompt, seed,
reference image) is unchanged and the frames still hash to the stored value. Clips read from
files are referenced by path and content hash, never copied. A batch that raises is retried clip
by clip, so one bad clip fails alone; a generator that cannot work at all stops the run.
"""
from __future__ import annotations

import json
from typing import Any

from vdeval import registry
from vdeval.errors import VdevalError
from vdeval.generators.base import ClipRequest, GeneratedClip, Generator, GeneratorSetupError
from vdeval.run.progress import one_line, progress_bar
from vdeval.store import RunDir, atomic_write_json, load_array, save_array, sha256_json
from vdeval.suite import Suite
from vdeval.video import Video
from vdeval.world import sample_clip

REAL = "_real"
VBENCH_VIDEOS = "vbench_videos"  # generated clips of VBench's prompts, named as VBench expects
# generator fields that label clips without changing them: editing them keeps stored clips
_LABEL_FIELDS = ("step", "remote_code_allowed")


def make_generator(config, suite: Suite) -> Generator:
    """The generator a suite entry names; those that declare `takes_world` get the suite's world."""
    cls = registry.resolve("generator", config.kind)
    kwargs: dict[str, Any] = {"suite_dir": str(suite.suite_dir)}
    if cls.takes_world:
        kwargs["world"] = suite.world
    return cls(config, **kwargs)


def request_key(gen_info: dict, r: ClipRequest) -> str:
    """What a stored clip was made from: it is reused only while this stays the same."""
    ref = None if r.reference_image is None else sha256_json(r.reference_image.tolist())
    making = {k: v for k, v in gen_info.items() if k not in _LABEL_FIELDS}
    meta = {k: v for k, v in r.meta.items() if k != "occurrence"}  # derived from the prompts: keys stay as before
    return sha256_json({"generator": making, "prompt": r.prompt, "seed": r.seed, "reference": ref, "meta": meta})


class ClipStore:
    """Clips of one run directory: stored, reused, generated, referenced."""

    def __init__(self, run: RunDir, suite: Suite, device: str = "cpu", progress: bool = False):
        self.run, self.suite, self.device, self.progress = run, suite, device, progress

    def clips_for(self, gen: Generator, requests: list[ClipRequest]) -> list[GeneratedClip]:
        """Stored clips are reused; the rest are generated in batches and stored one by one."""
        if not gen.stores_frames:
            return self._referenced(gen, requests)
        info = gen.info()
        done: dict[str, GeneratedClip] = {}
        todo = []
        for r in requests:
            key = request_key(info, r)
            stored = self._stored(gen.name, r, key)
            if stored is not None:
                done[r.clip_id] = stored
            else:
                todo.append((r, key))
        bar = progress_bar(len(todo), f"generate {gen.name}", self.progress)
        bs = self.suite.output.batch_size
        for start in range(0, len(todo), bs):
            chunk = todo[start:start + bs]
            keys = {r.clip_id: k for r, k in chunk}
            for g in self.generate_safely(gen, [r for r, _ in chunk]):
                self.store(gen.name, g, keys[g.request.clip_id])
                done[g.request.clip_id] = g
                bar.update(1)
        bar.close()
        return [done[r.clip_id] for r in requests]

    def _stored(self, gen_name: str, r: ClipRequest, key: str) -> GeneratedClip | None:
        """The stored clip for this request, if it was made from the same request and is intact."""
        meta_path = self.run.clip_meta_path(gen_name, r.clip_id)
        if not meta_path.exists():
            return None
        try:
            meta = json.loads(meta_path.read_text())
            if meta.get("request_key") == key and not meta.get("error"):
                video = Video(load_array(self.run.clip_path(gen_name, r.clip_id)), meta["fps"])
                if video.content_hash() == meta["clip_hash"]:
                    return GeneratedClip(r, video, meta={"clip_hash": meta["clip_hash"]})
        except Exception:  # a damaged stored clip is regenerated, never trusted
            pass
        return None

    def _referenced(self, gen: Generator, requests: list[ClipRequest]) -> list[GeneratedClip]:
        """Clips read from files: referenced by path and content hash, never copied. The hash is
        computed from each file on every run, never read back from the run folder's records, so
        an edited or replaced file (even one keeping its size and modification time) gets its
        features computed again, and a tampered record changes nothing."""
        out = self.generate_safely(gen, requests)
        for g in out:
            self.store(gen.name, g, key=None)
        return out

    def generate_safely(self, gen: Generator, requests: list[ClipRequest]) -> list[GeneratedClip]:
        """A batch that raises is retried clip by clip, so one bad clip fails alone."""
        try:
            out = list(gen.generate(requests, self.device))
            if len(out) != len(requests):
                raise VdevalError(f"generator {gen.name} returned {len(out)} clips for {len(requests)} requests")
            return out
        except GeneratorSetupError:  # the generator cannot work at all: stop, don't fail clip by clip
            raise
        except Exception as batch_error:
            if len(requests) == 1:
                return [GeneratedClip(requests[0], None, error=one_line(batch_error))]
            out = []
            for r in requests:
                out += self.generate_safely(gen, [r])
            return out

    def store(self, gen_name: str, g: GeneratedClip, key: str | None) -> None:
        """Generated clips: exact frames (.npy) and their request. Referenced clips (key None):
        only the file, its fingerprint and content hash."""
        r = g.request
        meta = {"clip_id": r.clip_id, "prompt": r.prompt, "seed": r.seed, "request_key": key, "error": g.error}
        if g.video is not None:
            try:
                g.meta["clip_hash"] = g.video.content_hash()  # computed once: rows and features reuse it
            except VdevalError as e:  # a file that vanished or cannot be read while hashing
                g.video, g.error = None, str(e)
                meta["error"] = g.error
        if g.video is not None:
            v = g.video
            if key is not None:
                save_array(self.run.clip_path(gen_name, r.clip_id), v.frames)
                if self.suite.prompts.source == "vbench":
                    self._vbench_video(gen_name, r, v)
            else:
                meta.update(file=g.meta.get("file"), fingerprint=g.meta.get("fingerprint"))
            meta.update(clip_hash=g.meta["clip_hash"], fps=v.fps, shape=[v.num_frames, v.height, v.width, 3])
        atomic_write_json(self.run.clip_meta_path(gen_name, r.clip_id), meta)

    def _vbench_video(self, gen_name: str, r: ClipRequest, video: Video) -> None:
        """Generated clips of VBench's prompts also go to vbench_videos/<generator>/<prompt>-<i>.mp4,
        VBench's naming, so VBench can score the folder (and vdeval the same files: a folder
        generator with match: vbench). H.264 at CRF 0 (lossless luma; 4:2:0 chroma, as any mp4
        VBench reads), at the clip's frame rate."""
        from vdeval.prompt_suites import vbench_video_name
        from vdeval.video.io import write_video

        path = self.run.root / VBENCH_VIDEOS / gen_name / vbench_video_name(r.prompt, int(r.meta.get("sample", 0)))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_video(video, path, crf=0)
        except Exception as e:  # the clip itself is stored and scored; only VBench's copy is missing
            import logging

            logging.getLogger("vdeval.clips").warning("note: %s not written: %s", path.name, one_line(e))

    def real_clips(self) -> list[GeneratedClip]:
        """The suite's real set: world clips from their seeds, or the videos of a folder."""
        real = self.suite.real
        if real is None:
            return []
        if real.kind == "world":
            spec = self.suite.world.spec()
            out = []
            for i in range(real.count):
                clip = sample_clip(real.seed + i, spec)
                out.append(GeneratedClip(ClipRequest(f"r{i:04d}", clip.caption, real.seed + i), clip.video))
            return out
        from vdeval.generators.folder import FolderConfig, FolderGenerator

        gen = FolderGenerator(FolderConfig(name=REAL, kind="folder", path=real.path, match="order",
                                          ingest=self.suite.real_ingest()),
                              suite_dir=str(self.suite.suite_dir))
        reqs = [ClipRequest(f"r{i:04d}", "", i, meta={"index": i}) for i in range(min(real.count, len(gen.files)))]
        if len(reqs) < 2:
            raise VdevalError(f"real.path: {gen.folder} holds {len(gen.files)} videos; distribution metrics need at least 2")
        return list(gen.generate(reqs))  # each source hashes itself once, when its features need the key

"""Every object one request leaves in storage, and the order they are written in.

`{prefix}/{videoId}.mp4` (OUTPUT_FORMAT mp4 or both), its poster `{prefix}/{videoId}.jpg`,
and for HLS (hls or both) `{prefix}/{videoId}/index.m3u8` with its segments beside it.
Every object carries the request's fingerprint; a request counts as already done only when
all of them do. Writes go poster, segments, video, playlist: a player never finds a
playlist whose segments are missing. Segments of an earlier render that the new playlist
no longer names are deleted once it is in place.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from processor.render import hls_files
from processor.storage import CONTENT_TYPE, PLAYLIST_TYPE, POSTER_TYPE, SEGMENT_TYPE, Storage, Stored


@dataclass(frozen=True)
class Outputs:
    video: str | None
    poster: str
    playlist: str | None

    @classmethod
    def of(cls, storage: Storage, video_id: str, output_format: str) -> Outputs:
        mp4 = output_format in ("mp4", "both")
        hls = output_format in ("hls", "both")
        return cls(
            storage.key_for(video_id) if mp4 else None,
            storage.key_for(video_id, "jpg"),
            storage.key_for(f"{video_id}/index", "m3u8") if hls else None,
        )

    @property
    def main(self) -> str:
        """The key the event's `url` names: the MP4, or the playlist when there is no MP4."""
        return self.video or self.playlist or self.poster

    def marked(self) -> list[str]:
        return [key for key in (self.playlist, self.poster, self.video) if key is not None]

    def already_stored(self, storage: Storage, mark: str) -> bool:
        return all(storage.fingerprint_of(key) == mark for key in self.marked())

    def store(self, storage: Storage, video: Path, poster: Path, metadata: dict[str, str]) -> Stored:
        """Upload everything, the playlist last; the main object, with the size of all of them."""
        stored = [storage.put(poster, self.poster, metadata, POSTER_TYPE)]
        segments: dict[str, Path] = {}
        if self.playlist is not None:
            folder = self.playlist.rsplit("/", 1)[0]
            files, playlist = hls_files(video)
            segments = {f"{folder}/{segment.name}": segment for segment in files}
            stored += [storage.put(path, key, metadata, SEGMENT_TYPE) for key, path in segments.items()]
        if self.video is not None:
            stored.append(storage.put(video, self.video, metadata, CONTENT_TYPE))
        if self.playlist is not None:
            stored.append(storage.put(playlist, self.playlist, metadata, PLAYLIST_TYPE))
            stale = set(storage.keys_under(folder)) - {*segments, self.playlist}
            if stale:
                storage.delete(sorted(stale))
        main = next(s for s in stored if s.key == self.main)
        return Stored(main.key, main.url, sum(s.size for s in stored))

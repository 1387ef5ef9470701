"""Every object one request leaves in storage, and the order they are written in.

`{prefix}/{videoId}.mp4` (OUTPUT_FORMAT mp4 or both), its poster `{prefix}/{videoId}.jpg`,
and for HLS (hls or both) `{prefix}/{videoId}/index.m3u8` with its segments beside it.
Every object carries the request's fingerprint; a request counts as already done only when
all of them do. Writes go segments, poster, playlist, video: a player never finds a
playlist whose segments are missing, and the object a skip looks at first is written last.
Segments of an earlier render that the new playlist no longer names are deleted.
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
        """Upload everything; the stored main object (with the total size of all of them)."""
        size = 0
        if self.playlist is not None:
            folder = self.playlist.rsplit("/", 1)[0]
            segments, playlist = hls_files(video)
            keys = [f"{folder}/{segment.name}" for segment in segments]
            for segment, key in zip(segments, keys, strict=True):
                size += storage.put(segment, key, metadata, SEGMENT_TYPE).size
            size += storage.put(poster, self.poster, metadata, POSTER_TYPE).size
            main = storage.put(playlist, self.playlist, metadata, PLAYLIST_TYPE)
            size += main.size
            stale = set(storage.keys_under(folder)) - {*keys, self.playlist}
            if stale:
                storage.delete(sorted(stale))
        else:
            size += storage.put(poster, self.poster, metadata, POSTER_TYPE).size
        if self.video is not None:
            main = storage.put(video, self.video, metadata, CONTENT_TYPE)
            size += main.size
        return Stored(main.key, main.url, size)

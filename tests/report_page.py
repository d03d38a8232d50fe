"""Reading an `mmml-report` page back: its figures, and any number that is not one."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

VOID = {"meta", "img", "br", "hr", "link", "input"}
# Text in these may hold digits that are not figures: transcripts, paths, ids, the configuration, styles.
NOT_FIGURES = {"text", "id"}
RAW = {"style", "pre", "title", "script"}


@dataclass
class Figure:
    key: str
    value: float  # the data-value, unrounded
    shown: str  # what a reader sees


@dataclass
class Row:
    listed_in: str  # the list (or video table) the row belongs to, from its figures' keys: "positive", "video.2"
    row: str  # its data-row: "<video_id>/<utterance>", or "<video_id>" for a video
    text: str | None  # the transcript cell, where the row has one


@dataclass
class Page(HTMLParser):
    figures: dict[str, Figure] = field(default_factory=dict)
    rows: list[Row] = field(default_factory=list)  # table rows that stand for an utterance or a video, in order
    stray_digits: list[str] = field(default_factory=list)  # text outside figures that holds a digit
    images: list[str] = field(default_factory=list)
    scripts: int = 0
    _stack: list[tuple[str, set[str], dict]] = field(default_factory=list)
    _row: Row | None = None

    def __post_init__(self) -> None:
        super().__init__()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "img":
            self.images.append(attributes.get("src") or "")
        if tag == "script":
            self.scripts += 1
        if tag == "tr" and "data-row" in attributes:
            self._row = Row("", attributes["data-row"] or "", None)
        if tag not in VOID:
            self._stack.append((tag, set((attributes.get("class") or "").split()), attributes))

    def handle_endtag(self, tag: str) -> None:
        assert self._stack and self._stack[-1][0] == tag, f"unbalanced </{tag}> in {self._stack}"
        self._stack.pop()
        if tag == "tr" and self._row is not None:
            self.rows.append(self._row)
            self._row = None

    def handle_data(self, data: str) -> None:
        if not self._stack:
            return
        tag, classes, attributes = self._stack[-1]
        if "figure" in classes:
            key = attributes["data-figure"]
            assert key not in self.figures, f"figure {key} appears twice"
            self.figures[key] = Figure(key, float(attributes["data-value"]), data)
            if self._row is not None and not self._row.listed_in:
                self._row.listed_in = key.rsplit(".", 2)[0]
        elif self._row is not None and "text" in classes:
            self._row.text = (self._row.text or "") + data
        elif not any(t in RAW or c & NOT_FIGURES for t, c, _ in self._stack) and re.search(r"\d", data):
            self.stray_digits.append(data.strip())


def read_page(html: str) -> Page:
    page = Page()
    page.feed(html)
    page.close()
    return page


def shown_number(text: str) -> float:
    """What a reader takes a printed figure for: '+1,234.5' -> 1234.5, '37.5%' -> 0.375, 'n/a' -> nan."""
    if text == "n/a":
        return float("nan")
    number = float(text.replace(",", "").rstrip("%"))
    return number / 100 if text.endswith("%") else number


def decimals(text: str) -> int:
    digits = text.rstrip("%")
    return len(digits.split(".")[1]) if "." in digits else 0

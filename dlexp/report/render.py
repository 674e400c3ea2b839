"""One report, two renderings: markdown that links its PNGs, and self-contained HTML that embeds
them as base64 data URIs (no scripts, no network)."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from string import Template


@dataclass
class Text:
    text: str


@dataclass
class Code:
    text: str


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]
    row_classes: list[str] = field(default_factory=list)  # a CSS class per row ("" for none)


@dataclass
class Image:
    png: Path
    caption: str


Block = Text | Code | Table | Image


@dataclass
class Section:
    title: str
    blocks: list[Block]


@dataclass
class Document:
    title: str
    subtitle: str  # the folder and the date
    sections: list[Section]


def markdown_cell(value: str) -> str:
    return value.replace("|", "\\|").replace("\n", " ")


def markdown_block(block: Block, folder: Path) -> str:
    if isinstance(block, Text):
        return block.text
    if isinstance(block, Code):
        return f"```\n{block.text.rstrip()}\n```"
    if isinstance(block, Table):
        lines = ["| " + " | ".join(map(markdown_cell, block.header)) + " |"]
        lines.append("|" + "---|" * len(block.header))
        lines += ["| " + " | ".join(map(markdown_cell, row)) + " |" for row in block.rows]
        return "\n".join(lines)
    return f"![{block.caption}]({block.png.relative_to(folder).as_posix()})"


def to_markdown(doc: Document, folder: Path) -> str:
    """report.md: images linked relative to `folder` (where report.md lies)."""
    parts = [f"# {doc.title}", f"_{doc.subtitle}_"]
    for section in doc.sections:
        parts.append(f"## {section.title}")
        parts += [markdown_block(block, folder) for block in section.blocks]
    return "\n\n".join(parts) + "\n"


def png_data_uri(png: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode("ascii")


def html_table(table: Table) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in table.header)
    classes = table.row_classes or [""] * len(table.rows)
    body = "".join(
        f'<tr class="{html.escape(css)}">'
        + "".join(f"<td>{html.escape(c)}</td>" for c in row)
        + "</tr>"
        for row, css in zip(table.rows, classes, strict=True)
    )
    table_html = f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    return f'<div class="scroll">{table_html}</div>'


def html_block(block: Block) -> str:
    if isinstance(block, Text):
        return f"<p>{html.escape(block.text)}</p>"
    if isinstance(block, Code):
        return f"<pre><code>{html.escape(block.text.rstrip())}</code></pre>"
    if isinstance(block, Table):
        return html_table(block)
    caption = html.escape(block.caption)
    return (
        f'<figure><img src="{png_data_uri(block.png)}" alt="{caption}">'
        f"<figcaption>{caption}</figcaption></figure>"
    )


def to_html(doc: Document) -> str:
    """report.html from the packaged template (dlexp/report/report.html)."""
    body = "\n".join(
        f"<section><h2>{html.escape(s.title)}</h2>\n"
        + "\n".join(map(html_block, s.blocks))
        + "</section>"
        for s in doc.sections
    )
    template = Template(resources.files("dlexp.report").joinpath("report.html").read_text())
    return template.substitute(
        title=html.escape(doc.title), subtitle=html.escape(doc.subtitle), body=body
    )

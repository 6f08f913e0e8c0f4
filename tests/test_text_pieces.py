"""One delimited file cut into byte ranges (softreg.io.records, softreg.io.spans, softreg.engine.text_pieces):
the scan of a range finds the records the csv module reads, and the pieces, read one by one, give the chunks
of one reader of the whole file (rows, cells, labels, line numbers), their first rows' labelled indices the
ones the whole file's chunks give. The workers' side is tested on a cluster in test_worker_shards."""

import codecs
import csv
import io
import json
import warnings
from contextlib import ExitStack

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from softreg.cache import rows as cache_rows
from softreg.cache.rows import _open_source
from softreg.config import load_config
from softreg.engine import text_pieces
from softreg.errors import SoftregWarning
from softreg.io import records
from softreg.io.cells import missing_mask
from softreg.io.records import Reading, quote_count, scan_records

REGULAR = ["1", "2.5", "", " ", "NA", "x", "null", '"q"', '"a,b"', '"l1\nl2"', '"l1\r\nl2"', '"say ""hi"""', '""',
           '" "', "abc def", " N/A ", "none", "\u00e9t\u00e9", "\u00a0", "\u00a0" * 3, " " * 20, " na" + " " * 20,
           "x" * 20, "\ufeff", "\ufeffna"]
IRREGULAR = ['a"b', ' "x"', '"x" ', "x\ry"]


def file_of(rows, n_columns, line_end, quoted_header):
    quote = '"' if quoted_header else ""
    return ",".join(f"{quote}h{index}{quote}" for index in range(n_columns)) + line_end + line_end.join(rows)


def table(cells):
    """Files of 1 to 4 columns of ``cells``, some rows blank, with CRLF or LF line ends, a quoted
    header or not, a byte-order mark or not."""
    return st.integers(1, 4).flatmap(lambda n: st.tuples(
        st.just(n),
        st.lists(st.one_of(st.lists(st.sampled_from(cells), min_size=n, max_size=n).map(",".join),
                           st.sampled_from(["", " ", ","])), min_size=1, max_size=30),
        st.sampled_from(["\n", "\r\n"]), st.sampled_from(["", "\n"]), st.integers(0, 3), st.randoms(),
        st.booleans(), st.booleans()))


def scanned(data, target, cuts, bom=False):
    """Rows, unlabelled rows and each row's (byte, line, unlabelled before) by scanning the ranges
    ``cuts`` make, chained as the planner chains them; or the reason it would read the file whole."""
    bounds = [0, *cuts, None]
    handle = io.BytesIO(data)
    ranges = list(zip(bounds, bounds[1:], strict=False))
    counts = [quote_count(handle, start, stop) for start, stop in ranges]
    if any(lone for _, _, lone in counts):
        return "lone"
    quoted, line, rows, unlabelled, found, marks = False, 1, 0, 0, [], []
    for index, ((start, stop), (quotes, feeds, _)) in enumerate(zip(ranges, counts, strict=True)):
        scan = scan_records(handle, start, stop, quoted, line, Reading(",", target, "utf-8", index == 0, bom),
                            list(range(len(data))))
        if scan.irregular is not None:
            return scan.irregular
        found += [(byte, at, unlabelled + before) for byte, at, before in scan.found]
        marks += [(rows + row, byte, at, unlabelled + before) for row, byte, at, before in scan.marks]
        rows, unlabelled = rows + scan.rows, unlabelled + scan.unlabelled
        quoted, line = bool((quoted + quotes) & 1), line + feeds
    assert marks and all(mark == (mark[0], *found[mark[0]]) for mark in marks) or not rows  # marks are rows found
    return rows, unlabelled, found


def reference(text):
    """The data rows of ``text`` as the text path reads them (csv module; blank rows skipped), after the header."""
    records = [row for row in csv.reader(io.StringIO(text, newline="")) if row and any(cell.strip() for cell in row)]
    return records[1:]


def check(case, cells_regular):
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(records, "MARK_ROWS", 3)
        checked(case, cells_regular)


def checked(case, cells_regular):
    n_columns, rows, line_end, trailing, target, random, quoted_header, bom = case
    text = file_of(rows, n_columns, line_end, quoted_header) + trailing
    data = codecs.BOM_UTF8 * bom + text.encode()  # the text path reads UTF-8 less a byte-order mark at its head
    target = min(target, n_columns - 1)
    first = 1 + 3 * bom  # a range holds a record start (the planner's are 1 MiB at least)
    cuts = sorted({random.randrange(first, len(data)) for _ in range(random.randrange(0, 5))}
                  ) if len(data) > first else []
    got = scanned(data, target, cuts, bom)
    if isinstance(got, str):
        assert not cells_regular, (text, got)  # only an irregular file may be refused
        return
    expected = reference(text)
    n_rows, unlabelled, found = got
    assert n_rows == len(expected) == len(found)
    labels = np.array([row[target] if len(row) > target else "x" for row in expected], dtype=str)
    missing = missing_mask(labels) if len(labels) else np.zeros(0, dtype=bool)
    assert unlabelled == int(missing.sum())
    for index, ((byte, line, before), row) in enumerate(zip(found, expected, strict=True)):
        text_there = data[byte:].decode("utf-8-sig" if byte == 0 else "utf-8")
        assert next(csv.reader(io.StringIO(text_there, newline=""))) == row  # the row starts there
        assert line == data[:byte].count(b"\n") + 1
        assert before == int(missing[:index].sum())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(table(REGULAR))
def test_a_scan_in_any_ranges_finds_the_csv_modules_rows_labels_and_lines(case):
    check(case, True)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(table(REGULAR + IRREGULAR))
def test_quoting_other_than_rfc_4180_is_refused_or_read_exactly(case):
    check(case, False)


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks of 100 rows, ranges of 2000 bytes and marks every 37 rows, so that small files make
    many pieces, and cuts are found from marks."""
    monkeypatch.setattr(records, "MARK_ROWS", 37)
    monkeypatch.setattr(cache_rows, "READ_ROWS", 100)
    monkeypatch.setattr(text_pieces, "READ_ROWS", 100)
    monkeypatch.setattr(text_pieces, "MIN_RANGE_BYTES", 2000)


def here(function, *args, worker=None):
    """A task run in this process (the planner's ``submit``)."""
    return function(*args)


def chunks_of(config, span=None, layout=None):
    """The columns' kinds and the chunks of the source (or of ``span``) as an ingest reads them."""
    with ExitStack() as stack, warnings.catch_warnings():
        warnings.simplefilter("ignore", SoftregWarning)  # the rows without a label, counted
        reader = _open_source(config, stack, None, span, layout)
        return reader.layout, [(chunk.numbers, chunk.text, list(chunk.labels), chunk.lines) for chunk in reader.chunks]


def write_source(path, n, seed, separator=",", header=True, encoding="utf-8", gaps=True):
    """``n`` rows of a number, a category (quoted, with line feeds and delimiters inside) and a label,
    CRLF line ends and a few blank rows; ``gaps``: some numbers and labels missing."""
    rng = np.random.default_rng(seed)
    x = np.round(rng.normal(size=n), 4).astype(str).astype(object)
    colour = rng.choice(["red", '"gr\ney"', "bl\u00fc", f'"a{separator}b"'], n).astype(object)
    label = rng.choice(["p", "q", '"r"'], n).astype(object)
    if gaps:
        x[rng.random(n) < 0.03] = ""
        label[rng.random(n) < 0.05] = ""
        label[rng.random(n) < 0.02] = " ? "
        label[rng.random(n) < 0.02] = '"NA"'
    rows = [separator.join(row) for row in zip(x, colour, label, strict=True)]
    for index in rng.choice(n, 5):
        rows[index] = ""
    head = separator.join(['"x"', '"colour"', '"label"']) + "\r\n" if header else ""
    path.write_bytes((head + "\r\n".join(rows) + "\r\n").encode(encoding))


@pytest.mark.parametrize(("missing", "separator", "header", "encoding"), [
    ("mean", ",", True, "utf-8"), ("drop", ";", True, "latin-1"), ("error", "\t", False, "utf-8"),
    ("drop", ",", True, "utf-8-sig"),  # a byte-order mark before the quoted header
])
def test_pieces_read_one_by_one_are_the_whole_files_chunks(tmp_path, small_chunks, missing, separator, header,
                                                           encoding):
    source = tmp_path / "t.txt"
    write_source(source, 1500, 1, separator, header, encoding, gaps=missing != "error")
    label = "label" if header else "col2"
    (tmp_path / "c.yaml").write_text(
        f"data:\n  source: {source}\n  label: {label}\n  missing: {missing}\n  delimiter: {json.dumps(separator)}\n"
        f"  header: {str(header).lower()}\n  encoding: {encoding}\n  categorical: auto\n")
    config = load_config(tmp_path / "c.yaml")
    pieces = text_pieces.delimited_pieces(config, source.stat().st_size, 6, ["w0", "w1"], here, lambda value: value)
    assert len(pieces) == 5  # 15 chunks of 100 rows (blank ones skipped), 3 a piece
    layout, whole = chunks_of(config)
    assert layout.categorical == ["colour" if header else "col1"]
    read = []
    for piece in pieces:
        piece_layout, chunks = chunks_of(config, piece.span, piece.layout)
        assert piece_layout == layout and len(chunks) * 100 >= piece.rows
        read += chunks
    assert len(read) == len(whole)
    labelled = np.cumsum([0] + [len(chunk[2]) for chunk in whole])
    assert [piece.start for piece in pieces] == labelled[:len(whole):3].tolist()
    for mine, theirs in zip(read, whole, strict=True):
        assert np.array_equal(mine[0], theirs[0], equal_nan=True) and np.array_equal(mine[1], theirs[1])
        assert mine[2] == theirs[2] and mine[3] == theirs[3]


@pytest.mark.parametrize(("text", "encoding", "why"), [
    ("".join(f'{index}" pipe,{index % 7},{"ab"[index % 2]}\n' for index in range(2000)), "utf-8",
     "it has a quote inside a field"),
    ("".join(f"\u30dd{index},{index % 7},{'ab'[index % 2]}\n" for index in range(2000)), "shift_jis",
     "its encoding shift_jis may hold quote, delimiter or line-feed bytes inside a character"),
    ("".join(f"{index},{index % 7},{'ab'[index % 2]}\r" for index in range(2000)), "utf-8",
     "a carriage return in it ends no line"),
])
def test_a_file_that_cannot_be_cut_is_one_piece_and_the_ingest_says_why(tmp_path, small_chunks, text, encoding, why):
    source = tmp_path / "t.csv"
    source.write_bytes(("item,x,label\n" + text).encode(encoding))
    (tmp_path / "c.yaml").write_text(f"data:\n  source: {source}\n  label: label\n  encoding: {encoding}\n")
    config = load_config(tmp_path / "c.yaml")
    with pytest.warns(UserWarning, match=f"one worker reads it whole, since {why}"):
        pieces = text_pieces.delimited_pieces(config, source.stat().st_size, 6, ["w"], here, lambda value: value)
    assert [(piece.span, piece.window) for piece in pieces] == [(None, None)]


def test_a_header_after_more_blank_lines_than_the_first_range_holds_is_read_whole(tmp_path, small_chunks):
    source = tmp_path / "t.csv"
    source.write_text("\n" * 3000 + "x,label\n" + "".join(f"{index},{'ab'[index % 2]}\n" for index in range(2000)))
    (tmp_path / "c.yaml").write_text(f"data:\n  source: {source}\n  label: label\n")
    config = load_config(tmp_path / "c.yaml")
    with pytest.warns(UserWarning, match="one worker reads it whole, since its header is not near its head"):
        pieces = text_pieces.delimited_pieces(config, source.stat().st_size, 6, ["w"], here, lambda value: value)
    assert len(pieces) == 1


def test_bytes_that_are_not_text_in_the_encoding_are_read_whole_so_the_error_names_the_same_line(tmp_path,
                                                                                               small_chunks):
    """Invalid UTF-8 deep in the file: the text path's error names a line that depends on where its
    decoder's reads fall, so the file is one piece and the error is one reader's of the whole file."""
    source = tmp_path / "t.csv"
    source.write_bytes(b"x,label\n" + b"".join(b"%d,%s\n" % (index, b"ab"[index % 2:][:1]) for index in range(2000))
                       + b"\xff,a\n")
    (tmp_path / "c.yaml").write_text(f"data:\n  source: {source}\n  label: label\n")
    config = load_config(tmp_path / "c.yaml")
    with pytest.warns(UserWarning, match="one worker reads it whole, since it has bytes that are not utf-8 text"):
        pieces = text_pieces.delimited_pieces(config, source.stat().st_size, 6, ["w"], here, lambda value: value)
    assert len(pieces) == 1


def test_a_field_too_large_for_the_csv_module_is_left_to_the_reader(tmp_path):
    """A record the scan must read whose field passes the csv module's limit counts as a labelled row
    (its reader then says what is wrong with it), instead of failing the scan."""
    data = b'a,b\n1,x\n"' + b" " * 200_000 + b'", \n2,y\n'
    scan = scan_records(io.BytesIO(data), 0, None, False, 1, Reading(",", 1, "utf-8", True))
    assert (scan.rows, scan.unlabelled, scan.irregular) == (3, 1, None)

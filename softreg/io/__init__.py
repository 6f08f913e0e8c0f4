"""Every data source softreg reads, owned here and nowhere else.

- `kinds`: which reader a source needs (name, suffix, and content for svmlight);
- one module per format: `delimited` (text cells; `delimited_numbers`, its fast numeric path),
  `svmlight`, `npz`, `parquet`, `builtin`;
- `selection`: which columns are the label, the id and the features, for every format;
- `stream`: the one streaming entry point (`open_rows`) that ingest, ``evaluate --data``,
  ``predict`` and the in-memory load read through; `sources.load_source` reads a source whole
  (numeric text and Parquet through `arrays`, which fills one array from open_rows' chunks);
- `footprint` and `fingerprint`: a source's size before loading it, and what identifies its content.

Importing the package imports nothing: each module is imported where it is used.
"""

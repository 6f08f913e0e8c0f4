"""From a loaded table (`softreg.io.dataset.Dataset`) to the parts training reads.

- `columns`: raw cells to numeric features (missing values, one-hot categories), learnt on
  the training part and saved with the model;
- `features`: which columns are categorical, rows with missing cells dropped;
- `data`: a config's ``data`` section to standardized train, validation and test parts.
"""

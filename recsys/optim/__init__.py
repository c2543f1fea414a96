"""Optimizers for embedding tables: lazy (row-sparse) Adam and row-wise Adagrad beside dense Adam."""

"""From files to clean, split, indexed arrays: readers, cleaning, splits, labels, vocabularies, features,
and the report that counts every row."""

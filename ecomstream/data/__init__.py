"""Data that ships with installed packages: review corpora for training and simulation."""

"""The embedded demo: a dataset with a planted shortcut and two small models to compare."""

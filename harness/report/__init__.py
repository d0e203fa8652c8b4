"""The reporter: renders results files as tables, charts and pages. It reads results; it never measures."""

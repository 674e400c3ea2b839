"""`dlexp-report RUN_OR_SWEEP`: report.md and a self-contained report.html of a run or a sweep."""

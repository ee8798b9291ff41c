"""The outputs of a gate run: terminal table, gate JUnit XML, summary.json."""
